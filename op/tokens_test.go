package op_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// What a relying party notices of the tokens it holds: revocation (RFC 7009),
// introspection (RFC 7662), userinfo refusing bad tokens, and logs that never
// hold a secret.

// login runs a whole login for party and returns the verified tokens.
func (e *env) login(t *testing.T, party rp.RelyingParty) (*oidc.Tokens[*oidc.IDTokenClaims], *loginAttempt) {
	t.Helper()
	a := &loginAttempt{}
	tokens, err := exchange(t, party, newBrowser(t).loginAt(e.authorizeURL(party, a)), a)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if tokens.AccessToken == "" || tokens.RefreshToken == "" {
		t.Fatal("login gave no access or no refresh token")
	}
	return tokens, a
}

func (e *env) discovery(t *testing.T) oidc.DiscoveryConfiguration {
	t.Helper()
	resp, err := http.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d oidc.DiscoveryConfiguration
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// userinfoWorks reports whether an RP holding accessToken still gets the person's claims.
func userinfoWorks(party rp.RelyingParty, accessToken, subject string) error {
	_, err := rp.Userinfo[*oidc.UserInfo](context.Background(), accessToken, oidc.BearerToken, subject, party)
	return err
}

func refresh(party rp.RelyingParty, refreshToken string) (*oidc.Tokens[*oidc.IDTokenClaims], error) {
	return rp.RefreshTokens[*oidc.IDTokenClaims](context.Background(), party, refreshToken, "", "")
}

// --- revocation (RFC 7009) ---

func TestRevokedAccessTokenFailsAtUserinfoAtOnce(t *testing.T) {
	// RFC 7009 §2.1: the hint is only a hint; a wrong or missing one must not matter.
	for _, hint := range []string{"access_token", "", "refresh_token"} {
		t.Run("hint="+hint, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
			tokens, _ := e.login(t, party)
			sub := tokens.IDTokenClaims.Subject
			if err := userinfoWorks(party, tokens.AccessToken, sub); err != nil {
				t.Fatalf("userinfo before revocation: %v", err)
			}
			if err := rp.RevokeToken(context.Background(), party, tokens.AccessToken, hint); err != nil {
				t.Fatalf("revoke access token: %v", err)
			}
			if err := userinfoWorks(party, tokens.AccessToken, sub); err == nil {
				t.Error("revoked access token still works at userinfo")
			}
		})
	}
}

func TestRevokedRefreshTokenEndsTheWholeLogin(t *testing.T) {
	for _, hint := range []string{"refresh_token", "", "access_token"} {
		t.Run("hint="+hint, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
			first, _ := e.login(t, party)
			sub := first.IDTokenClaims.Subject
			// One refresh first: the grant then has two access tokens, both must die.
			second, err := refresh(party, first.RefreshToken)
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if err := rp.RevokeToken(context.Background(), party, second.RefreshToken, hint); err != nil {
				t.Fatalf("revoke refresh token: %v", err)
			}
			if _, err := refresh(party, second.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
				t.Errorf("refresh with the revoked token: err %v, want invalid_grant", err)
			}
			// RFC 7009 §2.1: revoking a refresh token also invalidates the access
			// tokens issued on the same authorization grant.
			if err := userinfoWorks(party, first.AccessToken, sub); err == nil {
				t.Error("access token of the login's first exchange still works after its refresh token was revoked")
			}
			if err := userinfoWorks(party, second.AccessToken, sub); err == nil {
				t.Error("access token of the refresh still works after its refresh token was revoked")
			}
		})
	}
}

func TestRevokingAnUnknownTokenSucceeds(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	public := e.relyingParty(publicClientID, "", publicRedirect)
	for _, hint := range []string{"", "access_token", "refresh_token"} {
		// RFC 7009 §2.2: an invalid token is answered with 200; the client's goal is reached.
		if err := rp.RevokeToken(context.Background(), party, "no-such-token-"+randomString(), hint); err != nil {
			t.Errorf("confidential client, hint %q: %v", hint, err)
		}
		if err := rp.RevokeToken(context.Background(), public, "no-such-token-"+randomString(), hint); err != nil {
			t.Errorf("public client, hint %q: %v", hint, err)
		}
	}
}

