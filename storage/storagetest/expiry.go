package storagetest

import (
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// Expired records are created with Expiry already in the past: nothing here waits.

func expiryTests() []test {
	return []test{
		{"expired records are not found before garbage collection", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateAuthRequest(ctx, authRequest("req", past())))
			must(t, s.CreateAuthCode(ctx, authCode("code", past())))
			must(t, s.CreateUpstreamState(ctx, upstreamState("st", past())))
			must(t, s.IssueTokens(ctx, accessToken("at", "g", past()), refreshToken("rt", "g", past()), storage.Rotation{}))

			_, err := s.GetAuthRequest(ctx, "req")
			wantErr(t, err, storage.ErrNotFound)
			_, err = s.GetAuthCode(ctx, "code")
			wantErr(t, err, storage.ErrNotFound)
			_, err = s.ClaimAuthCode(ctx, "code")
			wantErr(t, err, storage.ErrNotFound)
			_, err = s.ConsumeUpstreamState(ctx, "st")
			wantErr(t, err, storage.ErrNotFound)
			absent(t, s, []string{"at"}, []string{"rt"})
		}},
		{"expiry is an instant, whatever location it is written in", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			// Wall clock behind UTC but an hour ahead in fact: still valid.
			must(t, s.CreateAuthRequest(ctx, authRequest("ahead", live().In(time.FixedZone("HST", -10*3600)))))
			// Wall clock ahead of UTC but an hour ago in fact: expired.
			must(t, s.CreateAuthRequest(ctx, authRequest("behind", past().In(time.FixedZone("LINT", 14*3600)))))
			if _, err := s.GetAuthRequest(ctx, "ahead"); err != nil {
				t.Errorf("request valid for another hour: %v", err)
			}
			_, err := s.GetAuthRequest(ctx, "behind")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"times in another location read back as the same instant", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			cst := time.FixedZone("CST", 8*3600)
			a := doneAuthRequest("req", live().In(cst))
			a.CreatedAt, a.AuthTime = a.CreatedAt.In(cst), a.AuthTime.In(cst)
			must(t, s.CreateAuthRequest(ctx, a))
			got, err := s.GetAuthRequest(ctx, "req")
			must(t, err)
			equal(t, "auth request", got, a)

			u := user("union-1")
			u.FirstLogin, u.LastLogin = u.FirstLogin.In(cst), u.LastLogin.In(cst)
			_, err = s.UpsertUser(ctx, "union-1", func(storage.User, bool) (storage.User, error) { return u, nil })
			must(t, err)
			gotU, err := s.GetUser(ctx, "union-1")
			must(t, err)
			equal(t, "user", gotU, u)
		}},
		{"garbage collection removes expired records and counts them", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			seedExpiring(t, s, "old-", past(), storage.GCResult{AuthRequests: 1, AuthCodes: 2, AccessTokens: 4, RefreshTokens: 3, UpstreamStates: 5})
			seedExpiring(t, s, "new-", live(), storage.GCResult{AuthRequests: 1, AuthCodes: 1, AccessTokens: 1, RefreshTokens: 1, UpstreamStates: 1})
			seedPermanent(t, s)

			got, err := s.GarbageCollect(ctx, time.Now())
			must(t, err)
			equal(t, "collected", got, storage.GCResult{AuthRequests: 1, AuthCodes: 2, AccessTokens: 4, RefreshTokens: 3, UpstreamStates: 5})

			again, err := s.GarbageCollect(ctx, time.Now())
			must(t, err)
			if !again.IsZero() {
				t.Errorf("second collection removed %+v", again)
			}
			checkLive(t, s, "new-")
			checkPermanent(t, s)
		}},
		{"garbage collection uses the time it is given", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			counts := storage.GCResult{AuthRequests: 2, AuthCodes: 1, AccessTokens: 2, RefreshTokens: 1, UpstreamStates: 3}
			seedExpiring(t, s, "", live(), counts)
			seedPermanent(t, s)
			got, err := s.GarbageCollect(ctx, time.Now())
			must(t, err)
			if !got.IsZero() {
				t.Fatalf("collection at the present removed live records: %+v", got)
			}
			got, err = s.GarbageCollect(ctx, time.Now().Add(2*time.Hour))
			must(t, err)
			equal(t, "collected", got, counts)
			checkPermanent(t, s)
		}},
		{"garbage collection of an empty storage removes nothing", func(t *testing.T, s storage.Storage) {
			got, err := s.GarbageCollect(t.Context(), time.Now())
			must(t, err)
			if !got.IsZero() {
				t.Errorf("removed %+v", got)
			}
		}},
		{"garbage-collected tokens leave their grant revocable", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", past()), refreshToken("rt1", "g1", past()), storage.Rotation{}))
			must(t, s.IssueTokens(ctx, accessToken("at2", "g1", live()), nil, storage.Rotation{}))
			_, err := s.GarbageCollect(ctx, time.Now())
			must(t, err)
			must(t, s.RevokeGrant(ctx, "g1", live()))
			absent(t, s, []string{"at1", "at2"}, []string{"rt1"})
		}},
	}
}

