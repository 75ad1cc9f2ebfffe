package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// Sessions are written at every login (CompleteLogin) and touched at every SSO
// use, so their writes are batched (see batch for the rules its functions keep).
// Errors name no session: its ID leads to the cookie.

func (s *Storage) CreateSession(ctx context.Context, sess storage.Session) error {
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		if has(tx.Bucket([]byte(bucketSessions)), sess.ID) {
			answer = storage.ErrAlreadyExists
			return nil
		}
		return putSession(tx, sess)
	})
	return wrap("create session", err, answer)
}

// putSession stores a new session and its expiry key.
func putSession(tx *bbolt.Tx, sess storage.Session) error {
	sess = utcSession(sess)
	if err := put(tx.Bucket([]byte(bucketSessions)), sess.ID, sess); err != nil {
		return err
	}
	return indexExpiry(tx, sess.Expiry, kindSession, sess.ID)
}

func (s *Storage) GetSession(ctx context.Context, id string) (storage.Session, error) {
	now := time.Now()
	var sess storage.Session
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		ok, err := get(tx.Bucket([]byte(bucketSessions)), id, &sess)
		if err == nil && (!ok || expired(sess.Expiry, now)) {
			err = storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return storage.Session{}, wrap("get session", err, nil)
	}
	return sess, nil
}

// UpdateSession replaces the live session with what update returns; an expired
// one is storage.ErrNotFound. update may run more than once (see batch).
func (s *Storage) UpdateSession(ctx context.Context, id string, update func(storage.Session) (storage.Session, error)) error {
	now := time.Now()
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		b := tx.Bucket([]byte(bucketSessions))
		var old storage.Session
		ok, err := get(b, id, &old)
		if err != nil {
			return err
		}
		if !ok || expired(old.Expiry, now) {
			answer = storage.ErrNotFound
			return nil
		}
		sess, err := update(old)
		if err != nil {
			answer = err
			return nil
		}
		if sess.ID != id {
			answer = errors.New("update changed the ID")
			return nil
		}
		sess = utcSession(sess)
		if err := put(b, id, sess); err != nil {
			return err
		}
		return reindexExpiry(tx, old.Expiry, sess.Expiry, kindSession, id)
	})
	return wrap("update session", err, answer)
}

func (s *Storage) DeleteSession(ctx context.Context, id string) error {
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		ok, err := deleteSession(tx, id)
		if err == nil && !ok {
			answer = storage.ErrNotFound
		}
		return err
	})
	return wrap("delete session", err, answer)
}

// deleteSession removes the session and its expiry key, reporting whether there was one.
func deleteSession(tx *bbolt.Tx, id string) (bool, error) {
	b := tx.Bucket([]byte(bucketSessions))
	var rec expiring
	ok, err := get(b, id, &rec)
	if err != nil || !ok {
		return false, err
	}
	if err := b.Delete([]byte(id)); err != nil {
		return false, err
	}
	return true, unindexExpiry(tx, rec.Expiry, kindSession, id)
}

// SessionsOf scans the sessions: it runs when a person leaves, not at logins.
func (s *Storage) SessionsOf(ctx context.Context, subject string) ([]storage.Session, error) {
	now := time.Now()
	var out []storage.Session
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketSessions)).ForEach(func(_, v []byte) error {
			var o owner
			if err := json.Unmarshal(v, &o); err != nil || o.Subject != subject {
				return err
			}
			var sess storage.Session
			if err := json.Unmarshal(v, &sess); err != nil {
				return err
			}
			if !expired(sess.Expiry, now) {
				out = append(out, sess)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: sessions of a subject: %w", err)
	}
	return out, nil
}
