package bolt

import (
	"encoding/json"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// Records are stored as the JSON their struct tags describe, so the file can be
// read with bbolt's own tools and a newer binary can read an older file.

func put(b *bbolt.Bucket, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(id), data)
}

// get decodes the record stored under id into v and reports whether there was one.
// v must be a zero value: json.Unmarshal merges into what is already there.
func get(b *bbolt.Bucket, id string, v any) (bool, error) {
	data := b.Get([]byte(id))
	if data == nil {
		return false, nil
	}
	return true, json.Unmarshal(data, v)
}

// has avoids decoding when only existence matters.
func has(b *bbolt.Bucket, id string) bool {
	return b.Get([]byte(id)) != nil
}

// expired treats a zero Expiry as long gone: a record nobody gave a lifetime must
// not live forever.
func expired(expiry, now time.Time) bool {
	return expiry.Before(now)
}

// expiring is the part of every short-lived record the garbage collector needs.
// Decoding into it skips allocating the rest.
type expiring struct {
	GrantID string    `json:"grantID"`
	Expiry  time.Time `json:"expiry"`
}

// utc stores times in one location so the file reads the same whoever wrote it.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func utcClient(c storage.Client) storage.Client {
	c.CreatedAt, c.UpdatedAt = utc(c.CreatedAt), utc(c.UpdatedAt)
	return c
}

func utcAuthRequest(a storage.AuthRequest) storage.AuthRequest {
	a.CreatedAt, a.Expiry, a.AuthTime = utc(a.CreatedAt), utc(a.Expiry), utc(a.AuthTime)
	return a
}

func utcAuthCode(c storage.AuthCode) storage.AuthCode {
	c.ClaimedAt, c.Expiry = utc(c.ClaimedAt), utc(c.Expiry)
	return c
}

func utcAccessToken(t storage.AccessToken) storage.AccessToken {
	t.CreatedAt, t.Expiry = utc(t.CreatedAt), utc(t.Expiry)
	return t
}

func utcRefreshToken(t storage.RefreshToken) storage.RefreshToken {
	t.AuthTime, t.CreatedAt, t.Expiry = utc(t.AuthTime), utc(t.CreatedAt), utc(t.Expiry)
	t.GrantExpiry, t.RotatedAt = utc(t.GrantExpiry), utc(t.RotatedAt)
	return t
}

func utcUser(u storage.User) storage.User {
	u.FirstLogin, u.LastLogin = utc(u.FirstLogin), utc(u.LastLogin)
	u.DisabledAt, u.ProvisionedAt, u.BoundAt = utc(u.DisabledAt), utc(u.ProvisionedAt), utc(u.BoundAt)
	u.MembershipCheckedAt = utc(u.MembershipCheckedAt)
	return u
}

func utcUpstreamState(s storage.UpstreamState) storage.UpstreamState {
	s.Expiry = utc(s.Expiry)
	return s
}

func utcKeySet(ks storage.KeySet) storage.KeySet {
	if ks.SigningKeys != nil {
		// A fresh slice: the caller's must not change under them.
		keys := make([]storage.SigningKey, len(ks.SigningKeys))
		for i, k := range ks.SigningKeys {
			k.CreatedAt, k.NotBefore = utc(k.CreatedAt), utc(k.NotBefore)
			k.RetiredAt, k.Expiry = utc(k.RetiredAt), utc(k.Expiry)
			keys[i] = k
		}
		ks.SigningKeys = keys
	}
	return ks
}

func utcDevice(d storage.DeviceAuthorization) storage.DeviceAuthorization {
	d.CreatedAt, d.CodeExpiry, d.Expiry = utc(d.CreatedAt), utc(d.CodeExpiry), utc(d.Expiry)
	d.LastPoll, d.AuthTime = utc(d.LastPoll), utc(d.AuthTime)
	return d
}

func utcSession(s storage.Session) storage.Session {
	s.AuthTime, s.CreatedAt, s.LastUsed, s.Expiry = utc(s.AuthTime), utc(s.CreatedAt), utc(s.LastUsed), utc(s.Expiry)
	return s
}
