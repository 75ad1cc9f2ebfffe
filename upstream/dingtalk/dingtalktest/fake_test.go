package dingtalktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	appID       = "dingfaketestapp"
	appSecret   = "fake-app-secret"
	otherID     = "dingotherapp"
	otherSecret = "other-secret"
	redirectURI = "https://sso.example.com/callback/dingtalk?tenant=t1"
)

func newTestServer(t *testing.T, adjust ...func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		Apps: []App{
			{ClientID: appID, ClientSecret: appSecret, RedirectURIs: []string{redirectURI}},
			{ClientID: otherID, ClientSecret: otherSecret, RedirectURIs: []string{"https://other.example.com/cb"}, NoContactUserRead: true},
		},
		Users: DemoUsers(),
	}
	for _, f := range adjust {
		f(&cfg)
	}
	srv := NewServer(cfg)
	t.Cleanup(srv.Close)
	return srv
}

// authParams is a valid authorize request for appID.
func authParams() url.Values {
	return url.Values{
		"client_id":     {appID},
		"redirect_uri":  {redirectURI},
		"response_type": {"code"},
		"scope":         {"openid"},
		"prompt":        {"consent"},
		"state":         {"s-123"},
	}
}

// noRedirects is a client that shows us the fake's redirects instead of following them.
func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("answer %d %q is not JSON: %v", a.status, a.body, err)
	}
	return m
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := noRedirects().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(body)}
}

func getAuthorize(t *testing.T, srv *Server, params url.Values) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/oauth2/auth?"+params.Encode(), nil)
	return do(t, req)
}

func postAuthorize(t *testing.T, srv *Server, params url.Values) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth2/auth", strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func postToken(t *testing.T, srv *Server, contentType, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1.0/oauth2/userAccessToken", strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	return do(t, req)
}

func exchangeCode(t *testing.T, srv *Server, clientID, secret, code string) answer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"clientId": clientID, "clientSecret": secret, "code": code, "grantType": "authorization_code"})
	return postToken(t, srv, "application/json", string(body))
}

func getMe(t *testing.T, srv *Server, token string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1.0/contact/users/me", nil)
	if token != "" {
		req.Header.Set("x-acs-dingtalk-access-token", token)
	}
	return do(t, req)
}

// approve logs unionID in through the page's POST and returns the authCode.
func approve(t *testing.T, srv *Server, params url.Values, unionID string) string {
	t.Helper()
	params.Set("unionId", unionID)
	a := postAuthorize(t, srv, params)
	if a.status != http.StatusFound {
		t.Fatalf("approve: %d %s", a.status, a.body)
	}
	loc, _ := url.Parse(a.header.Get("Location"))
	return loc.Query().Get("authCode")
}

// assertAPIError checks DingTalk's error shape: status, code, and the same requestid
// in the body and the x-acs-request-id header.
func assertAPIError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	body := a.json(t)
	if a.status != status || body["code"] != code {
		t.Errorf("answer %d %s, want %d with code %s", a.status, a.body, status, code)
	}
	if id, _ := body["requestid"].(string); id == "" || id != a.header.Get("x-acs-request-id") {
		t.Errorf("requestid %q in body, %q in header; want the same, non-empty", body["requestid"], a.header.Get("x-acs-request-id"))
	}
	if _, ok := body["message"]; !ok {
		t.Errorf("answer %s has no message", a.body)
	}
}

