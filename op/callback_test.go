package op_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// callbackURL runs a login up to the moment DingTalk sends the browser back, and
// returns that URL without visiting it.
func (e *env) callbackURL(t *testing.T, b *browser) string {
	t.Helper()
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	stop := b.client.CheckRedirect
	defer func() { b.client.CheckRedirect = stop }()
	var callback string
	b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.Contains(req.URL.Path, "/callback/dingtalk") {
			callback = req.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	b.visit(e.authorizeURL(party, &loginAttempt{}))
	if callback == "" {
		t.Fatal("DingTalk did not send the browser back")
	}
	return callback
}

func TestTamperedStateIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := newBrowser(t)
	u, _ := url.Parse(e.callbackURL(t, b))
	q := u.Query()
	q.Set("state", q.Get("state")+"x")
	u.RawQuery = q.Encode()
	resp, body := b.visit(u.String())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "could not be verified") {
		t.Fatalf("status %d, want 400 state page:\n%s", resp.StatusCode, body)
	}
	if e.dingtalk.Fake.Calls(dingtalktest.APIUserAccessToken) != 0 {
		t.Error("a tampered state still reached DingTalk's token endpoint")
	}
}

func TestReusedStateIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := newBrowser(t)
	callback := e.callbackURL(t, b)
	if resp, _ := b.visit(callback); resp.StatusCode != http.StatusFound {
		t.Fatalf("first callback: status %d", resp.StatusCode)
	}
	resp, body := b.visit(callback)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "could not be verified") {
		t.Fatalf("second callback: status %d, want 400:\n%s", resp.StatusCode, body)
	}
}

// An attacker starts a login, stops before the callback and gets a victim to open
// it: the state is bound to the attacker's browser, so the victim's is refused.
func TestStateFromAnotherBrowserIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	callback := e.callbackURL(t, newBrowser(t))
	resp, body := newBrowser(t).visit(callback)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "could not be verified") {
		t.Fatalf("status %d, want 400:\n%s", resp.StatusCode, body)
	}
}

func TestDingTalkFailuresShowAPageAndTellTheClient(t *testing.T) {
	cases := []struct {
		name        string
		api         string
		failure     dingtalktest.Failure
		status      int
		pageText    string
		clientError string
	}{
		{"token endpoint 500", dingtalktest.APIUserAccessToken, dingtalktest.Failure{Status: 500}, http.StatusServiceUnavailable, "DingTalk is not answering", "temporarily_unavailable"},
		{"token endpoint hangs past the timeout", dingtalktest.APIUserAccessToken, dingtalktest.Failure{Hang: true}, http.StatusServiceUnavailable, "DingTalk is not answering", "temporarily_unavailable"},
		{"malformed JSON", dingtalktest.APIUserAccessToken, dingtalktest.Failure{Status: 200, Body: `{"accessToken": `}, http.StatusBadGateway, "DingTalk login failed", "server_error"},
		{"code unknown to DingTalk", dingtalktest.APIUserAccessToken, dingtalktest.Failure{Status: 400, Code: "invalidParameter.authCode.notFound", Message: "不合法的临时授权码"}, http.StatusBadRequest, "The DingTalk login expired", "server_error"},
		{"users/me rate limited", dingtalktest.APIUsersMe, dingtalktest.Failure{Status: 403, Code: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}, http.StatusServiceUnavailable, "DingTalk is not answering", "temporarily_unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{upstreamTimeout: 300 * time.Millisecond})
			e.dingtalk.Fake.Fail(tc.api, tc.failure)
			b := newBrowser(t)
			party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
			a := &loginAttempt{}
			resp, body := b.visit(e.authorizeURL(party, a))
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.pageText) {
				t.Fatalf("status %d, want %d with %q:\n%s", resp.StatusCode, tc.status, tc.pageText, body)
			}
			q := backToClientError(t, body, rpRedirectURI)
			if q.Get("error") != tc.clientError || q.Get("state") != a.state {
				t.Errorf("client would get %v, want error=%s with its state", q, tc.clientError)
			}
			if strings.Contains(body, dtSecret) {
				t.Error("page shows the DingTalk app secret")
			}

			// The person presses "try again" and, DingTalk being well again, gets in.
			e.dingtalk.Fake.ClearFailures()
			var retry string
			for _, l := range pageLinks(body) {
				if strings.Contains(l, "/login?") {
					retry = l
				}
			}
			if retry == "" {
				t.Fatal("no retry link")
			}
			q = b.loginAt(e.issuer + retry)
			if _, err := exchange(t, party, q, a); err != nil {
				t.Fatalf("login after retry: %v", err)
			}
		})
	}
}
