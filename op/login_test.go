package op_test

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// exchange trades a code for verified tokens, as the RP library does after the redirect.
func exchange(t *testing.T, party rp.RelyingParty, q url.Values, a *loginAttempt) (*oidc.Tokens[*oidc.IDTokenClaims], error) {
	t.Helper()
	if q.Get("error") != "" {
		t.Fatalf("relying party got error %q: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != a.state {
		t.Fatalf("state came back as %q, want %q", q.Get("state"), a.state)
	}
	ctx := context.WithValue(context.Background(), nonceKey{}, a.nonce)
	return rp.CodeExchange[*oidc.IDTokenClaims](ctx, q.Get("code"), party, rp.WithCodeVerifier(a.verifier))
}

func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	var oe *oidc.Error
	if errors.As(err, &oe) {
		return string(oe.ErrorType)
	}
	return ""
}

func TestFullLoginThroughDingTalk(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	b := newBrowser(t)
	a := &loginAttempt{}

	tokens, err := exchange(t, party, b.loginAt(e.authorizeURL(party, a)), a)
	if err != nil {
		t.Fatalf("code exchange (id_token verified against JWKS by the RP library): %v", err)
	}
	claims := tokens.IDTokenClaims
	if claims.Subject != e.user.UnionID {
		t.Errorf("sub = %q, want the unionid %q", claims.Subject, e.user.UnionID)
	}
	if claims.Claims["unionid"] != e.user.UnionID || claims.Claims["openid"] != e.user.OpenID {
		t.Errorf("id_token unionid/openid = %v/%v, want %s/%s", claims.Claims["unionid"], claims.Claims["openid"], e.user.UnionID, e.user.OpenID)
	}
	if claims.Nonce != a.nonce {
		t.Errorf("nonce = %q, want %q", claims.Nonce, a.nonce)
	}
	if claims.Name != e.user.Nick || claims.Email != e.user.Email || bool(claims.EmailVerified) {
		t.Errorf("profile claims = name %q email %q verified %v; want %q %q false", claims.Name, claims.Email, claims.EmailVerified, e.user.Nick, e.user.Email)
	}
	if claims.AuthTime == 0 || !slices.Contains(claims.AuthenticationMethodsReferences, "dingtalk") {
		t.Errorf("auth_time %v, amr %v", claims.AuthTime, claims.AuthenticationMethodsReferences)
	}
	if tokens.RefreshToken == "" {
		t.Fatal("no refresh token although offline_access was asked")
	}

	info, err := rp.Userinfo[*oidc.UserInfo](context.Background(), tokens.AccessToken, oidc.BearerToken, claims.Subject, party)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Claims["unionid"] != e.user.UnionID || info.Claims["openid"] != e.user.OpenID || info.Name != e.user.Nick || info.Email != e.user.Email {
		t.Errorf("userinfo = %+v %v; want the id_token's claims", info, info.Claims)
	}

	refreshed, err := rp.RefreshTokens[*oidc.IDTokenClaims](context.Background(), party, tokens.RefreshToken, "", "")
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.IDTokenClaims == nil || refreshed.IDTokenClaims.Subject != claims.Subject || refreshed.IDTokenClaims.Claims["unionid"] != e.user.UnionID {
		t.Errorf("refreshed id_token = %+v", refreshed.IDTokenClaims)
	}
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == tokens.RefreshToken {
		t.Error("refresh did not rotate the refresh token")
	}
	if got := e.dingtalk.Fake.Calls(dingtalktest.APIUserAccessToken); got != 1 {
		t.Errorf("DingTalk saw %d token exchanges, want 1", got)
	}
}

func TestDiscoveryAdvertisesWhatIsServed(t *testing.T) {
	e := newEnv(t, envOptions{})
	resp, err := http.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d oidc.DiscoveryConfiguration
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != e.issuer {
		t.Errorf("issuer %q", d.Issuer)
	}
	if !slices.Equal(d.CodeChallengeMethodsSupported, []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}) {
		t.Errorf("code_challenge_methods_supported = %v, want only S256", d.CodeChallengeMethodsSupported)
	}
	if !slices.Equal(d.IDTokenSigningAlgValuesSupported, []string{"RS256"}) {
		t.Errorf("id_token_signing_alg_values_supported = %v", d.IDTokenSigningAlgValuesSupported)
	}
	for _, m := range []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone} {
		if !slices.Contains(d.TokenEndpointAuthMethodsSupported, m) {
			t.Errorf("token_endpoint_auth_methods_supported %v lacks %s", d.TokenEndpointAuthMethodsSupported, m)
		}
	}
	for _, c := range []string{"unionid", "openid"} {
		if !slices.Contains(d.ClaimsSupported, c) {
			t.Errorf("claims_supported lacks %s", c)
		}
	}
	for _, ep := range []string{d.AuthorizationEndpoint, d.TokenEndpoint, d.UserinfoEndpoint, d.JwksURI, d.RevocationEndpoint, d.IntrospectionEndpoint, d.EndSessionEndpoint} {
		if !strings.HasPrefix(ep, e.issuer+"/") {
			t.Errorf("endpoint %q not under the issuer", ep)
		}
	}
}