// seedExpiring stores n.AuthRequests auth requests, n.AuthCodes codes, and so on,
// all expiring at expiry, with IDs starting with prefix. Access tokens are issued
// first alone, refresh tokens then each with one more access token, so both counts
// can be chosen: n.AccessTokens must be at least n.RefreshTokens.
func seedExpiring(t *testing.T, s storage.Storage, prefix string, expiry time.Time, n storage.GCResult) {
	t.Helper()
	ctx := t.Context()
	if n.RefreshTokens > n.AccessTokens {
		t.Fatalf("seedExpiring: %d refresh tokens need as many access tokens", n.RefreshTokens)
	}
	id := func(kind string, i int) string { return prefix + kind + string(rune('a'+i)) }
	for i := range n.AuthRequests {
		must(t, s.CreateAuthRequest(ctx, authRequest(id("req-", i), expiry)))
	}
	for i := range n.AuthCodes {
		must(t, s.CreateAuthCode(ctx, authCode(id("code-", i), expiry)))
	}
	for i := range n.UpstreamStates {
		must(t, s.CreateUpstreamState(ctx, upstreamState(id("st-", i), expiry)))
	}
	for i := range n.AccessTokens {
		var r *storage.RefreshToken
		if i < n.RefreshTokens {
			r = refreshToken(id("rt-", i), id("grant-", i), expiry)
		}
		must(t, s.IssueTokens(ctx, accessToken(id("at-", i), id("grant-", i), expiry), r, storage.Rotation{}))
	}
}

// checkLive fails unless the one-of-each records seedExpiring made with prefix are
// still there (it consumes some of them).
func checkLive(t *testing.T, s storage.Storage, prefix string) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.GetAuthRequest(ctx, prefix+"req-a"); err != nil {
		t.Errorf("live auth request: %v", err)
	}
	if _, err := s.ClaimAuthCode(ctx, prefix+"code-a"); err != nil {
		t.Errorf("live code: %v", err)
	}
	if _, err := s.ConsumeUpstreamState(ctx, prefix+"st-a"); err != nil {
		t.Errorf("live upstream state: %v", err)
	}
	present(t, s, []string{prefix + "at-a"}, []string{prefix + "rt-a"})
}

func seedPermanent(t *testing.T, s storage.Storage) {
	t.Helper()
	ctx := t.Context()
	must(t, s.CreateClient(ctx, client("grafana")))
	_, err := s.UpsertUser(ctx, "union-1", func(storage.User, bool) (storage.User, error) { return user("union-1"), nil })
	must(t, err)
	must(t, s.UpdateKeySet(ctx, func(storage.KeySet) (storage.KeySet, error) { return keySet(), nil }))
}

// checkPermanent fails unless what seedPermanent stored is still there: clients,
// users and keys never expire, even when their own times lie in the past.
func checkPermanent(t *testing.T, s storage.Storage) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.GetClient(ctx, "grafana"); err != nil {
		t.Errorf("client: %v", err)
	}
	if _, err := s.GetUser(ctx, "union-1"); err != nil {
		t.Errorf("user: %v", err)
	}
	ks, err := s.GetKeySet(ctx)
	if err != nil || len(ks.SigningKeys) != len(keySet().SigningKeys) {
		t.Errorf("key set: %d keys, %v", len(ks.SigningKeys), err)
	}
}
