package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// The cases below state what the durable/ephemeral contract added: one call for a
// login, revocations that outlive their tokens, refresh chains with one live
// token, tombstones, leases, counts, and a sweeper that follows changed expiries.

// upsertTo returns a Login.Update that stores u whatever was there.
func upsertTo(u storage.User) func(storage.User, bool) (storage.User, error) {
	return func(storage.User, bool) (storage.User, error) { return u, nil }
}

func completeLoginTests() []test {
	return []test{
		{"a first login stores the user and the session", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			u, sess := user("union-1"), session("s1", live())
			sess.Subject = u.Subject
			got, err := s.CompleteLogin(ctx, storage.Login{Subject: u.Subject, Update: upsertTo(u), Session: sess})
			must(t, err)
			equal(t, "returned user", got, u)
			stored, err := s.GetUser(ctx, u.Subject)
			must(t, err)
			equal(t, "stored user", stored, u)
			gotSess, err := s.GetSession(ctx, "s1")
			must(t, err)
			equal(t, "session", gotSess, sess)
		}},
		{"a returning login sees the stored user and replaces the old session", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			u := user("union-1")
			_, err := s.CompleteLogin(ctx, storage.Login{Subject: u.Subject, Update: upsertTo(u), Session: session("s1", live())})
			must(t, err)
			later := now().Add(time.Hour)
			got, err := s.CompleteLogin(ctx, storage.Login{
				Subject: u.Subject,
				Update: func(old storage.User, found bool) (storage.User, error) {
					if !found {
						t.Error("found = false for a stored user")
					}
					equal(t, "user given to update", old, u)
					old.LastLogin = later
					return old, nil
				},
				Session:          session("s2", live()),
				ReplaceSessionID: "s1",
			})
			must(t, err)
			if !got.LastLogin.Equal(later) {
				t.Errorf("returned LastLogin = %v, want %v", got.LastLogin, later)
			}
			_, err = s.GetSession(ctx, "s1")
			wantErr(t, err, storage.ErrNotFound)
			if _, err := s.GetSession(ctx, "s2"); err != nil {
				t.Errorf("new session: %v", err)
			}
		}},
		{"replacing a session that is gone is fine", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			_, err := s.CompleteLogin(ctx, storage.Login{
				Subject: "union-1", Update: upsertTo(user("union-1")),
				Session: session("s2", live()), ReplaceSessionID: "never-stored",
			})
			must(t, err)
			if _, err := s.GetSession(ctx, "s2"); err != nil {
				t.Errorf("new session: %v", err)
			}
		}},
		{"a login without a session stores only the user", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			got, err := s.CompleteLogin(ctx, storage.Login{Subject: "union-1", Update: func(storage.User, bool) (storage.User, error) {
				return storage.User{Nick: "no subject set"}, nil
			}})
			must(t, err)
			if got.Subject != "union-1" {
				t.Errorf("returned Subject = %q, want union-1 (filled in as UpsertUser does)", got.Subject)
			}
			if _, err := s.GetUser(ctx, "union-1"); err != nil {
				t.Errorf("user: %v", err)
			}
		}},
		{"an error from Update stores nothing and keeps the old session", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			u := user("union-1")
			_, err := s.CompleteLogin(ctx, storage.Login{Subject: u.Subject, Update: upsertTo(u), Session: session("s1", live())})
			must(t, err)
			refused := errors.New("user is disabled")
			_, err = s.CompleteLogin(ctx, storage.Login{
				Subject: u.Subject,
				Update: func(old storage.User, _ bool) (storage.User, error) {
					old.Nick = "changed"
					return old, refused
				},
				Session: session("s2", live()), ReplaceSessionID: "s1",
			})
			wantErr(t, err, refused)
			stored, err := s.GetUser(ctx, u.Subject)
			must(t, err)
			equal(t, "stored user", stored, u)
			if _, err := s.GetSession(ctx, "s1"); err != nil {
				t.Errorf("old session deleted by a refused login: %v", err)
			}
			_, err = s.GetSession(ctx, "s2")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"an error from Update for a new person stores no user", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			refused := errors.New("refused")
			_, err := s.CompleteLogin(ctx, storage.Login{Subject: "union-1",
				Update:  func(storage.User, bool) (storage.User, error) { return user("union-1"), refused },
				Session: session("s1", live())})
			wantErr(t, err, refused)
			_, err = s.GetUser(ctx, "union-1")
			wantErr(t, err, storage.ErrNotFound)
			_, err = s.GetSession(ctx, "s1")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"every read sees a login at once, before anything else is written", func(t *testing.T, s storage.Storage) {
			// A backend may make a login durable later (storage's package
			// comment); it may not make it late to anyone who asks.
			ctx := t.Context()
			u, sess := user("union-1"), session("s1", live())
			sess.Subject = u.Subject
			_, err := s.CompleteLogin(ctx, storage.Login{Subject: u.Subject, Update: upsertTo(u), Session: sess})
			must(t, err)
			found, err := s.FindUsers(ctx, storage.UserKey{UnionID: u.UnionID})
			must(t, err)
			equal(t, "FindUsers by unionid", found, []storage.User{u})
			found, err = s.FindUsers(ctx, storage.UserKey{Phone: u.Phone})
			must(t, err)
			equal(t, "FindUsers by phone", found, []storage.User{u})
			all, err := s.ListUsers(ctx)
			must(t, err)
			equal(t, "ListUsers", all, []storage.User{u})
			of, err := s.SessionsOf(ctx, u.Subject)
			must(t, err)
			equal(t, "SessionsOf", of, []storage.Session{sess})
			c, err := s.Count(ctx)
			must(t, err)
			if c.Users != 1 || c.Sessions != 1 {
				t.Errorf("Count: %d users, %d sessions; want 1 and 1", c.Users, c.Sessions)
			}
		}},
		{"a login's session can be used, ended and revoked at once", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			u := user("union-1")
			for _, id := range []string{"used", "ended", "revoked"} {
				sess := session(id, live())
				sess.Subject = u.Subject
				_, err := s.CompleteLogin(ctx, storage.Login{Subject: u.Subject, Update: upsertTo(u), Session: sess})
				must(t, err)
			}
			must(t, s.UpdateSession(ctx, "used", func(sess storage.Session) (storage.Session, error) {
				sess.Clients = append(sess.Clients, "gitlab")
				return sess, nil
			}))
			got, err := s.GetSession(ctx, "used")
			must(t, err)
			if !slices.Equal(got.Clients, []string{"grafana", "gitlab"}) {
				t.Errorf("clients after UpdateSession = %v", got.Clients)
			}
			must(t, s.DeleteSession(ctx, "ended"))
			_, err = s.GetSession(ctx, "ended")
			wantErr(t, err, storage.ErrNotFound)
			wantErr(t, s.DeleteSession(ctx, "ended"), storage.ErrNotFound)
			must(t, s.RevokeSubject(ctx, u.Subject))
			for _, id := range []string{"used", "revoked"} {
				_, err := s.GetSession(ctx, id)
				wantErr(t, err, storage.ErrNotFound)
			}
			of, err := s.SessionsOf(ctx, u.Subject)
			must(t, err)
			if len(of) != 0 {
				t.Errorf("SessionsOf after RevokeSubject: %d sessions", len(of))
			}
		}},
		{"an administrator's change to a user just logged in sees the login and stays", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			u := user("union-1")
			_, err := s.CompleteLogin(ctx, storage.Login{Subject: u.Subject, Update: upsertTo(u), Session: session("s1", live())})
			must(t, err)
			_, err = s.UpsertUser(ctx, u.Subject, func(old storage.User, found bool) (storage.User, error) {
				if !found || old.Nick != u.Nick {
					t.Errorf("UpsertUser after a login: found=%v, nick %q", found, old.Nick)
				}
				old.Disabled = true
				return old, nil
			})
			must(t, err)
			later := now().Add(time.Minute)
			_, err = s.CompleteLogin(ctx, storage.Login{Subject: u.Subject, Update: func(old storage.User, _ bool) (storage.User, error) {
				old.LastLogin = later
				return old, nil
			}})
			must(t, err)
			got, err := s.GetUser(ctx, u.Subject)
			must(t, err)
			if !got.Disabled || !got.LastLogin.Equal(later) {
				t.Errorf("after login, disable, login: Disabled=%v LastLogin=%v", got.Disabled, got.LastLogin)
			}
		}},
		{"Update may not change the subject", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			_, err := s.CompleteLogin(ctx, storage.Login{Subject: "union-1", Update: upsertTo(user("union-2")), Session: session("s1", live())})
			if err == nil {
				t.Fatal("login storing another subject succeeded")
			}
			for _, sub := range []string{"union-1", "union-2"} {
				_, err := s.GetUser(ctx, sub)
				wantErr(t, err, storage.ErrNotFound)
			}
			_, err = s.GetSession(ctx, "s1")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"a taken session ID is ErrAlreadyExists and stores nothing", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			u := user("union-1")
			first := session("s1", live())
			_, err := s.CompleteLogin(ctx, storage.Login{Subject: u.Subject, Update: upsertTo(u), Session: first})
			must(t, err)
			must(t, s.CreateSession(ctx, session("s0", live())))
			changed := u
			changed.Nick = "changed"
			again := session("s1", live())
			again.Subject = "impostor"
			_, err = s.CompleteLogin(ctx, storage.Login{Subject: u.Subject, Update: upsertTo(changed), Session: again, ReplaceSessionID: "s0"})
			wantErr(t, err, storage.ErrAlreadyExists)
			stored, err := s.GetUser(ctx, u.Subject)
			must(t, err)
			equal(t, "stored user", stored, u)
			got, err := s.GetSession(ctx, "s1")
			must(t, err)
			equal(t, "first session", got, first)
			if _, err := s.GetSession(ctx, "s0"); err != nil {
				t.Errorf("the session to replace was deleted by a refused login: %v", err)
			}
		}},
		{"concurrent logins of one person lose no update and keep every session", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			errs := make([]error, racers)
			race(func(i int) {
				_, errs[i] = s.CompleteLogin(ctx, storage.Login{
					Subject: "union-1",
					Update: func(old storage.User, _ bool) (storage.User, error) {
						old.Subject = "union-1"
						old.Nick += "x"
						return old, nil
					},
					Session: session(fmt.Sprint("s-", i), live()),
				})
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("racer %d: %v", i, err)
				}
			}
			u, err := s.GetUser(ctx, "union-1")
			must(t, err)
			if len(u.Nick) != racers {
				t.Errorf("Nick has %d marks after %d logins", len(u.Nick), racers)
			}
			for i := range racers {
				if _, err := s.GetSession(ctx, fmt.Sprint("s-", i)); err != nil {
					t.Errorf("session of racer %d: %v", i, err)
				}
			}
		}},
	}
}

