package dingtalk_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/upstream"
	"github.com/dingbridge/dingbridge/upstream/dingtalk"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// snsMode is the legacy scan login with the legacy app.
func snsMode(c *dingtalk.Config) {
	c.Mode = dingtalk.ModeSNS
	c.ClientID, c.ClientSecret = snsAppID, snsAppSecret
}

// withCorpApp gives an sns connector the demo organisation's internal app.
func withCorpApp(c *dingtalk.Config) {
	c.CorpID = dingtalktest.DemoCorpID
	c.CorpAppKey, c.CorpAppSecret = corpAppKey, corpAppSecret
}

func TestSNSLoginURL(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, snsMode)
	raw, err := e.conn.LoginURL(testState, testCallback)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Scheme+"://"+u.Host+u.Path, e.fake.URL+"/connect/qrconnect"; got != want {
		t.Errorf("login URL points at %s, want %s", got, want)
	}
	want := url.Values{
		"appid":         {snsAppID},
		"response_type": {"code"},
		"scope":         {"snsapi_login"},
		"state":         {testState},
		"redirect_uri":  {testCallback},
	}
	if got := u.Query(); got.Encode() != want.Encode() {
		t.Errorf("query = %v\nwant    %v", got, want)
	}
}

func TestSNSLoginReturnsTheIdentity(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, snsMode)
	got, err := e.callback(e.login(lisi().UnionID))
	if err != nil {
		t.Fatalf("HandleCallback: %v", err)
	}
	// The legacy login knows no organisation, email or phone.
	want := upstream.Identity{UnionID: lisi().UnionID, OpenID: lisi().OpenID, Nick: "李四", Method: upstream.MethodSNS}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("identity = %+v\nwant       %+v", got, want)
	}
	if n := e.fake.Calls(dingtalktest.APIGetToken); n != 0 {
		t.Errorf("gettoken called %d times without a directory", n)
	}
}

func TestSNSLoginReadsTheDirectory(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, snsMode, withCorpApp)
	got, err := e.callback(e.login(zhangsan().UnionID))
	if err != nil {
		t.Fatalf("HandleCallback: %v", err)
	}
	want := upstream.Identity{
		UnionID: zhangsan().UnionID, OpenID: zhangsan().OpenID, UserID: "zhangsan", CorpID: dingtalktest.DemoCorpID,
		Nick: "张三", Email: "zhangsan@example.com", // the directory fills what the legacy login lacks
		Title: "后端工程师", JobNumber: "A0001", OrgEmail: "zhangsan@corp.example.com",
		DirectoryEmail: "zhangsan@example.com", Groups: []string{"后端组"}, Method: upstream.MethodSNS,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("identity = %+v\nwant       %+v", got, want)
	}
}

func TestSNSDeniedLoginIsAccessDenied(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, snsMode)
	e.fake.AutoDeny(true)
	loginURL, err := e.conn.LoginURL(testState, testCallback)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.callback(httptest.NewRequest(http.MethodGet, e.follow(loginURL), nil))
	assertSentinel(t, err, upstream.ErrAccessDenied)
}

func TestSNSCallbackWithoutCode(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, snsMode)
	_, err := e.callback(httptest.NewRequest(http.MethodGet, testCallback+"?state="+testState, nil))
	assertSentinel(t, err, nil)
	if n := e.fake.Calls(dingtalktest.APISNSUserInfo); n != 0 {
		t.Errorf("getuserinfo_bycode called %d times without a code", n)
	}
}

// Each error getuserinfo_bycode can give, injected.
func TestSNSInjectedErrors(t *testing.T) {
	tests := []struct {
		errcode int
		want    error
		hint    string
	}{
		{853001, upstream.ErrMisconfigured, "clock"},
		{853002, upstream.ErrMisconfigured, "NTP"},
		{853003, upstream.ErrMisconfigured, "ClientID"},
		{853004, upstream.ErrMisconfigured, "ClientSecret"},
		{40078, upstream.ErrLoginExpired, "40078"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.errcode), func(t *testing.T) {
			e := newEnv(t, dingtalktest.Config{}, snsMode)
			r := e.login(zhangsan().UnionID)
			e.fake.Fail(dingtalktest.APISNSUserInfo, dingtalktest.Failure{ErrCode: tt.errcode, ErrMsg: "x", Times: 1})
			_, err := e.callback(r)
			assertSentinel(t, err, tt.want)
			if !strings.Contains(err.Error(), tt.hint) || !strings.Contains(err.Error(), "errcode "+strconv.Itoa(tt.errcode)) {
				t.Errorf("error %q lacks the errcode or %q", err, tt.hint)
			}
			if n := e.fake.Calls(dingtalktest.APISNSUserInfo); n != 1 {
				t.Errorf("getuserinfo_bycode called %d times; a refusal is not retried", n)
			}
		})
	}
}

