package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

func session(id string, expiry time.Time) storage.Session {
	return storage.Session{
		ID: id, Subject: "union-123", ConnectorID: "dingtalk",
		AuthTime: now().Add(-time.Minute), AMR: []string{"dingtalk"}, Clients: []string{"grafana"},
		CreatedAt: now().Add(-time.Minute), LastUsed: now(), Expiry: expiry,
	}
}

func sessionTests() []test {
	return []test{
		{"create then get returns every field", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			want := session("s1", live())
			must(t, s.CreateSession(ctx, want))
			got, err := s.GetSession(ctx, "s1")
			must(t, err)
			equal(t, "session", got, want)
		}},
		{"creating an existing session is ErrAlreadyExists and keeps the first", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateSession(ctx, session("s1", live())))
			other := session("s1", live())
			other.Subject = "impostor"
			wantErr(t, s.CreateSession(ctx, other), storage.ErrAlreadyExists)
			got, err := s.GetSession(ctx, "s1")
			must(t, err)
			if got.Subject != "union-123" {
				t.Errorf("Subject = %q, want the first session's", got.Subject)
			}
		}},
		{"update stores what the callback returns", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateSession(ctx, session("s1", live())))
			later := live().Add(time.Hour)
			must(t, s.UpdateSession(ctx, "s1", func(sess storage.Session) (storage.Session, error) {
				sess.Clients = append(sess.Clients, "gitlab")
				sess.Expiry = later
				return sess, nil
			}))
			got, err := s.GetSession(ctx, "s1")
			must(t, err)
			if len(got.Clients) != 2 || got.Clients[1] != "gitlab" || !got.Expiry.Equal(later) {
				t.Errorf("after update: %+v", got)
			}
		}},
		{"update callback error stores nothing", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateSession(ctx, session("s1", live())))
			boom := errors.New("boom")
			err := s.UpdateSession(ctx, "s1", func(sess storage.Session) (storage.Session, error) {
				sess.Subject = "changed"
				return sess, boom
			})
			wantErr(t, err, boom)
			got, _ := s.GetSession(ctx, "s1")
			if got.Subject != "union-123" {
				t.Error("a failed update was stored")
			}
		}},
		{"an expired session is ErrNotFound to get and update", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateSession(ctx, session("old", past())))
			_, err := s.GetSession(ctx, "old")
			wantErr(t, err, storage.ErrNotFound)
			err = s.UpdateSession(ctx, "old", func(sess storage.Session) (storage.Session, error) { return sess, nil })
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"delete removes it; deleting again is ErrNotFound", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateSession(ctx, session("s1", live())))
			must(t, s.DeleteSession(ctx, "s1"))
			_, err := s.GetSession(ctx, "s1")
			wantErr(t, err, storage.ErrNotFound)
			wantErr(t, s.DeleteSession(ctx, "s1"), storage.ErrNotFound)
		}},
		{"garbage collection removes expired sessions only", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateSession(ctx, session("old", past())))
			must(t, s.CreateSession(ctx, session("new", live())))
			res, err := s.GarbageCollect(ctx, now())
			must(t, err)
			if res.Sessions != 1 {
				t.Errorf("GCResult.Sessions = %d, want 1", res.Sessions)
			}
			if _, err := s.GetSession(ctx, "new"); err != nil {
				t.Errorf("live session collected: %v", err)
			}
		}},
	}
}