func revocationTests() []test {
	return []test{
		{"a revoked grant gets no new tokens until its revocation ends", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			must(t, s.RevokeGrant(ctx, "g1", live()))
			err := s.IssueTokens(ctx, accessToken("at2", "g1", live()), refreshToken("rt2", "g1", live()), storage.Rotation{})
			wantErr(t, err, storage.ErrRevoked)
			absent(t, s, []string{"at1", "at2"}, []string{"rt1", "rt2"})
			// Another grant is not affected.
			must(t, s.IssueTokens(ctx, accessToken("other", "g2", live()), nil, storage.Rotation{}))
		}},
		{"a grant revoked before its first token gets none", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			// A replayed code revokes its grant while the first exchange may still
			// be issuing that grant's tokens.
			must(t, s.RevokeGrant(ctx, "g1", live()))
			err := s.IssueTokens(ctx, accessToken("at1", "g1", live()), nil, storage.Rotation{})
			wantErr(t, err, storage.ErrRevoked)
			absent(t, s, []string{"at1"}, nil)
		}},
		{"a revocation that ended lets the grant ID be used again", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.RevokeGrant(ctx, "g1", past()))
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), nil, storage.Rotation{}))
			present(t, s, []string{"at1"}, nil)
		}},
		{"garbage collection forgets a revocation only after its end", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			until := live()
			must(t, s.RevokeGrant(ctx, "g1", until))
			_, err := s.GarbageCollect(ctx, time.Now())
			must(t, err)
			wantErr(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), nil, storage.Rotation{}), storage.ErrRevoked)
			_, err = s.GarbageCollect(ctx, until.Add(time.Minute))
			must(t, err)
			// until has not passed on the real clock, so only a forgotten
			// revocation lets this through.
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), nil, storage.Rotation{}))
		}},
		{"revoking again keeps the later end", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			later := live().Add(time.Hour)
			must(t, s.RevokeGrant(ctx, "g1", later))
			must(t, s.RevokeGrant(ctx, "g1", live()))
			_, err := s.GarbageCollect(ctx, live().Add(time.Minute))
			must(t, err)
			wantErr(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), nil, storage.Rotation{}), storage.ErrRevoked)
		}},
		{"no token of a grant survives a revocation racing with issuance", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			errs := make([]error, racers)
			var revokeErr error
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range racers {
				wg.Go(func() {
					<-start
					errs[i] = s.IssueTokens(ctx, accessToken(fmt.Sprint("at-", i), "g1", live()),
						refreshToken(fmt.Sprint("rt-", i), "g1", live()), storage.Rotation{})
				})
			}
			wg.Go(func() {
				<-start
				revokeErr = s.RevokeGrant(ctx, "g1", live())
			})
			close(start)
			wg.Wait()
			must(t, revokeErr)
			for i, err := range errs {
				if err != nil && !errors.Is(err, storage.ErrRevoked) {
					t.Errorf("racer %d: %v, want nil or ErrRevoked", i, err)
				}
				absent(t, s, []string{fmt.Sprint("at-", i)}, []string{fmt.Sprint("rt-", i)})
			}
		}},
	}
}