// The same errors, as the fake gives them for real.
func TestSNSRealErrors(t *testing.T) {
	t.Run("wrong secret is 853004", func(t *testing.T) {
		e := newEnv(t, dingtalktest.Config{}, snsMode, func(c *dingtalk.Config) { c.ClientSecret = "wrong-" + snsAppSecret })
		e.leakable = append(e.leakable, "wrong-"+snsAppSecret)
		_, err := e.callback(e.login(zhangsan().UnionID))
		assertSentinel(t, err, upstream.ErrMisconfigured)
		if !strings.Contains(err.Error(), "853004") {
			t.Errorf("error %q lacks 853004", err)
		}
	})
	t.Run("clock two minutes fast is 853002", func(t *testing.T) {
		e := newEnv(t, dingtalktest.Config{}, snsMode, func(c *dingtalk.Config) {
			c.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
		})
		_, err := e.callback(e.login(zhangsan().UnionID))
		assertSentinel(t, err, upstream.ErrMisconfigured)
		if !strings.Contains(err.Error(), "853002") || !strings.Contains(err.Error(), "NTP") {
			t.Errorf("error %q lacks 853002 and the NTP hint", err)
		}
	})
	t.Run("clock 30 seconds slow is fine", func(t *testing.T) {
		e := newEnv(t, dingtalktest.Config{}, snsMode, func(c *dingtalk.Config) {
			c.Now = func() time.Time { return time.Now().Add(-30 * time.Second) }
		})
		if _, err := e.callback(e.login(zhangsan().UnionID)); err != nil {
			t.Errorf("HandleCallback: %v", err)
		}
	})
	t.Run("unknown appid is 853003", func(t *testing.T) {
		e := newEnv(t, dingtalktest.Config{}, snsMode)
		r := e.login(zhangsan().UnionID)
		other, err := dingtalk.New(dingtalk.Config{Mode: dingtalk.ModeSNS, ClientID: "dingnosuchapp", ClientSecret: snsAppSecret,
			Endpoints: e.fake.Endpoints(), HTTPClient: e.cfg.HTTPClient})
		if err != nil {
			t.Fatal(err)
		}
		e.conn = other
		_, err = e.callback(r)
		assertSentinel(t, err, upstream.ErrMisconfigured)
		if !strings.Contains(err.Error(), "853003") {
			t.Errorf("error %q lacks 853003", err)
		}
	})
	t.Run("replayed code is 40078", func(t *testing.T) {
		e := newEnv(t, dingtalktest.Config{}, snsMode)
		r := e.login(zhangsan().UnionID)
		if _, err := e.callback(r); err != nil {
			t.Fatal(err)
		}
		_, err := e.callback(r)
		assertSentinel(t, err, upstream.ErrLoginExpired)
	})
}

func TestSignature(t *testing.T) {
	// The vector of shared/dingtalk-api.md §3.4.
	ts, sig := dingtalk.Signature("testappSecret", time.UnixMilli(1587046137901))
	if ts != "1587046137901" || sig != "DyeWC1B0VlhcI42PODOd3x5nhYxkoQkAYkwXgQD1t3I=" {
		t.Errorf("Signature(vector) = %s, %s", ts, sig)
	}
	if got := (url.Values{"signature": {sig}}).Encode(); got != "signature=DyeWC1B0VlhcI42PODOd3x5nhYxkoQkAYkwXgQD1t3I%3D" {
		t.Errorf("signature in the query: %s", got)
	}

	// And computed here, by hand, for other inputs.
	for _, tc := range []struct {
		secret string
		at     time.Time
	}{
		{snsAppSecret, time.Date(2025, 3, 1, 9, 0, 0, 123e6, time.UTC)},
		{"含中文的密钥/+=", time.Date(2031, 12, 31, 23, 59, 59, 999e6, time.FixedZone("CST", 8*3600))},
	} {
		ts, sig := dingtalk.Signature(tc.secret, tc.at)
		wantTS := strconv.FormatInt(tc.at.UnixNano()/1e6, 10)
		mac := hmac.New(sha256.New, []byte(tc.secret))
		mac.Write([]byte(wantTS))
		if wantSig := base64.StdEncoding.EncodeToString(mac.Sum(nil)); ts != wantTS || sig != wantSig {
			t.Errorf("Signature(%q, %s) = %s, %s; want %s, %s", tc.secret, tc.at, ts, sig, wantTS, wantSig)
		}
	}
}
