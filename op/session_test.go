package op_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// loginWith runs one login in b and returns the verified tokens.
func (e *env) loginWith(t *testing.T, b *browser, party rp.RelyingParty, a *loginAttempt) *oidc.Tokens[*oidc.IDTokenClaims] {
	t.Helper()
	tokens, err := exchange(t, party, b.loginAt(e.authorizeURL(party, a)), a)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

func (e *env) dingtalkLogins() int { return e.dingtalk.Fake.Calls(dingtalktest.APIUserAccessToken) }

func TestTwoAppsShareOneDingTalkLogin(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := newBrowser(t)
	grafana := e.loginWith(t, b, e.relyingParty(rpClientID, rpSecret, rpRedirectURI), &loginAttempt{})
	cli := e.loginWith(t, b, e.relyingParty(publicClientID, "", publicRedirect), &loginAttempt{})

	if n := e.dingtalkLogins(); n != 1 {
		t.Fatalf("DingTalk saw %d logins for two apps in one browser, want 1", n)
	}
	g, c := grafana.IDTokenClaims, cli.IDTokenClaims
	if g.Subject != c.Subject || g.AuthTime != c.AuthTime {
		t.Errorf("sub/auth_time differ across apps: %s@%v vs %s@%v", g.Subject, g.AuthTime, c.Subject, c.AuthTime)
	}
	if g.Claims["sid"] == nil || g.Claims["sid"] != c.Claims["sid"] {
		t.Errorf("sid = %v and %v, want the same session in both id_tokens", g.Claims["sid"], c.Claims["sid"])
	}
	if g.Claims["unionid"] != e.user.UnionID || c.Claims["unionid"] != e.user.UnionID {
		t.Error("unionid missing from an SSO login's id_token")
	}
}

func TestSessionCookieIsHttpOnlyAndLax(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	b := newBrowser(t)
	var setCookie []string
	b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		setCookie = append(setCookie, req.Response.Header.Values("Set-Cookie")...)
		if strings.HasPrefix(req.URL.String(), rpRedirectURI) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	b.visit(e.authorizeURL(party, &loginAttempt{}))
	for _, c := range setCookie {
		if strings.HasPrefix(c, "dingbridge_session=") {
			if !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") {
				t.Errorf("session cookie %q lacks HttpOnly or SameSite=Lax", c)
			}
			return
		}
	}
	t.Fatalf("no session cookie set; cookies: %v", setCookie)
}

func TestPromptNoneWithASessionLogsInSilently(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	b := newBrowser(t)
	e.loginWith(t, b, party, &loginAttempt{})
	silent := e.loginWith(t, b, party, &loginAttempt{extra: []rp.AuthURLOpt{rp.WithPrompt("none")}})
	if silent.IDTokenClaims.Subject != e.user.UnionID || e.dingtalkLogins() != 1 {
		t.Errorf("prompt=none with a session: sub %q, DingTalk logins %d", silent.IDTokenClaims.Subject, e.dingtalkLogins())
	}
}

func TestPromptLoginAndMaxAgeForceDingTalkAgain(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	b := newBrowser(t)
	first := e.loginWith(t, b, party, &loginAttempt{})

	e.loginWith(t, b, party, &loginAttempt{extra: []rp.AuthURLOpt{rp.AuthURLOpt(rp.WithURLParam("max_age", "3600"))}})
	if n := e.dingtalkLogins(); n != 1 {
		t.Fatalf("max_age=3600 on a fresh session went to DingTalk (%d logins)", n)
	}
	time.Sleep(1100 * time.Millisecond) // auth_time has a one-second resolution
	again := e.loginWith(t, b, party, &loginAttempt{extra: []rp.AuthURLOpt{rp.WithPrompt("login")}})
	if n := e.dingtalkLogins(); n != 2 {
		t.Fatalf("prompt=login: DingTalk saw %d logins, want 2", n)
	}
	if !again.IDTokenClaims.AuthTime.AsTime().After(first.IDTokenClaims.AuthTime.AsTime()) {
		t.Errorf("auth_time %v after prompt=login, want later than %v", again.IDTokenClaims.AuthTime, first.IDTokenClaims.AuthTime)
	}
	e.loginWith(t, b, party, &loginAttempt{extra: []rp.AuthURLOpt{rp.AuthURLOpt(rp.WithURLParam("max_age", "0"))}})
	if n := e.dingtalkLogins(); n != 3 {
		t.Errorf("max_age=0: DingTalk saw %d logins, want 3", n)
	}
}

func TestIdleSessionExpires(t *testing.T) {
	e := newEnv(t, envOptions{lifetimes: op.Lifetimes{SessionIdle: time.Second}})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	b := newBrowser(t)
	e.loginWith(t, b, party, &loginAttempt{})
	time.Sleep(1100 * time.Millisecond)
	a := &loginAttempt{extra: []rp.AuthURLOpt{rp.WithPrompt("none")}}
	if q := b.loginAt(e.authorizeURL(party, a)); q.Get("error") != "login_required" {
		t.Fatalf("after the idle timeout: %v, want login_required", q)
	}
}

// endSessionURL is what an RP sends the browser to on logout.
func (e *env) endSessionURL(idToken, postLogout, state string) string {
	q := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {postLogout}, "state": {state}}
	return e.issuer + "/end_session?" + q.Encode()
}

func TestLogoutEndsTheSessionAndReturnsToTheApp(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	b := newBrowser(t)
	tokens := e.loginWith(t, b, party, &loginAttempt{})

	resp, body := b.visit(e.endSessionURL(tokens.IDToken, rpLoggedOut, "bye-1"))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), rpLoggedOut) || loc.Query().Get("state") != "bye-1" {
		t.Fatalf("logout: status %d location %q, want a redirect to %s with the state:\n%s", resp.StatusCode, resp.Header.Get("Location"), rpLoggedOut, body)
	}
	a := &loginAttempt{extra: []rp.AuthURLOpt{rp.WithPrompt("none")}}
	if q := b.loginAt(e.authorizeURL(party, a)); q.Get("error") != "login_required" {
		t.Errorf("after logout prompt=none gave %v, want login_required", q)
	}
	e.loginWith(t, b, party, &loginAttempt{})
	if n := e.dingtalkLogins(); n != 2 {
		t.Errorf("a login after logout: DingTalk saw %d logins, want 2", n)
	}
}

func TestLogoutToAForeignAddressShowsAPageAndKeepsTheSession(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	b := newBrowser(t)
	tokens := e.loginWith(t, b, party, &loginAttempt{})

	resp, body := b.visit(e.endSessionURL(tokens.IDToken, "https://evil.example/after", "s"))
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "Logout request refused") {
		t.Fatalf("status %d location %q, want a 400 page:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if strings.Contains(body, `href="https://evil.example`) {
		t.Error("the page links to the foreign address")
	}
	silent := e.loginWith(t, b, party, &loginAttempt{extra: []rp.AuthURLOpt{rp.WithPrompt("none")}})
	if silent.IDTokenClaims.Subject != e.user.UnionID {
		t.Error("a refused logout ended the session")
	}
}
