package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// Users and sessions are written through the write-back (writeback.go): a
// change is made there under its mutex and committed with the next commit.

// UpsertUser applies update to the newest version of the user and returns
// once that is committed. update runs once. The user is stored under subject;
// update may leave Subject empty (it is filled in) but may not change it.
func (s *Storage) UpsertUser(ctx context.Context, subject string, update func(u storage.User, found bool) (storage.User, error)) (storage.User, error) {
	if err := ctx.Err(); err != nil {
		return storage.User{}, fmt.Errorf("bolt: upsert user: %w", err)
	}
	s.pending.mu.Lock()
	u, err := s.upsertUserLocked(subject, update)
	s.pending.mu.Unlock()
	if err != nil {
		return storage.User{}, fmt.Errorf("bolt: upsert user: %w", err)
	}
	if err := s.sync(ctx); err != nil {
		return storage.User{}, fmt.Errorf("bolt: upsert user: %w", err)
	}
	return u, nil
}

// upsertUserLocked applies update to the newest user and holds the result in
// the write-back. A refusal (update's error, a changed subject) holds nothing.
// s.pending.mu is held.
func (s *Storage) upsertUserLocked(subject string, update func(u storage.User, found bool) (storage.User, error)) (storage.User, error) {
	old, found, inFile, err := s.userLocked(subject)
	if err != nil {
		return storage.User{}, err
	}
	u, err := update(cloneUser(old), found)
	if err != nil {
		return storage.User{}, err
	}
	if u.Subject == "" {
		u.Subject = subject
	}
	if u.Subject != subject {
		return storage.User{}, errors.New("update changed the subject")
	}
	u = utcUser(u)
	s.pending.setUser(subject, u, inFile)
	return cloneUser(u), nil
}

// userLocked returns the newest version of subject's user: the write-back's,
// or else the file's; inFile says whether the file has one. s.pending.mu is
// held (and no read transaction: see the lock order in Storage).
func (s *Storage) userLocked(subject string) (u storage.User, found, inFile bool, err error) {
	if u, ok := s.pending.user(subject); ok {
		return u, true, s.pending.users[subject].inFile, nil
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		found, err = get(tx.Bucket([]byte(bucketUsers)), subject, &u)
		return err
	})
	return u, found, found, err
}

// CompleteLogin records the user and the session in the write-back and
// returns without waiting for a commit: the login's IssueTokens commits them
// (see writeback.go). Everything is checked before anything is held, so a
// refusal holds nothing.
func (s *Storage) CompleteLogin(ctx context.Context, l storage.Login) (storage.User, error) {
	if err := ctx.Err(); err != nil {
		return storage.User{}, fmt.Errorf("bolt: complete login: %w", err)
	}
	s.pending.mu.Lock()
	defer s.pending.mu.Unlock()
	if l.Session.ID != "" {
		_, found, err := s.sessionLocked(l.Session.ID)
		if err != nil {
			return storage.User{}, fmt.Errorf("bolt: complete login: %w", err)
		}
		if found {
			return storage.User{}, fmt.Errorf("bolt: complete login: %w", storage.ErrAlreadyExists)
		}
	}
	var replaced, replacedInFile bool
	if l.ReplaceSessionID != "" {
		var err error
		if replaced, replacedInFile, err = s.sessionExistsLocked(l.ReplaceSessionID); err != nil {
			return storage.User{}, fmt.Errorf("bolt: complete login: %w", err)
		}
	}
	u, err := s.upsertUserLocked(l.Subject, l.Update)
	if err != nil {
		return storage.User{}, fmt.Errorf("bolt: complete login: %w", err)
	}
	if replaced {
		s.pending.deleteSession(l.ReplaceSessionID, replacedInFile)
	}
	if l.Session.ID != "" {
		s.pending.setSession(utcSession(l.Session), false)
	}
	s.pending.deferred()
	return u, nil
}

// GetUser returns the user, or storage.ErrNotFound.
func (s *Storage) GetUser(ctx context.Context, subject string) (storage.User, error) {
	if err := ctx.Err(); err != nil {
		return storage.User{}, fmt.Errorf("bolt: get user: %w", err)
	}
	// The write-back first, then the file: a user committed in between is in
	// the file by the time the file is read.
	s.pending.mu.Lock()
	u, ok := s.pending.user(subject)
	s.pending.mu.Unlock()
	if ok {
		return u, nil
	}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		found, err := get(tx.Bucket([]byte(bucketUsers)), subject, &u)
		if err == nil && !found {
			err = storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return storage.User{}, fmt.Errorf("bolt: get user: %w", err)
	}
	return u, nil
}

// pendingUsers copies the users held in the write-back.
func (s *Storage) pendingUsers() map[string]storage.User {
	s.pending.mu.Lock()
	defer s.pending.mu.Unlock()
	if len(s.pending.users) == 0 {
		return nil
	}
	held := make(map[string]storage.User, len(s.pending.users))
	for subject, p := range s.pending.users {
		held[subject] = cloneUser(p.user)
	}
	return held
}

// ListUsers returns every user, ordered by subject.
func (s *Storage) ListUsers(ctx context.Context) ([]storage.User, error) {
	held := s.pendingUsers()
	var users []storage.User
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketUsers)).ForEach(func(k, v []byte) error {
			if _, ok := held[string(k)]; ok {
				return nil
			}
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
	for _, u := range held {
		users = append(users, u)
	}
	sortBySubject(users)
	return users, nil
}

func sortBySubject(users []storage.User) {
	slices.SortFunc(users, func(a, b storage.User) int { return strings.Compare(a.Subject, b.Subject) })
}
