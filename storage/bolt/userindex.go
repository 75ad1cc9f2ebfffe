package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// The user index: one empty value per key a user is found by (storage.User.Keys),
// keyed "<kind>\x00<value>\x00<subject>", so FindUsers is a prefix seek and a user
// write replaces its entries in its own transaction. NUL cannot occur in a value
// (UserKey.Normalize refuses it) and subjects are never empty.

const (
	// metaUserIndexKey marks a file whose index covers every user: files written
	// before the index existed are indexed once, when opened.
	metaUserIndexKey = "user_index"
)

// indexPrefix is the part of an index key before the subject.
func indexPrefix(k storage.UserKey) []byte {
	var kind, value string
	switch {
	case k.UnionID != "":
		kind, value = "u", k.UnionID
	case k.UserID != "":
		kind, value = "i", k.CorpID+"\x00"+k.UserID
	case k.Phone != "":
		kind, value = "p", k.Phone
	case k.Email != "":
		kind, value = "e", k.Email
	default:
		kind, value = "n", k.Username
	}
	return []byte(kind + "\x00" + value + "\x00")
}

// putUser stores u under subject and moves its index entries from old's keys
// (nil: there was no user) to u's.
//
// Only the entries that change are written: a returning login changes none,
// and an index page untouched is a page the commit does not write.
func putUser(tx *bbolt.Tx, subject string, old *storage.User, u storage.User) error {
	idx := tx.Bucket([]byte(bucketUserIndex))
	keys := u.Keys()
	var oldKeys []storage.UserKey
	if old != nil {
		oldKeys = old.Keys()
	}
	for _, k := range oldKeys {
		if !slices.Contains(keys, k) {
			if err := idx.Delete(append(indexPrefix(k), subject...)); err != nil {
				return err
			}
		}
	}
	for _, k := range keys {
		if !slices.Contains(oldKeys, k) {
			if err := idx.Put(append(indexPrefix(k), subject...), []byte{}); err != nil {
				return err
			}
		}
	}
	return put(tx.Bucket([]byte(bucketUsers)), subject, u)
}

func indexUser(idx *bbolt.Bucket, subject string, u storage.User) error {
	for _, k := range u.Keys() {
		if err := idx.Put(append(indexPrefix(k), subject...), []byte{}); err != nil {
			return err
		}
	}
	return nil
}

// ensureUserIndex indexes every user of a file that has no index yet.
func ensureUserIndex(tx *bbolt.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta.Get([]byte(metaUserIndexKey)) != nil {
		return nil
	}
	idx := tx.Bucket([]byte(bucketUserIndex))
	err := tx.Bucket([]byte(bucketUsers)).ForEach(func(k, v []byte) error {
		var u storage.User
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("index user %s: %w", k, err)
		}
		return indexUser(idx, string(k), u)
	})
	if err != nil {
		return err
	}
	return meta.Put([]byte(metaUserIndexKey), []byte("1"))
}

// FindUsers reads the write-back, then the index and each user it names; a
// user held in the write-back is judged by that newer version.
func (s *Storage) FindUsers(ctx context.Context, key storage.UserKey) ([]storage.User, error) {
	key, err := key.Normalize()
	if err != nil {
		return nil, fmt.Errorf("bolt: find users: %w", err)
	}
	held := s.pendingUsers()
	var users []storage.User
	for _, u := range held {
		if slices.Contains(u.Keys(), key) {
			users = append(users, u)
		}
	}
	prefix := indexPrefix(key)
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketUsers))
		c := tx.Bucket([]byte(bucketUserIndex)).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			subject := string(k[len(prefix):])
			if _, ok := held[subject]; ok {
				continue
			}
			var u storage.User
			found, err := get(b, subject, &u)
			if err != nil {
				return err
			}
			if found { // always, unless the file was changed behind our back
				users = append(users, u)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: find users: %w", err)
	}
	if users == nil {
		users = []storage.User{}
	}
	sortBySubject(users)
	return users, nil
}
