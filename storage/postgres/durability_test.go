package postgres

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/postgres/postgrestest"
)

// CompleteLogin does not wait for the WAL flush (storage's package comment):
// it returns before the WAL it wrote is on disk, which a synchronous commit
// never does, and the next synchronous commit flushes it. A synchronous commit
// leaves the flush position past where the WAL stood before it; so a
// CompleteLogin after which the flush position has not moved, though WAL was
// written, committed asynchronously. The WAL writer (every wal_writer_delay)
// or another test's commit may flush in the instant between, so of many tries
// one such observation is asked for, and each synchronous commit checked.
func TestCompleteLoginCommitsWithoutWaitingForTheWALFlush(t *testing.T) {
	s := openTest(t, postgrestest.DSN(t), Options{})
	ctx := t.Context()
	lsns := func() (insert, flush pgtype.Text) { return walPositions(t, s) }
	unflushed := 0
	const tries = 50
	for i := range tries {
		subject := "union-wal-" + time.Now().Format("150405.000000000")
		start, _ := lsns() // where the WAL stood before the login
		now := time.Now()
		_, err := s.CompleteLogin(ctx, storage.Login{
			Subject: subject,
			Update: func(u storage.User, _ bool) (storage.User, error) {
				u.Subject, u.ConnectorID, u.UnionID, u.LastLogin = subject, "dingtalk", subject, now
				return u, nil
			},
			Session: storage.Session{ID: subject, Subject: subject, ConnectorID: "dingtalk", AuthTime: now,
				CreatedAt: now, LastUsed: now, Expiry: now.Add(time.Hour)},
		})
		if err != nil {
			t.Fatal(err)
		}
		insert, flush := lsns()
		if !lsnLess(t, s, start, flush) && lsnLess(t, s, start, insert) {
			unflushed++ // WAL written, and not flushed past where it stood before
		}

		// The login's tokens commit synchronously, and flush the login with them.
		access := storage.AccessToken{ID: "at-" + subject, GrantID: "g-" + subject, ClientID: "grafana", Subject: subject,
			CreatedAt: now, Expiry: now.Add(time.Hour)}
		if err := s.IssueTokens(ctx, access, nil, storage.Rotation{}); err != nil {
			t.Fatal(err)
		}
		_, flushed := lsns()
		if lsnLess(t, s, flushed, insert) {
			t.Fatalf("try %d: after IssueTokens the WAL is flushed to %s, short of the login's %s", i, flushed.String, insert.String)
		}
	}
	t.Logf("%d of %d logins returned before their WAL was flushed", unflushed, tries)
	if unflushed == 0 {
		t.Errorf("every CompleteLogin returned with its WAL flushed: it is committing synchronously")
	}
}

// An SSO login's session use (UpdateSession) is deferred like CompleteLogin:
// the same observation, with the token response's synchronous commit flushing it.
func TestUpdateSessionCommitsWithoutWaitingForTheWALFlush(t *testing.T) {
	s := openTest(t, postgrestest.DSN(t), Options{})
	ctx := t.Context()
	now := time.Now()
	if err := s.CreateSession(ctx, storage.Session{ID: "sso-wal", Subject: "union-sso-wal", ConnectorID: "dingtalk",
		AuthTime: now, CreatedAt: now, LastUsed: now, Expiry: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	unflushed := 0
	const tries = 50
	for i := range tries {
		start, _ := walPositions(t, s)
		err := s.UpdateSession(ctx, "sso-wal", func(sess storage.Session) (storage.Session, error) {
			sess.LastUsed = time.Now()
			sess.Clients = append(sess.Clients[:0], "grafana")
			return sess, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		insert, flush := walPositions(t, s)
		if !lsnLess(t, s, start, flush) && lsnLess(t, s, start, insert) {
			unflushed++
		}
		access := storage.AccessToken{ID: "at-sso-wal-" + time.Now().Format("150405.000000000"), GrantID: "g-sso-wal", ClientID: "grafana",
			Subject: "union-sso-wal", CreatedAt: now, Expiry: now.Add(time.Hour)}
		if err := s.IssueTokens(ctx, access, nil, storage.Rotation{}); err != nil {
			t.Fatal(err)
		}
		if _, flushed := walPositions(t, s); lsnLess(t, s, flushed, insert) {
			t.Fatalf("try %d: after IssueTokens the WAL is flushed to %s, short of the session use's %s", i, flushed.String, insert.String)
		}
	}
	t.Logf("%d of %d session uses returned before their WAL was flushed", unflushed, tries)
	if unflushed == 0 {
		t.Errorf("every UpdateSession returned with its WAL flushed: it is committing synchronously")
	}
	got, err := s.GetSession(ctx, "sso-wal")
	if err != nil || len(got.Clients) != 1 {
		t.Errorf("session after the uses: %+v, %v", got, err)
	}
}

// walPositions is where the server's WAL is written to and flushed to.
func walPositions(t *testing.T, s *Storage) (insert, flush pgtype.Text) {
	t.Helper()
	err := s.pool.QueryRow(t.Context(), "SELECT pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text").Scan(&insert, &flush)
	if err != nil {
		t.Fatal(err)
	}
	return insert, flush
}

func lsnLess(t *testing.T, s *Storage, a, b pgtype.Text) bool {
	t.Helper()
	var less bool
	if err := s.pool.QueryRow(t.Context(), "SELECT $1::pg_lsn < $2::pg_lsn", a.String, b.String).Scan(&less); err != nil {
		t.Fatal(err)
	}
	return less
}
