package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// Sessions are written at every login and touched at every SSO use, so writes go
// through s.batch. Errors name no session: its ID leads to the cookie.

// CreateSession stores sess, or fails with storage.ErrAlreadyExists.
func (s *Storage) CreateSession(ctx context.Context, sess storage.Session) error {
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		b := tx.Bucket([]byte(bucketSessions))
		if has(b, sess.ID) {
			answer = storage.ErrAlreadyExists
			return nil
		}
		return put(b, sess.ID, utcSession(sess))
	})
	return wrap("create session", err, answer)
}

// GetSession returns the session, or storage.ErrNotFound if it is absent or expired.
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
		return storage.Session{}, fmt.Errorf("bolt: get session: %w", err)
	}
	return sess, nil
}

// UpdateSession replaces the session with what update returns; an expired session
// is storage.ErrNotFound. update may run more than once and may not change the ID.
func (s *Storage) UpdateSession(ctx context.Context, id string, update func(storage.Session) (storage.Session, error)) error {
	now := time.Now()
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		b := tx.Bucket([]byte(bucketSessions))
		var sess storage.Session
		ok, err := get(b, id, &sess)
		if err != nil {
			return err
		}
		if !ok || expired(sess.Expiry, now) {
			answer = storage.ErrNotFound
			return nil
		}
		if sess, answer = update(sess); answer != nil {
			return nil
		}
		if sess.ID != id {
			answer = errors.New("update changed the ID")
			return nil
		}
		return put(b, id, utcSession(sess))
	})
	return wrap("update session", err, answer)
}

// DeleteSession removes the session, or fails with storage.ErrNotFound.
func (s *Storage) DeleteSession(ctx context.Context, id string) error {
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		b := tx.Bucket([]byte(bucketSessions))
		if !has(b, id) {
			answer = storage.ErrNotFound
			return nil
		}
		return b.Delete([]byte(id))
	})
	return wrap("delete session", err, answer)
}
