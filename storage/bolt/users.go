package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// UpsertUser is batched: update may be called more than once and must depend
// only on the user it is given. The user is stored under subject; update may
// leave Subject empty (it is filled in) but may not change it.
func (s *Storage) UpsertUser(ctx context.Context, subject string, update func(u storage.User, found bool) (storage.User, error)) (storage.User, error) {
	var stored storage.User
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		var err error
		stored, answer, err = upsertUser(tx, subject, update)
		return err
	})
	if err := wrap("upsert user", err, answer); err != nil {
		return storage.User{}, err
	}
	return stored, nil
}

// upsertUser applies update to the stored user. A refusal (update's error, a
// changed subject) comes back as answer with nothing written.
func upsertUser(tx *bbolt.Tx, subject string, update func(u storage.User, found bool) (storage.User, error)) (stored storage.User, answer, err error) {
	b := tx.Bucket([]byte(bucketUsers))
	var old storage.User
	found, err := get(b, subject, &old)
	if err != nil {
		return storage.User{}, nil, err
	}
	var u storage.User
	if u, answer = update(old, found); answer != nil {
		return storage.User{}, answer, nil
	}
	if u.Subject == "" {
		u.Subject = subject
	}
	if u.Subject != subject {
		return storage.User{}, errors.New("update changed the subject"), nil
	}
	u = utcUser(u)
	var previous *storage.User // whose index entries u replaces
	if found {
		previous = &old
	}
	if err := putUser(tx, subject, previous, u); err != nil {
		return storage.User{}, nil, err
	}
	return u, nil, nil
}

// CompleteLogin writes the user and the session in one batched transaction: a
// login's callback costs one shared fsync. Everything is checked before anything
// is written, so a refusal stores nothing.
func (s *Storage) CompleteLogin(ctx context.Context, l storage.Login) (storage.User, error) {
	var stored storage.User
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		stored, answer = storage.User{}, nil
		if l.Session.ID != "" && has(tx.Bucket([]byte(bucketSessions)), l.Session.ID) {
			answer = storage.ErrAlreadyExists
			return nil
		}
		var err error
		if stored, answer, err = upsertUser(tx, l.Subject, l.Update); err != nil || answer != nil {
			return err
		}
		if l.ReplaceSessionID != "" {
			if _, err := deleteSession(tx, l.ReplaceSessionID); err != nil {
				return err
			}
		}
		if l.Session.ID != "" {
			return putSession(tx, l.Session)
		}
		return nil
	})
	if err := wrap("complete login", err, answer); err != nil {
		return storage.User{}, err
	}
	return stored, nil
}

// GetUser returns the user, or storage.ErrNotFound.
func (s *Storage) GetUser(ctx context.Context, subject string) (storage.User, error) {
	var u storage.User
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		ok, err := get(tx.Bucket([]byte(bucketUsers)), subject, &u)
		if err == nil && !ok {
			err = storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return storage.User{}, fmt.Errorf("bolt: get user: %w", err)
	}
	return u, nil
}

// ListUsers returns every user, ordered by subject.
func (s *Storage) ListUsers(ctx context.Context) ([]storage.User, error) {
	var users []storage.User
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketUsers)).ForEach(func(_, v []byte) error {
			var u storage.User
			if err := json.Unmarshal(v, &u); err != nil {
				return err
			}
			users = append(users, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list users: %w", err)
	}
	return users, nil
}
