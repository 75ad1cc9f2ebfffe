package op_test

import (
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/upstream/dingtalk"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// The three ways DingTalk logs people in, each through the real server to an
// OIDC relying party: today's OAuth2 login (the other tests), the legacy SNS scan
// login, and the in-app login inside the DingTalk client; then the corp policy
// and corp claims built on the organisation's directory.

const dingTalkUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 AliApp(DingTalk/7.6.0) com.laiwang.DingTalk/36012345 Channel/201200 language/zh-Hans-CN"

func corpConnector(extra func(*dingtalk.Config)) func(*dingtalk.Config) {
	return func(c *dingtalk.Config) {
		c.CorpID = dingtalktest.DemoCorpID
		c.Scope = "openid corpid"
		if extra != nil {
			extra(c)
		}
	}
}

var groupsScopes = []string{"openid", "profile", "email", oidc.ScopeOfflineAccess, op.ScopeGroups}

func TestSNSLoginThroughTheServer(t *testing.T) {
	e := newEnv(t, envOptions{connector: func(c *dingtalk.Config) { c.Mode = dingtalk.ModeSNS }})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	tokens := e.loginTokens(t, party)
	if tokens.IDTokenClaims.Subject != e.user.UnionID || tokens.IDTokenClaims.Claims["openid"] != e.user.OpenID {
		t.Errorf("id_token: sub %q, openid %v", tokens.IDTokenClaims.Subject, tokens.IDTokenClaims.Claims["openid"])
	}
	if !slices.Equal(tokens.IDTokenClaims.AuthenticationMethodsReferences, []string{"dingtalk-sns"}) {
		t.Errorf("amr = %v, want [dingtalk-sns]", tokens.IDTokenClaims.AuthenticationMethodsReferences)
	}
	if n := e.dingtalk.Fake.Calls(dingtalktest.APISNSUserInfo); n != 1 {
		t.Errorf("sns/getuserinfo_bycode called %d times, want 1", n)
	}
}

// Each answer of sns/getuserinfo_bycode becomes a page and an OAuth error.
func TestSNSErrorsBecomePages(t *testing.T) {
	for _, c := range []struct {
		errcode    int
		status     int
		says, code string
	}{
		{853001, http.StatusBadGateway, "DingTalk login is not set up correctly", "server_error"},
		{853002, http.StatusBadGateway, "DingTalk login is not set up correctly", "server_error"},
		{853003, http.StatusBadGateway, "DingTalk login is not set up correctly", "server_error"},
		{853004, http.StatusBadGateway, "DingTalk login is not set up correctly", "server_error"},
		{40078, http.StatusBadRequest, "The DingTalk login expired", "server_error"},
		{90018, http.StatusServiceUnavailable, "DingTalk is not answering", "temporarily_unavailable"},
	} {
		t.Run(strconv.Itoa(c.errcode), func(t *testing.T) {
			e := newEnv(t, envOptions{connector: func(cfg *dingtalk.Config) { cfg.Mode = dingtalk.ModeSNS }})
			e.dingtalk.Fake.Fail(dingtalktest.APISNSUserInfo, dingtalktest.Failure{ErrCode: c.errcode})
			party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
			resp, body := newBrowser(t).visit(e.authorizeURL(party, &loginAttempt{}))
			if resp.StatusCode != c.status || !strings.Contains(body, c.says) {
				t.Fatalf("status %d, want %d saying %q\n%s", resp.StatusCode, c.status, c.says, body)
			}
			if q := backToClientError(t, body, rpRedirectURI); q.Get("error") != c.code {
				t.Errorf("client is told %q, want %q", q.Get("error"), c.code)
			}
		})
	}
}

// inAppPage opens the login inside the DingTalk client and returns the page.
func (e *env) inAppPage(t *testing.T, b *browser, authorizeURL string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, authorizeURL, nil)
	req.Header.Set("User-Agent", dingTalkUA)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp, readAll(t, resp)
}

var fallbackRe = regexp.MustCompile(`id="fallback" href="([^"]*)"`)