func rotationTests() []test {
	return []test{
		{"a rotated token keeps what reuse detection needs", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			first := refreshToken("rt1", "g1", live())
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), first, storage.Rotation{}))
			must(t, s.IssueTokens(ctx, accessToken("at2", "g1", live()), refreshToken("rt2", "g1", live()), storage.Rotation{ID: "rt1"}))
			got, err := s.GetRefreshToken(ctx, "rt1")
			must(t, err)
			if got.ID != "rt1" || got.GrantID != first.GrantID || got.ClientID != first.ClientID ||
				got.Subject != first.Subject || !got.Expiry.Equal(first.Expiry) || got.Successor != "rt2" || got.RotatedAt.IsZero() {
				t.Errorf("rotated token = %+v; want ID, GrantID, ClientID, Subject, Expiry of the original, Successor rt2 and RotatedAt", got)
			}
		}},
		{"a retry after the successor was rotated is ErrAlreadyUsed and stores nothing", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			grace := storage.Rotation{ID: "rt1", Grace: time.Minute}
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			must(t, s.IssueTokens(ctx, accessToken("at2", "g1", live()), refreshToken("rt2", "g1", live()), grace))
			must(t, s.IssueTokens(ctx, accessToken("at3", "g1", live()), refreshToken("rt3", "g1", live()), storage.Rotation{ID: "rt2", Grace: time.Minute}))
			err := s.IssueTokens(ctx, accessToken("at4", "g1", live()), refreshToken("rt4", "g1", live()), grace)
			wantErr(t, err, storage.ErrAlreadyUsed)
			absent(t, s, []string{"at4"}, []string{"rt4"})
			present(t, s, []string{"at3"}, []string{"rt1", "rt2", "rt3"})
			if old, _ := s.GetRefreshToken(ctx, "rt1"); old.Successor != "rt2" {
				t.Errorf("a refused retry changed Successor to %q", old.Successor)
			}
		}},
		{"a retry after the grace window is ErrAlreadyUsed and keeps the successor", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			must(t, s.IssueTokens(ctx, accessToken("at2", "g1", live()), refreshToken("rt2", "g1", live()), storage.Rotation{ID: "rt1", Grace: time.Nanosecond}))
			time.Sleep(time.Millisecond) // past a grace of one nanosecond, whatever the clock's resolution
			err := s.IssueTokens(ctx, accessToken("at3", "g1", live()), refreshToken("rt3", "g1", live()), storage.Rotation{ID: "rt1", Grace: time.Nanosecond})
			wantErr(t, err, storage.ErrAlreadyUsed)
			present(t, s, nil, []string{"rt2"})
			absent(t, s, []string{"at3"}, []string{"rt3"})
		}},
		{"a revoked grant's retry is ErrRevoked", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			must(t, s.RevokeGrant(ctx, "g1", live()))
			err := s.IssueTokens(ctx, accessToken("at2", "g1", live()), refreshToken("rt2", "g1", live()), storage.Rotation{ID: "rt1", Grace: time.Minute})
			if !errors.Is(err, storage.ErrRevoked) && !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("error %v, want ErrRevoked (or ErrNotFound: the token went with the grant)", err)
			}
			absent(t, s, []string{"at2"}, []string{"rt2"})
		}},
		{"concurrent retries within the grace window leave one live refresh token", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at", "g1", live()), refreshToken("rt", "g1", live()), storage.Rotation{}))
			errs := make([]error, racers)
			race(func(i int) {
				errs[i] = s.IssueTokens(ctx,
					accessToken(fmt.Sprint("at-", i), "g1", live()),
					refreshToken(fmt.Sprint("rt-", i), "g1", live()), storage.Rotation{ID: "rt", Grace: time.Minute})
			})
			won := winners(t, errs, storage.ErrAlreadyUsed)
			if len(won) == 0 {
				t.Fatal("no rotation succeeded")
			}
			var alive []int
			for i := range racers {
				rt, err := s.GetRefreshToken(ctx, fmt.Sprint("rt-", i))
				switch {
				case err == nil && rt.RotatedAt.IsZero():
					alive = append(alive, i)
				case err == nil:
					t.Errorf("rt-%d is rotated, but nothing rotated it", i)
				case !errors.Is(err, storage.ErrNotFound):
					t.Errorf("rt-%d: %v", i, err)
				}
			}
			if len(alive) != 1 || !slices.Contains(won, alive[0]) {
				t.Fatalf("live refresh tokens %v after successful rotations %v, want exactly one of them", alive, won)
			}
			if old, _ := s.GetRefreshToken(ctx, "rt"); old.Successor != fmt.Sprint("rt-", alive[0]) {
				t.Errorf("Successor = %q, want the live rt-%d", old.Successor, alive[0])
			}
		}},
	}
}

