package op_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/storage"
)

// What a strict relying party checks against the specs: the userinfo challenge,
// a discovery document that tells the truth, JSON errors with the right codes,
// and CORS without credentials.

// getJSON sends req and decodes a JSON answer, failing the test if it is not JSON.
func getJSON(t *testing.T, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := readAll(t, resp)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, want application/json:\n%s", req.Method, req.URL.Path, ct, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%s %s: not JSON: %v\n%s", req.Method, req.URL.Path, err, body)
	}
	return resp, m
}

func postForm(t *testing.T, endpoint string, form url.Values, basicUser, basicSecret string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicSecret))
	}
	return req
}

// RFC 6750 §3.1: every bearer token that is not a live access token — revoked,
// its person disabled, garbage — is 401 with a challenge naming invalid_token;
// zitadel answered a revoked one 403 access_denied with no challenge.
func TestUserinfoChallengesEveryInvalidToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	endpoint := e.discovery(t).UserinfoEndpoint
	revoked, _ := e.login(t, party)
	if err := rp.RevokeToken(context.Background(), party, revoked.AccessToken, "access_token"); err != nil {
		t.Fatal(err)
	}
	disabled, _ := e.login(t, party)
	if _, err := e.store.UpsertUser(context.Background(), e.user.UnionID, func(u storage.User, _ bool) (storage.User, error) {
		u.Disabled = true
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"revoked access token":              revoked.AccessToken,
		"access token of a disabled person": disabled.AccessToken,
		"refresh token":                     disabled.RefreshToken,
		"garbage":                           "garbage",
		"garbage with a colon":              "a:b",
		"five dot-separated parts":          "a.b.c.d.e",
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				req, _ := http.NewRequest(method, endpoint, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, body := getJSON(t, req)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s: status %d, want 401: %v", method, resp.StatusCode, body)
				}
				if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `error="invalid_token"`) {
					t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge with error=\"invalid_token\"", method, ch)
				}
				if body["error"] != "invalid_token" {
					t.Errorf("%s: error %v, want invalid_token", method, body["error"])
				}
			}
		})
	}
	// No token at all: the challenge without an error code (§3.1).
	req, _ := http.NewRequest(http.MethodGet, endpoint, nil)
	resp, _ := getJSON(t, req)
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, "Bearer") || strings.Contains(ch, "error=") {
		t.Errorf("no token: status %d, WWW-Authenticate %q; want 401 and a bare Bearer challenge", resp.StatusCode, ch)
	}
}

// Discovery lists only what works, and what it does not list is refused with
// the error the specs name for it.
func TestDiscoveryListsOnlyWhatIsServed(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.discovery(t)
	if !slices.Equal(d.ResponseTypesSupported, []string{"code"}) {
		t.Errorf("response_types_supported = %v, want [code]", d.ResponseTypesSupported)
	}
	wantGrants := []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode}
	if !slices.Equal(d.GrantTypesSupported, wantGrants) {
		t.Errorf("grant_types_supported = %v, want %v", d.GrantTypesSupported, wantGrants)
	}
	if len(d.IntrospectionEndpointAuthSigningAlgValuesSupported) != 0 || len(d.TokenEndpointAuthSigningAlgValuesSupported) != 0 {
		t.Errorf("signing algorithms for private_key_jwt listed, which is not served: %v %v",
			d.IntrospectionEndpointAuthSigningAlgValuesSupported, d.TokenEndpointAuthSigningAlgValuesSupported)
	}

	// Every response type but code goes back to the client as unsupported_response_type.
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	for _, rt := range []string{"id_token", "id_token token", "token", "code id_token", "code token", "none"} {
		a := &loginAttempt{state: "st-" + strings.ReplaceAll(rt, " ", "-")}
		u, _ := url.Parse(e.authorizeURL(party, a))
		q := u.Query()
		q.Set("response_type", rt)
		u.RawQuery = q.Encode()
		got := newBrowser(t).loginAt(u.String())
		if got.Get("error") != "unsupported_response_type" || got.Get("state") != a.state {
			t.Errorf("response_type=%s: %v, want error=unsupported_response_type with the state", rt, got)
		}
	}

	// Every grant but the listed ones is unsupported_grant_type, before any
	// other check (the client authenticates correctly here).
	for _, grant := range []string{"implicit", "client_credentials", "password", string(oidc.GrantTypeBearer), string(oidc.GrantTypeTokenExchange), "urn:example:made-up"} {
		resp, body := getJSON(t, postForm(t, d.TokenEndpoint, url.Values{
			"grant_type": {grant}, "assertion": {"x"}, "subject_token": {"x"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
			"username": {"x"}, "password": {"x"}, "scope": {"openid"},
		}, rpClientID, rpSecret))
		if resp.StatusCode != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
			t.Errorf("grant_type=%s: status %d %v, want 400 unsupported_grant_type", grant, resp.StatusCode, body)
		}
	}
}