func TestAuthorizeRejectsBadRequests(t *testing.T) {
	tests := []struct {
		name   string
		adjust func(url.Values)
		reason string // in the error page
	}{
		{"unknown client", func(p url.Values) { p.Set("client_id", "nosuchapp") }, "unknown client_id"},
		{"no client", func(p url.Values) { p.Del("client_id") }, "unknown client_id"},
		{"unregistered redirect", func(p url.Values) { p.Set("redirect_uri", "https://evil.example.com/cb") }, "not registered"},
		{"redirect only a prefix", func(p url.Values) { p.Set("redirect_uri", "https://sso.example.com/callback/dingtalk") }, "not registered"},
		{"other app's redirect", func(p url.Values) { p.Set("redirect_uri", "https://other.example.com/cb") }, "not registered"},
		{"response type token", func(p url.Values) { p.Set("response_type", "token") }, "response_type must be code"},
		{"no openid", func(p url.Values) { p.Set("scope", "corpid") }, "scope must contain openid"},
		{"no prompt", func(p url.Values) { p.Del("prompt") }, "prompt=consent"},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tt.name+" "+method, func(t *testing.T) {
				srv := newTestServer(t)
				srv.AutoApprove(DemoUsers()[0].UnionID) // must not bypass the checks
				params := authParams()
				tt.adjust(params)
				var a answer
				if method == http.MethodGet {
					a = getAuthorize(t, srv, params)
				} else {
					params.Set("unionId", DemoUsers()[0].UnionID)
					a = postAuthorize(t, srv, params)
				}
				if a.status != http.StatusBadRequest || a.header.Get("Location") != "" {
					t.Errorf("answer %d, Location %q; want 400 and no redirect", a.status, a.header.Get("Location"))
				}
				if !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !strings.Contains(a.body, tt.reason) {
					t.Errorf("error page lacks %q:\n%s", tt.reason, a.body)
				}
			})
		}
	}
}