func leaseTests() []test {
	return []test{
		{"one holder at a time, renewed by its holder", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			ok, err := s.AcquireLease(ctx, "sweeper", "a", time.Hour)
			must(t, err)
			if !ok {
				t.Fatal("first acquire of a free lease failed")
			}
			if ok, err = s.AcquireLease(ctx, "sweeper", "b", time.Hour); err != nil || ok {
				t.Fatalf("another holder acquired a held lease: %v, %v", ok, err)
			}
			if ok, err = s.AcquireLease(ctx, "sweeper", "a", time.Hour); err != nil || !ok {
				t.Fatalf("the holder could not renew: %v, %v", ok, err)
			}
			if ok, err = s.AcquireLease(ctx, "keys", "b", time.Hour); err != nil || !ok {
				t.Fatalf("another lease name is held by the first: %v, %v", ok, err)
			}
		}},
		{"an expired lease passes to another holder", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			ok, err := s.AcquireLease(ctx, "sweeper", "a", 50*time.Millisecond)
			must(t, err)
			if !ok {
				t.Fatal("first acquire failed")
			}
			time.Sleep(100 * time.Millisecond) // let the lease run out; nothing is timed
			if ok, err = s.AcquireLease(ctx, "sweeper", "b", time.Hour); err != nil || !ok {
				t.Fatalf("expired lease not taken over: %v, %v", ok, err)
			}
			if ok, err = s.AcquireLease(ctx, "sweeper", "a", time.Hour); err != nil || ok {
				t.Fatalf("the old holder took the lease back: %v, %v", ok, err)
			}
		}},
		{"of many concurrent holders exactly one wins", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			oks := make([]bool, racers)
			errs := make([]error, racers)
			race(func(i int) { oks[i], errs[i] = s.AcquireLease(ctx, "sweeper", fmt.Sprint("holder-", i), time.Hour) })
			n := 0
			for i := range racers {
				must(t, errs[i])
				if oks[i] {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d holders acquired the lease, want 1", n)
			}
		}},
	}
}

