package admin_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/storage"
)

func TestDisableAndEnableUser(t *testing.T) {
	eachAPI(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		u, err := f.api.DisableUser(ctx, alice.Subject)
		if err != nil || !u.Disabled || u.Nick != "Alice" {
			t.Fatalf("DisableUser = %+v, %v", u, err)
		}
		if stored, _ := f.store.GetUser(ctx, alice.Subject); !stored.Disabled || stored.LastLogin != alice.LastLogin {
			t.Errorf("stored user %+v: want disabled and otherwise unchanged", stored)
		}
		if u, err := f.api.EnableUser(ctx, alice.Subject); err != nil || u.Disabled {
			t.Errorf("EnableUser = %+v, %v", u, err)
		}
		if _, err := f.api.DisableUser(ctx, "nobody"); !errors.Is(err, admin.ErrNotFound) {
			t.Errorf("disable unknown user: %v, want ErrNotFound", err)
		}
		if _, err := f.store.GetUser(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("disabling an unknown user created it: %v", err)
		}
		users, err := f.api.ListUsers(ctx)
		if err != nil || len(users) != 1 || users[0].UnionID != alice.UnionID || !users[0].FirstLogin.Equal(alice.FirstLogin) {
			t.Errorf("ListUsers = %+v, %v", users, err)
		}
		if _, err := f.api.GetUser(ctx, "nobody"); !errors.Is(err, admin.ErrNotFound) {
			t.Errorf("GetUser unknown: %v, want ErrNotFound", err)
		}
	})
}

func TestKeysRotate(t *testing.T) {
	eachAPI(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		before, err := f.api.ListKeys(ctx)
		if err != nil || len(before) != 1 || before[0].State != "active" {
			t.Fatalf("ListKeys = %+v, %v; want one active key", before, err)
		}
		k, err := f.api.RotateKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		after, err := f.api.ListKeys(ctx)
		if err != nil || len(after) != 2 {
			t.Fatalf("ListKeys after rotate = %+v, %v", after, err)
		}
		if after[0].ID != before[0].ID || after[0].State != "retired" || after[0].Expiry.IsZero() || after[1].ID != k.ID || after[1].State != "active" {
			t.Errorf("after rotate: %+v; want the old key retired with an expiry, %s active", after, k.ID)
		}
	})
}

func TestClaimsPreview(t *testing.T) {
	eachAPI(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		p, err := f.api.Claims(ctx, "grafana", alice.Subject, nil)
		if err != nil {
			t.Fatal(err)
		}
		for claim, want := range map[string]any{
			"iss": issuer, "sub": alice.Subject, "azp": "grafana", "unionid": alice.UnionID, "openid": alice.OpenID,
			"name": "Alice", "email": alice.Email, "email_verified": false, "phone_number": alice.Phone,
		} {
			if got := p.IDToken[claim]; got != want {
				t.Errorf("id_token %s = %v, want %v", claim, got, want)
			}
		}
		if p.Userinfo["sub"] != alice.Subject || p.Userinfo["name"] != "Alice" || p.Userinfo["iss"] != nil {
			t.Errorf("userinfo = %v; want sub and name, no iss", p.Userinfo)
		}
		narrow, err := f.api.Claims(ctx, "grafana", alice.Subject, []string{"openid"})
		if err != nil || narrow.IDToken["email"] != nil || narrow.IDToken["unionid"] != alice.UnionID {
			t.Errorf("openid only: %v, %v; want unionid and no email", narrow.IDToken, err)
		}
		if _, err := f.api.Claims(ctx, "nope", alice.Subject, nil); !errors.Is(err, admin.ErrNotFound) {
			t.Errorf("unknown client: %v, want ErrNotFound", err)
		}
		if _, err := f.api.Claims(ctx, "grafana", "nobody", nil); !errors.Is(err, admin.ErrNotFound) {
			t.Errorf("unknown user: %v, want ErrNotFound", err)
		}
	})
}
