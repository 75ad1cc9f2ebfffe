package dingtalk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/upstream"
	"github.com/dingbridge/dingbridge/upstream/dingtalk"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

const (
	// testClientID is an internal app of the demo organisation: it logs people in
	// (oauth2) and, by default, reads the directory.
	testClientID = "dingq8xzlmtestapp"
	testSecret   = "S3cr3t-must-never-show-9f8e7d6c5b4a"
	// snsAppID is a legacy login app (old platform): sns mode, no organisation.
	snsAppID     = "dingoa7legacysnsapp"
	snsAppSecret = "Sns-S3cr3t-never-shown-1a2b3c4d5e"
	// corpAppKey is a second internal app of the demo organisation, for sns mode.
	corpAppKey    = "dingcorpdirectoryapp"
	corpAppSecret = "C0rp-S3cr3t-never-shown-6f7e8d9c0b"
	testCallback  = "https://sso.example.com/callback/dingtalk"
	testState     = "st4te-xyz"
)

// The demo users, by what they have.
func zhangsan() dingtalktest.User { return dingtalktest.DemoUsers()[0] } // email, no mobile
func lisi() dingtalktest.User     { return dingtalktest.DemoUsers()[1] } // email and mobile
func wangwu() dingtalktest.User   { return dingtalktest.DemoUsers()[2] } // neither, no organisation

// env is a fake DingTalk and a connector pointed at it. Every error that passes
// through env is checked to contain no secret, code or token (see noLeak).
type env struct {
	t    *testing.T
	fake *dingtalktest.Server
	conn *dingtalk.Connector
	cfg  dingtalk.Config // what conn was made from
	// leakable is everything that must never appear in an error string, besides
	// what wire saw.
	leakable []string
	wire     *wireRecorder
}

func newEnv(t *testing.T, fakeCfg dingtalktest.Config, adjust ...func(*dingtalk.Config)) *env {
	t.Helper()
	if fakeCfg.Apps == nil {
		fakeCfg.Apps = []dingtalktest.App{
			{ClientID: testClientID, ClientSecret: testSecret, RedirectURIs: []string{testCallback}, CorpID: dingtalktest.DemoCorpID},
			{ClientID: snsAppID, ClientSecret: snsAppSecret, RedirectURIs: []string{testCallback}},
			{ClientID: corpAppKey, ClientSecret: corpAppSecret, CorpID: dingtalktest.DemoCorpID},
		}
	}
	if fakeCfg.Users == nil {
		fakeCfg.Users = dingtalktest.DemoUsers()
	}
	if fakeCfg.Corps == nil {
		fakeCfg.Corps = []dingtalktest.Corp{dingtalktest.DemoCorp()}
	}
	fake := dingtalktest.NewServer(fakeCfg)
	t.Cleanup(fake.Close)
	wire := &wireRecorder{next: dingtalk.NewHTTPClient().Transport} // the transport serve uses
	cfg := dingtalk.Config{ClientID: testClientID, ClientSecret: testSecret, Endpoints: fake.Endpoints(),
		HTTPClient: &http.Client{Transport: wire}}
	for _, f := range adjust {
		f(&cfg)
	}
	conn, err := dingtalk.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &env{t: t, fake: fake, conn: conn, cfg: cfg, wire: wire,
		leakable: []string{testSecret, snsAppSecret, corpAppSecret}}
}

// login plays the browser: follows the login URL with the fake approving unionID
// and returns DingTalk's redirect back to us, as the request our callback receives.
func (e *env) login(unionID string) *http.Request {
	e.t.Helper()
	e.fake.AutoApprove(unionID)
	loginURL, err := e.conn.LoginURL(testState, testCallback)
	if err != nil {
		e.t.Fatalf("LoginURL: %v", err)
	}
	location := e.follow(loginURL)
	callback, err := url.Parse(location)
	if err != nil {
		e.t.Fatalf("redirect %q: %v", location, err)
	}
	for _, name := range []string{"authCode", "code"} {
		if code := callback.Query().Get(name); code != "" {
			e.leakable = append(e.leakable, code)
		}
	}
	return httptest.NewRequest(http.MethodGet, location, nil)
}

