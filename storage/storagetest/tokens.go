package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// present fails the test unless the access tokens and refresh tokens named exist.
func present(t *testing.T, s storage.Storage, access, refresh []string) {
	t.Helper()
	for _, id := range access {
		if _, err := s.GetAccessToken(t.Context(), id); err != nil {
			t.Errorf("access token %s: %v", id, err)
		}
	}
	for _, id := range refresh {
		if _, err := s.GetRefreshToken(t.Context(), id); err != nil {
			t.Errorf("refresh token %s: %v", id, err)
		}
	}
}

// absent fails the test unless the tokens named are ErrNotFound.
func absent(t *testing.T, s storage.Storage, access, refresh []string) {
	t.Helper()
	for _, id := range access {
		if _, err := s.GetAccessToken(t.Context(), id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("access token %s: error %v, want ErrNotFound", id, err)
		}
	}
	for _, id := range refresh {
		if _, err := s.GetRefreshToken(t.Context(), id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("refresh token %s: error %v, want ErrNotFound", id, err)
		}
	}
}

func tokenTests() []test {
	return []test{
		{"access token alone reads back with every field", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			a := accessToken("at1", "g1", live())
			must(t, s.IssueTokens(ctx, a, nil, storage.Rotation{}))
			got, err := s.GetAccessToken(ctx, "at1")
			must(t, err)
			equal(t, "access token", got, a)
		}},
		{"access and refresh token read back with every field", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			a, r := accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live())
			must(t, s.IssueTokens(ctx, a, r, storage.Rotation{}))
			gotA, err := s.GetAccessToken(ctx, "at1")
			must(t, err)
			equal(t, "access token", gotA, a)
			gotR, err := s.GetRefreshToken(ctx, "rt1")
			must(t, err)
			equal(t, "refresh token", gotR, *r)
		}},
		{"rotation keeps the replaced refresh token, marked rotated", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			before := time.Now()
			must(t, s.IssueTokens(ctx, accessToken("at2", "g1", live()), refreshToken("rt2", "g1", live()), storage.Rotation{ID: "rt1"}))
			present(t, s, []string{"at1", "at2"}, []string{"rt1", "rt2"})
			old, err := s.GetRefreshToken(ctx, "rt1")
			must(t, err)
			if old.RotatedAt.Before(before.Add(-time.Second)) || old.RotatedAt.After(time.Now().Add(time.Second)) {
				t.Errorf("RotatedAt = %v, want about %v", old.RotatedAt, before)
			}
			if old.Successor != "rt2" {
				t.Errorf("Successor = %q, want rt2", old.Successor)
			}
			if fresh, _ := s.GetRefreshToken(ctx, "rt2"); !fresh.RotatedAt.IsZero() || fresh.Successor != "" {
				t.Error("the new refresh token is marked rotated")
			}
		}},
		{"rotating a rotated token again is ErrAlreadyUsed and stores nothing", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			must(t, s.IssueTokens(ctx, accessToken("at2", "g1", live()), refreshToken("rt2", "g1", live()), storage.Rotation{ID: "rt1"}))
			err := s.IssueTokens(ctx, accessToken("at3", "g1", live()), refreshToken("rt3", "g1", live()), storage.Rotation{ID: "rt1"})
			wantErr(t, err, storage.ErrAlreadyUsed)
			absent(t, s, []string{"at3"}, []string{"rt3"})
		}},
		{"rotating a rotated token again within the grace window replaces its successor", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			must(t, s.IssueTokens(ctx, accessToken("at2", "g1", live()), refreshToken("rt2", "g1", live()), storage.Rotation{ID: "rt1", Grace: time.Minute}))
			must(t, s.IssueTokens(ctx, accessToken("at3", "g1", live()), refreshToken("rt3", "g1", live()), storage.Rotation{ID: "rt1", Grace: time.Minute}))
			// The retry's answer replaces the first one: one live refresh token per chain.
			present(t, s, []string{"at2", "at3"}, []string{"rt1", "rt3"})
			absent(t, s, nil, []string{"rt2"})
			old, err := s.GetRefreshToken(ctx, "rt1")
			must(t, err)
			if old.Successor != "rt3" {
				t.Errorf("Successor = %q after the retry, want rt3", old.Successor)
			}
		}},
		{"rotation without a new refresh token still marks the old one", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			must(t, s.IssueTokens(ctx, accessToken("at2", "g1", live()), nil, storage.Rotation{ID: "rt1"}))
			old, err := s.GetRefreshToken(ctx, "rt1")
			must(t, err)
			if old.RotatedAt.IsZero() {
				t.Error("rotated token not marked")
			}
			present(t, s, []string{"at2"}, nil)
		}},
		{"rotation of a missing refresh token is ErrNotFound and stores nothing", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			err := s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt2", "g1", live()), storage.Rotation{ID: "rt1"})
			wantErr(t, err, storage.ErrNotFound)
			absent(t, s, []string{"at1"}, []string{"rt2"})
		}},
		{"rotation of an expired refresh token is ErrNotFound and stores nothing", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at0", "g1", live()), refreshToken("rt1", "g1", past()), storage.Rotation{}))
			err := s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt2", "g1", live()), storage.Rotation{ID: "rt1"})
			wantErr(t, err, storage.ErrNotFound)
			absent(t, s, []string{"at1"}, []string{"rt2"})
		}},
		{"a taken access token ID is ErrAlreadyExists and stores nothing", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			first := accessToken("at1", "g1", live())
			must(t, s.IssueTokens(ctx, first, refreshToken("rt1", "g1", live()), storage.Rotation{}))
			again := accessToken("at1", "g2", live())
			err := s.IssueTokens(ctx, again, refreshToken("rt2", "g2", live()), storage.Rotation{ID: "rt1"})
			wantErr(t, err, storage.ErrAlreadyExists)
			absent(t, s, nil, []string{"rt2"})
			present(t, s, nil, []string{"rt1"})
			got, err := s.GetAccessToken(ctx, "at1")
			must(t, err)
			equal(t, "access token", got, first)
		}},
		{"a taken refresh token ID is ErrAlreadyExists and stores nothing", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			err := s.IssueTokens(ctx, accessToken("at2", "g2", live()), refreshToken("rt1", "g2", live()), storage.Rotation{})
			wantErr(t, err, storage.ErrAlreadyExists)
			absent(t, s, []string{"at2"}, nil)
			got, err := s.GetRefreshToken(ctx, "rt1")
			must(t, err)
			if got.GrantID != "g1" {
				t.Errorf("refresh token overwritten: GrantID = %q", got.GrantID)
			}
		}},
		{"revoking a grant deletes every token of it and no others", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			must(t, s.IssueTokens(ctx, accessToken("at2", "g1", live()), refreshToken("rt2", "g1", live()), storage.Rotation{ID: "rt1"}))
			must(t, s.IssueTokens(ctx, accessToken("at3", "g1", live()), nil, storage.Rotation{}))
			must(t, s.IssueTokens(ctx, accessToken("other-at", "g2", live()), refreshToken("other-rt", "g2", live()), storage.Rotation{}))
			// A grant ID that starts like g1 must not be caught by it.
			must(t, s.IssueTokens(ctx, accessToken("g10-at", "g10", live()), refreshToken("g10-rt", "g10", live()), storage.Rotation{}))
			must(t, s.RevokeGrant(ctx, "g1", live()))
			absent(t, s, []string{"at1", "at2", "at3"}, []string{"rt1", "rt2"})
			present(t, s, []string{"other-at", "g10-at"}, []string{"other-rt", "g10-rt"})
		}},
		{"revoking a grant with no tokens succeeds", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.RevokeGrant(ctx, "nothing", live()))
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), nil, storage.Rotation{}))
			must(t, s.RevokeGrant(ctx, "g1", live()))
			must(t, s.RevokeGrant(ctx, "g1", live()))
		}},
		{"deleted access token is gone", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			must(t, s.DeleteAccessToken(ctx, "at1"))
			absent(t, s, []string{"at1"}, nil)
			present(t, s, nil, []string{"rt1"})
			wantErr(t, s.DeleteAccessToken(ctx, "at1"), storage.ErrNotFound)
		}},
		{"deleted refresh token is gone", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{}))
			must(t, s.DeleteRefreshToken(ctx, "rt1"))
			absent(t, s, nil, []string{"rt1"})
			present(t, s, []string{"at1"}, nil)
			wantErr(t, s.DeleteRefreshToken(ctx, "rt1"), storage.ErrNotFound)
		}},
		{"deleting unknown tokens is ErrNotFound", func(t *testing.T, s storage.Storage) {
			wantErr(t, s.DeleteAccessToken(t.Context(), "nope"), storage.ErrNotFound)
			wantErr(t, s.DeleteRefreshToken(t.Context(), "nope"), storage.ErrNotFound)
		}},
	}
}