func TestNoRefreshTokenWithoutOfflineAccess(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI, "openid", "profile")
	a := &loginAttempt{}
	tokens, err := exchange(t, party, newBrowser(t).loginAt(e.authorizeURL(party, a)), a)
	if err != nil {
		t.Fatal(err)
	}
	if tokens.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}
	if _, ok := tokens.IDTokenClaims.Claims["email"]; ok || tokens.IDTokenClaims.Email != "" {
		t.Error("email released without the email scope")
	}
}

func TestPublicClientWithPKCE(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(publicClientID, "", publicRedirect)
	a := &loginAttempt{}
	tokens, err := exchange(t, party, newBrowser(t).loginAt(e.authorizeURL(party, a)), a)
	if err != nil {
		t.Fatalf("public client login: %v", err)
	}
	if tokens.IDTokenClaims.Subject != e.user.UnionID {
		t.Errorf("sub %q", tokens.IDTokenClaims.Subject)
	}
}

// --- what goes wrong, and what each party sees ---

var hrefPattern = regexp.MustCompile(`href="([^"]+)"`)

// pageLinks returns the links on an HTML page.
func pageLinks(body string) []string {
	var links []string
	for _, m := range hrefPattern.FindAllStringSubmatch(body, -1) {
		links = append(links, html.UnescapeString(m[1]))
	}
	return links
}

// backToClientError follows the page's "back to the application" link and returns
// the OAuth error the client receives there.
func backToClientError(t *testing.T, body, redirectURI string) url.Values {
	t.Helper()
	for _, l := range pageLinks(body) {
		if strings.HasPrefix(l, redirectURI) {
			u, _ := url.Parse(l)
			return u.Query()
		}
	}
	t.Fatalf("page has no link back to %s:\n%s", redirectURI, body)
	return nil
}

func TestUnregisteredRedirectURIShowsPageAndNeverRedirects(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, "https://evil.example/steal")
	resp, body := newBrowser(t).visit(e.authorizeURL(party, &loginAttempt{}))
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("status %d location %q, want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !strings.Contains(body, "Address not registered") || strings.Contains(body, `href="https://evil.example`) {
		t.Errorf("page does not explain, or links to the unregistered URI:\n%s", body)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("security headers missing: %v", resp.Header)
	}
}

func TestUnknownClientShowsPageInPersonsLanguage(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty("nobody", "x", rpRedirectURI)
	req, _ := http.NewRequest(http.MethodGet, e.authorizeURL(party, &loginAttempt{}), nil)
	req.Header.Set("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "未知的应用") || !strings.Contains(body, `lang="zh-CN"`) {
		t.Errorf("status %d, want 400 with the zh-CN unknown-client page:\n%s", resp.StatusCode, body)
	}
}

func TestWrongClientSecretIsInvalidClient(t *testing.T) {
	e := newEnv(t, envOptions{})
	good := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	bad := e.relyingParty(rpClientID, "not-the-secret", rpRedirectURI)
	a := &loginAttempt{}
	q := newBrowser(t).loginAt(e.authorizeURL(good, a))
	_, err := exchange(t, bad, q, a)
	if oauthErrorCode(err) != "invalid_client" {
		t.Fatalf("err %v, want invalid_client", err)
	}
	if strings.Contains(err.Error(), rpSecret) || strings.Contains(err.Error(), "not-the-secret") {
		t.Error("error mentions a secret")
	}
}

func TestReplayedCodeIsRefusedAndRevokesItsTokens(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	a := &loginAttempt{}
	q := newBrowser(t).loginAt(e.authorizeURL(party, a))
	first, err := exchange(t, party, q, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exchange(t, party, q, a); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("replay: err %v, want invalid_grant", err)
	}
	if _, err := rp.Userinfo[*oidc.UserInfo](context.Background(), first.AccessToken, oidc.BearerToken, first.IDTokenClaims.Subject, party); err == nil {
		t.Error("access token from the replayed code still works at userinfo")
	}
	if _, err := rp.RefreshTokens[*oidc.IDTokenClaims](context.Background(), party, first.RefreshToken, "", ""); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("refresh token from the replayed code: err %v, want invalid_grant", err)
	}
}