func TestRevocationNeedsClientAuthentication(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	tokens, _ := e.login(t, party)
	wrong := e.relyingParty(rpClientID, "not-the-secret", rpRedirectURI)
	if err := rp.RevokeToken(context.Background(), wrong, tokens.RefreshToken, "refresh_token"); err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Errorf("revocation with a wrong client secret: err %v, want status 401", err)
	}
	if _, err := refresh(party, tokens.RefreshToken); err != nil {
		t.Errorf("refresh token stopped working after a revocation with a wrong secret: %v", err)
	}
}

// A client may only revoke its own tokens (RFC 7009 §2.1): it is refused with
// invalid_client (HTTP 401), and the token keeps working for its owner.
func TestClientCannotRevokeAnotherClientsToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	grafana := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	cli := e.relyingParty(publicClientID, "", publicRedirect)

	refused := func(t *testing.T, what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: revocation of another client's token succeeded", what)
		} else if !strings.Contains(err.Error(), "status 401") || !strings.Contains(err.Error(), "invalid_client") {
			t.Errorf("%s: err %v, want status 401 with invalid_client", what, err)
		}
	}

	t.Run("public client revokes a confidential client's tokens", func(t *testing.T) {
		tokens, _ := e.login(t, grafana)
		for _, hint := range []string{"", "access_token", "refresh_token"} {
			refused(t, "access token, hint "+hint, rp.RevokeToken(context.Background(), cli, tokens.AccessToken, hint))
			refused(t, "refresh token, hint "+hint, rp.RevokeToken(context.Background(), cli, tokens.RefreshToken, hint))
		}
		if err := userinfoWorks(grafana, tokens.AccessToken, tokens.IDTokenClaims.Subject); err != nil {
			t.Errorf("access token no longer works for its owner: %v", err)
		}
		if _, err := refresh(grafana, tokens.RefreshToken); err != nil {
			t.Errorf("refresh token no longer works for its owner: %v", err)
		}
	})

	t.Run("confidential client revokes a public client's tokens", func(t *testing.T) {
		tokens, _ := e.login(t, cli)
		for _, hint := range []string{"", "access_token", "refresh_token"} {
			refused(t, "access token, hint "+hint, rp.RevokeToken(context.Background(), grafana, tokens.AccessToken, hint))
			refused(t, "refresh token, hint "+hint, rp.RevokeToken(context.Background(), grafana, tokens.RefreshToken, hint))
		}
		if err := userinfoWorks(cli, tokens.AccessToken, tokens.IDTokenClaims.Subject); err != nil {
			t.Errorf("access token no longer works for its owner: %v", err)
		}
		if _, err := refresh(cli, tokens.RefreshToken); err != nil {
			t.Errorf("refresh token no longer works for its owner: %v", err)
		}
	})
}

// --- introspection (RFC 7662) ---

// introspect POSTs token to the discovery document's introspection endpoint,
// authenticating with client_secret_basic unless clientID is empty.
func (e *env) introspect(t *testing.T, clientID, secret, token string) (int, map[string]any) {
	t.Helper()
	endpoint := e.discovery(t).IntrospectionEndpoint
	if endpoint == "" {
		t.Fatal("discovery has no introspection_endpoint")
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var answer map[string]any
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Fatalf("introspection answer is not JSON: %v\n%s", err, body)
	}
	return resp.StatusCode, answer
}

func TestIntrospectionOfAnActiveToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	tokens, _ := e.login(t, party)
	before := time.Now()

	status, got := e.introspect(t, rpClientID, rpSecret, tokens.AccessToken)
	if status != http.StatusOK || got["active"] != true {
		t.Fatalf("status %d answer %v, want 200 and active: true", status, got)
	}
	if got["sub"] != e.user.UnionID {
		t.Errorf("sub = %v, want %s", got["sub"], e.user.UnionID)
	}
	if got["client_id"] != rpClientID {
		t.Errorf("client_id = %v, want %s", got["client_id"], rpClientID)
	}
	scope, _ := got["scope"].(string)
	for _, s := range []string{"openid", "profile", "email", "offline_access"} {
		if !strings.Contains(" "+scope+" ", " "+s+" ") {
			t.Errorf("scope %q lacks %s", scope, s)
		}
	}
	exp, ok := got["exp"].(float64)
	if !ok {
		t.Fatalf("exp = %v (%T), want a number", got["exp"], got["exp"])
	}
	if at := time.Unix(int64(exp), 0); !at.After(before) || at.After(before.Add(time.Hour+time.Minute)) {
		t.Errorf("exp = %s, want within the access token's hour", at)
	}
}

func TestIntrospectionOfARevokedTokenIsInactive(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	tokens, _ := e.login(t, party)
	if _, got := e.introspect(t, rpClientID, rpSecret, tokens.AccessToken); got["active"] != true {
		t.Fatalf("before revocation: %v, want active", got)
	}
	if err := rp.RevokeToken(context.Background(), party, tokens.AccessToken, "access_token"); err != nil {
		t.Fatal(err)
	}
	status, got := e.introspect(t, rpClientID, rpSecret, tokens.AccessToken)
	if status != http.StatusOK || got["active"] != false {
		t.Fatalf("status %d answer %v, want 200 and active: false", status, got)
	}
	// RFC 7662 §2.2: an inactive token's answer says nothing more about it.
	if len(got) != 1 {
		t.Errorf("answer for an inactive token tells more than active: %v", got)
	}
}

func TestIntrospectionNeedsClientAuthentication(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	tokens, _ := e.login(t, party)
	if status, got := e.introspect(t, "", "", tokens.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("without client authentication: status %d %v, want 401", status, got)
	}
	if status, got := e.introspect(t, rpClientID, "not-the-secret", tokens.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("with a wrong client secret: status %d %v, want 401", status, got)
	}
}

// The server tells only a token's audience about it (RFC 7662 §2.2 leaves whom to
// tell to the server): grafana learns nothing of a token issued to cli.
func TestIntrospectionOfAnotherClientsTokenIsInactive(t *testing.T) {
	e := newEnv(t, envOptions{})
	cli := e.relyingParty(publicClientID, "", publicRedirect)
	tokens, _ := e.login(t, cli)
	status, got := e.introspect(t, rpClientID, rpSecret, tokens.AccessToken)
	if status != http.StatusOK || got["active"] != false || len(got) != 1 {
		t.Errorf("status %d answer %v, want 200 and only active: false", status, got)
	}
	if err := userinfoWorks(cli, tokens.AccessToken, tokens.IDTokenClaims.Subject); err != nil {
		t.Errorf("the token itself should still work for cli: %v", err)
	}
}

// --- userinfo refuses what is not a valid access token ---

