package dingtalk_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/dingbridge/dingbridge/upstream"
	"github.com/dingbridge/dingbridge/upstream/dingtalk"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// inCorp is an oauth2 connector of the demo organisation's internal app: in-app
// login and directory with the login app's own credentials.
func inCorp(c *dingtalk.Config) {
	c.Scope = "openid corpid"
	c.CorpID = dingtalktest.DemoCorpID
}

// inAppCode is what DingTalk's JSAPI would give the page for unionID.
func (e *env) inAppCode(unionID string) string {
	e.t.Helper()
	code, err := e.fake.InAppCode(dingtalktest.DemoCorpID, unionID)
	if err != nil {
		e.t.Fatal(err)
	}
	e.leakable = append(e.leakable, code)
	return code
}

// inApp logs unionID in in-app and checks the error leaks nothing.
func (e *env) inApp(ctx context.Context, unionID string) (upstream.Identity, error) {
	e.t.Helper()
	id, err := e.conn.HandleInAppCode(ctx, e.inAppCode(unionID))
	e.noLeak(err)
	return id, err
}

const (
	dingTalkUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 AliApp(DingTalk/7.6.0) com.laiwang.DingTalk/34277510 Channel/201200 language/zh-Hans-CN"
	desktopUA  = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
)

func TestInAppLoginOffered(t *testing.T) {
	const script = "https://static.example.com/dingtalk.open.js"
	tests := []struct {
		name   string
		adjust func(*dingtalk.Config)
		ua     string
		want   upstream.InAppLogin
		ok     bool
	}{
		{"inside DingTalk", inCorp, dingTalkUA,
			upstream.InAppLogin{CorpID: dingtalktest.DemoCorpID, ClientID: testClientID, ScriptURL: dingtalk.DefaultJSAPIURL}, true},
		{"user agent in lower case", inCorp, "mozilla/5.0 dingtalk/7.0",
			upstream.InAppLogin{CorpID: dingtalktest.DemoCorpID, ClientID: testClientID, ScriptURL: dingtalk.DefaultJSAPIURL}, true},
		{"own script, own corp app", func(c *dingtalk.Config) {
			inCorp(c)
			c.CorpAppKey, c.CorpAppSecret = corpAppKey, corpAppSecret
			c.Endpoints.JSAPI = script
		}, dingTalkUA, upstream.InAppLogin{CorpID: dingtalktest.DemoCorpID, ClientID: corpAppKey, ScriptURL: script}, true},
		{"sns with a corp app", func(c *dingtalk.Config) { snsMode(c); withCorpApp(c) }, dingTalkUA,
			upstream.InAppLogin{CorpID: dingtalktest.DemoCorpID, ClientID: corpAppKey, ScriptURL: dingtalk.DefaultJSAPIURL}, true},
		{"outside DingTalk", inCorp, desktopUA, upstream.InAppLogin{}, false},
		{"no user agent", inCorp, "", upstream.InAppLogin{}, false},
		{"no organisation", func(*dingtalk.Config) {}, dingTalkUA, upstream.InAppLogin{}, false},
		{"sns without a corp app", snsMode, dingTalkUA, upstream.InAppLogin{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dingtalktest.Config{}, tt.adjust)
			r := httptest.NewRequest(http.MethodGet, "https://sso.example.com/login", nil)
			r.Header.Set("User-Agent", tt.ua)
			got, ok := e.conn.InAppLogin(r)
			if ok != tt.ok || got != tt.want {
				t.Errorf("InAppLogin = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestInAppLoginReturnsTheIdentity(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, inCorp)
	got, err := e.inApp(context.Background(), lisi().UnionID)
	if err != nil {
		t.Fatalf("HandleInAppCode: %v", err)
	}
	want := upstream.Identity{
		UnionID: lisi().UnionID, UserID: "lisi", CorpID: dingtalktest.DemoCorpID, Nick: "李四",
		Email: "lisi@example.com", Phone: "+8613800138000",
		Title: "产品经理", JobNumber: "A0002", OrgEmail: "lisi@corp.example.com",
		DirectoryEmail: "lisi@example.com", Groups: []string{"研发部", "市场部"}, Method: upstream.MethodInApp,
	} // and no OpenID: the in-app flow gives none
	if !reflect.DeepEqual(got, want) {
		t.Errorf("identity = %+v\nwant       %+v", got, want)
	}
}

func TestInAppCodeReplayedIsLoginExpired(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, inCorp)
	code := e.inAppCode(zhangsan().UnionID)
	if _, err := e.conn.HandleInAppCode(context.Background(), code); err != nil {
		t.Fatal(err)
	}
	_, err := e.conn.HandleInAppCode(context.Background(), code)
	e.noLeak(err)
	assertSentinel(t, err, upstream.ErrLoginExpired)
	if !strings.Contains(err.Error(), "40078") || !strings.Contains(err.Error(), "request_id ") {
		t.Errorf("error %q lacks the errcode or request_id", err)
	}
}

func TestInAppEmptyCodeOrNoOrganisation(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, inCorp)
	if _, err := e.conn.HandleInAppCode(context.Background(), ""); err == nil {
		t.Error("HandleInAppCode(\"\") succeeded")
	}
	plain := newEnv(t, dingtalktest.Config{})
	if _, err := plain.conn.HandleInAppCode(context.Background(), plain.inAppCode(zhangsan().UnionID)); err == nil {
		t.Error("HandleInAppCode without CorpID succeeded")
	}
	if n := e.fake.Calls(dingtalktest.APIGetUserInfo) + plain.fake.Calls(dingtalktest.APIGetUserInfo); n != 0 {
		t.Errorf("getuserinfo called %d times", n)
	}
}

func TestAppTokenIsFetchedOnceForConcurrentLogins(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, inCorp)
	const logins = 50
	codes := make([]string, logins)
	for i := range codes {
		codes[i] = e.inAppCode(dingtalktest.DemoUsers()[i%2].UnionID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, logins)
	start := make(chan struct{})
	for _, code := range codes {
		wg.Go(func() {
			<-start
			_, err := e.conn.HandleInAppCode(context.Background(), code)
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			e.noLeak(err)
			t.Errorf("HandleInAppCode: %v", err)
		}
	}
	if n := e.fake.Calls(dingtalktest.APIGetToken); n != 1 {
		t.Errorf("gettoken called %d times for %d concurrent logins, want 1", n, logins)
	}
}

func TestExpiredAppTokenIsReplacedOnce(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, inCorp)
	if _, err := e.inApp(context.Background(), zhangsan().UnionID); err != nil {
		t.Fatal(err)
	}
	e.fake.ExpireAppTokens() // DingTalk answers the cached token with 88/40014 from now on
	userInfoCalls := e.fake.Calls(dingtalktest.APIGetUserInfo)
	id, err := e.inApp(context.Background(), zhangsan().UnionID)
	if err != nil {
		t.Fatalf("login after the token expired: %v", err)
	}
	if id.UserID != "zhangsan" {
		t.Errorf("identity = %+v", id)
	}
	if n := e.fake.Calls(dingtalktest.APIGetToken); n != 2 {
		t.Errorf("gettoken called %d times, want 2 (once more after expiry)", n)
	}
	if n := e.fake.Calls(dingtalktest.APIGetUserInfo) - userInfoCalls; n != 2 {
		t.Errorf("getuserinfo called %d times, want 2 (refused token, then the new one)", n)
	}
	// And the new token is kept.
	if _, err := e.inApp(context.Background(), lisi().UnionID); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Calls(dingtalktest.APIGetToken); n != 2 {
		t.Errorf("gettoken called %d times, want still 2", n)
	}
}

// A token DingTalk keeps refusing is fetched anew once, not in a loop.
func TestRefusedAppTokenIsRetriedOnlyOnce(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, inCorp)
	e.fake.Fail(dingtalktest.APIGetUserInfo, dingtalktest.Failure{ErrCode: 88, SubCode: "40014"})
	_, err := e.inApp(context.Background(), zhangsan().UnionID)
	assertSentinel(t, err, nil)
	if !strings.Contains(err.Error(), "40014") {
		t.Errorf("error %q lacks 40014", err)
	}
	if a, b := e.fake.Calls(dingtalktest.APIGetToken), e.fake.Calls(dingtalktest.APIGetUserInfo); a != 2 || b != 2 {
		t.Errorf("gettoken called %d times, getuserinfo %d; want 2 and 2", a, b)
	}
}

func TestWrongCorpAppIsMisconfigured(t *testing.T) {
	tests := []struct {
		name   string
		adjust func(*dingtalk.Config)
	}{
		{"wrong secret", func(c *dingtalk.Config) {
			inCorp(c)
			c.CorpAppKey, c.CorpAppSecret = corpAppKey, "wrong-"+corpAppSecret
		}},
		{"not an internal app", func(c *dingtalk.Config) {
			snsMode(c)
			c.CorpID = dingtalktest.DemoCorpID
			c.CorpAppKey, c.CorpAppSecret = snsAppID, snsAppSecret // the legacy app has no organisation
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dingtalktest.Config{}, tt.adjust)
			e.leakable = append(e.leakable, "wrong-"+corpAppSecret)
			_, err := e.inApp(context.Background(), zhangsan().UnionID)
			assertSentinel(t, err, upstream.ErrMisconfigured)
			for _, want := range []string{"gettoken", "40089", "CorpAppKey"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestInactiveMemberWithRequireMembership(t *testing.T) {
	users := dingtalktest.DemoUsers()
	users[0].Inactive = true
	for _, require := range []bool{true, false} {
		e := newEnv(t, dingtalktest.Config{Users: users}, inCorp, func(c *dingtalk.Config) { c.RequireMembership = require })
		id, err := e.inApp(context.Background(), users[0].UnionID)
		if !require {
			if err != nil || id.UserID != "zhangsan" {
				t.Errorf("without RequireMembership: %+v, %v; want the identity", id, err)
			}
			continue
		}
		assertSentinel(t, err, upstream.ErrNotAllowed)
		var policy *upstream.PolicyError
		if !errors.As(err, &policy) || policy.Reason != upstream.Inactive {
			t.Errorf("err = %v, want a PolicyError Inactive", err)
		}
	}
}

// failOn is a transport failing every request whose path starts with prefix, as a
// broken network would.
type failOn struct {
	prefix string
	next   http.RoundTripper
}

func (f failOn) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.URL.Path, f.prefix) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("connection reset by peer")
	}
	return f.next.RoundTrip(req)
}