// inAppLogin plays the DingTalk client: the JSAPI gives the page a code for the
// person, and the page posts it back.
func (e *env) inAppLogin(t *testing.T, b *browser, authorizeURL string, unionID string) (*http.Response, string) {
	t.Helper()
	resp, body := e.inAppPage(t, b, authorizeURL)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-corp-id="`+dingtalktest.DemoCorpID+`"`) {
		t.Fatalf("in-app page: %d\n%s", resp.StatusCode, body)
	}
	action, fields := pageForm(t, e.issuer, body)
	code, err := e.dingtalk.Fake.InAppCode(dingtalktest.DemoCorpID, unionID)
	if err != nil {
		t.Fatal(err)
	}
	fields.Set("code", code)
	return b.submit(action, fields)
}

func TestInAppLoginThroughTheServer(t *testing.T) {
	e := newEnv(t, envOptions{connector: corpConnector(nil)})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI, groupsScopes...)
	b := newBrowser(t)
	a := &loginAttempt{}
	authorize := e.authorizeURL(party, a)

	resp, body := e.inAppPage(t, b, authorize)
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'nonce-") || !strings.Contains(csp, "https://g.alicdn.com") || strings.Contains(csp, "unsafe-inline' 'nonce") {
		t.Errorf("in-app CSP = %q", csp)
	}
	for _, want := range []string{"dd.requestAuthCode", "dd.runtime.permission.requestAuthCode", `data-client-id="` + dtClientID + `"`, "https://g.alicdn.com/dingding/dingtalk-jsapi/"} {
		if !strings.Contains(body, want) {
			t.Errorf("in-app page lacks %q", want)
		}
	}

	// The page's state is bound to b: posted from another browser, it is refused
	// and spent, and DingTalk is never asked about the code.
	lisi := dingtalktest.DemoUsers()[1]
	action, fields := pageForm(t, e.issuer, body)
	code, err := e.dingtalk.Fake.InAppCode(dingtalktest.DemoCorpID, lisi.UnionID)
	if err != nil {
		t.Fatal(err)
	}
	fields.Set("code", code)
	if resp, _ := newBrowser(t).submit(action, fields); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the in-app code posted from another browser: %d, want 400 (state bound to the browser)", resp.StatusCode)
	}
	if n := e.dingtalk.Fake.Calls(dingtalktest.APIGetUserInfo); n != 0 {
		t.Errorf("getuserinfo called %d times for a refused state", n)
	}

	a = &loginAttempt{}
	resp, _ = e.inAppLogin(t, b, e.authorizeURL(party, a), lisi.UnionID)
	q := mustQuery(t, resp.Header.Get("Location"))
	tokens, err := exchange(t, party, q, a)
	if err != nil {
		t.Fatal(err)
	}
	claims := tokens.IDTokenClaims
	if claims.Subject != lisi.UnionID || claims.Claims["userid"] != "lisi" || claims.Claims["corp_id"] != dingtalktest.DemoCorpID {
		t.Errorf("id_token: sub %q, userid %v, corp_id %v", claims.Subject, claims.Claims["userid"], claims.Claims["corp_id"])
	}
	if _, ok := claims.Claims["openid"]; ok {
		t.Errorf("the in-app flow gives no openid, but the id_token has %v", claims.Claims["openid"])
	}
	if got := claims.Claims["groups"]; !sameStrings(got, "研发部", "市场部") {
		t.Errorf("groups = %v, want 研发部 and 市场部", got)
	}
	if !slices.Equal(claims.AuthenticationMethodsReferences, []string{"dingtalk-inapp"}) {
		t.Errorf("amr = %v", claims.AuthenticationMethodsReferences)
	}
	if n := e.dingtalkLogins(); n != 0 {
		t.Errorf("the in-app login went through the OAuth2 login %d times", n)
	}
}

// Without DingTalk's JSAPI (or outside the client) the page still offers the
// ordinary DingTalk login, with the same state.
func TestInAppPageFallsBackToTheDingTalkLoginLink(t *testing.T) {
	e := newEnv(t, envOptions{connector: corpConnector(nil)})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	b := newBrowser(t)
	a := &loginAttempt{}
	_, body := e.inAppPage(t, b, e.authorizeURL(party, a))
	m := fallbackRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no fallback link:\n%s", body)
	}
	link := strings.ReplaceAll(m[1], "&amp;", "&")
	if !strings.HasPrefix(link, e.dingtalk.URL+"/oauth2/auth?") {
		t.Fatalf("fallback link %q is not DingTalk's login", link)
	}
	q := b.loginAt(link)
	if _, err := exchange(t, party, q, a); err != nil {
		t.Fatal(err)
	}

	// Outside the client the same connector redirects as always.
	resp, err := noFollow().Get(e.authorizeURL(party, &loginAttempt{}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("outside DingTalk: status %d, want a redirect", resp.StatusCode)
	}
}

// One app token for many people: 50 in-app logins at once cost one gettoken.
func TestInAppLoginsShareOneAppToken(t *testing.T) {
	e := newEnv(t, envOptions{connector: corpConnector(nil), rateLimit: op.RateLimit{PerSecond: 0}})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI, groupsScopes...)
	zhangsan := dingtalktest.DemoUsers()[0]
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			b := newBrowser(t)
			a := &loginAttempt{}
			resp, body := e.inAppLogin(t, b, e.authorizeURL(party, a), zhangsan.UnionID)
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), rpRedirectURI) {
				t.Errorf("login: %d\n%s", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	if n := e.dingtalk.Fake.Calls(dingtalktest.APIGetToken); n != 1 {
		t.Errorf("gettoken called %d times for 50 logins, want 1", n)
	}
}

func TestOrganisationPolicy(t *testing.T) {
	t.Run("a login with another organisation is refused, saying which is required", func(t *testing.T) {
		e := newEnv(t, envOptions{connector: func(c *dingtalk.Config) {
			c.AllowedCorpIDs = []string{"dingOtherCorp0001"}
		}})
		party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
		req, _ := http.NewRequest(http.MethodGet, e.authorizeURL(party, &loginAttempt{}), nil)
		req.Header.Set("Accept-Language", "zh-CN")
		resp, err := newBrowser(t).client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "需要的组织：dingOtherCorp0001") || !strings.Contains(body, dingtalktest.DemoCorpID) {
			t.Fatalf("status %d\n%s", resp.StatusCode, body)
		}
		if q := backToClientError(t, body, rpRedirectURI); q.Get("error") != "access_denied" {
			t.Errorf("client is told %q, want access_denied", q.Get("error"))
		}
	})
	t.Run("an outsider is refused when membership is required", func(t *testing.T) {
		e := newEnv(t, envOptions{connector: corpConnector(func(c *dingtalk.Config) { c.RequireMembership = true })})
		wangwu := dingtalktest.DemoUsers()[2]
		e.dingtalk.Fake.AutoApprove(wangwu.UnionID)
		party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
		resp, body := newBrowser(t).visit(e.authorizeURL(party, &loginAttempt{}))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Required organisation: "+dingtalktest.DemoCorpID) {
			t.Fatalf("status %d\n%s", resp.StatusCode, body)
		}
		if n := e.dingtalk.Fake.Calls(dingtalktest.APIGetByUnionID); n != 1 {
			t.Errorf("getbyunionid called %d times, want 1", n)
		}
		// A member gets in, with corp claims.
		e.dingtalk.Fake.AutoApprove(e.user.UnionID)
		tokens := e.loginTokens(t, e.relyingParty(rpClientID, rpSecret, rpRedirectURI, groupsScopes...))
		if tokens.IDTokenClaims.Claims["userid"] != "zhangsan" || !sameStrings(tokens.IDTokenClaims.Claims["groups"], "后端组") {
			t.Errorf("member's claims: %v", tokens.IDTokenClaims.Claims)
		}
	})
}

// Groups and corp claims are released only with the groups scope; the
// organisation's email can stand in for the personal one.
func TestCorpClaimsNeedTheGroupsScope(t *testing.T) {
	e := newEnv(t, envOptions{connector: corpConnector(nil), claims: op.ClaimsPolicy{OrgEmailAsEmail: true}})
	without := e.loginTokens(t, e.relyingParty(rpClientID, rpSecret, rpRedirectURI)).IDTokenClaims
	for _, claim := range []string{"groups", "userid", "corp_id", "title", "job_number", "org_email"} {
		if _, ok := without.Claims[claim]; ok {
			t.Errorf("%s released without the groups scope", claim)
		}
	}
	if without.Email == "" || without.Email == e.user.Email || !bool(without.EmailVerified) {
		t.Errorf("email %q verified %v, want the organisation's address, verified", without.Email, without.EmailVerified)
	}
	with := e.loginTokens(t, e.relyingParty(rpClientID, rpSecret, rpRedirectURI, groupsScopes...)).IDTokenClaims
	for _, claim := range []string{"groups", "userid", "corp_id", "title", "job_number", "org_email"} {
		if _, ok := with.Claims[claim]; !ok {
			t.Errorf("%s missing with the groups scope: %v", claim, with.Claims)
		}
	}
}

func TestBusyDingTalkIsRetriedThenReported(t *testing.T) {
	e := newEnv(t, envOptions{connector: corpConnector(nil)})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)

	// Throttled twice, then fine: the person never notices.
	e.dingtalk.Fake.Fail(dingtalktest.APIUserGet, dingtalktest.Failure{ErrCode: 90018, Times: 2})
	e.loginTokens(t, party)

	// Throttled for good: a "busy" page and temporarily_unavailable.
	e.dingtalk.Fake.Fail(dingtalktest.APIGetByUnionID, dingtalktest.Failure{ErrCode: -1})
	resp, body := newBrowser(t).visit(e.authorizeURL(party, &loginAttempt{}))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "DingTalk is not answering") {
		t.Fatalf("status %d\n%s", resp.StatusCode, body)
	}
	if q := backToClientError(t, body, rpRedirectURI); q.Get("error") != "temporarily_unavailable" {
		t.Errorf("client is told %q", q.Get("error"))
	}
}

func sameStrings(got any, want ...string) bool {
	list, ok := got.([]any)
	if !ok || len(list) != len(want) {
		return false
	}
	var s []string
	for _, v := range list {
		str, _ := v.(string)
		s = append(s, str)
	}
	slices.Sort(s)
	w := slices.Clone(want)
	slices.Sort(w)
	return slices.Equal(s, w)
}

func noFollow() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// With several connectors, the DingTalk client skips the chooser when exactly
// one connector can log people in there.
func TestInAppPicksTheOnlyInAppConnector(t *testing.T) {
	e := newEnv(t, envOptions{twoConnectors: true, connector: corpConnector(nil)})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	a := &loginAttempt{}
	resp, _ := e.inAppLogin(t, newBrowser(t), e.authorizeURL(party, a), e.user.UnionID)
	if _, err := exchange(t, party, mustQuery(t, resp.Header.Get("Location")), a); err != nil {
		t.Fatal(err)
	}
	// Outside the client the person still chooses.
	_, body := newBrowser(t).visit(e.authorizeURL(party, &loginAttempt{}))
	if !strings.Contains(body, "Choose how to log in") {
		t.Errorf("outside DingTalk: no chooser\n%s", body)
	}
}

// A code the DingTalk client gave once cannot log anyone in again.
func TestInAppCodeIsSingleUse(t *testing.T) {
	e := newEnv(t, envOptions{connector: corpConnector(nil)})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	code, err := e.dingtalk.Fake.InAppCode(dingtalktest.DemoCorpID, e.user.UnionID)
	if err != nil {
		t.Fatal(err)
	}
	post := func() (*http.Response, string) {
		b := newBrowser(t)
		_, body := e.inAppPage(t, b, e.authorizeURL(party, &loginAttempt{}))
		action, fields := pageForm(t, e.issuer, body)
		fields.Set("code", code)
		return b.submit(action, fields)
	}
	if resp, _ := post(); resp.StatusCode != http.StatusFound {
		t.Fatalf("first use: %d", resp.StatusCode)
	}
	resp, body := post()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The DingTalk login expired") {
		t.Fatalf("second use: %d\n%s", resp.StatusCode, body)
	}
	if q := backToClientError(t, body, rpRedirectURI); q.Get("error") != "server_error" {
		t.Errorf("client is told %q", q.Get("error"))
	}
}

// DingTalk's own limits through the whole server: the per-IP ban is not retried
// and the operator's log says what it is; the organisation's monthly quota
// (90020) says the cause and the fix; the person sees a page either way.
func TestDingTalkLimitsReachTheOperator(t *testing.T) {
	for _, tc := range []struct {
		name, api string
		failure   dingtalktest.Failure
		status    int
		page, log string
	}{
		{"per-IP ban", dingtalktest.APIGetByUnionID,
			dingtalktest.Failure{Status: 403, Body: `{"status":1111,"wait":5,"source":"x5","punish":"deny","uuid":"1"}`, For: 5 * time.Minute},
			http.StatusServiceUnavailable, "DingTalk is not answering", "blocked this server's IP address for 5 minutes"},
		{"monthly quota", dingtalktest.APIGetByUnionID, dingtalktest.Failure{ErrCode: 90020},
			http.StatusBadGateway, "not set up correctly", "monthly DingTalk API quota"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := &lockedBuffer{}
			e := newEnv(t, envOptions{connector: corpConnector(nil), logger: slog.New(slog.NewTextHandler(buf, nil))})
			party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
			e.dingtalk.Fake.Fail(tc.api, tc.failure)
			resp, body := newBrowser(t).visit(e.authorizeURL(party, &loginAttempt{}))
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.page) {
				t.Fatalf("status %d, want %d with %q:\n%s", resp.StatusCode, tc.status, tc.page, body)
			}
			if n := e.dingtalk.Fake.Calls(tc.api); n != 1 {
				t.Errorf("DingTalk called %d times, want 1: neither is retried", n)
			}
			if logs := buf.String(); !strings.Contains(logs, tc.log) {
				t.Errorf("the log does not tell the operator %q:\n%s", tc.log, logs)
			}
		})
	}
}
