package bolt

import (
	"slices"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// The write-back of logins. Every write of a user or a session is made here,
// in memory, first; every write transaction (commit.go) then applies what is
// here before its own writes, and after it committed forgets what it applied.
// Reads of users and sessions look here before the file.
//
// ClaimAuthCode moves a spent code here too, on its way to bucketSpentCodes.
//
// CompleteLogin and UpdateSession stop there: the person's user record and
// SSO session become durable with the next commit, which on a login's path is
// the IssueTokens of the same login's code exchange. So a login costs one
// fsync (storage's package comment). Should no commit come, a timer commits
// the write-back after maxWriteBack. UpsertUser, CreateSession and
// DeleteSession wait for a commit that carries their write, as before.
//
// Because every change goes through here under one mutex, a read-modify-write
// never works on a stale copy: the record here is the newest, committed or
// not, and a record absent from here is as the file has it.

// maxWriteBack bounds how long a login's records may wait in memory for a
// commit to carry them: what a crash may lose beyond logins still in flight.
const maxWriteBack = storage.MaxLoginWriteBack

type writeBack struct {
	mu       sync.Mutex
	seq      uint64 // increases with every change held here
	users    map[string]*pendingUser
	sessions map[string]*pendingSession
	// codes are authorization codes just claimed, on their way from the flow
	// state in memory to bucketSpentCodes; they never change once here.
	codes  map[string]storage.AuthCode
	timer  *time.Timer // armed while something waits, see maxWriteBack
	flush  func()      // commits the write-back; run by timer
	closed bool
}

type pendingUser struct {
	user   storage.User
	seq    uint64
	inFile bool // some version of the user is committed (for Count)
}

type pendingSession struct {
	sess    storage.Session
	deleted bool
	seq     uint64
	inFile  bool // some version of the session is committed (for Count)
}

func newWriteBack(flush func()) *writeBack {
	return &writeBack{users: map[string]*pendingUser{}, sessions: map[string]*pendingSession{},
		codes: map[string]storage.AuthCode{}, flush: flush}
}

// writeBackSnapshot is what one transaction applied: each key's seq then.
type writeBackSnapshot struct {
	users    map[string]uint64
	sessions map[string]uint64
	codes    []string
}

// apply writes everything held into tx and returns what it wrote.
func (w *writeBack) apply(tx *bbolt.Tx) (writeBackSnapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var snap writeBackSnapshot
	if w.emptyLocked() {
		return snap, nil
	}
	snap.users = make(map[string]uint64, len(w.users))
	for subject, p := range w.users {
		var old storage.User
		found, err := get(tx.Bucket([]byte(bucketUsers)), subject, &old)
		if err != nil {
			return snap, err
		}
		var previous *storage.User // whose index entries p.user replaces
		if found {
			previous = &old
		}
		if err := putUser(tx, subject, previous, p.user); err != nil {
			return snap, err
		}
		snap.users[subject] = p.seq
	}
	snap.sessions = make(map[string]uint64, len(w.sessions))
	for id, p := range w.sessions {
		if err := writeSession(tx, id, p); err != nil {
			return snap, err
		}
		snap.sessions[id] = p.seq
	}
	for id, c := range w.codes {
		if err := put(tx.Bucket([]byte(bucketSpentCodes)), id, c); err != nil {
			return snap, err
		}
		if err := indexExpiry(tx, c.Expiry, kindSpentCode, id); err != nil {
			return snap, err
		}
		snap.codes = append(snap.codes, id)
	}
	return snap, nil
}

// writeSession puts or deletes one session with its expiry key.
func writeSession(tx *bbolt.Tx, id string, p *pendingSession) error {
	if p.deleted {
		_, err := deleteSession(tx, id)
		return err
	}
	var old expiring
	found, err := get(tx.Bucket([]byte(bucketSessions)), id, &old)
	if err != nil {
		return err
	}
	if !found {
		return putSession(tx, p.sess)
	}
	if err := put(tx.Bucket([]byte(bucketSessions)), id, p.sess); err != nil {
		return err
	}
	return reindexExpiry(tx, old.Expiry, p.sess.Expiry, kindSession, id)
}

// committed forgets what snap applied, unless it changed again since.
func (w *writeBack) committed(snap writeBackSnapshot) {
	if snap.users == nil && snap.sessions == nil && snap.codes == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for subject, seq := range snap.users {
		if p := w.users[subject]; p != nil {
			if p.seq == seq {
				delete(w.users, subject)
			} else {
				p.inFile = true
			}
		}
	}
	for id, seq := range snap.sessions {
		if p := w.sessions[id]; p != nil {
			if p.seq == seq {
				delete(w.sessions, id)
			} else {
				p.inFile = !p.deleted
			}
		}
	}
	for _, id := range snap.codes {
		delete(w.codes, id)
	}
	if w.emptyLocked() && w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

func (w *writeBack) emptyLocked() bool {
	return len(w.users) == 0 && len(w.sessions) == 0 && len(w.codes) == 0
}

// deferred arms the timer that commits a change nobody waits for. w.mu is held.
func (w *writeBack) deferred() {
	if w.timer == nil && !w.closed {
		w.timer = time.AfterFunc(maxWriteBack, w.fire)
	}
}

func (w *writeBack) fire() {
	w.mu.Lock()
	w.timer = nil
	w.mu.Unlock()
	w.flush()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.emptyLocked() {
		w.deferred() // the commit failed: try again later
	}
}

// close stops the timer; the caller commits what is left.
func (w *writeBack) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

// empty reports whether nothing waits to be written.
func (w *writeBack) empty() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.emptyLocked()
}

// user returns the held version of subject's user: ok false when the file's is current.
// w.mu is held.
func (w *writeBack) user(subject string) (storage.User, bool) {
	p := w.users[subject]
	if p == nil {
		return storage.User{}, false
	}
	return cloneUser(p.user), true
}

// setUser holds u as subject's user. w.mu is held.
func (w *writeBack) setUser(subject string, u storage.User, inFile bool) {
	w.seq++
	if p := w.users[subject]; p != nil {
		p.user, p.seq = cloneUser(u), w.seq
		return
	}
	w.users[subject] = &pendingUser{user: cloneUser(u), seq: w.seq, inFile: inFile}
}

// session returns the held version of session id: found false when it is
// deleted, ok false when the file's is current. w.mu is held.
func (w *writeBack) session(id string) (sess storage.Session, found, ok bool) {
	p := w.sessions[id]
	if p == nil {
		return storage.Session{}, false, false
	}
	if p.deleted {
		return storage.Session{}, false, true
	}
	return cloneSession(p.sess), true, true
}

// setSession holds sess; inFile says whether the file has a version. w.mu is held.
func (w *writeBack) setSession(sess storage.Session, inFile bool) {
	w.seq++
	if p := w.sessions[sess.ID]; p != nil {
		p.sess, p.deleted, p.seq = cloneSession(sess), false, w.seq
		return
	}
	w.sessions[sess.ID] = &pendingSession{sess: cloneSession(sess), seq: w.seq, inFile: inFile}
}

// deleteSession holds the deletion of session id. w.mu is held.
func (w *writeBack) deleteSession(id string, inFile bool) {
	w.seq++
	if p := w.sessions[id]; p != nil {
		p.sess, p.deleted, p.seq = storage.Session{}, true, w.seq
		return
	}
	w.sessions[id] = &pendingSession{deleted: true, seq: w.seq, inFile: inFile}
}

// cloneUser and cloneSession copy the slices, so that no caller's append
// reaches a record held here.
func cloneUser(u storage.User) storage.User {
	u.Groups = slices.Clone(u.Groups)
	return u
}

func cloneSession(s storage.Session) storage.Session {
	s.AMR, s.Clients = slices.Clone(s.AMR), slices.Clone(s.Clients)
	return s
}
