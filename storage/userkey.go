package storage

import (
	"errors"
	"fmt"
	"strings"
)

// Keys returns the keys FindUsers finds u by, normalised as Normalize does, with
// empty values left out and without repeats. Backends index exactly these.
func (u User) Keys() []UserKey {
	var keys []UserKey
	add := func(k UserKey) {
		k, err := k.Normalize()
		if err != nil {
			return // an empty value is no key
		}
		for _, have := range keys {
			if have == k {
				return
			}
		}
		keys = append(keys, k)
	}
	add(UserKey{UnionID: u.UnionID})
	if u.UserID != "" && u.CorpID != "" {
		add(UserKey{UserID: u.UserID, CorpID: u.CorpID})
	}
	add(UserKey{Phone: u.Phone})
	add(UserKey{Email: u.Email})
	add(UserKey{Email: u.OrgEmail})
	add(UserKey{Username: u.Username})
	return keys
}

// ErrInvalidKey: a UserKey that sets no value, more than one, or a UserID
// without its CorpID.
var ErrInvalidKey = errors.New("storage: invalid user key")

// Normalize checks that k names one value and returns it the way the index
// keeps it: e-mail addresses in lower case, surrounding spaces removed.
func (k UserKey) Normalize() (UserKey, error) {
	k.UnionID = strings.TrimSpace(k.UnionID)
	k.UserID, k.CorpID = strings.TrimSpace(k.UserID), strings.TrimSpace(k.CorpID)
	k.Phone = strings.TrimSpace(k.Phone)
	k.Email = strings.ToLower(strings.TrimSpace(k.Email))
	k.Username = strings.TrimSpace(k.Username)
	set := 0
	for _, v := range []string{k.UnionID, k.UserID, k.Phone, k.Email, k.Username} {
		if v != "" {
			set++
		}
		if strings.ContainsRune(v, 0) {
			return UserKey{}, fmt.Errorf("%w: a value contains a NUL byte", ErrInvalidKey)
		}
	}
	switch {
	case set == 0:
		return UserKey{}, fmt.Errorf("%w: no value set", ErrInvalidKey)
	case set > 1:
		return UserKey{}, fmt.Errorf("%w: more than one value set", ErrInvalidKey)
	case k.UserID != "" && k.CorpID == "":
		return UserKey{}, fmt.Errorf("%w: UserID without CorpID", ErrInvalidKey)
	case k.UserID == "" && k.CorpID != "":
		return UserKey{}, fmt.Errorf("%w: CorpID without UserID", ErrInvalidKey)
	case strings.ContainsRune(k.CorpID, 0):
		return UserKey{}, fmt.Errorf("%w: a value contains a NUL byte", ErrInvalidKey)
	}
	return k, nil
}

// String names the key for logs and messages: "unionid X", "userid X in corp Y",
// "mobile X", "email X", "username X".
func (k UserKey) String() string {
	switch {
	case k.UnionID != "":
		return "unionid " + k.UnionID
	case k.UserID != "":
		return "userid " + k.UserID + " in corp " + k.CorpID
	case k.Phone != "":
		return "mobile " + k.Phone
	case k.Email != "":
		return "email " + k.Email
	case k.Username != "":
		return "username " + k.Username
	}
	return "no key"
}