func countTests() []test {
	return []test{
		{"an empty storage counts nothing", func(t *testing.T, s storage.Storage) {
			got, err := s.Count(t.Context())
			must(t, err)
			equal(t, "counts", got, storage.RecordCounts{})
		}},
		{"every kind is counted", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateClient(ctx, client("grafana")))
			must(t, s.CreateClient(ctx, client("gitlab")))
			for i := range 3 {
				must(t, s.CreateAuthRequest(ctx, authRequest(fmt.Sprint("req-", i), live())))
			}
			must(t, s.CreateAuthCode(ctx, authCode("code", live())))
			for i := range 2 {
				must(t, s.CreateUpstreamState(ctx, upstreamState(fmt.Sprint("st-", i), live())))
			}
			must(t, s.CreateDeviceAuthorization(ctx, device("d1", "BCDFGHJK", live())))
			must(t, s.CreateSession(ctx, session("s1", live())))
			for _, sub := range []string{"union-1", "union-2", "union-3"} {
				_, err := s.UpsertUser(ctx, sub, upsertTo(user(sub)))
				must(t, err)
			}
			must(t, s.PutConsent(ctx, storage.Consent{Subject: "union-1", ClientID: "grafana", Scopes: []string{"openid"}, GrantedAt: now()}))
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			must(t, s.IssueTokens(ctx, accessToken("at2", "g1", live()), refreshToken("rt2", "g1", live()), storage.Rotation{ID: "rt1"}))

			got, err := s.Count(ctx)
			must(t, err)
			if got.RefreshTokens == 2 {
				got.RefreshTokens = 1 // the backend counts the rotated one too, which the contract allows
			}
			want := storage.RecordCounts{AuthRequests: 3, AuthCodes: 1, AccessTokens: 2, RefreshTokens: 1, Sessions: 1,
				Users: 3, Clients: 2, UpstreamStates: 2, Devices: 1, Consents: 1}
			equal(t, "counts", got, want)
		}},
	}
}