// Errors come back as JSON OAuth errors: introspection's were text/plain with
// Go's description of the error.
func TestIntrospectionErrorsAreJSON(t *testing.T) {
	e := newEnv(t, envOptions{})
	endpoint := e.discovery(t).IntrospectionEndpoint
	for name, req := range map[string]*http.Request{
		"no client authentication": postForm(t, endpoint, url.Values{"token": {"x"}}, "", ""),
		"wrong secret":             postForm(t, endpoint, url.Values{"token": {"x"}}, rpClientID, "not-the-secret"),
		"unknown client":           postForm(t, endpoint, url.Values{"token": {"x"}}, "nobody", "not-the-secret"),
		"secret in the form":       postForm(t, endpoint, url.Values{"token": {"x"}, "client_id": {rpClientID}, "client_secret": {"wrong"}}, "", ""),
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := getJSON(t, req)
			if resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Errorf("status %d %v, want 401 invalid_client", resp.StatusCode, body)
			}
			if d, _ := body["error_description"].(string); strings.Contains(d, "Parent") || strings.Contains(d, "ErrorType") {
				t.Errorf("description leaks Go's error text: %q", d)
			}
		})
	}
}

// RFC 8628 §3.5: access_denied is the person's refusal. A device code never
// issued, or issued to another client, is invalid_grant; an expired one
// expired_token (TestDeviceCodeExpires), a spent one invalid_grant
// (TestDeviceFlowToCompletion).
func TestDevicePollingWithAnUnknownCodeIsInvalidGrant(t *testing.T) {
	e := deviceEnv(t, op.Lifetimes{})
	_, dev := e.startDevice(t)
	if code, body := e.pollOnce(t, "never-issued-"+randomString()); code != "invalid_grant" {
		t.Errorf("unknown device code: %q %v, want invalid_grant", code, body)
	}
	// The code of kubectl's flow, polled by another (public) client.
	resp, body := getJSON(t, postForm(t, e.issuer+"/oauth/token", url.Values{
		"grant_type": {string(oidc.GrantTypeDeviceCode)}, "device_code": {dev.DeviceCode}, "client_id": {publicClientID},
	}, "", ""))
	if resp.StatusCode != http.StatusBadRequest || (body["error"] != "invalid_grant" && body["error"] != "unauthorized_client") {
		t.Errorf("another client's device code: %d %v, want invalid_grant or unauthorized_client", resp.StatusCode, body)
	}
	// And the flow itself is untouched.
	if code, _ := e.pollOnce(t, dev.DeviceCode); code != "authorization_pending" {
		t.Errorf("the real device: %q, want authorization_pending", code)
	}
}

// CORS: a single-page app may read discovery, keys, userinfo and the token
// endpoint's answers from any origin, never with credentials; end_session
// answers no other origin at all.
func TestCORSNeverAllowsCredentials(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.discovery(t)
	const origin = "https://evil.example"
	for _, tc := range []struct {
		name, method, url string
		allowed           bool
	}{
		{"discovery", http.MethodGet, e.issuer + "/.well-known/openid-configuration", true},
		{"keys", http.MethodGet, d.JwksURI, true},
		{"userinfo", http.MethodGet, d.UserinfoEndpoint, true},
		{"token", http.MethodPost, d.TokenEndpoint, true},
		{"end_session", http.MethodGet, d.EndSessionEndpoint, false},
		{"authorize", http.MethodGet, d.AuthorizationEndpoint, false},
		{"introspection", http.MethodPost, d.IntrospectionEndpoint, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The preflight a browser sends first, then the request itself.
			pre, _ := http.NewRequest(http.MethodOptions, tc.url, nil)
			pre.Header.Set("Origin", origin)
			pre.Header.Set("Access-Control-Request-Method", tc.method)
			pre.Header.Set("Access-Control-Request-Headers", "authorization")
			req, _ := http.NewRequest(tc.method, tc.url, nil)
			req.Header.Set("Origin", origin)
			for _, r := range []*http.Request{pre, req} {
				resp, err := newBrowser(t).client.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if v := resp.Header.Get("Access-Control-Allow-Credentials"); v != "" {
					t.Errorf("%s: Access-Control-Allow-Credentials: %s", r.Method, v)
				}
				got := resp.Header.Get("Access-Control-Allow-Origin")
				if tc.allowed && got != "*" {
					t.Errorf("%s: Access-Control-Allow-Origin %q, want *", r.Method, got)
				}
				if !tc.allowed && got != "" {
					t.Errorf("%s: Access-Control-Allow-Origin %q, want none", r.Method, got)
				}
			}
		})
	}
}

