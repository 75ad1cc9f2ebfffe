package op_test

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/storage"
)

// Failed client authentication: cheap, indistinguishable, limited.

// registerClient adds a confidential client the way an operator does (`client
// add`), returning its id and generated secret.
func (e *env) registerClient(t *testing.T, name string) (string, string) {
	t.Helper()
	svc, err := admin.NewService(admin.Config{Storage: e.store, Keys: e.keys, Issuer: e.issuer})
	if err != nil {
		t.Fatal(err)
	}
	c, err := svc.AddClient(context.Background(), admin.ClientSpec{Name: name, RedirectURIs: []string{rpRedirectURI}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, c.Secret
}

// fromAddress makes req come through the trusted proxy on behalf of addr.
func fromAddress(req *http.Request, addr string) *http.Request {
	req.Header.Set("X-Forwarded-For", addr)
	return req
}

func clientAuthRequests(t *testing.T, e *env, clientID, secret string) map[string]*http.Request {
	d := e.discovery(t)
	return map[string]*http.Request{
		"token":                postForm(t, d.TokenEndpoint, url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {rpRedirectURI}}, clientID, secret),
		"introspection":        postForm(t, d.IntrospectionEndpoint, url.Values{"token": {"x"}}, clientID, secret),
		"revocation":           postForm(t, d.RevocationEndpoint, url.Values{"token": {"x"}}, clientID, secret),
		"device_authorization": postForm(t, d.DeviceAuthorizationEndpoint, url.Values{"scope": {"openid"}}, clientID, secret),
	}
}

// An unknown client and a wrong secret get the same answer everywhere: the
// client id cannot be confirmed by asking. (That they take about the same time —
// a dummy HMAC for the unknown client — is measured by
// BenchmarkFailedClientAuthentication, not asserted.)
func TestWrongSecretAndUnknownClientAnswerAlike(t *testing.T) {
	e := newEnv(t, envOptions{})
	stored, _ := e.registerClient(t, "Stored app")
	for _, known := range []string{stored, rpClientID} {
		wrong := clientAuthRequests(t, e, known, "not-the-secret")
		unknown := clientAuthRequests(t, e, "no-such-client", "not-the-secret")
		for endpoint := range wrong {
			t.Run(known+"/"+endpoint, func(t *testing.T) {
				r1, b1 := getJSON(t, wrong[endpoint])
				r2, b2 := getJSON(t, unknown[endpoint])
				if r1.StatusCode != http.StatusUnauthorized || b1["error"] != "invalid_client" {
					t.Errorf("wrong secret: %d %v, want 401 invalid_client", r1.StatusCode, b1)
				}
				if r1.StatusCode != r2.StatusCode || b1["error"] != b2["error"] || b1["error_description"] != b2["error_description"] {
					t.Errorf("wrong secret answers %d %v, unknown client %d %v: they can be told apart", r1.StatusCode, b1, r2.StatusCode, b2)
				}
			})
		}
	}
}

// A secret `client add` generated is stored as an HMAC and works; a bcrypt hash
// an older version stored still works, and is replaced by the HMAC on its first
// success.
func TestClientSecretsAtRest(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	id, secret := e.registerClient(t, "New app")
	c, err := e.store.GetClient(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.SecretHash, "hmac-sha256:") || strings.Contains(c.SecretHash, secret) {
		t.Errorf("stored hash %q, want the HMAC form", c.SecretHash)
	}
	if status, _ := e.introspect(t, id, secret, "x"); status != http.StatusOK {
		t.Errorf("generated secret: introspection status %d, want 200", status)
	}

	const oldSecret = "secret-from-an-older-version-0123456789"
	legacy, _ := bcrypt.GenerateFromPassword([]byte(oldSecret), bcrypt.MinCost)
	now := time.Now().UTC()
	if err := e.store.CreateClient(ctx, storage.Client{ID: "old-app", Name: "Old app", SecretHash: string(legacy),
		RedirectURIs: []string{rpRedirectURI}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if status, _ := e.introspect(t, "old-app", "wrong", "x"); status != http.StatusUnauthorized {
		t.Errorf("bcrypt client, wrong secret: status %d, want 401", status)
	}
	if after, _ := e.store.GetClient(ctx, "old-app"); after.SecretHash != string(legacy) {
		t.Error("a failed authentication changed the stored hash")
	}
	if status, _ := e.introspect(t, "old-app", oldSecret, "x"); status != http.StatusOK {
		t.Fatalf("bcrypt client, its secret: status %d, want 200", status)
	}
	upgraded, _ := e.store.GetClient(ctx, "old-app")
	if !strings.HasPrefix(upgraded.SecretHash, "hmac-sha256:") {
		t.Errorf("after a success the bcrypt hash was kept: %q", upgraded.SecretHash)
	}
	if status, _ := e.introspect(t, "old-app", oldSecret, "x"); status != http.StatusOK {
		t.Errorf("upgraded client, its secret: status %d, want 200", status)
	}
	if status, _ := e.introspect(t, "old-app", "wrong", "x"); status != http.StatusUnauthorized {
		t.Errorf("upgraded client, wrong secret: status %d, want 401", status)
	}
}

// Failures are limited per address and per client on every endpoint that
// authenticates clients; successes are not counted.
func TestFailedClientAuthenticationIsLimited(t *testing.T) {
	limits := op.RateLimit{PerSecond: 0.001, Burst: 3, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	for _, endpoint := range []string{"token", "introspection", "revocation", "device_authorization"} {
		t.Run(endpoint, func(t *testing.T) {
			e := newEnv(t, envOptions{rateLimit: limits})
			send := func(addr, clientID, secret string) int {
				resp, err := http.DefaultClient.Do(fromAddress(clientAuthRequests(t, e, clientID, secret)[endpoint], addr))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			// Per address: three wrong secrets, then even the right one waits.
			for i := range 3 {
				if s := send("198.51.100.1", pkceClientID, "wrong"); s != http.StatusUnauthorized {
					t.Fatalf("failure %d: status %d, want 401", i+1, s)
				}
			}
			if s := send("198.51.100.1", consentClientID, rpSecret); s != http.StatusTooManyRequests {
				t.Errorf("after 3 failures from one address: status %d, want 429", s)
			}
			// Per client: argocd has failed 3 times, so from a fresh address it is
			// limited too, while another client from that address is not.
			if s := send("198.51.100.2", pkceClientID, "wrong"); s != http.StatusTooManyRequests {
				t.Errorf("4th failure for the client from another address: status %d, want 429", s)
			}
			if s := send("198.51.100.2", consentClientID, "wrong"); s != http.StatusUnauthorized {
				t.Errorf("another client from a fresh address: status %d, want 401", s)
			}
		})
	}

	// Successes are free: a busy relying party behind one address is never limited.
	e := newEnv(t, envOptions{rateLimit: limits})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	tokens, _ := e.login(t, party)
	for i := range 10 {
		if status, got := e.introspect(t, rpClientID, rpSecret, tokens.AccessToken); status != http.StatusOK || got["active"] != true {
			t.Fatalf("successful introspection %d: status %d %v", i+1, status, got)
		}
	}
}