// sweepTests check that garbage collection follows a record's current expiry,
// which an expiry index must be kept in step with.
func sweepTests() []test {
	return []test{
		{"a session whose expiry moved later is not collected at the old one", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			first := now().Add(time.Minute)
			must(t, s.CreateSession(ctx, session("s1", first)))
			must(t, s.UpdateSession(ctx, "s1", func(sess storage.Session) (storage.Session, error) {
				sess.Expiry = first.Add(time.Hour)
				return sess, nil
			}))
			res, err := s.GarbageCollect(ctx, first.Add(time.Minute))
			must(t, err)
			if res.Sessions != 0 {
				t.Errorf("collected %d sessions at their old expiry", res.Sessions)
			}
			if _, err := s.GetSession(ctx, "s1"); err != nil {
				t.Errorf("session: %v", err)
			}
			res, err = s.GarbageCollect(ctx, first.Add(2*time.Hour))
			must(t, err)
			if res.Sessions != 1 {
				t.Errorf("collected %d sessions after their new expiry, want 1", res.Sessions)
			}
		}},
		{"a session whose expiry moved earlier is collected at the new one", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateSession(ctx, session("s1", live())))
			soon := now().Add(time.Minute)
			must(t, s.UpdateSession(ctx, "s1", func(sess storage.Session) (storage.Session, error) {
				sess.Expiry = soon
				return sess, nil
			}))
			res, err := s.GarbageCollect(ctx, soon.Add(time.Second))
			must(t, err)
			if res.Sessions != 1 {
				t.Errorf("collected %d sessions, want 1", res.Sessions)
			}
		}},
		{"records deleted before they expire are not counted by the sweep", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			soon := now().Add(time.Minute)
			must(t, s.CreateSession(ctx, session("s1", soon)))
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", soon), refreshToken("rt1", "g1", soon), storage.Rotation{}))
			must(t, s.IssueTokens(ctx, accessToken("at2", "g2", soon), refreshToken("rt2", "g2", soon), storage.Rotation{}))
			must(t, s.DeleteSession(ctx, "s1"))
			must(t, s.RevokeGrant(ctx, "g1", soon))
			must(t, s.DeleteAccessToken(ctx, "at2"))
			res, err := s.GarbageCollect(ctx, soon.Add(time.Second))
			must(t, err)
			equal(t, "collected", res, storage.GCResult{RefreshTokens: 1})
		}},
		{"a rotated token is collected when it expires and its successor is not", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			soon := now().Add(time.Minute)
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", soon), refreshToken("rt1", "g1", soon), storage.Rotation{}))
			must(t, s.IssueTokens(ctx, accessToken("at2", "g1", live()), refreshToken("rt2", "g1", live()), storage.Rotation{ID: "rt1"}))
			res, err := s.GarbageCollect(ctx, soon.Add(time.Second))
			must(t, err)
			equal(t, "collected", res, storage.GCResult{AccessTokens: 1, RefreshTokens: 1})
			present(t, s, []string{"at2"}, []string{"rt2"})
			// The grant is still revocable as a whole.
			must(t, s.RevokeGrant(ctx, "g1", live()))
			absent(t, s, []string{"at2"}, []string{"rt1", "rt2"})
		}},
	}
}