// stillLoggedIn reports whether b's SSO session still answers prompt=none.
func (e *env) stillLoggedIn(t *testing.T, b *browser, party rp.RelyingParty) bool {
	t.Helper()
	a := &loginAttempt{extra: []rp.AuthURLOpt{rp.WithPrompt("none")}}
	q := b.loginAt(e.authorizeURL(party, a))
	return q.Get("code") != ""
}

// A bare GET /end_session — what any page can embed as an image — no longer
// logs the person out: they are asked, in their language, and a form with the
// browser's form token does it.
func TestBareEndSessionAsksThePersonFirst(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	b := newBrowser(t)
	e.loginWith(t, b, party, &loginAttempt{})
	endSession := e.discovery(t).EndSessionEndpoint

	resp, body := b.visit(endSession)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Log out?") || resp.Header.Get("Location") != "" {
		t.Fatalf("bare end_session: status %d location %q, want the confirmation page:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if !e.stillLoggedIn(t, b, party) {
		t.Fatal("a bare end_session logged the person out without asking")
	}
	action, fields := pageForm(t, e.issuer, body)
	if fields.Get("form_token") == "" {
		t.Fatalf("confirmation form has no form token: %v", fields)
	}

	// Chinese for a Chinese browser.
	req, _ := http.NewRequest(http.MethodGet, endSession, nil)
	req.Header.Set("Accept-Language", "zh-CN,zh;q=0.9")
	zh, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if zhBody := readAll(t, zh); !strings.Contains(zhBody, "退出登录？") || !strings.Contains(zhBody, `lang="zh-CN"`) {
		t.Errorf("confirmation for zh-CN:\n%s", zhBody)
	}
	zh.Body.Close()

	// Another site's form (no token, or a made-up one) is asked again too.
	for _, token := range []string{"", "forged"} {
		resp, body := b.submit(action, url.Values{"form_token": {token}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Log out?") {
			t.Errorf("POST with form_token %q: status %d, want the confirmation again", token, resp.StatusCode)
		}
	}
	if !e.stillLoggedIn(t, b, party) {
		t.Fatal("a POST without the form token logged the person out")
	}

	// The person confirms.
	resp, body = b.submit(action, fields)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "You have logged out") {
		t.Fatalf("confirmed logout: status %d:\n%s", resp.StatusCode, body)
	}
	if e.stillLoggedIn(t, b, party) {
		t.Error("still logged in after confirming the logout")
	}
}

// An app that names itself and where to return, but sends no id_token_hint, is
// confirmed too; the confirmation then continues to the app's registered
// post-logout address with its state.
func TestEndSessionWithoutHintReturnsToTheAppAfterConfirmation(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	b := newBrowser(t)
	e.loginWith(t, b, party, &loginAttempt{})
	q := url.Values{"client_id": {rpClientID}, "post_logout_redirect_uri": {rpLoggedOut}, "state": {"bye-2"}}
	resp, body := b.visit(e.discovery(t).EndSessionEndpoint + "?" + q.Encode())
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Log out?") {
		t.Fatalf("end_session without id_token_hint: status %d, want the confirmation:\n%s", resp.StatusCode, body)
	}
	action, fields := pageForm(t, e.issuer, body)
	resp, body = b.submit(action, fields)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), rpLoggedOut) || loc.Query().Get("state") != "bye-2" {
		t.Fatalf("after confirming: status %d location %q, want %s with the state:\n%s", resp.StatusCode, resp.Header.Get("Location"), rpLoggedOut, body)
	}
	if e.stillLoggedIn(t, b, party) {
		t.Error("still logged in after confirming the logout")
	}
}
