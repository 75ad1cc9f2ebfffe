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
// use (UpdateSession), both through the write-back without waiting for a
// commit; CreateSession and DeleteSession wait for theirs. Errors name no
// session: its ID leads to the cookie.

func (s *Storage) CreateSession(ctx context.Context, sess storage.Session) error {
	if err := ctx.Err(); err != nil {
		return wrap("create session", err, nil)
	}
	s.pending.mu.Lock()
	_, found, err := s.sessionLocked(sess.ID)
	if err == nil && found {
		err = storage.ErrAlreadyExists
	}
	if err == nil {
		s.pending.setSession(utcSession(sess), false)
	}
	s.pending.mu.Unlock()
	if err != nil {
		return wrap("create session", err, nil)
	}
	return wrap("create session", s.sync(ctx), nil)
}

// putSession stores a new session and its expiry key.
func putSession(tx *bbolt.Tx, sess storage.Session) error {
	sess = utcSession(sess)
	if err := put(tx.Bucket([]byte(bucketSessions)), sess.ID, sess); err != nil {
		return err
	}
	return indexExpiry(tx, sess.Expiry, kindSession, sess.ID)
}

// sessionLocked returns the newest version of the session, expired or not:
// the write-back's, or else the file's. s.pending.mu is held (and no read
// transaction: see the lock order in Storage).
func (s *Storage) sessionLocked(id string) (sess storage.Session, found bool, err error) {
	if sess, found, ok := s.pending.session(id); ok {
		return sess, found, nil
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		found, err = get(tx.Bucket([]byte(bucketSessions)), id, &sess)
		return err
	})
	return sess, found, err
}

// sessionExistsLocked reports whether session id exists, and whether the file
// has a version of it. s.pending.mu is held.
func (s *Storage) sessionExistsLocked(id string) (exists, inFile bool, err error) {
	if p := s.pending.sessions[id]; p != nil {
		return !p.deleted, p.inFile, nil
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		exists = has(tx.Bucket([]byte(bucketSessions)), id)
		return nil
	})
	return exists, exists, err
}

func (s *Storage) GetSession(ctx context.Context, id string) (storage.Session, error) {
	now := time.Now()
	if err := ctx.Err(); err != nil {
		return storage.Session{}, wrap("get session", err, nil)
	}
	// The write-back first, then the file (as GetUser).
	s.pending.mu.Lock()
	sess, found, ok := s.pending.session(id)
	s.pending.mu.Unlock()
	if !ok {
		err := s.view(ctx, func(tx *bbolt.Tx) error {
			var err error
			found, err = get(tx.Bucket([]byte(bucketSessions)), id, &sess)
			return err
		})
		if err != nil {
			return storage.Session{}, wrap("get session", err, nil)
		}
	}
	if !found || expired(sess.Expiry, now) {
		return storage.Session{}, wrap("get session", storage.ErrNotFound, nil)
	}
	return sess, nil
}

// UpdateSession replaces the live session with what update returns; an
// expired one is storage.ErrNotFound. update runs once. The change is
// committed with the next commit, as CompleteLogin's.
func (s *Storage) UpdateSession(ctx context.Context, id string, update func(storage.Session) (storage.Session, error)) error {
	now := time.Now()
	if err := ctx.Err(); err != nil {
		return wrap("update session", err, nil)
	}
	s.pending.mu.Lock()
	defer s.pending.mu.Unlock()
	old, found, err := s.sessionLocked(id)
	if err != nil {
		return wrap("update session", err, nil)
	}
	if !found || expired(old.Expiry, now) {
		return wrap("update session", storage.ErrNotFound, nil)
	}
	sess, err := update(cloneSession(old))
	if err != nil {
		return wrap("update session", err, nil)
	}
	if sess.ID != id {
		return wrap("update session", errors.New("update changed the ID"), nil)
	}
	inFile := true
	if p := s.pending.sessions[id]; p != nil {
		inFile = p.inFile
	}
	s.pending.setSession(utcSession(sess), inFile)
	s.pending.deferred()
	return nil
}

// DeleteSession returns once the deletion is committed: a logout a crash
// undid would give the session back.
func (s *Storage) DeleteSession(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return wrap("delete session", err, nil)
	}
	s.pending.mu.Lock()
	exists, inFile, err := s.sessionExistsLocked(id)
	if err == nil && !exists {
		err = storage.ErrNotFound
	}
	if err == nil {
		s.pending.deleteSession(id, inFile)
	}
	s.pending.mu.Unlock()
	if err != nil {
		return wrap("delete session", err, nil)
	}
	return wrap("delete session", s.sync(ctx), nil)
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
	// The write-back first, then the file (as GetUser).
	held := map[string]*pendingSession{}
	s.pending.mu.Lock()
	for id, p := range s.pending.sessions {
		held[id] = &pendingSession{sess: cloneSession(p.sess), deleted: p.deleted}
	}
	s.pending.mu.Unlock()
	var out []storage.Session
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketSessions)).ForEach(func(k, v []byte) error {
			if held[string(k)] != nil {
				return nil
			}
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
	for _, p := range held {
		if !p.deleted && p.sess.Subject == subject && !expired(p.sess.Expiry, now) {
			out = append(out, p.sess)
		}
	}
	return out, nil
}