func TestAuthorizePageListsUsers(t *testing.T) {
	srv := newTestServer(t)
	a := getAuthorize(t, srv, authParams())
	if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Fatalf("answer %d %s", a.status, a.header.Get("Content-Type"))
	}
	wants := []string{
		"钉钉登录（模拟）", "DingTalk login (fake)", `lang="zh-CN"`,
		`<form method="post" action="/oauth2/auth">`,
		`name="deny" value="1"`, "拒绝 / Deny",
		`<input type="hidden" name="state" value="s-123">`,
		`<input type="hidden" name="redirect_uri" value="https://sso.example.com/callback/dingtalk?tenant=t1">`,
	}
	for _, u := range DemoUsers() {
		wants = append(wants, u.Nick, `name="unionId" value="`+u.UnionID+`"`)
	}
	for _, want := range wants {
		if !strings.Contains(a.body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// Self-contained: no scripts, stylesheets or images fetched from anywhere.
	for _, external := range []string{"<script", "<link", "<img", "src=", "url("} {
		if strings.Contains(a.body, external) {
			t.Errorf("page contains %s", external)
		}
	}
}

func TestApproveRedirectsWithCodeAndState(t *testing.T) {
	srv := newTestServer(t)
	params := authParams()
	params.Set("unionId", DemoUsers()[1].UnionID)
	a := postAuthorize(t, srv, params)
	if a.status != http.StatusFound {
		t.Fatalf("answer %d %s", a.status, a.body)
	}
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != "https://sso.example.com/callback/dingtalk" {
		t.Errorf("redirected to %s", got)
	}
	if q.Get("authCode") == "" || q.Get("authCode") != q.Get("code") {
		t.Errorf("authCode %q, code %q: want the same code under both names", q.Get("authCode"), q.Get("code"))
	}
	if q.Get("state") != "s-123" || q.Get("tenant") != "t1" {
		t.Errorf("query %v: want state s-123 and the redirect URI's own tenant=t1", q)
	}
}

func TestDenyRedirectsWithError(t *testing.T) {
	srv := newTestServer(t)
	params := authParams()
	params.Set("deny", "1")
	a := postAuthorize(t, srv, params)
	loc, _ := url.Parse(a.header.Get("Location"))
	q := loc.Query()
	if a.status != http.StatusFound || q.Get("error") != "access_denied" || q.Get("state") != "s-123" || q.Has("authCode") || q.Has("code") {
		t.Errorf("answer %d to %s; want 302 with error and state, no code", a.status, loc)
	}
}

func TestApproveUnknownUser(t *testing.T) {
	srv := newTestServer(t)
	params := authParams()
	params.Set("unionId", "nobody")
	if a := postAuthorize(t, srv, params); a.status != http.StatusBadRequest || a.header.Get("Location") != "" {
		t.Errorf("answer %d, Location %q; want 400, no redirect", a.status, a.header.Get("Location"))
	}
}

func TestAutoApproveAndAutoDeny(t *testing.T) {
	srv := newTestServer(t)
	location := func() url.Values {
		a := getAuthorize(t, srv, authParams())
		loc, _ := url.Parse(a.header.Get("Location"))
		return loc.Query()
	}
	srv.AutoApprove(DemoUsers()[0].UnionID)
	if q := location(); q.Get("authCode") == "" {
		t.Errorf("AutoApprove: redirect query %v, want an authCode", q)
	}
	srv.AutoDeny(true)
	if q := location(); q.Get("error") != "access_denied" {
		t.Errorf("AutoDeny wins over AutoApprove: query %v, want error", q)
	}
	srv.AutoDeny(false)
	srv.AutoApprove("")
	if a := getAuthorize(t, srv, authParams()); a.status != http.StatusOK {
		t.Errorf("both off: answer %d, want the page", a.status)
	}
}

func TestUserAccessTokenNeedsAJSONBody(t *testing.T) {
	srv := newTestServer(t)
	form := url.Values{"clientId": {appID}, "clientSecret": {appSecret}, "code": {"x"}, "grantType": {"authorization_code"}}.Encode()
	assertAPIError(t, postToken(t, srv, "application/x-www-form-urlencoded", form), 400, "Missingbody")
	assertAPIError(t, postToken(t, srv, "application/json", ""), 400, "Missingbody")
	assertAPIError(t, postToken(t, srv, "application/json", "{not json"), 400, "Missingbody")
	snake := `{"client_id":"` + appID + `","client_secret":"` + appSecret + `","code":"x","grant_type":"authorization_code"}`
	assertAPIError(t, postToken(t, srv, "application/json", snake), 400, "MissingclientId")
	unsupported := `{"clientId":"` + appID + `","clientSecret":"` + appSecret + `","grantType":"password"}`
	assertAPIError(t, postToken(t, srv, "application/json;charset=utf-8", unsupported), 400, "unsupported.grant.type")
}

func TestCodeIsSingleUse(t *testing.T) {
	srv := newTestServer(t)
	code := approve(t, srv, authParams(), DemoUsers()[0].UnionID)
	first := exchangeCode(t, srv, appID, appSecret, code)
	body := first.json(t)
	if first.status != 200 || body["accessToken"] == "" || body["refreshToken"] == "" || body["expireIn"] != 7200.0 {
		t.Fatalf("first exchange: %d %s", first.status, first.body)
	}
	if _, ok := body["corpId"]; ok {
		t.Errorf("corpId %v without corpid in the scope", body["corpId"])
	}
	second := exchangeCode(t, srv, appID, appSecret, code)
	assertAPIError(t, second, 400, "invalidParameter.authCode.notFound")
	if msg := second.json(t)["message"]; msg != "不合法的临时授权码" {
		t.Errorf("message %q", msg)
	}
}

func TestFailedExchangeStillUsesTheCode(t *testing.T) {
	srv := newTestServer(t)
	code := approve(t, srv, authParams(), DemoUsers()[0].UnionID)
	assertAPIError(t, exchangeCode(t, srv, appID, "wrong", code), 401, "invalidClientIdOrSecret")
	assertAPIError(t, exchangeCode(t, srv, appID, appSecret, code), 400, "invalidParameter.authCode.notFound")

	code = approve(t, srv, authParams(), DemoUsers()[0].UnionID)
	assertAPIError(t, exchangeCode(t, srv, otherID, otherSecret, code), 400, "invalidParameter.authCode.notFound")
	assertAPIError(t, exchangeCode(t, srv, "nosuchapp", "x", "whatever"), 401, "invalidClientIdOrSecret")
}

func TestExpiredCodeAndToken(t *testing.T) {
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	srv := newTestServer(t, func(c *Config) {
		c.CodeLifetime = time.Minute
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	code := approve(t, srv, authParams(), DemoUsers()[0].UnionID)
	advance(61 * time.Second)
	assertAPIError(t, exchangeCode(t, srv, appID, appSecret, code), 400, "invalidParameter.authCode.notFound")

	code = approve(t, srv, authParams(), DemoUsers()[0].UnionID)
	token := exchangeCode(t, srv, appID, appSecret, code).json(t)["accessToken"].(string)
	advance(7200 * time.Second)
	assertAPIError(t, getMe(t, srv, token), 400, "InvalidAuthentication")
}

func TestUsersMe(t *testing.T) {
	srv := newTestServer(t)
	lisi, zhangsan := DemoUsers()[1], DemoUsers()[0]
	token := exchangeCode(t, srv, appID, appSecret, approve(t, srv, authParams(), lisi.UnionID)).json(t)["accessToken"].(string)
	me := getMe(t, srv, token)
	want := map[string]any{"nick": "李四", "unionId": lisi.UnionID, "openId": lisi.OpenID, "email": "lisi@example.com",
		"mobile": "13800138000", "stateCode": "86", "visitor": false}
	got := me.json(t)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("users/me %s = %v, want %v", k, got[k], v)
		}
	}

	token = exchangeCode(t, srv, appID, appSecret, approve(t, srv, authParams(), zhangsan.UnionID)).json(t)["accessToken"].(string)
	for _, absent := range []string{"mobile", "stateCode", "avatarUrl"} {
		if v, ok := getMe(t, srv, token).json(t)[absent]; ok {
			t.Errorf("users/me for 张三 has %s = %v; want it left out", absent, v)
		}
	}

	assertAPIError(t, getMe(t, srv, ""), 400, "InvalidAuthentication")
	assertAPIError(t, getMe(t, srv, "not-a-token"), 400, "InvalidAuthentication")
}

func TestUsersMeWithoutPermission(t *testing.T) {
	srv := newTestServer(t)
	params := authParams()
	params.Set("client_id", otherID)
	params.Set("redirect_uri", "https://other.example.com/cb")
	token := exchangeCode(t, srv, otherID, otherSecret, approve(t, srv, params, DemoUsers()[0].UnionID)).json(t)["accessToken"].(string)
	a := getMe(t, srv, token)
	assertAPIError(t, a, 403, "Forbidden.AccessDenied.AccessTokenPermissionDenied")
	if !strings.Contains(a.body, `"accessdenieddetail":{"requiredScopes":["Contact.User.Read"]}`) {
		t.Errorf("body %s lacks accessdenieddetail", a.body)
	}
}

func TestCorpIDWithCorpidScope(t *testing.T) {
	srv := newTestServer(t)
	params := authParams()
	params.Set("scope", "openid corpid")
	code := approve(t, srv, params, DemoUsers()[0].UnionID)
	if got := exchangeCode(t, srv, appID, appSecret, code).json(t)["corpId"]; got != DemoCorpID {
		t.Errorf("corpId = %v, want %s", got, DemoCorpID)
	}
}

func TestRefreshToken(t *testing.T) {
	srv := newTestServer(t)
	code := approve(t, srv, authParams(), DemoUsers()[0].UnionID)
	refresh := exchangeCode(t, srv, appID, appSecret, code).json(t)["refreshToken"].(string)
	body := `{"clientId":"` + appID + `","clientSecret":"` + appSecret + `","refreshToken":"` + refresh + `","grantType":"refresh_token"}`
	a := postToken(t, srv, "application/json", body)
	token, _ := a.json(t)["accessToken"].(string)
	if a.status != 200 || getMe(t, srv, token).status != 200 {
		t.Errorf("refresh: %d %s", a.status, a.body)
	}
	assertAPIError(t, postToken(t, srv, "application/json", body), 400, "invalidParameter.authCode.notFound")
}

func TestUnknownAPIPath(t *testing.T) {
	srv := newTestServer(t)
	for _, call := range []struct{ method, path string }{
		{http.MethodGet, "/v1.0/contact/users/nobody/extra"},
		{http.MethodGet, "/v1.0/oauth2/userAccessToken"},
		{http.MethodPost, "/v1.0/contact/users/me"},
	} {
		req, _ := http.NewRequest(call.method, srv.URL+call.path, nil)
		assertAPIError(t, do(t, req), 404, "InvalidAction.NotFound")
	}
}

func TestInjectedFailures(t *testing.T) {
	srv := newTestServer(t)
	srv.Fail(APIUsersMe, Failure{Status: 403, Code: "Forbidden.AccessDenied.QpsLimitForApi", Times: 2})
	assertAPIError(t, getMe(t, srv, "x"), 403, "Forbidden.AccessDenied.QpsLimitForApi")
	assertAPIError(t, getMe(t, srv, "x"), 403, "Forbidden.AccessDenied.QpsLimitForApi")
	assertAPIError(t, getMe(t, srv, "x"), 400, "InvalidAuthentication") // Times used up

	srv.Fail(APIUserAccessToken, Failure{Code: "InternalError"}) // until cleared; status defaults to 500
	for range 3 {
		assertAPIError(t, postToken(t, srv, "application/json", "{}"), 500, "InternalError")
	}
	srv.Fail(APIUserAccessToken, Failure{Body: `{"accessToken":`})
	if a := postToken(t, srv, "application/json", "{}"); a.status != 200 || a.body != `{"accessToken":` {
		t.Errorf("raw body failure: %d %q", a.status, a.body)
	}
	srv.ClearFailures()
	assertAPIError(t, postToken(t, srv, "application/json", "{}"), 400, "MissingclientId")

	if got := srv.Calls(APIUsersMe); got != 3 {
		t.Errorf("Calls(users/me) = %d, want 3", got)
	}
	if got := srv.Calls(APIUserAccessToken); got != 5 {
		t.Errorf("Calls(userAccessToken) = %d, want 5", got)
	}

	defer func() {
		if recover() == nil {
			t.Error("Fail with an unknown api did not panic")
		}
	}()
	srv.Fail("users/you", Failure{})
}

// A hanging request ends when its client goes away, with the fake still open.
func TestHangEndsWhenClientLeaves(t *testing.T) {
	fake := New(Config{})
	fake.Fail(APIUsersMe, Failure{Hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1.0/contact/users/me", nil)
	done := make(chan struct{})
	go func() {
		fake.ServeHTTP(httptest.NewRecorder(), req)
		close(done)
	}()
	for fake.Calls(APIUsersMe) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a guard against hanging the run, not a speed check
		t.Fatal("handler still hangs after the client left")
	}
}

// Closing the server releases a hanging request whose client would wait forever.
func TestHangEndsWhenServerCloses(t *testing.T) {
	srv := newTestServer(t)
	srv.Fail(APIUsersMe, Failure{Hang: true})
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/v1.0/contact/users/me")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for srv.Calls(APIUsersMe) == 0 {
		time.Sleep(time.Millisecond)
	}
	srv.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("request still hangs after Close")
	}
}