// Exchanges of one code racing each other: one claims it, the others are
// replays and revoke its grant, and whatever the interleaving no token from the
// code keeps working (tokens issued after the revocation began are refused with
// invalid_grant, tokens issued before it are deleted by it).
func TestRacingExchangesOfOneCodeLeaveNoWorkingToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	a := &loginAttempt{}
	q := newBrowser(t).loginAt(e.authorizeURL(party, a))
	results := make([]*oidc.Tokens[*oidc.IDTokenClaims], 8)
	errs := make([]error, len(results))
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i], errs[i] = exchange(t, party, q, a) })
	}
	wg.Wait()
	refused := 0
	for i, err := range errs {
		if err != nil {
			if oauthErrorCode(err) != "invalid_grant" {
				t.Errorf("exchange %d: %v, want tokens or invalid_grant", i, err)
			}
			refused++
			continue
		}
		tokens := results[i]
		if _, err := rp.Userinfo[*oidc.UserInfo](context.Background(), tokens.AccessToken, oidc.BearerToken, tokens.IDTokenClaims.Subject, party); err == nil {
			t.Errorf("exchange %d: its access token works after the code was replayed", i)
		}
		if _, err := rp.RefreshTokens[*oidc.IDTokenClaims](context.Background(), party, tokens.RefreshToken, "", ""); err == nil {
			t.Errorf("exchange %d: its refresh token works after the code was replayed", i)
		}
	}
	if refused < len(errs)-1 {
		t.Errorf("%d of %d exchanges of one code were refused, want at least %d", refused, len(errs), len(errs)-1)
	}
}

func TestPKCEVerifierMismatchIsInvalidGrant(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	a := &loginAttempt{}
	q := newBrowser(t).loginAt(e.authorizeURL(party, a))
	a.verifier = "a-different-verifier-of-sufficient-length-1234567890"
	if _, err := exchange(t, party, q, a); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("err %v, want invalid_grant", err)
	}
}

func TestPlainPKCEIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(publicClientID, "", publicRedirect)
	u := rp.AuthURL("s1", party, rp.AuthURLOpt(rp.WithURLParam("code_challenge", "plain-challenge-plain-challenge-plain-challenge")),
		rp.AuthURLOpt(rp.WithURLParam("code_challenge_method", "plain")))
	q := newBrowser(t).loginAt(u)
	if q.Get("error") != "invalid_request" || q.Get("state") != "s1" {
		t.Fatalf("got %v, want error=invalid_request with the state", q)
	}
}

func TestPublicClientWithoutPKCEIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(publicClientID, "", publicRedirect)
	q := newBrowser(t).loginAt(rp.AuthURL("s2", party))
	if q.Get("error") != "invalid_request" {
		t.Fatalf("got %v, want error=invalid_request", q)
	}
}

func TestPromptNoneWithoutSessionIsLoginRequired(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	a := &loginAttempt{extra: []rp.AuthURLOpt{rp.WithPrompt("none")}}
	q := newBrowser(t).loginAt(e.authorizeURL(party, a))
	if q.Get("error") != "login_required" || q.Get("state") != a.state {
		t.Fatalf("got %v, want login_required with the state", q)
	}
	if e.dingtalk.Fake.Calls(dingtalktest.APIUserAccessToken) != 0 {
		t.Error("prompt=none reached DingTalk")
	}
}

func TestDingTalkDenialIsAccessDeniedForTheClient(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.dingtalk.Fake.AutoApprove("")
	e.dingtalk.Fake.AutoDeny(true)
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	a := &loginAttempt{}
	q := newBrowser(t).loginAt(e.authorizeURL(party, a))
	if q.Get("error") != "access_denied" || q.Get("state") != a.state {
		t.Fatalf("got %v, want access_denied with the state", q)
	}
}

func TestSeveralConnectorsOfferAChoice(t *testing.T) {
	e := newEnv(t, envOptions{twoConnectors: true})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	b := newBrowser(t)
	a := &loginAttempt{}
	resp, body := b.visit(e.authorizeURL(party, a))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Choose how to log in") {
		t.Fatalf("status %d, want the chooser page:\n%s", resp.StatusCode, body)
	}
	var second string
	for _, l := range pageLinks(body) {
		if strings.Contains(l, "connector=second-org") {
			second = l
		}
	}
	if second == "" {
		t.Fatalf("no link to the second connector:\n%s", body)
	}
	tokens, err := exchange(t, party, b.loginAt(e.issuer+second), a)
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.store.GetUser(context.Background(), tokens.IDTokenClaims.Subject)
	if err != nil || u.ConnectorID != "second-org" {
		t.Errorf("user record %+v, %v; want it to remember connector second-org", u, err)
	}
}

