package bolt

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// recordKind describes a short-lived record stored under its ID in a bucket of
// its own (auth requests, sessions), so one set of functions can create, read,
// update and delete them: written on every login, they all go through s.batch.
type recordKind[T any] struct {
	name   string // for errors: "auth request"
	bucket string
	id     func(T) string
	expiry func(T) time.Time
	utc    func(T) T
}

var (
	authRequests = recordKind[storage.AuthRequest]{
		name: "auth request", bucket: bucketAuthRequests, utc: utcAuthRequest,
		id:     func(a storage.AuthRequest) string { return a.ID },
		expiry: func(a storage.AuthRequest) time.Time { return a.Expiry },
	}
	sessions = recordKind[storage.Session]{
		name: "session", bucket: bucketSessions, utc: utcSession,
		id:     func(s storage.Session) string { return s.ID },
		expiry: func(s storage.Session) time.Time { return s.Expiry },
	}
)

// create stores rec, or fails with storage.ErrAlreadyExists.
func (k recordKind[T]) create(ctx context.Context, s *Storage, rec T) error {
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		b := tx.Bucket([]byte(k.bucket))
		if has(b, k.id(rec)) {
			answer = storage.ErrAlreadyExists
			return nil
		}
		return put(b, k.id(rec), k.utc(rec))
	})
	return wrap("create "+k.name, err, answer)
}

// get returns the record, or storage.ErrNotFound if it is absent or expired.
func (k recordKind[T]) get(ctx context.Context, s *Storage, id string) (T, error) {
	now := time.Now()
	var rec, zero T
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		ok, err := get(tx.Bucket([]byte(k.bucket)), id, &rec)
		if err == nil && (!ok || expired(k.expiry(rec), now)) {
			err = storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return zero, wrap("get "+k.name, err, nil)
	}
	return rec, nil
}

// update replaces the record with what fn returns. An expired record is
// storage.ErrNotFound here too. fn may be called more than once (see batch) and
// may not change the ID.
func (k recordKind[T]) update(ctx context.Context, s *Storage, id string, fn func(T) (T, error)) error {
	now := time.Now()
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		b := tx.Bucket([]byte(k.bucket))
		var rec T
		ok, err := get(b, id, &rec)
		if err != nil {
			return err
		}
		if !ok || expired(k.expiry(rec), now) {
			answer = storage.ErrNotFound
			return nil
		}
		if rec, answer = fn(rec); answer != nil {
			return nil
		}
		if k.id(rec) != id {
			answer = errors.New("update changed the ID")
			return nil
		}
		return put(b, id, k.utc(rec))
	})
	return wrap("update "+k.name, err, answer)
}

// delete removes the record, or fails with storage.ErrNotFound.
func (k recordKind[T]) delete(ctx context.Context, s *Storage, id string) error {
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		b := tx.Bucket([]byte(k.bucket))
		if !has(b, id) {
			answer = storage.ErrNotFound
			return nil
		}
		return b.Delete([]byte(id))
	})
	return wrap("delete "+k.name, err, answer)
}