// RunLimits checks ErrCapacity: open must return an empty storage holding at most
// limits live ephemeral records of each kind. A backend may count approximately,
// so the suite asks only that the limit is reached somewhere between limit and
// twice the limit, and that a refused create stores nothing.
func RunLimits(t *testing.T, open func(t *testing.T, limits storage.Limits) storage.Storage) {
	const limit = 5
	limits := storage.Limits{AuthRequests: limit, UpstreamStates: limit, Devices: limit}
	kinds := []struct {
		name   string
		create func(s storage.Storage, id string, expiry time.Time) error
		exists func(s storage.Storage, id string) bool
		remove func(s storage.Storage, id string) error
	}{
		{"AuthRequest",
			func(s storage.Storage, id string, expiry time.Time) error {
				return s.CreateAuthRequest(t.Context(), authRequest(id, expiry))
			},
			func(s storage.Storage, id string) bool {
				_, err := s.GetAuthRequest(t.Context(), id)
				return err == nil
			},
			func(s storage.Storage, id string) error { return s.DeleteAuthRequest(t.Context(), id) }},
		{"UpstreamState",
			func(s storage.Storage, id string, expiry time.Time) error {
				return s.CreateUpstreamState(t.Context(), upstreamState(id, expiry))
			},
			nil, // a state can only be read by consuming it
			func(s storage.Storage, id string) error {
				_, err := s.ConsumeUpstreamState(t.Context(), id)
				return err
			}},
		{"Device",
			func(s storage.Storage, id string, expiry time.Time) error {
				return s.CreateDeviceAuthorization(t.Context(), device(id, "CODE"+id, expiry))
			},
			func(s storage.Storage, id string) bool {
				_, err := s.GetDeviceAuthorizationByUserCode(t.Context(), "CODE"+id)
				return err == nil
			},
			nil}, // device authorizations are never deleted, only swept
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Run("creates beyond the limit are refused with ErrCapacity and store nothing", func(t *testing.T) {
				s := open(t, limits)
				for i := range limit {
					must(t, k.create(s, fmt.Sprint("ok", i), live()))
				}
				refused := ""
				for i := range limit + 1 {
					id := fmt.Sprint("more", i)
					err := k.create(s, id, live())
					if err == nil {
						continue
					}
					wantErr(t, err, storage.ErrCapacity)
					refused = id
					break
				}
				if refused == "" {
					t.Fatalf("%d live records stored with a limit of %d", 2*limit+1, limit)
				}
				if k.exists != nil && k.exists(s, refused) {
					t.Error("a create refused with ErrCapacity stored the record")
				}
				if k.remove != nil {
					// Room again once records are gone.
					for i := range limit {
						must(t, k.remove(s, fmt.Sprint("ok", i)))
					}
					must(t, k.create(s, "after", live()))
				}
			})
			t.Run("swept records leave room", func(t *testing.T) {
				s := open(t, limits)
				for i := range limit {
					must(t, k.create(s, fmt.Sprint("old", i), past()))
				}
				_, err := s.GarbageCollect(t.Context(), time.Now())
				must(t, err)
				for i := range limit {
					must(t, k.create(s, fmt.Sprint("new", i), live()))
				}
			})
		})
	}
}