// follow GETs rawURL and returns where it redirects to, which must be our callback.
func (e *env) follow(rawURL string) string {
	e.t.Helper()
	client := &http.Client{
		// No kept-alive connections: the goroutine count in TestHangingDingTalkTimesOut stays honest.
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(rawURL)
	if err != nil {
		e.t.Fatalf("GET login URL: %v", err)
	}
	resp.Body.Close()
	location := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(location, testCallback+"?") {
		e.t.Fatalf("login URL answered %d, Location %q; want 302 to %s", resp.StatusCode, location, testCallback)
	}
	return location
}

// callback runs HandleCallback and checks its error leaks nothing.
func (e *env) callback(r *http.Request) (upstream.Identity, error) {
	e.t.Helper()
	id, err := e.conn.HandleCallback(context.Background(), r)
	e.noLeak(err)
	return id, err
}

func (e *env) noLeak(err error) {
	e.t.Helper()
	if err == nil {
		return
	}
	for _, secret := range append(e.wire.seen(), e.leakable...) {
		if strings.Contains(err.Error(), secret) {
			e.t.Errorf("error %q contains the secret, code or token %q", err, secret)
		}
	}
}

// wireRecorder is the connector's transport in tests: it collects every secret,
// token, code and signature that crosses the wire, in either direction, so that
// noLeak can check errors for all of them.
type wireRecorder struct {
	next    http.RoundTripper
	mu      sync.Mutex
	secrets []string
}

// Where secrets travel: query parameters, JSON body fields, a header.
var (
	secretQuery    = []string{"access_token", "appsecret", "signature"}
	secretSent     = []string{"code", "tmp_auth_code", "clientSecret", "refreshToken"}
	secretAnswered = []string{"accessToken", "refreshToken", "access_token"}
)

func (w *wireRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	for _, name := range secretQuery {
		w.add(req.URL.Query().Get(name))
	}
	w.add(req.Header.Get("x-acs-dingtalk-access-token"))
	if req.Body != nil {
		body, _ := io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		w.addFields(body, secretSent)
	}
	resp, err := w.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	w.addFields(body, secretAnswered)
	return resp, err
}

func (w *wireRecorder) addFields(body []byte, secretFields []string) {
	var fields map[string]any
	if json.Unmarshal(body, &fields) != nil {
		return
	}
	for _, name := range secretFields {
		if v, ok := fields[name].(string); ok {
			w.add(v)
		}
	}
}

func (w *wireRecorder) add(secret string) {
	if len(secret) < 6 { // "", or too short to tell from ordinary text
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.secrets = append(w.secrets, secret)
}

func (w *wireRecorder) seen() []string {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.secrets)
}

func TestLoginURL(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{})
	raw, err := e.conn.LoginURL(testState, testCallback)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Scheme+"://"+u.Host+u.Path, e.fake.URL+"/oauth2/auth"; got != want {
		t.Errorf("login URL points at %s, want %s", got, want)
	}
	want := url.Values{
		"redirect_uri":  {testCallback},
		"response_type": {"code"},
		"client_id":     {testClientID},
		"scope":         {"openid"},
		"state":         {testState},
		"prompt":        {"consent"},
	}
	if got := u.Query(); got.Encode() != want.Encode() {
		t.Errorf("query = %v\nwant    %v", got, want)
	}
}

func TestLoginURLWithCorpID(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, func(c *dingtalk.Config) {
		c.Scope = "openid  corpid"
		c.CorpID = dingtalktest.DemoCorpID
	})
	raw, err := e.conn.LoginURL(testState, testCallback)
	if err != nil {
		t.Fatal(err)
	}
	// DingTalk documents the space in the scope as %20, not "+".
	if !strings.Contains(raw, "scope=openid%20corpid") {
		t.Errorf("login URL %s does not carry scope=openid%%20corpid", raw)
	}
	u, _ := url.Parse(raw)
	if got := u.Query().Get("corpId"); got != dingtalktest.DemoCorpID {
		t.Errorf("corpId = %q, want %q", got, dingtalktest.DemoCorpID)
	}
}