// Logins, failures and switches from many goroutines at once (run with -race).
// The goroutines report with t.Error: t.Fatal belongs to the test's own goroutine.
func TestConcurrentUse(t *testing.T) {
	srv := newTestServer(t)
	login := func(unionID string) error {
		params := authParams()
		params.Set("unionId", unionID)
		resp, err := noRedirects().PostForm(srv.URL+"/oauth2/auth", params)
		if err != nil {
			return err
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			return err
		}
		body, _ := json.Marshal(map[string]string{"clientId": appID, "clientSecret": appSecret,
			"code": loc.Query().Get("authCode"), "grantType": "authorization_code"})
		resp, err = http.Post(srv.URL+"/v1.0/oauth2/userAccessToken", "application/json", strings.NewReader(string(body)))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("userAccessToken answered %d", resp.StatusCode)
		}
		return nil
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := login(DemoUsers()[i%3].UnionID); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			srv.Fail(APIUsersMe, Failure{Status: 503, Times: 1})
			srv.AutoDeny(false)
			srv.ClearFailures()
			_ = srv.Calls(APIAuthorize)
		})
	}
	wg.Wait()
	if got := srv.Calls(APIAuthorize); got != 8 {
		t.Errorf("Calls(authorize) = %d, want 8", got)
	}
}
