package op_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/upstream/dingtalk"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

var dataAttr = regexp.MustCompile(`data-([a-z-]+)="([^"]*)"`)

// embeddedPage opens the login and returns our page's CSP and the data
// attributes DingTalk's script is driven by.
func embeddedPage(t *testing.T, e *env, b *browser, authorizeURL string) (csp string, data map[string]string, body string) {
	t.Helper()
	resp, body := b.visit(authorizeURL)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="dingtalk-qr"`) {
		t.Fatalf("embedded login page: status %d\n%s", resp.StatusCode, body)
	}
	data = map[string]string{}
	for _, m := range dataAttr.FindAllStringSubmatch(body, -1) {
		data[m[1]] = html.UnescapeString(m[2])
	}
	return resp.Header.Get("Content-Security-Policy"), data, body
}

// frameAnswer is what a frame page of the fake posts to its parent.
var postMessage = regexp.MustCompile(`parent\.postMessage\((.*), "([^"]*)"\)`)

// The embedded page, step by step as the browser runs it: our page loads
// DingTalk's script (allowed by the CSP, exactly), the script's frame logs the
// person in and posts the result to the parent, and the page goes to the
// callback. The browser test (cmd/dingbridge) runs the same in Chromium.
func TestEmbeddedLoginPage(t *testing.T) {
	zhang := dingtalktest.DemoUsers()[0]
	branding := op.Branding{Title: "示例科技 统一登录", LogoURL: "https://static.example.com/logo.png"}

	t.Run("oauth2: DTFrameLogin", func(t *testing.T) {
		e := newEnv(t, envOptions{embedded: true, branding: branding})
		party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
		b := newBrowser(t)
		a := &loginAttempt{}
		csp, data, body := embeddedPage(t, e, b, e.authorizeURL(party, a))
		fake := e.dingtalk.URL
		for _, want := range []string{"script-src 'nonce-", " " + fake + ";", "frame-src " + fake + ";", "img-src 'self' data: https://static.example.com;", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
		for _, want := range []string{branding.Title, `src="` + branding.LogoURL + `"`, `src="` + fake + dingtalktest.FrameLoginPath + `"`, "window.DTFrameLogin"} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if data["kind"] != "oauth2" || data["client-id"] != dtClientID || data["callback"] != e.issuer+"/callback/dingtalk" || data["state"] == "" {
			t.Fatalf("page data %v", data)
		}
		// What the fake's DTFrameLogin puts in the frame, and what the frame posts.
		frame := url.Values{"redirect_uri": {data["callback"]}, "client_id": {data["client-id"]}, "scope": {data["scope"]},
			"response_type": {"code"}, "state": {data["state"]}, "prompt": {"consent"}, "embed": {"1"}}
		e.dingtalk.Fake.AutoApprove(zhang.UnionID)
		_, answer := newBrowser(t).visit(fake + "/oauth2/auth?" + frame.Encode())
		m := postMessage.FindStringSubmatch(answer)
		if m == nil || m[2] != e.issuer {
			t.Fatalf("the frame posts nothing to %s:\n%s", e.issuer, answer)
		}
		code := regexp.MustCompile(`"authCode":"([^"]+)"`).FindStringSubmatch(m[1])
		if code == nil || !strings.Contains(m[1], `"state":"`+data["state"]+`"`) {
			t.Fatalf("frame message %s lacks authCode and state", m[1])
		}
		q := b.loginAt(data["callback"] + "?authCode=" + url.QueryEscape(code[1]) + "&state=" + url.QueryEscape(data["state"]))
		tokens, err := exchange(t, party, q, a)
		if err != nil {
			t.Fatal(err)
		}
		if tokens.IDTokenClaims.Subject != zhang.UnionID {
			t.Errorf("sub %q, want %s", tokens.IDTokenClaims.Subject, zhang.UnionID)
		}
	})

	t.Run("sns: DDLogin and loginTmpCode", func(t *testing.T) {
		e := newEnv(t, envOptions{embedded: true, connector: func(c *dingtalk.Config) { c.Mode = dingtalk.ModeSNS }})
		party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
		b := newBrowser(t)
		a := &loginAttempt{}
		csp, data, body := embeddedPage(t, e, b, e.authorizeURL(party, a))
		fake := e.dingtalk.URL
		if !strings.Contains(csp, "frame-src "+fake+";") || !strings.Contains(body, `src="`+fake+dingtalktest.SNSFrameLoginPath+`"`) {
			t.Errorf("CSP %q or page does not name the legacy script and frame", csp)
		}
		if !strings.Contains(body, ">钉钉登录<") && !strings.Contains(body, ">Log in with DingTalk<") {
			t.Errorf("without branding the page has its own title:\n%s", body)
		}
		if data["kind"] != "sns" || !strings.HasPrefix(data["goto"], fake+"/connect/oauth2/sns_authorize?") || data["frame-origin"] != fake {
			t.Fatalf("page data %v", data)
		}
		e.dingtalk.Fake.AutoApprove(zhang.UnionID)
		_, answer := newBrowser(t).visit(fake + "/login/qrcode.htm?goto=" + url.QueryEscape(data["goto"]))
		m := postMessage.FindStringSubmatch(answer)
		if m == nil || m[2] != e.issuer {
			t.Fatalf("the legacy frame posts nothing to %s:\n%s", e.issuer, answer)
		}
		tmpCode := strings.Trim(m[1], `"`)
		q := b.loginAt(data["goto"] + "&loginTmpCode=" + url.QueryEscape(tmpCode))
		tokens, err := exchange(t, party, q, a)
		if err != nil {
			t.Fatal(err)
		}
		if tokens.IDTokenClaims.Subject != zhang.UnionID {
			t.Errorf("sub %q, want %s", tokens.IDTokenClaims.Subject, zhang.UnionID)
		}
	})

	t.Run("the link underneath is DingTalk's own login page", func(t *testing.T) {
		e := newEnv(t, envOptions{embedded: true})
		party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
		b := newBrowser(t)
		a := &loginAttempt{}
		_, _, body := embeddedPage(t, e, b, e.authorizeURL(party, a))
		m := regexp.MustCompile(`id="fallback" href="([^"]+)"`).FindStringSubmatch(body)
		if m == nil || !strings.HasPrefix(html.UnescapeString(m[1]), e.dingtalk.URL+"/oauth2/auth?") {
			t.Fatalf("no link to DingTalk's login page:\n%s", body)
		}
		e.dingtalk.Fake.AutoApprove(zhang.UnionID)
		if _, err := exchange(t, party, b.loginAt(html.UnescapeString(m[1])), a); err != nil {
			t.Fatal(err)
		}
	})
}