func TestLoginURLNeedsStateAndCallback(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{})
	if _, err := e.conn.LoginURL("", testCallback); err == nil {
		t.Error("LoginURL with empty state: no error")
	}
	if _, err := e.conn.LoginURL(testState, ""); err == nil {
		t.Error("LoginURL with empty callback: no error")
	}
}

func TestNewNamesTheBadField(t *testing.T) {
	valid := dingtalk.Config{ClientID: testClientID, ClientSecret: testSecret}
	tests := []struct {
		name   string
		adjust func(*dingtalk.Config)
		field  string
	}{
		{"no client id", func(c *dingtalk.Config) { c.ClientID = "" }, "ClientID"},
		{"no client secret", func(c *dingtalk.Config) { c.ClientSecret = "" }, "ClientSecret"},
		{"scope without openid", func(c *dingtalk.Config) { c.Scope = "corpid" }, "Scope"},
		{"corp id without corpid scope", func(c *dingtalk.Config) { c.CorpID = "ding123" }, "CorpID"},
		{"relative api url", func(c *dingtalk.Config) { c.Endpoints.API = "api.dingtalk.com" }, "Endpoints.API"},
		{"login url with query", func(c *dingtalk.Config) { c.Endpoints.Login = "https://login.example.com/?x=1" }, "Endpoints.Login"},
		{"negative timeout", func(c *dingtalk.Config) { c.Timeout = -time.Second }, "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.adjust(&cfg)
			_, err := dingtalk.New(cfg)
			if err == nil {
				t.Fatal("New accepted the config")
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
	if _, err := dingtalk.New(valid); err != nil {
		t.Errorf("New(minimal valid config) = %v", err)
	}
}

func TestLoginReturnsTheIdentity(t *testing.T) {
	tests := []struct {
		name  string
		scope string
		user  dingtalktest.User
		want  upstream.Identity
	}{
		{"email and mobile, organisation asked", "openid corpid", lisi(), upstream.Identity{
			UnionID: lisi().UnionID, OpenID: lisi().OpenID, CorpID: dingtalktest.DemoCorpID,
			Nick: "李四", Email: "lisi@example.com", Phone: "+8613800138000", Method: upstream.MethodOAuth2,
		}},
		{"organisation not asked", "openid", zhangsan(), upstream.Identity{
			UnionID: zhangsan().UnionID, OpenID: zhangsan().OpenID, Nick: "张三", Email: "zhangsan@example.com", Method: upstream.MethodOAuth2,
		}},
		{"no email, no mobile", "", wangwu(), upstream.Identity{
			UnionID: wangwu().UnionID, OpenID: wangwu().OpenID, Nick: "王五", Method: upstream.MethodOAuth2,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dingtalktest.Config{}, func(c *dingtalk.Config) { c.Scope = tt.scope })
			got, err := e.callback(e.login(tt.user.UnionID))
			if err != nil {
				t.Fatalf("HandleCallback: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("identity = %+v\nwant       %+v", got, tt.want)
			}
		})
	}
}

func TestCallbackReadsAuthCodeOrCode(t *testing.T) {
	for _, keep := range []string{"authCode", "code"} {
		t.Run("only "+keep, func(t *testing.T) {
			e := newEnv(t, dingtalktest.Config{})
			r := e.login(zhangsan().UnionID)
			q := r.URL.Query()
			for _, name := range []string{"authCode", "code"} {
				if name != keep {
					q.Del(name)
				}
			}
			r.URL.RawQuery = q.Encode()
			if _, err := e.callback(r); err != nil {
				t.Fatalf("HandleCallback with only %s: %v", keep, err)
			}
		})
	}
}

func TestCallbackWithoutCodeIsAnError(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{})
	_, err := e.callback(httptest.NewRequest(http.MethodGet, testCallback+"?state="+testState, nil))
	if err == nil || !strings.Contains(err.Error(), "authCode") {
		t.Fatalf("err = %v, want one naming authCode", err)
	}
	assertSentinel(t, err, nil)
	if got := e.fake.Calls(dingtalktest.APIUserAccessToken); got != 0 {
		t.Errorf("userAccessToken called %d times without a code", got)
	}
}

func TestDeniedLoginIsAccessDenied(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{})
	e.fake.AutoDeny(true)
	loginURL, err := e.conn.LoginURL(testState, testCallback)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.callback(httptest.NewRequest(http.MethodGet, e.follow(loginURL), nil))
	assertSentinel(t, err, upstream.ErrAccessDenied)
	if !strings.Contains(err.Error(), "access_denied") {
		t.Errorf("error %q does not carry DingTalk's reason", err)
	}
}

func TestErrorParamIsSanitised(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{})
	reason := "用户拒绝\n<script>" + strings.Repeat("x", 500)
	r := httptest.NewRequest(http.MethodGet, testCallback+"?"+url.Values{"error": {reason}, "state": {testState}}.Encode(), nil)
	_, err := e.callback(r)
	assertSentinel(t, err, upstream.ErrAccessDenied)
	if msg := err.Error(); strings.Contains(msg, "\n") || len(msg) > 300 || !strings.Contains(msg, "用户拒绝") {
		t.Errorf("error %q: want DingTalk's reason on one line, cut short", msg)
	}
}