func TestUserinfoRefusesBadBearerTokens(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	tokens, _ := e.login(t, party)
	endpoint := e.discovery(t).UserinfoEndpoint

	// The access token is an encrypted JWE (five dot-separated parts); change one
	// character in the middle of its ciphertext, or of its authentication tag.
	tamper := func(part int) string {
		parts := strings.Split(tokens.AccessToken, ".")
		if len(parts) != 5 {
			t.Fatalf("access token has %d parts, want a compact JWE", len(parts))
		}
		b := []byte(parts[part])
		i := len(b) / 2
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		parts[part] = string(b)
		return strings.Join(parts, ".")
	}
	b64 := base64.RawURLEncoding.EncodeToString
	unsigned := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		b64(fmt.Appendf(nil, `{"iss":%q,"sub":%q,"aud":[%q],"exp":%d,"jti":"x"}`, e.issuer, e.user.UnionID, rpClientID, time.Now().Add(time.Hour).Unix())) + "."

	cases := []struct{ name, authorization string }{
		{"no token", ""},
		{"empty bearer", "Bearer"},
		{"garbage", "Bearer garbage"},
		{"garbage with symbols", "Bearer not-a-token!"},
		{"tampered ciphertext", "Bearer " + tamper(3)},
		{"tampered tag", "Bearer " + tamper(4)},
		{"truncated", "Bearer " + tokens.AccessToken[:len(tokens.AccessToken)-4]},
		{"unsigned JWT claiming the person", "Bearer " + unsigned},
		{"client credentials instead of a token", "Basic " + base64.StdEncoding.EncodeToString([]byte(rpClientID+":"+rpSecret))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, endpoint, nil)
			if tc.authorization != "" {
				req.Header.Set("Authorization", tc.authorization)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401:\n%s", resp.StatusCode, body)
			}
			if strings.Contains(body, e.user.UnionID) || strings.Contains(body, e.user.Email) {
				t.Errorf("refusal tells who the person is:\n%s", body)
			}
		})
	}

	// The refresh token is not an access token either.
	if err := userinfoWorks(party, tokens.RefreshToken, tokens.IDTokenClaims.Subject); err == nil {
		t.Error("the refresh token works as a bearer token at userinfo")
	}
	// And the real one still works, so the refusals above are about the token.
	if err := userinfoWorks(party, tokens.AccessToken, tokens.IDTokenClaims.Subject); err != nil {
		t.Errorf("the untampered access token: %v", err)
	}
}

// --- logs never hold secrets ---

// lockedBuffer collects log output written from the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// captureAllLogs sends slog.Default (zitadel logs through it) and the standard
// log package (net/http's server errors) to one debug-level handler writing to
// buf, and returns a logger for dingbridge writing to the same handler. Not for
// parallel tests: the defaults are process-wide.
func captureAllLogs(t *testing.T, buf *lockedBuffer) *slog.Logger {
	prevSlog, prevOut, prevFlags := slog.Default(), log.Writer(), log.Flags()
	t.Cleanup(func() {
		slog.SetDefault(prevSlog)
		log.SetOutput(prevOut)
		log.SetFlags(prevFlags)
	})
	logger := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	slog.SetDefault(logger)
	return logger
}

// secrets collects what must never be logged, each with a name for the failure message.
type secrets map[string]string

func (s secrets) add(name, value string) {
	if value != "" {
		s[name+" "+value[:min(6, len(value))]+"…"] = value
	}
}

