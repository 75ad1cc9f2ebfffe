package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

func authRequestTests() []test {
	return []test{
		{"created request reads back with every field", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			a := doneAuthRequest("req1", live())
			must(t, s.CreateAuthRequest(ctx, a))
			got, err := s.GetAuthRequest(ctx, "req1")
			must(t, err)
			equal(t, "auth request", got, a)
		}},
		{"max_age=0 is kept apart from no max_age", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			zero := authRequest("zero", live())
			zero.MaxAge = uintPtr(0)
			none := authRequest("none", live())
			none.MaxAge = nil
			must(t, s.CreateAuthRequest(ctx, zero))
			must(t, s.CreateAuthRequest(ctx, none))
			got, err := s.GetAuthRequest(ctx, "zero")
			must(t, err)
			if got.MaxAge == nil || *got.MaxAge != 0 {
				t.Errorf("max_age=0 came back as %v", got.MaxAge)
			}
			got, err = s.GetAuthRequest(ctx, "none")
			must(t, err)
			if got.MaxAge != nil {
				t.Errorf("no max_age came back as %d", *got.MaxAge)
			}
		}},
		{"creating an existing ID is ErrAlreadyExists and keeps the first", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			first := authRequest("req1", live())
			must(t, s.CreateAuthRequest(ctx, first))
			second := authRequest("req1", live())
			second.ClientID = "impostor"
			wantErr(t, s.CreateAuthRequest(ctx, second), storage.ErrAlreadyExists)
			got, err := s.GetAuthRequest(ctx, "req1")
			must(t, err)
			equal(t, "auth request", got, first)
		}},
		{"unknown request is ErrNotFound", func(t *testing.T, s storage.Storage) {
			_, err := s.GetAuthRequest(t.Context(), "nope")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"update records the upstream login", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			a := authRequest("req1", live())
			must(t, s.CreateAuthRequest(ctx, a))
			authTime := now().In(time.FixedZone("CST", 8*3600))
			must(t, s.UpdateAuthRequest(ctx, "req1", func(old storage.AuthRequest) (storage.AuthRequest, error) {
				old.Done = true
				old.Subject = "union-123"
				old.AuthTime = authTime
				old.AMR = []string{"pwd"}
				old.ConnectorID = "dingtalk"
				return old, nil
			}))
			got, err := s.GetAuthRequest(ctx, "req1")
			must(t, err)
			want := a
			want.Done, want.Subject, want.AuthTime = true, "union-123", authTime
			want.AMR, want.ConnectorID = []string{"pwd"}, "dingtalk"
			equal(t, "auth request", got, want)
		}},
		{"update callback error is returned and nothing is stored", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			a := authRequest("req1", live())
			must(t, s.CreateAuthRequest(ctx, a))
			refused := errors.New("refused")
			err := s.UpdateAuthRequest(ctx, "req1", func(old storage.AuthRequest) (storage.AuthRequest, error) {
				old.Done = true
				return old, refused
			})
			wantErr(t, err, refused)
			got, err := s.GetAuthRequest(ctx, "req1")
			must(t, err)
			equal(t, "auth request", got, a)
		}},
		{"update may not change the ID", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			a := authRequest("req1", live())
			must(t, s.CreateAuthRequest(ctx, a))
			err := s.UpdateAuthRequest(ctx, "req1", func(old storage.AuthRequest) (storage.AuthRequest, error) {
				old.ID, old.Done = "req2", true
				return old, nil
			})
			if err == nil {
				t.Fatal("update changing the ID succeeded")
			}
			_, err = s.GetAuthRequest(ctx, "req2")
			wantErr(t, err, storage.ErrNotFound)
			got, err := s.GetAuthRequest(ctx, "req1")
			must(t, err)
			equal(t, "auth request", got, a)
		}},
		{"update of an unknown request is ErrNotFound", func(t *testing.T, s storage.Storage) {
			err := s.UpdateAuthRequest(t.Context(), "nope", func(a storage.AuthRequest) (storage.AuthRequest, error) {
				return a, nil
			})
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"update of an expired request is ErrNotFound", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateAuthRequest(ctx, authRequest("old", past())))
			err := s.UpdateAuthRequest(ctx, "old", func(a storage.AuthRequest) (storage.AuthRequest, error) {
				a.Done, a.Expiry = true, live()
				return a, nil
			})
			wantErr(t, err, storage.ErrNotFound)
			_, err = s.GetAuthRequest(ctx, "old")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"deleted request is gone", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateAuthRequest(ctx, authRequest("req1", live())))
			must(t, s.CreateAuthRequest(ctx, authRequest("req2", live())))
			must(t, s.DeleteAuthRequest(ctx, "req1"))
			_, err := s.GetAuthRequest(ctx, "req1")
			wantErr(t, err, storage.ErrNotFound)
			wantErr(t, s.DeleteAuthRequest(ctx, "req1"), storage.ErrNotFound)
			if _, err := s.GetAuthRequest(ctx, "req2"); err != nil {
				t.Fatalf("deleting one request touched another: %v", err)
			}
		}},
		{"delete of an unknown request is ErrNotFound", func(t *testing.T, s storage.Storage) {
			wantErr(t, s.DeleteAuthRequest(t.Context(), "nope"), storage.ErrNotFound)
		}},
	}
}

