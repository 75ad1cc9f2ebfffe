package op_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
)

// What a person reads is in their language: the app's ui_locales first, then
// Accept-Language; every page has its words in both.
func TestPagesSpeakTheLanguageAsked(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(consentClientID, rpSecret, rpRedirectURI, "openid", "profile")

	// ui_locales=zh-CN wins over an English browser.
	body := e.consentPage(t, newBrowser(t), party, &loginAttempt{extra: []rp.AuthURLOpt{rp.AuthURLOpt(rp.WithURLParam("ui_locales", "fr zh-CN"))}}, "en")
	if !strings.Contains(body, "允许访问？") || !strings.Contains(body, `lang="zh-CN"`) {
		t.Errorf("consent page with ui_locales=\"fr zh-CN\" and Accept-Language en is not in Chinese:\n%s", body)
	}
	// ui_locales naming nothing offered: Accept-Language decides.
	body = e.consentPage(t, newBrowser(t), party, &loginAttempt{extra: []rp.AuthURLOpt{rp.AuthURLOpt(rp.WithURLParam("ui_locales", "fr"))}}, "zh-CN,zh;q=0.9")
	if !strings.Contains(body, "允许访问？") {
		t.Errorf("consent page with ui_locales=fr and Accept-Language zh-CN is not in Chinese:\n%s", body)
	}

	// The refused logout says what happened in Chinese too.
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/end_session?"+url.Values{"client_id": {rpClientID}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode(), nil)
	req.Header.Set("Accept-Language", "zh-CN")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(t, resp)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "退出请求被拒绝") || !strings.Contains(body, "您仍处于登录状态") {
		t.Errorf("zh-CN logout refused: %d\n%s", resp.StatusCode, body)
	}
}

// An unknown path and the issuer's root get the page, not a bare 404.
func TestUnknownPathsGetThePage(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, path := range []string{"/", "/no/such/page"} {
		resp, body := newBrowser(t).visit(e.issuer + path)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "<h1>Page not found</h1>") || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %s\n%s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}

// form_post is not offered, and asking for it is told to the app; the
// consent page's policy lets its answer reach the app; groups is a scope.
func TestResponseModesScopesAndTheConsentPolicy(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	a := &loginAttempt{extra: []rp.AuthURLOpt{rp.AuthURLOpt(rp.WithResponseModeURLParam("form_post"))}}
	q := newBrowser(t).loginAt(e.authorizeURL(party, a))
	if q.Get("error") != "invalid_request" || q.Get("state") != a.state || !strings.Contains(q.Get("error_description"), "form_post") {
		t.Errorf("response_mode=form_post: the app got %v", q)
	}

	resp, body := newBrowser(t).visit(e.issuer + "/.well-known/openid-configuration")
	var d struct {
		ResponseModes []string `json:"response_modes_supported"`
		Scopes        []string `json:"scopes_supported"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %d %v", resp.StatusCode, err)
	}
	if slices.Contains(d.ResponseModes, "form_post") || !slices.Contains(d.Scopes, "groups") {
		t.Errorf("discovery: response_modes_supported %v, scopes_supported %v", d.ResponseModes, d.Scopes)
	}

	consent := e.relyingParty(consentClientID, rpSecret, rpRedirectURI, "openid")
	b := newBrowser(t)
	req, _ := http.NewRequest(http.MethodGet, e.authorizeURL(consent, &loginAttempt{}), nil)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "form-action 'self' http://127.0.0.1:1;") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("consent page at %s: CSP %q; want form-action 'self' and the app's origin, no framing, no script", resp.Request.URL, csp)
	}
	// A reload of the consent page shows it again.
	resp, body = b.visit(resp.Request.URL.String())
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="/consent"`) {
		t.Errorf("consent page reloaded: %d\n%s", resp.StatusCode, body)
	}
	// Another browser cannot load it.
	resp, _ = newBrowser(t).visit(resp.Request.URL.String())
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("consent page in another browser: %d, want 400", resp.StatusCode)
	}
}
