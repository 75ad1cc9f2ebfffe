package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// RunReplicas runs the operations that must be atomic across processes from two
// Storage instances on one backend, as two dingbridge replicas would: open
// returns two fresh, empty instances sharing their records (registering their
// own cleanup). Half of every race runs on each. Run runs the same races with
// one instance in both roles, so a backend that one process at a time can open
// (bolt) meets them too.
func RunReplicas(t *testing.T, open func(t *testing.T) (a, b storage.Storage)) {
	for _, tc := range replicaTests() {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			tc.run(t, a, b)
		})
	}
}

type replicaTest struct {
	name string
	run  func(t *testing.T, a, b storage.Storage)
}

// either returns a for even i and b for odd: racer i's replica.
func either(i int, a, b storage.Storage) storage.Storage {
	if i%2 == 0 {
		return a
	}
	return b
}

func replicaTests() []replicaTest {
	return []replicaTest{
		{"what one replica writes the other reads", func(t *testing.T, a, b storage.Storage) {
			ctx := t.Context()
			req := doneAuthRequest("req1", live())
			must(t, a.CreateAuthRequest(ctx, req))
			gotReq, err := b.GetAuthRequest(ctx, "req1")
			must(t, err)
			equal(t, "auth request", gotReq, req)

			sess := session("s1", live())
			must(t, a.CreateSession(ctx, sess))
			gotSess, err := b.GetSession(ctx, "s1")
			must(t, err)
			equal(t, "session", gotSess, sess)

			d := device("d1", "BCDFGHJK", live())
			must(t, a.CreateDeviceAuthorization(ctx, d))
			gotD, err := b.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
			must(t, err)
			equal(t, "device authorization", gotD, d)

			want := keySet()
			must(t, a.UpdateKeySet(ctx, func(storage.KeySet) (storage.KeySet, error) { return want, nil }))
			ks, err := b.GetKeySet(ctx)
			must(t, err)
			equal(t, "key set", ks, want)

			// Revocations made on one are seen by the other at once.
			must(t, a.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			present(t, b, []string{"at1"}, []string{"rt1"})
			must(t, b.DeleteSession(ctx, "s1"))
			_, err = a.GetSession(ctx, "s1")
			wantErr(t, err, storage.ErrNotFound)
			must(t, b.RevokeClient(ctx, "grafana"))
			absent(t, a, []string{"at1"}, []string{"rt1"})
			_, err = a.GetAuthRequest(ctx, "req1")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"one claim of a code wins across replicas", func(t *testing.T, a, b storage.Storage) {
			ctx := t.Context()
			must(t, a.CreateAuthCode(ctx, authCode("code1", live())))
			codes := make([]storage.AuthCode, racers)
			errs := make([]error, racers)
			race(func(i int) { codes[i], errs[i] = either(i, a, b).ClaimAuthCode(ctx, "code1") })
			won := winners(t, errs, storage.ErrAlreadyUsed)
			if len(won) != 1 {
				t.Fatalf("%d claims won, want 1", len(won))
			}
			for i, c := range codes {
				equal(t, fmt.Sprintf("code seen by racer %d", i), c, codes[won[0]])
			}
		}},
		{"one consumer of an upstream state wins across replicas", func(t *testing.T, a, b storage.Storage) {
			ctx := t.Context()
			must(t, b.CreateUpstreamState(ctx, upstreamState("st1", live())))
			errs := make([]error, racers)
			race(func(i int) { _, errs[i] = either(i, a, b).ConsumeUpstreamState(ctx, "st1") })
			if won := winners(t, errs, storage.ErrNotFound); len(won) != 1 {
				t.Fatalf("%d consumers won, want 1", len(won))
			}
		}},
		{"one rotation of a refresh token wins across replicas", func(t *testing.T, a, b storage.Storage) {
			ctx := t.Context()
			must(t, a.IssueTokens(ctx, accessToken("at", "g1", live()), refreshToken("rt", "g1", live()), storage.Rotation{}))
			errs := make([]error, racers)
			race(func(i int) {
				errs[i] = either(i, a, b).IssueTokens(ctx,
					accessToken(fmt.Sprint("at-", i), "g1", live()),
					refreshToken(fmt.Sprint("rt-", i), "g1", live()), storage.Rotation{ID: "rt"})
			})
			won := winners(t, errs, storage.ErrAlreadyUsed)
			if len(won) != 1 {
				t.Fatalf("%d rotations won, want 1", len(won))
			}
			for i := range racers {
				at, rt := []string{fmt.Sprint("at-", i)}, []string{fmt.Sprint("rt-", i)}
				if i == won[0] {
					present(t, a, at, rt)
				} else {
					absent(t, b, at, rt)
				}
			}
		}},
		{"a retried rotation on the other replica replaces the first one's token", func(t *testing.T, a, b storage.Storage) {
			ctx := t.Context()
			grace := storage.Rotation{ID: "rt1", Grace: time.Minute}
			must(t, a.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			must(t, a.IssueTokens(ctx, accessToken("at2", "g1", live()), refreshToken("rt2", "g1", live()), grace))
			// The client lost the answer and retried; the balancer sent it to b.
			must(t, b.IssueTokens(ctx, accessToken("at3", "g1", live()), refreshToken("rt3", "g1", live()), grace))
			absent(t, a, nil, []string{"rt2"})
			present(t, a, []string{"at3"}, []string{"rt3"})
			old, err := a.GetRefreshToken(ctx, "rt1")
			must(t, err)
			if old.Successor != "rt3" {
				t.Errorf("rotated token's Successor = %q, want rt3", old.Successor)
			}
			// Once the new token is itself rotated, the old one is spent for good.
			must(t, a.IssueTokens(ctx, accessToken("at4", "g1", live()), refreshToken("rt4", "g1", live()), storage.Rotation{ID: "rt3"}))
			err = b.IssueTokens(ctx, accessToken("at5", "g1", live()), refreshToken("rt5", "g1", live()), grace)
			wantErr(t, err, storage.ErrAlreadyUsed)
			absent(t, a, []string{"at5"}, []string{"rt5"})
			present(t, b, nil, []string{"rt4"})
		}},
		{"racing retries of one rotated token leave one live successor", func(t *testing.T, a, b storage.Storage) {
			ctx := t.Context()
			grace := storage.Rotation{ID: "rt", Grace: time.Minute}
			must(t, a.IssueTokens(ctx, accessToken("at", "g1", live()), refreshToken("rt", "g1", live()), storage.Rotation{}))
			errs := make([]error, racers)
			race(func(i int) {
				errs[i] = either(i, a, b).IssueTokens(ctx,
					accessToken(fmt.Sprint("at-", i), "g1", live()),
					refreshToken(fmt.Sprint("rt-", i), "g1", live()), grace)
			})
			for i, err := range errs {
				if err != nil {
					t.Errorf("retry %d within the grace period: %v", i, err)
				}
			}
			old, err := b.GetRefreshToken(ctx, "rt")
			must(t, err)
			live := 0
			for i := range racers {
				if _, err := a.GetRefreshToken(ctx, fmt.Sprint("rt-", i)); err == nil {
					live++
					if id := fmt.Sprint("rt-", i); id != old.Successor {
						t.Errorf("%s is live but the rotated token's successor is %q", id, old.Successor)
					}
				}
			}
			if live != 1 {
				t.Errorf("%d successors live, want 1", live)
			}
		}},
		{"no token of a grant survives its revocation on the other replica", func(t *testing.T, a, b storage.Storage) {
			ctx := t.Context()
			until := live()
			errs := make([]error, racers)
			var revoked sync.WaitGroup
			revoked.Add(1)
			race(func(i int) {
				if i == racers/2 {
					must(t, a.RevokeGrant(ctx, "g1", until))
					revoked.Done()
					return
				}
				errs[i] = b.IssueTokens(ctx, accessToken(fmt.Sprint("at-", i), "g1", live()),
					refreshToken(fmt.Sprint("rt-", i), "g1", live()), storage.Rotation{})
			})
			revoked.Wait()
			for i := range racers {
				if errs[i] != nil && !errors.Is(errs[i], storage.ErrRevoked) {
					t.Errorf("issue %d: %v, want nil or ErrRevoked", i, errs[i])
				}
				if i != racers/2 {
					absent(t, a, []string{fmt.Sprint("at-", i)}, []string{fmt.Sprint("rt-", i)})
				}
			}
			err := b.IssueTokens(ctx, accessToken("late", "g1", live()), nil, storage.Rotation{})
			wantErr(t, err, storage.ErrRevoked)
			absent(t, a, []string{"late"}, nil)
		}},
		{"key set updates from both replicas lose none", func(t *testing.T, a, b storage.Storage) {
			ctx := t.Context()
			errs := make([]error, racers)
			race(func(i int) {
				errs[i] = either(i, a, b).UpdateKeySet(ctx, func(ks storage.KeySet) (storage.KeySet, error) {
					ks.Version++
					return ks, nil
				})
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("racer %d: %v", i, err)
				}
			}
			for _, s := range []storage.Storage{a, b} {
				ks, err := s.GetKeySet(ctx)
				must(t, err)
				if ks.Version != racers {
					t.Errorf("Version = %d after %d updates", ks.Version, racers)
				}
			}
		}},
		{"one replica spends a device code", func(t *testing.T, a, b storage.Storage) {
			ctx := t.Context()
			d := device("d1", "BCDFGHJK", live())
			d.State = storage.DeviceApproved
			must(t, a.CreateDeviceAuthorization(ctx, d))
			errSpent := errors.New("spent")
			errs := make([]error, racers)
			race(func(i int) {
				_, errs[i] = either(i, a, b).UpdateDeviceAuthorization(ctx, "d1", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
					if d.State != storage.DeviceApproved {
						return d, errSpent
					}
					d.State = storage.DeviceSpent
					return d, nil
				})
			})
			if won := winners(t, errs, errSpent); len(won) != 1 {
				t.Fatalf("%d replicas spent the code, want 1", len(won))
			}
		}},
		{"logins of one person on both replicas lose no update", func(t *testing.T, a, b storage.Storage) {
			ctx := t.Context()
			errs := make([]error, racers)
			race(func(i int) {
				_, errs[i] = either(i, a, b).CompleteLogin(ctx, storage.Login{
					Subject: "union-1",
					Update: func(u storage.User, _ bool) (storage.User, error) {
						u.Nick += "x"
						return u, nil
					},
					Session: session(fmt.Sprint("s-", i), live()),
				})
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("login %d: %v", i, err)
				}
			}
			u, err := b.GetUser(ctx, "union-1")
			must(t, err)
			if len(u.Nick) != racers {
				t.Errorf("Nick has %d marks after %d logins", len(u.Nick), racers)
			}
			for i := range racers {
				if _, err := either(i+1, a, b).GetSession(ctx, fmt.Sprint("s-", i)); err != nil {
					t.Errorf("session of login %d: %v", i, err)
				}
			}
		}},
		{"one replica holds a lease at a time", func(t *testing.T, a, b storage.Storage) {
			ctx := t.Context()
			const ttl = 300 * time.Millisecond
			held := make([]bool, racers)
			errs := make([]error, racers)
			race(func(i int) {
				held[i], errs[i] = either(i, a, b).AcquireLease(ctx, "sweeper", fmt.Sprint("replica-", i), time.Minute)
			})
			holders := 0
			for i := range racers {
				must(t, errs[i])
				if held[i] {
					holders++
				}
			}
			if holders != 1 {
				t.Fatalf("%d holders of one lease, want 1", holders)
			}

			got, err := a.AcquireLease(ctx, "keys", "replica-a", ttl)
			must(t, err)
			if !got {
				t.Fatal("a free lease was not acquired")
			}
			if got, err = b.AcquireLease(ctx, "keys", "replica-b", ttl); err != nil || got {
				t.Fatalf("b acquired a's live lease (%v, %v)", got, err)
			}
			if got, err = a.AcquireLease(ctx, "keys", "replica-a", ttl); err != nil || !got {
				t.Fatalf("a could not renew its own lease (%v, %v)", got, err)
			}
			time.Sleep(ttl + 100*time.Millisecond)
			if got, err = b.AcquireLease(ctx, "keys", "replica-b", ttl); err != nil || !got {
				t.Fatalf("b could not take over an expired lease (%v, %v)", got, err)
			}
			if got, err = a.AcquireLease(ctx, "keys", "replica-a", ttl); err != nil || got {
				t.Fatalf("a took the lease back from b (%v, %v)", got, err)
			}
		}},
	}
}
