package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

func openTemp(t *testing.T) (*Storage, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dingbridge.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func testLogin(subject, sessionID string) storage.Login {
	now := time.Now()
	return storage.Login{
		Subject: subject,
		Update: func(u storage.User, found bool) (storage.User, error) {
			if !found {
				u = storage.User{Subject: subject, ConnectorID: "dingtalk", UnionID: subject, FirstLogin: now}
			}
			u.LastLogin = now
			return u, nil
		},
		Session: storage.Session{ID: sessionID, Subject: subject, ConnectorID: "dingtalk", AuthTime: now,
			CreatedAt: now, LastUsed: now, Expiry: now.Add(time.Hour)},
	}
}

// inFile reads what the file holds, past the write-back.
func inFile(t *testing.T, s *Storage, bucket, key string) bool {
	t.Helper()
	var found bool
	if err := s.db.View(func(tx *bbolt.Tx) error {
		found = has(tx.Bucket([]byte(bucket)), key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return found
}

func TestALoginIsOneCommit(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	before := s.commits.Load()
	if _, err := s.CompleteLogin(ctx, testLogin("union-1", "s1")); err != nil {
		t.Fatal(err)
	}
	if got := s.commits.Load() - before; got != 0 {
		t.Errorf("CompleteLogin committed %d times; it should wait for the login's IssueTokens", got)
	}
	if inFile(t, s, bucketSessions, "s1") {
		t.Error("the session is in the file before any commit")
	}
	if _, err := s.GetSession(ctx, "s1"); err != nil {
		t.Errorf("the session is not visible before its commit: %v", err)
	}
	a, r := benchTokens("grant-1")
	if err := s.IssueTokens(ctx, a, r, storage.Rotation{}); err != nil {
		t.Fatal(err)
	}
	if got := s.commits.Load() - before; got != 1 {
		t.Errorf("a login (CompleteLogin + IssueTokens) took %d commits, want 1", got)
	}
	if !inFile(t, s, bucketSessions, "s1") || !inFile(t, s, bucketUsers, "union-1") {
		t.Error("the token response's commit did not carry the login's user and session")
	}

	// A login through the SSO session: UpdateSession, then the tokens.
	before = s.commits.Load()
	err := s.UpdateSession(ctx, "s1", func(sess storage.Session) (storage.Session, error) {
		sess.Clients = append(sess.Clients, "grafana")
		return sess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a, r = benchTokens("grant-2")
	if err := s.IssueTokens(ctx, a, r, storage.Rotation{}); err != nil {
		t.Fatal(err)
	}
	if got := s.commits.Load() - before; got != 1 {
		t.Errorf("an SSO login (UpdateSession + IssueTokens) took %d commits, want 1", got)
	}
}

func TestTheWriteBackIsCommittedWithoutATokenExchange(t *testing.T) {
	s, _ := openTemp(t)
	if _, err := s.CompleteLogin(t.Context(), testLogin("union-1", "s1")); err != nil {
		t.Fatal(err)
	}
	// No timed assertion: within maxWriteBack it should be there, but a slow
	// machine may take longer; what matters is that it arrives by itself.
	deadline := time.Now().Add(30 * time.Second)
	for !inFile(t, s, bucketSessions, "s1") {
		if time.Now().After(deadline) {
			t.Fatal("a login nobody exchanged a code for never reached the file")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !inFile(t, s, bucketUsers, "union-1") {
		t.Error("the session reached the file without its user")
	}
	// The write-back lets go of what it applied just after the commit returns,
	// so a read may see the file before that: wait for it, untimed.
	for !s.pending.empty() {
		if time.Now().After(deadline) {
			t.Fatal("the write-back still holds what was committed")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseCommitsTheWriteBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dingbridge.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteLogin(t.Context(), testLogin("union-1", "s1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetSession(t.Context(), "s1"); err != nil {
		t.Errorf("session after a clean stop: %v", err)
	}
	if _, err := s.GetUser(t.Context(), "union-1"); err != nil {
		t.Errorf("user after a clean stop: %v", err)
	}
}

// An administrator's change to a user and that user's logins race; the
// change must survive, in memory and in the file, whatever the order.
func TestLoginsNeverUndoAnAdministratorsChange(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	if _, err := s.CompleteLogin(ctx, testLogin("union-1", "s0")); err != nil {
		t.Fatal(err)
	}
	for round := range 50 {
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				l := testLogin("union-1", "")
				l.Session = storage.Session{}
				if _, err := s.CompleteLogin(ctx, l); err != nil {
					t.Errorf("round %d login %d: %v", round, i, err)
				}
			})
		}
		disabled := round%2 == 0
		wg.Go(func() {
			_, err := s.UpsertUser(ctx, "union-1", func(u storage.User, _ bool) (storage.User, error) {
				u.Disabled = disabled
				return u, nil
			})
			if err != nil {
				t.Errorf("round %d: disable: %v", round, err)
			}
		})
		wg.Wait()
		u, err := s.GetUser(ctx, "union-1")
		if err != nil {
			t.Fatal(err)
		}
		if u.Disabled != disabled {
			t.Fatalf("round %d: Disabled = %v after the administrator set %v", round, u.Disabled, disabled)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	u, err := s2.GetUser(ctx, "union-1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Disabled { // the last round (49) enabled the user
		t.Error("the file lost the administrator's last change")
	}
}

// RevokeSubject while the session is being used: once it returned, nothing
// brings the session back, not even a use that read it just before.
func TestRevokedSessionsStayRevokedUnderUse(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	for round := range 30 {
		id := "s-" + time.Now().Format("150405.000000000")
		if _, err := s.CompleteLogin(ctx, testLogin("union-1", id)); err != nil {
			t.Fatal(err)
		}
		if err := s.sync(ctx); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := s.UpdateSession(ctx, id, func(sess storage.Session) (storage.Session, error) {
					sess.LastUsed = time.Now()
					return sess, nil
				})
				if err != nil && !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("use: %v", err)
					return
				}
			}
		})
		if err := s.RevokeSubject(ctx, "union-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSession(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("round %d: session right after RevokeSubject: %v", round, err)
		}
		close(stop)
		wg.Wait()
		if err := s.sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSession(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("round %d: the session came back after RevokeSubject: %v", round, err)
		}
		if inFile(t, s, bucketSessions, id) {
			t.Fatalf("round %d: the revoked session is in the file again", round)
		}
	}
}

// Concurrent logins: each reaches the file whole, and none costs more than
// its one commit (one commit carries what arrived while the previous one was
// being written, so under load there are fewer; the log says how many).
func TestConcurrentLoginsReachTheFileInAtMostOneCommitEach(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	const logins = 200
	before := s.commits.Load()
	var wg sync.WaitGroup
	for i := range logins {
		wg.Go(func() {
			a, r := benchTokens("grant")
			if _, err := s.CompleteLogin(ctx, testLogin(a.ID, a.ID)); err != nil {
				t.Error(err)
				return
			}
			if err := s.IssueTokens(ctx, a, r, storage.Rotation{}); err != nil {
				t.Errorf("login %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	commits := s.commits.Load() - before
	t.Logf("%d concurrent logins: %d commits", logins, commits)
	if commits == 0 || commits > logins {
		t.Errorf("%d logins took %d commits; want between 1 and %d", logins, commits, logins)
	}
	for _, name := range []string{bucketUsers, bucketSessions} {
		n := 0
		_ = s.db.View(func(tx *bbolt.Tx) error { n = tx.Bucket([]byte(name)).Stats().KeyN; return nil })
		if n != logins {
			t.Errorf("%s in the file: %d, want %d", name, n, logins)
		}
	}
}