func TestDisabledUserIsRefusedAndLosesRefresh(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	a := &loginAttempt{}
	tokens, err := exchange(t, party, newBrowser(t).loginAt(e.authorizeURL(party, a)), a)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.store.UpsertUser(context.Background(), e.user.UnionID, func(u storage.User, _ bool) (storage.User, error) {
		u.Disabled = true
		return u, nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := rp.RefreshTokens[*oidc.IDTokenClaims](context.Background(), party, tokens.RefreshToken, "", ""); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("refresh for a disabled user: err %v, want invalid_grant", err)
	}
	if _, err := rp.Userinfo[*oidc.UserInfo](context.Background(), tokens.AccessToken, oidc.BearerToken, e.user.UnionID, party); err == nil {
		t.Error("userinfo still answers for a disabled user")
	}
	a = &loginAttempt{}
	resp, body := newBrowser(t).visit(e.authorizeURL(party, a))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Account disabled") {
		t.Fatalf("status %d, want 403 disabled page:\n%s", resp.StatusCode, body)
	}
	if q := backToClientError(t, body, rpRedirectURI); q.Get("error") != "access_denied" || q.Get("state") != a.state {
		t.Errorf("client would get %v, want access_denied with its state", q)
	}
	// The refused login stored nothing: no session besides the first login's.
	if n, err := e.store.Count(context.Background()); err != nil || n.Sessions != 1 {
		t.Errorf("sessions after the refused login: %d, %v; want 1", n.Sessions, err)
	}
}

func TestClientThatRequiresPKCE(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(pkceClientID, rpSecret, rpRedirectURI)
	if q := newBrowser(t).loginAt(rp.AuthURL("s3", party)); q.Get("error") != "invalid_request" {
		t.Fatalf("without PKCE: %v, want invalid_request", q)
	}
	a := &loginAttempt{}
	if _, err := exchange(t, party, newBrowser(t).loginAt(e.authorizeURL(party, a)), a); err != nil {
		t.Fatalf("with PKCE: %v", err)
	}
}

// /authorize serves the login step in its own answer: a valid request is sent
// straight on to DingTalk, with the browser-binding cookie the callback checks,
// and what zitadel answers otherwise (an error for the client) goes out as it was.
func TestAuthorizeGoesStraightToDingTalk(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	b := newBrowser(t)
	hops := []string{}
	follow := b.client.CheckRedirect
	b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		hops = append(hops, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path)
		return follow(req, via)
	}
	noFollow := &http.Client{Jar: b.client.Jar, Transport: sharedTransport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	a := &loginAttempt{}
	resp, err := noFollow.Get(e.authorizeURL(party, a))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, e.dingtalk.URL+"/oauth2/auth?") {
		t.Fatalf("/authorize answered %d to %q, want 302 to DingTalk's login", resp.StatusCode, loc)
	}
	if len(resp.Cookies()) == 0 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("/authorize's answer: cookies %v, Cache-Control %q; want the browser binding and no-store", resp.Cookies(), resp.Header.Get("Cache-Control"))
	}
	// The whole login: /authorize, DingTalk, /callback, the client; no /login.
	tokens, err := exchange(t, party, b.loginAt(e.authorizeURL(party, a)), a)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if tokens.IDTokenClaims.Subject != e.user.UnionID {
		t.Errorf("sub %q", tokens.IDTokenClaims.Subject)
	}
	want := []string{e.dingtalk.URL + "/oauth2/auth", e.issuer + "/callback/dingtalk", rpRedirectURI}
	if !slices.Equal(hops, want) {
		t.Errorf("redirects %q, want %q", hops, want)
	}

	// An error zitadel sends back to the client is not taken for the login step.
	plain := &loginAttempt{extra: []rp.AuthURLOpt{rp.AuthURLOpt(rp.WithURLParam("code_challenge_method", "plain"))}}
	resp, err = noFollow.Get(e.authorizeURL(party, plain))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(back.String(), rpRedirectURI) ||
		back.Query().Get("error") != "invalid_request" || back.Query().Get("state") != plain.state {
		t.Errorf("plain PKCE: %d to %q, want the client's redirect URI with invalid_request and its state", resp.StatusCode, back)
	}
}