func TestReplayedCodeIsLoginExpired(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{})
	r := e.login(zhangsan().UnionID)
	if _, err := e.callback(r); err != nil {
		t.Fatalf("first callback: %v", err)
	}
	_, err := e.callback(r)
	assertSentinel(t, err, upstream.ErrLoginExpired)
	for _, want := range []string{"invalidParameter.authCode.notFound", "requestid "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestLateCodeIsLoginExpired(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	e := newEnv(t, dingtalktest.Config{Now: clock.Now, CodeLifetime: 5 * time.Minute})
	r := e.login(zhangsan().UnionID)
	clock.Advance(6 * time.Minute)
	_, err := e.callback(r)
	assertSentinel(t, err, upstream.ErrLoginExpired)
}

func TestUpstreamFailures(t *testing.T) {
	ipBan := `{"status":1111,"wait":5,"source":"x5","punish":"deny","uuid":"0bc1e9a0"}`
	tests := []struct {
		name     string
		api      string
		failure  dingtalktest.Failure
		want     error    // sentinel, or nil for "none of them"
		wantText []string // in the error string
	}{
		{"token endpoint 500", dingtalktest.APIUserAccessToken,
			dingtalktest.Failure{Status: 500, Code: "InternalError", Message: "系统繁忙"}, upstream.ErrUnavailable, []string{"InternalError", "requestid "}},
		{"token endpoint 502 html page", dingtalktest.APIUserAccessToken,
			dingtalktest.Failure{Status: 502, Body: "<html><body><h1>502 Bad Gateway</h1></body></html>"}, upstream.ErrUnavailable, []string{"HTTP 502", "Bad Gateway"}},
		{"token endpoint 429", dingtalktest.APIUserAccessToken,
			dingtalktest.Failure{Status: 429, Code: "Throttling"}, upstream.ErrUnavailable, nil},
		{"token endpoint qps limit", dingtalktest.APIUserAccessToken,
			dingtalktest.Failure{Status: 403, Code: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}, upstream.ErrUnavailable, nil},
		{"users/me qpm limit", dingtalktest.APIUsersMe,
			dingtalktest.Failure{Status: 403, Code: "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi"}, upstream.ErrUnavailable, nil},
		{"gateway ip ban, 200", dingtalktest.APIUserAccessToken,
			dingtalktest.Failure{Body: ipBan}, upstream.ErrUnavailable, []string{"throttling"}},
		{"gateway ip ban, 403", dingtalktest.APIUsersMe,
			dingtalktest.Failure{Status: 403, Body: ipBan}, upstream.ErrUnavailable, []string{"throttling"}},
		{"users/me 500", dingtalktest.APIUsersMe,
			dingtalktest.Failure{Status: 503, Code: "ServiceUnavailable"}, upstream.ErrUnavailable, nil},
		{"users/me rejects the token", dingtalktest.APIUsersMe,
			dingtalktest.Failure{Status: 400, Code: "InvalidAuthentication", Message: "不合法的access_token"}, nil, []string{"不合法的access_token"}},
		{"token answer malformed", dingtalktest.APIUserAccessToken,
			dingtalktest.Failure{Body: `{"accessToken":"abc",`}, nil, []string{"malformed JSON", "requestid "}},
		{"token answer without token", dingtalktest.APIUserAccessToken,
			dingtalktest.Failure{Body: `{"expireIn":7200}`}, nil, []string{"no accessToken"}},
		{"users/me answer malformed", dingtalktest.APIUsersMe,
			dingtalktest.Failure{Body: `nick=张三`}, nil, []string{"malformed JSON"}},
		{"users/me answer without unionId", dingtalktest.APIUsersMe,
			dingtalktest.Failure{Body: `{"nick":"张三","openId":"x"}`}, nil, []string{"no unionId"}},
		{"answer too large", dingtalktest.APIUsersMe,
			dingtalktest.Failure{Body: `{"nick":"` + strings.Repeat("长", 1<<19) + `"}`}, nil, []string{"larger than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dingtalktest.Config{})
			r := e.login(zhangsan().UnionID)
			e.fake.Fail(tt.api, tt.failure)
			// Throttling lasts (Times 0): the deadline ends the retries early.
			// The other answers are not retried, so they get time to be read
			// (a 1.5 MB body under -race on a busy machine can take 400 ms).
			deadline := 400 * time.Millisecond
			if tt.want == nil {
				deadline = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			_, err := e.conn.HandleCallback(ctx, r)
			e.noLeak(err)
			assertSentinel(t, err, tt.want)
			for _, want := range tt.wantText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestMissingPermissionTellsTheOperator(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{Apps: []dingtalktest.App{{
		ClientID: testClientID, ClientSecret: testSecret, RedirectURIs: []string{testCallback}, NoContactUserRead: true,
	}}})
	_, err := e.callback(e.login(zhangsan().UnionID))
	assertSentinel(t, err, upstream.ErrMisconfigured)
	for _, want := range []string{"Forbidden.AccessDenied.AccessTokenPermissionDenied", "grant Contact.User.Read", "requestid "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	var apiErr *dingtalk.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusForbidden {
		t.Errorf("errors.As(*APIError) = %+v; want HTTP 403", apiErr)
	}
}

func TestWrongSecretIsAPlainError(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, func(c *dingtalk.Config) { c.ClientSecret = "wrong-" + testSecret })
	e.leakable = append(e.leakable, "wrong-"+testSecret)
	_, err := e.callback(e.login(zhangsan().UnionID))
	assertSentinel(t, err, nil)
	if err == nil || !strings.Contains(err.Error(), "invalidClientIdOrSecret") {
		t.Errorf("err = %v, want DingTalk's code in it", err)
	}
}

// A DingTalk message that quoted our request must not carry the secret or code on.
func TestEchoedSecretsAreRedacted(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{})
	r := e.login(zhangsan().UnionID)
	code := r.URL.Query().Get("authCode")
	e.fake.Fail(dingtalktest.APIUserAccessToken, dingtalktest.Failure{
		Status: 400, Code: "invalidParameter", Message: "bad request clientSecret=" + testSecret + " code=" + code,
	})
	_, err := e.callback(r) // callback checks for leaks
	if err == nil || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("err = %v, want the echoed values redacted", err)
	}

	const token = "tok-3c5e7a9b1d"
	e.fake.Fail(dingtalktest.APIUsersMe, dingtalktest.Failure{Status: 502, Body: "upstream said no to " + token})
	client, err := dingtalk.NewClient(dingtalk.ClientConfig{ClientID: testClientID, ClientSecret: testSecret, Endpoints: e.fake.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Me(context.Background(), token)
	if err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("Me error %v: want an error without the token", err)
	}
}

func TestHangingDingTalkTimesOut(t *testing.T) {
	before := runtime.NumGoroutine()
	transport := &http.Transport{}
	e := newEnv(t, dingtalktest.Config{}, func(c *dingtalk.Config) {
		c.Timeout = 100 * time.Millisecond
		c.HTTPClient = &http.Client{Transport: transport}
	})
	r := e.login(zhangsan().UnionID)
	e.fake.Fail(dingtalktest.APIUserAccessToken, dingtalktest.Failure{Hang: true})

	// The fake hangs until the client goes away or it is closed; only the client's
	// own timeout can end this call. The guard below only keeps a broken build
	// from hanging the test run.
	result := make(chan error, 1)
	go func() {
		_, err := e.conn.HandleCallback(context.Background(), r)
		result <- err
	}()
	var err error
	select {
	case err = <-result:
	case <-time.After(30 * time.Second):
		t.Fatal("HandleCallback did not return while DingTalk hung")
	}
	e.noLeak(err)
	assertSentinel(t, err, upstream.ErrUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}

	e.fake.Close()
	transport.CloseIdleConnections()
	waitForGoroutines(t, before)
}

func TestUnreachableDingTalkIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + l.Addr().String()
	l.Close() // nothing listens there any more: connection refused
	e := newEnv(t, dingtalktest.Config{})
	r := e.login(zhangsan().UnionID)

	conn, err := dingtalk.New(dingtalk.Config{ClientID: testClientID, ClientSecret: testSecret,
		Endpoints: dingtalk.Endpoints{Login: e.fake.URL, API: deadURL, OAPI: deadURL}})
	if err != nil {
		t.Fatal(err)
	}
	e.conn = conn
	_, err = e.callback(r)
	assertSentinel(t, err, upstream.ErrUnavailable)
}

func TestCallerGivingUpIsNotUnavailable(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{})
	r := e.login(zhangsan().UnionID)
	e.fake.Fail(dingtalktest.APIUserAccessToken, dingtalktest.Failure{Hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the request has reached the fake.
		for e.fake.Calls(dingtalktest.APIUserAccessToken) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := e.conn.HandleCallback(ctx, r)
	e.noLeak(err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	assertSentinel(t, err, nil)
}

func TestUserTokenPrintsNoToken(t *testing.T) {
	tok := dingtalk.UserToken{AccessToken: "acc-secret-1", RefreshToken: "ref-secret-2", ExpiresIn: 2 * time.Hour}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(format, tok); strings.Contains(s, "secret") {
			t.Errorf("Sprintf(%q, token) = %s", format, s)
		}
	}
}

// assertSentinel checks err is a non-nil error matching want and no other
// upstream sentinel; want nil means it matches none of them.
func assertSentinel(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want an error (sentinel %v)", want)
	}
	t.Logf("error: %v", err) // go test -v shows what an operator would read
	for _, sentinel := range sentinels {
		if got := errors.Is(err, sentinel); got != (sentinel == want) {
			t.Errorf("errors.Is(%q, %q) = %v", err, sentinel, got)
		}
	}
}

var sentinels = []error{upstream.ErrAccessDenied, upstream.ErrUnavailable, upstream.ErrLoginExpired, upstream.ErrMisconfigured, upstream.ErrNotAllowed}

// waitForGoroutines waits until no more goroutines run than before, which shows
// the hanging request left nothing behind.
func waitForGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestCallerDeadlineIsUnavailable(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{})
	r := e.login(zhangsan().UnionID)
	e.fake.Fail(dingtalktest.APIUserAccessToken, dingtalktest.Failure{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.conn.HandleCallback(ctx, r) // the connector's own timeout is 10s
	e.noLeak(err)
	assertSentinel(t, err, upstream.ErrUnavailable)
	if !strings.Contains(err.Error(), "caller's deadline") {
		t.Errorf("error %q does not say whose deadline passed", err)
	}
}
