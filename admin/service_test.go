package admin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/bolt"
)

const issuer = "https://sso.example.com"

var alice = storage.User{
	Subject: "union-alice", ConnectorID: "dingtalk", UnionID: "union-alice", OpenID: "open-alice",
	Nick: "Alice", Email: "alice@example.com", Phone: "+8613800000000",
	FirstLogin: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), LastLogin: time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC),
}

// fixture is a Service over a fresh database, and the API under test: the
// Service itself, or the same Service reached through its admin socket.
type fixture struct {
	api   admin.API
	store *bolt.Storage
}

// eachAPI runs test against the Service directly and through the socket, so the
// two can never drift apart (errors included).
func eachAPI(t *testing.T, test func(t *testing.T, f fixture)) {
	t.Run("direct", func(t *testing.T) {
		svc, store := newService(t)
		test(t, fixture{api: svc, store: store})
	})
	t.Run("socket", func(t *testing.T) {
		svc, store := newService(t)
		test(t, fixture{api: serveOnSocket(t, svc), store: store})
	})
}

func newService(t *testing.T) (*admin.Service, *bolt.Storage) {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "dingbridge.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	km, err := keys.New(store, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpsertUser(context.Background(), alice.Subject, func(storage.User, bool) (storage.User, error) { return alice, nil }); err != nil {
		t.Fatal(err)
	}
	svc, err := admin.NewService(admin.Config{
		Storage: store, Keys: km, Issuer: issuer, IDTokenLifetime: time.Hour,
		StaticClients: []op.StaticClient{{ID: "grafana", Secret: "static-secret-never-shown", RedirectURIs: []string{"https://grafana.example.com/cb"}}},
		Claims:        op.ClaimsPolicy{Subject: "unionid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc, store
}

// serveOnSocket serves api on a unix socket until the test ends.
func serveOnSocket(t *testing.T, api admin.API) *admin.Remote {
	t.Helper()
	path := filepath.Join(shortTempDir(t), "admin.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ln, err := admin.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- admin.ServeListener(ctx, ln, api, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	})
	return admin.Dial(path)
}

// shortTempDir is a directory whose paths fit in a unix socket address (t.TempDir
// can be longer than the 104 bytes macOS allows).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func TestRedirectURIRules(t *testing.T) {
	cases := []struct {
		name, uri string
		public    bool
		refusal   string // empty: accepted
	}{
		{"https", "https://app.example.com/cb?x=1", false, ""},
		{"http on 127.0.0.1", "http://127.0.0.1:8080/cb", false, ""},
		{"http on [::1]", "http://[::1]:8080/cb", false, ""},
		{"http on localhost", "http://localhost/cb", false, ""},
		{"custom scheme, public", "com.example.app:/oauth2redirect", true, ""},
		{"relative", "/callback", false, "is not an absolute URL"},
		{"no scheme", "app.example.com/cb", false, "is not an absolute URL"},
		{"https without host", "https:///cb", false, "has no host"},
		{"http elsewhere", "http://app.example.com/cb", false, "must use https"},
		{"fragment", "https://app.example.com/cb#frag", false, "has a fragment"},
		{"wildcard host", "https://*.example.com/cb", false, "wildcard"},
		{"wildcard path", "https://app.example.com/*", false, "wildcard"},
		{"custom scheme, confidential", "com.example.app:/cb", false, "allowed only for public (native) clients"},
		{"javascript", "javascript:alert(1)", true, "can never receive"},
		{"user info", "https://user:pw@app.example.com/cb", false, "user name or password"},
	}
	eachAPI(t, func(t *testing.T, f fixture) {
		for _, c := range cases {
			for _, post := range []bool{false, true} {
				spec := admin.ClientSpec{Name: c.name, Public: c.public, RedirectURIs: []string{c.uri}}
				if post {
					spec.RedirectURIs = []string{"https://ok.example.com/cb"}
					spec.PostLogoutRedirectURIs = []string{c.uri}
				}
				_, err := f.api.AddClient(context.Background(), spec)
				switch {
				case c.refusal == "" && err != nil:
					t.Errorf("%s (post-logout %v): %v, want accepted", c.name, post, err)
				case c.refusal != "" && (!errors.Is(err, admin.ErrInvalid) || !strings.Contains(err.Error(), c.refusal)):
					t.Errorf("%s (post-logout %v): err %v, want ErrInvalid saying %q", c.name, post, err, c.refusal)
				}
			}
		}
		// update applies the same rules, for the client's own type
		c, err := f.api.AddClient(context.Background(), admin.ClientSpec{Name: "web", RedirectURIs: []string{"https://web.example.com/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.api.UpdateClient(context.Background(), c.ID, admin.ClientUpdate{AddRedirectURIs: []string{"com.example.app:/cb"}})
		if !errors.Is(err, admin.ErrInvalid) {
			t.Errorf("update adding a custom scheme to a confidential client: %v, want ErrInvalid", err)
		}
	})
}

func TestAddClientStoresOnlyTheHash(t *testing.T) {
	eachAPI(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		c, err := f.api.AddClient(ctx, admin.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example.com/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		if c.ID == "" || len(c.Secret) < 43 {
			t.Fatalf("id %q, secret of %d characters; want a generated id and a 32-byte secret", c.ID, len(c.Secret))
		}
		stored, err := f.store.GetClient(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := f.store.GetKeySet(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored.SecretHash, c.Secret) || stored.SecretHash != op.HashClientSecret(op.ClientSecretKey([32]byte(ks.TokenKey)), c.Secret) {
			t.Errorf("stored hash %q is not the HMAC of the secret", stored.SecretHash)
		}
		shown, err := f.api.GetClient(ctx, c.ID)
		if err != nil || shown.ID != c.ID || shown.Static {
			t.Errorf("GetClient = %+v, %v", shown, err)
		}

		public, err := f.api.AddClient(ctx, admin.ClientSpec{ID: "cli", Name: "CLI", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}})
		if err != nil || public.Secret != "" || public.ID != "cli" {
			t.Errorf("public client: %+v, %v; want id cli and no secret", public, err)
		}
		if _, err := f.api.RotateClientSecret(ctx, "cli"); !errors.Is(err, admin.ErrInvalid) {
			t.Errorf("rotate a public client's secret: %v, want ErrInvalid", err)
		}
	})
}

func TestClientRefusals(t *testing.T) {
	eachAPI(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		web := admin.ClientSpec{ID: "web", Name: "Web", RedirectURIs: []string{"https://web.example.com/cb"}}
		if _, err := f.api.AddClient(ctx, web); err != nil {
			t.Fatal(err)
		}
		name := "x"
		day := admin.Duration(48 * time.Hour)
		for _, c := range []struct {
			name string
			err  error
			kind error
			says string
		}{
			{"duplicate id", second(f.api.AddClient(ctx, web)), admin.ErrConflict, "already exists"},
			{"static client's id", second(f.api.AddClient(ctx, admin.ClientSpec{ID: "grafana", Name: "G", RedirectURIs: web.RedirectURIs})), admin.ErrConflict, "staticClients"},
			{"bad id", second(f.api.AddClient(ctx, admin.ClientSpec{ID: "a b", Name: "G", RedirectURIs: web.RedirectURIs})), admin.ErrInvalid, "not allowed"},
			{"no name", second(f.api.AddClient(ctx, admin.ClientSpec{RedirectURIs: web.RedirectURIs})), admin.ErrInvalid, "--name"},
			{"no redirect URI", second(f.api.AddClient(ctx, admin.ClientSpec{Name: "G"})), admin.ErrInvalid, "--redirect-uri"},
			{"device grant with a code grant needs a redirect URI", second(f.api.AddClient(ctx, admin.ClientSpec{Name: "G", GrantTypes: []string{"device_code", "authorization_code"}})), admin.ErrInvalid, "--redirect-uri"},
			{"refresh alone logs nobody in", second(f.api.AddClient(ctx, admin.ClientSpec{Name: "G", RedirectURIs: web.RedirectURIs, GrantTypes: []string{"refresh_token"}})), admin.ErrInvalid, "lack authorization_code and device_code"},
			{"unknown grant", second(f.api.AddClient(ctx, admin.ClientSpec{Name: "G", RedirectURIs: web.RedirectURIs, GrantTypes: []string{"password"}})), admin.ErrInvalid, "not supported"},
			{"lifetime too long", second(f.api.AddClient(ctx, admin.ClientSpec{Name: "G", RedirectURIs: web.RedirectURIs, IDTokenLifetime: day})), admin.ErrInvalid, "out of range"},
			{"update static", second(f.api.UpdateClient(ctx, "grafana", admin.ClientUpdate{Name: &name})), admin.ErrStaticClient, "staticClients"},
			{"delete static", f.api.DeleteClient(ctx, "grafana"), admin.ErrStaticClient, "staticClients"},
			{"rotate static", second(f.api.RotateClientSecret(ctx, "grafana")), admin.ErrStaticClient, "staticClients"},
			{"show unknown", second(f.api.GetClient(ctx, "nope")), admin.ErrNotFound, `"nope" not found`},
			{"update unknown", second(f.api.UpdateClient(ctx, "nope", admin.ClientUpdate{Name: &name})), admin.ErrNotFound, "not found"},
			{"delete unknown", f.api.DeleteClient(ctx, "nope"), admin.ErrNotFound, "not found"},
			{"rotate unknown", second(f.api.RotateClientSecret(ctx, "nope")), admin.ErrNotFound, "not found"},
			{"empty update", second(f.api.UpdateClient(ctx, "web", admin.ClientUpdate{})), admin.ErrInvalid, "nothing to change"},
			{"remove missing URI", second(f.api.UpdateClient(ctx, "web", admin.ClientUpdate{RemoveRedirectURIs: []string{"https://other/cb"}})), admin.ErrInvalid, "does not have it"},
			{"remove last URI", second(f.api.UpdateClient(ctx, "web", admin.ClientUpdate{RemoveRedirectURIs: web.RedirectURIs})), admin.ErrInvalid, "every redirect URI"},
		} {
			if !errors.Is(c.err, c.kind) || !strings.Contains(fmtErr(c.err), c.says) {
				t.Errorf("%s: err %v, want %v saying %q", c.name, c.err, c.kind, c.says)
			}
			if strings.Contains(fmtErr(c.err), "static-secret-never-shown") {
				t.Errorf("%s: the error shows a secret", c.name)
			}
		}
	})
}

// A CLI tool using only the device flow needs no redirect URI; device_code is
// stored as the grant's URN, and the consent and PKCE switches are kept.
func TestAddDeviceFlowClient(t *testing.T) {
	eachAPI(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		c, err := f.api.AddClient(ctx, admin.ClientSpec{
			ID: "kubectl", Name: "kubectl", Public: true, GrantTypes: []string{"device_code", "refresh_token", "device_code"},
			RequireConsent: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"}
		if !slices.Equal(c.GrantTypes, want) || !c.RequireConsent || c.Secret != "" {
			t.Errorf("added %+v, want grant types %v and consent required", c.Client, want)
		}
		got, err := f.api.GetClient(ctx, "kubectl")
		if err != nil || !slices.Equal(got.GrantTypes, want) || !got.RequireConsent {
			t.Errorf("stored %+v, %v", got, err)
		}
	})
}

func TestUpdateAndDeleteClient(t *testing.T) {
	eachAPI(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		if _, err := f.api.AddClient(ctx, admin.ClientSpec{ID: "web", Name: "Web", RedirectURIs: []string{"https://a.example.com/cb"}}); err != nil {
			t.Fatal(err)
		}
		name, lifetime := "Web 2", admin.Duration(30*time.Minute)
		c, err := f.api.UpdateClient(ctx, "web", admin.ClientUpdate{
			Name: &name, AddRedirectURIs: []string{"https://b.example.com/cb"}, RemoveRedirectURIs: []string{"https://a.example.com/cb"},
			AddPostLogoutRedirectURIs: []string{"https://b.example.com/"}, IDTokenLifetime: &lifetime,
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != name || !slices.Equal(c.RedirectURIs, []string{"https://b.example.com/cb"}) ||
			!slices.Equal(c.PostLogoutRedirectURIs, []string{"https://b.example.com/"}) || c.IDTokenLifetime != lifetime {
			t.Errorf("after update: %+v", c)
		}
		list, err := f.api.ListClients(ctx)
		if err != nil || len(list) != 2 || list[0].ID != "grafana" || !list[0].Static || list[1].ID != "web" {
			t.Errorf("ListClients = %+v, %v; want grafana (static) and web", list, err)
		}
		if err := f.api.DeleteClient(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.GetClient(ctx, "web"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("deleted client still stored: %v", err)
		}
	})
}

func TestRotateClientSecret(t *testing.T) {
	eachAPI(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		old, err := f.api.AddClient(ctx, admin.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example.com/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := f.api.RotateClientSecret(ctx, old.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := f.store.GetClient(ctx, old.ID)
		ks, err := f.store.GetKeySet(ctx)
		if err != nil {
			t.Fatal(err)
		}
		key := op.ClientSecretKey([32]byte(ks.TokenKey))
		if fresh.Secret == old.Secret || stored.SecretHash != op.HashClientSecret(key, fresh.Secret) {
			t.Error("stored hash does not match the new secret only")
		}
	})
}

func second[T any](_ T, err error) error { return err }

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