// TestLogsHoldNoSecrets runs a login, a refresh, a failed login and a DingTalk
// failure with every logger at debug level, and looks for each secret that went
// by in what was logged. Not parallel: it replaces slog's default logger.
func TestLogsHoldNoSecrets(t *testing.T) {
	buf := &lockedBuffer{}
	logger := captureAllLogs(t, buf)
	// No grace: presenting a rotated refresh token below is reuse, not a retry.
	e := newEnv(t, envOptions{logger: logger, lifetimes: op.Lifetimes{RefreshTokenReuseGrace: time.Nanosecond}})
	must := secrets{}
	must.add("RP client secret", rpSecret)
	must.add("wrong RP client secret", "not-the-secret")
	must.add("DingTalk app secret", dtSecret)

	// Every URL the browser is sent to: DingTalk's authorize (upstream state),
	// our callback (DingTalk's authCode), the RP's redirect URI (our code).
	var visited []*url.URL
	b := newBrowser(t)
	stop := b.client.CheckRedirect
	b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		visited = append(visited, req.URL)
		return stop(req, via)
	}
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)

	// 1. A whole login, userinfo, introspection, refresh.
	a := &loginAttempt{}
	tokens, err := exchange(t, party, b.loginAt(e.authorizeURL(party, a)), a)
	if err != nil {
		t.Fatal(err)
	}
	must.add("PKCE verifier", a.verifier)
	must.add("access token", tokens.AccessToken)
	must.add("refresh token", tokens.RefreshToken)
	must.add("id_token", tokens.IDToken)
	if err := userinfoWorks(party, tokens.AccessToken, tokens.IDTokenClaims.Subject); err != nil {
		t.Fatal(err)
	}
	if _, got := e.introspect(t, rpClientID, rpSecret, tokens.AccessToken); got["active"] != true {
		t.Fatalf("introspection: %v", got)
	}
	refreshed, err := refresh(party, tokens.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	must.add("refreshed access token", refreshed.AccessToken)
	must.add("refreshed refresh token", refreshed.RefreshToken)
	must.add("refreshed id_token", refreshed.IDToken)
	// The rotated-out refresh token, presented again: a logged refusal.
	if _, err := refresh(party, tokens.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("reused refresh token: %v", err)
	}

	// 2. A login whose code exchange presents a wrong client secret.
	bad := e.relyingParty(rpClientID, "not-the-secret", rpRedirectURI)
	a2 := &loginAttempt{}
	if _, err := exchange(t, bad, b.loginAt(e.authorizeURL(party, a2)), a2); oauthErrorCode(err) != "invalid_client" {
		t.Fatalf("exchange with a wrong secret: err %v, want invalid_client", err)
	}
	must.add("PKCE verifier of the failed login", a2.verifier)

	// 3. A login DingTalk fails: its token endpoint answers 500. prompt=login
	// sends the browser, which has an SSO session by now, to DingTalk again.
	e.dingtalk.Fake.Fail(dingtalktest.APIUserAccessToken, dingtalktest.Failure{Status: 500})
	a3 := &loginAttempt{extra: []rp.AuthURLOpt{rp.WithPrompt("login")}}
	if resp, body := b.visit(e.authorizeURL(party, a3)); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("DingTalk failure: status %d, want 503:\n%s", resp.StatusCode, body)
	}
	e.dingtalk.Fake.ClearFailures()

	// 4. Revocation of the login's tokens.
	if err := rp.RevokeToken(context.Background(), party, refreshed.RefreshToken, "refresh_token"); err != nil {
		t.Fatal(err)
	}

	var codes, authCodes, states int
	for _, u := range visited {
		q := u.Query()
		if v := q.Get("code"); v != "" && strings.HasPrefix(u.String(), rpRedirectURI) {
			codes++
			must.add("authorization code", v)
		}
		if v := q.Get("authCode"); v != "" {
			authCodes++
			must.add("DingTalk authCode", v)
		}
		if v := q.Get("state"); v != "" && strings.Contains(u.Path, "callback/dingtalk") {
			states++
			must.add("upstream state", v)
		}
	}
	// The second login rides the SSO session: no DingTalk round trip.
	if codes != 2 || authCodes != 2 || states != 2 {
		t.Fatalf("saw %d codes, %d DingTalk authCodes, %d upstream states in the redirects; want 2, 2, 2", codes, authCodes, states)
	}
	issuer, _ := url.Parse(e.issuer + "/")
	for _, c := range b.client.Jar.Cookies(issuer) {
		must.add("cookie "+c.Name, c.Value)
	}

	logs := buf.String()
	if logs == "" {
		t.Fatal("nothing was logged: the test cannot see a leak")
	}
	// Both loggers were heard: ours (request log, failed client authentication,
	// DingTalk failure) and zitadel's (its token endpoint's error).
	for _, want := range []string{"http request", "client authentication failed", "dingtalk login failed", "request error"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q: a logger was not captured", want)
		}
	}
	for name, value := range must {
		if strings.Contains(logs, value) {
			for line := range strings.Lines(logs) {
				if strings.Contains(line, value) {
					t.Errorf("the logs hold the %s:\n%s", name, line)
					break
				}
			}
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("captured logs:\n%s", logs)
	}
}
