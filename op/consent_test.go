package op_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
)

// consentPage runs a login that stops at the consent page and returns its body.
func (e *env) consentPage(t *testing.T, b *browser, party rp.RelyingParty, a *loginAttempt, lang string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.authorizeURL(party, a), nil)
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="/consent"`) {
		t.Fatalf("expected the consent page, got %d\n%s", resp.StatusCode, body)
	}
	return body
}

func (e *env) decide(t *testing.T, b *browser, body, decision string) (int, string) {
	t.Helper()
	action, fields := pageForm(t, e.issuer, body)
	fields.Set("decision", decision)
	resp, _ := b.submit(action, fields)
	return resp.StatusCode, resp.Header.Get("Location")
}

func TestConsentAskedOnceAndRemembered(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(consentClientID, rpSecret, rpRedirectURI, "openid", "profile")
	b := newBrowser(t)

	a := &loginAttempt{}
	body := e.consentPage(t, b, party, a, "zh-CN")
	for _, want := range []string{"允许访问？", "Partner portal", "您的姓名和头像", "您在钉钉的身份"} {
		if !strings.Contains(body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	status, loc := e.decide(t, b, body, "allow")
	if status != http.StatusFound || !strings.HasPrefix(loc, rpRedirectURI) {
		t.Fatalf("allow: %d %s", status, loc)
	}
	q := mustQuery(t, loc)
	if _, err := exchange(t, party, q, a); err != nil {
		t.Fatal(err)
	}

	// Same scopes again (the SSO session answers): no question.
	e.loginWith(t, b, party, &loginAttempt{})

	// A new browser, same person, same scopes: still remembered (per person, not per browser).
	e.loginWith(t, newBrowser(t), party, &loginAttempt{})

	// More scopes than consented: asked again, listing the new one too.
	wider := e.relyingParty(consentClientID, rpSecret, rpRedirectURI, "openid", "profile", "email")
	body = e.consentPage(t, b, wider, &loginAttempt{}, "en")
	if !strings.Contains(body, "Your email address") {
		t.Errorf("second consent page lacks the new scope:\n%s", body)
	}

	// prompt=consent asks even when everything was consented to.
	e.consentPage(t, b, party, &loginAttempt{extra: []rp.AuthURLOpt{rp.WithPrompt("consent")}}, "")

	// Other clients never ask (consent is off by default).
	e.loginWith(t, b, e.relyingParty(rpClientID, rpSecret, rpRedirectURI), &loginAttempt{})
}

func TestConsentDenied(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(consentClientID, rpSecret, rpRedirectURI, "openid")
	b := newBrowser(t)
	a := &loginAttempt{}
	status, loc := e.decide(t, b, e.consentPage(t, b, party, a, ""), "deny")
	q := mustQuery(t, loc)
	if status != http.StatusFound || q.Get("error") != "access_denied" || q.Get("state") != a.state {
		t.Fatalf("deny: %d %s", status, loc)
	}
	// A refusal is not remembered as consent: the next login asks again.
	e.consentPage(t, b, party, &loginAttempt{}, "")
}

func TestConsentRequiredWithPromptNone(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(consentClientID, rpSecret, rpRedirectURI, "openid")
	b := newBrowser(t)
	// Log in elsewhere first, so there is a session and only consent is missing.
	e.loginWith(t, b, e.relyingParty(rpClientID, rpSecret, rpRedirectURI), &loginAttempt{})
	a := &loginAttempt{extra: []rp.AuthURLOpt{rp.WithPrompt("none")}}
	q := b.loginAt(e.authorizeURL(party, a))
	if q.Get("error") != "consent_required" || q.Get("state") != a.state {
		t.Errorf("prompt=none without consent: %v", q)
	}
}

func TestConsentNeedsTheFormToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(consentClientID, rpSecret, rpRedirectURI, "openid")
	b := newBrowser(t)
	body := e.consentPage(t, b, party, &loginAttempt{}, "")
	action, fields := pageForm(t, e.issuer, body)
	fields.Set("decision", "allow")

	// Another site submitting the form in the person's name: no cookie comes along.
	resp, _ := newBrowser(t).submit(action, fields)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("consent from another browser: %d, want 400", resp.StatusCode)
	}
	fields.Set("form_token", "forged")
	resp, _ = b.submit(action, fields)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("forged token: %d, want 400", resp.StatusCode)
	}
}

func mustQuery(t *testing.T, rawURL string) url.Values {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}