func authCodeTests() []test {
	return []test{
		{"first claim returns the code marked claimed", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			c := authCode("code1", live())
			must(t, s.CreateAuthCode(ctx, c))
			before := time.Now()
			got, err := s.ClaimAuthCode(ctx, "code1")
			must(t, err)
			if got.ClaimedAt.Before(before.Add(-time.Second)) || got.ClaimedAt.After(time.Now().Add(time.Second)) {
				t.Errorf("ClaimedAt = %v, want about %v", got.ClaimedAt, before)
			}
			want := c
			want.ClaimedAt = got.ClaimedAt
			equal(t, "claimed code", got, want)
		}},
		{"second claim returns the code and ErrAlreadyUsed", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateAuthCode(ctx, authCode("code1", live())))
			first, err := s.ClaimAuthCode(ctx, "code1")
			must(t, err)
			second, err := s.ClaimAuthCode(ctx, "code1")
			wantErr(t, err, storage.ErrAlreadyUsed)
			equal(t, "code on reuse", second, first)
			_, err = s.ClaimAuthCode(ctx, "code1")
			wantErr(t, err, storage.ErrAlreadyUsed)
		}},
		{"get reads a code without claiming it", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			c := authCode("code1", live())
			must(t, s.CreateAuthCode(ctx, c))
			got, err := s.GetAuthCode(ctx, "code1")
			must(t, err)
			equal(t, "code", got, c)
			if _, err := s.ClaimAuthCode(ctx, "code1"); err != nil {
				t.Fatalf("claim after get: %v", err)
			}
			got, err = s.GetAuthCode(ctx, "code1")
			must(t, err)
			if got.ClaimedAt.IsZero() {
				t.Error("get after claim does not show ClaimedAt")
			}
			_, err = s.GetAuthCode(ctx, "nope")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"claiming an unknown code is ErrNotFound", func(t *testing.T, s storage.Storage) {
			_, err := s.ClaimAuthCode(t.Context(), "nope")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"claiming an expired code is ErrNotFound", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateAuthCode(ctx, authCode("old", past())))
			_, err := s.ClaimAuthCode(ctx, "old")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"creating an existing code is ErrAlreadyExists", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			first := authCode("code1", live())
			must(t, s.CreateAuthCode(ctx, first))
			second := authCode("code1", live())
			second.ClientID = "impostor"
			wantErr(t, s.CreateAuthCode(ctx, second), storage.ErrAlreadyExists)
			got, err := s.ClaimAuthCode(ctx, "code1")
			must(t, err)
			if got.ClientID != first.ClientID {
				t.Errorf("ClientID = %q, want the first code's %q", got.ClientID, first.ClientID)
			}
		}},
	}
}

func upstreamStateTests() []test {
	return []test{
		{"consume returns the state once", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			st := upstreamState("st1", live())
			must(t, s.CreateUpstreamState(ctx, st))
			got, err := s.ConsumeUpstreamState(ctx, "st1")
			must(t, err)
			equal(t, "upstream state", got, st)
			_, err = s.ConsumeUpstreamState(ctx, "st1")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"consuming an unknown state is ErrNotFound", func(t *testing.T, s storage.Storage) {
			_, err := s.ConsumeUpstreamState(t.Context(), "nope")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"consuming an expired state is ErrNotFound", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateUpstreamState(ctx, upstreamState("old", past())))
			_, err := s.ConsumeUpstreamState(ctx, "old")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"creating an existing state is ErrAlreadyExists", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			first := upstreamState("st1", live())
			must(t, s.CreateUpstreamState(ctx, first))
			second := upstreamState("st1", live())
			second.BrowserBinding = "impostor"
			wantErr(t, s.CreateUpstreamState(ctx, second), storage.ErrAlreadyExists)
			got, err := s.ConsumeUpstreamState(ctx, "st1")
			must(t, err)
			equal(t, "upstream state", got, first)
		}},
	}
}
