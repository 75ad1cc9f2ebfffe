package dingtalk_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/upstream"
	"github.com/dingbridge/dingbridge/upstream/dingtalk"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

const ipBanBody = `{"status":1111,"wait":5,"source":"x5","punish":"deny","uuid":"0bc1e9a0"}`

// Busy and rate-limited answers are retried as DingTalk asks, and the login
// succeeds once DingTalk lets up, login codes included (a throttled request never
// reached the API). The fake's rate limits last a second, as DingTalk's QPS limits
// do: a retry sooner would be throttled again, so two calls show the connector
// waited the window out (it used to retry after 50-400 ms, several times).
func TestThrottledCallsAreRetriedAsDingTalkAsks(t *testing.T) {
	qpsLimit := func(f dingtalktest.Failure) dingtalktest.Failure { f.For = time.Second; return f }
	tests := []struct {
		name    string
		inApp   bool   // in-app login, else oauth2
		api     string // the fake's name
		metric  string // Metrics' name
		failure dingtalktest.Failure
		calls   int
	}{
		{"getuserinfo busy (-1)", true, dingtalktest.APIGetUserInfo, "getuserinfo", dingtalktest.Failure{ErrCode: -1, Times: 3}, 4},
		{"gettoken busy (-1)", true, dingtalktest.APIGetToken, "gettoken", dingtalktest.Failure{ErrCode: -1, Times: 2}, 3},
		{"user/get 90018", true, dingtalktest.APIUserGet, "user/get", qpsLimit(dingtalktest.Failure{ErrCode: 90018}), 2},
		{"department/get 90002", true, dingtalktest.APIDepartmentGet, "department/get", qpsLimit(dingtalktest.Failure{ErrCode: 90002}), 2},
		{"getbyunionid 88/90018", false, dingtalktest.APIGetByUnionID, "getbyunionid", qpsLimit(dingtalktest.Failure{ErrCode: 88, SubCode: "90018"}), 2},
		{"userAccessToken qps limit", false, dingtalktest.APIUserAccessToken, "userAccessToken",
			qpsLimit(dingtalktest.Failure{Status: 403, Code: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			metrics := dingtalk.NewMetrics()
			e := newEnv(t, dingtalktest.Config{}, inCorp, func(c *dingtalk.Config) { c.Metrics = metrics })
			var err error
			if tt.inApp {
				code := e.inAppCode(zhangsan().UnionID) // one department: one department/get
				e.fake.Fail(tt.api, tt.failure)
				_, err = e.conn.HandleInAppCode(context.Background(), code)
			} else {
				r := e.login(zhangsan().UnionID)
				e.fake.Fail(tt.api, tt.failure)
				_, err = e.conn.HandleCallback(context.Background(), r)
			}
			e.noLeak(err)
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			if n := e.fake.Calls(tt.api); n != tt.calls {
				t.Errorf("%s called %d times, want %d (%d refused, 1 answered)", tt.api, n, tt.calls, tt.calls-1)
			}
			if busy, ok := metrics.Count(tt.metric, dingtalk.ResultBusy), metrics.Count(tt.metric, dingtalk.ResultOK); busy != uint64(tt.calls-1) || ok != 1 {
				t.Errorf("metrics for %s: busy %d, ok %d; want %d and 1", tt.metric, busy, ok, tt.calls-1)
			}
		})
	}
}

// 系统繁忙 is retried at most three times (DingTalk's global error table).
func TestBusyIsRetriedAtMostThreeTimes(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, inCorp)
	code := e.inAppCode(zhangsan().UnionID)
	e.fake.Fail(dingtalktest.APIGetUserInfo, dingtalktest.Failure{ErrCode: -1}) // until cleared
	_, err := e.conn.HandleInAppCode(context.Background(), code)
	e.noLeak(err)
	assertSentinel(t, err, upstream.ErrUnavailable)
	if n := e.fake.Calls(dingtalktest.APIGetUserInfo); n != 4 {
		t.Errorf("getuserinfo called %d times while busy, want 4 (1 + 3 retries)", n)
	}
}

// The per-IP ban lasts five minutes: retrying within a login is useless and
// prolongs it. One call, and an error that tells the operator what happened.
func TestIPBanIsNotRetriedAndTellsTheOperator(t *testing.T) {
	for _, tt := range []struct {
		inApp bool
		api   string
	}{{true, dingtalktest.APIGetUserInfo}, {false, dingtalktest.APIUserAccessToken}} {
		t.Run(tt.api, func(t *testing.T) {
			e := newEnv(t, dingtalktest.Config{}, inCorp)
			ban := dingtalktest.Failure{Status: 403, Body: ipBanBody, For: 5 * time.Minute}
			var err error
			if tt.inApp {
				code := e.inAppCode(zhangsan().UnionID)
				e.fake.Fail(tt.api, ban)
				_, err = e.conn.HandleInAppCode(context.Background(), code)
			} else {
				r := e.login(zhangsan().UnionID)
				e.fake.Fail(tt.api, ban)
				_, err = e.conn.HandleCallback(context.Background(), r)
			}
			e.noLeak(err)
			assertSentinel(t, err, upstream.ErrUnavailable)
			if n := e.fake.Calls(tt.api); n != 1 {
				t.Errorf("%s called %d times during an IP ban, want 1", tt.api, n)
			}
			for _, want := range []string{"blocked this server's IP address for 5 minutes", "10,000 calls"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// The organisation's monthly API quota (90020) is not retried; the operator is
// told the cause and the fix.
func TestMonthlyQuotaTellsTheOperator(t *testing.T) {
	for _, failure := range []dingtalktest.Failure{
		{ErrCode: 90020},
		{ErrCode: 88, SubCode: "90020"},
	} {
		e := newEnv(t, dingtalktest.Config{}, inCorp)
		code := e.inAppCode(zhangsan().UnionID)
		e.fake.Fail(dingtalktest.APIGetUserInfo, failure)
		_, err := e.conn.HandleInAppCode(context.Background(), code)
		e.noLeak(err)
		assertSentinel(t, err, upstream.ErrMisconfigured)
		if n := e.fake.Calls(dingtalktest.APIGetUserInfo); n != 1 {
			t.Errorf("getuserinfo called %d times at the monthly quota, want 1", n)
		}
		for _, want := range []string{"monthly DingTalk API quota", "upgrade", "增购包"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	}
}

// A lasting rate limit ends before the caller's deadline, after waiting out the
// window between attempts.
func TestLastingThrottleGivesUpBeforeTheDeadline(t *testing.T) {
	for _, tt := range []struct {
		api     string
		failure dingtalktest.Failure
	}{
		{dingtalktest.APIUserGet, dingtalktest.Failure{ErrCode: 90018}},
		{dingtalktest.APIGetUserInfo, dingtalktest.Failure{Status: 403, Code: "Forbidden.AccessDenied.QpsLimitForApi"}},
	} {
		t.Run(tt.api, func(t *testing.T) {
			metrics := dingtalk.NewMetrics()
			e := newEnv(t, dingtalktest.Config{}, inCorp, func(c *dingtalk.Config) { c.Metrics = metrics })
			code := e.inAppCode(zhangsan().UnionID)
			e.fake.Fail(tt.api, tt.failure) // until cleared
			const budget = 2500 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), budget)
			defer cancel()
			start := time.Now()
			_, err := e.conn.HandleInAppCode(ctx, code)
			elapsed := time.Since(start)
			e.noLeak(err)
			assertSentinel(t, err, upstream.ErrUnavailable)
			if ctx.Err() != nil {
				t.Errorf("gave up after %s, at or past the caller's deadline of %s", elapsed, budget)
			}
			if n := e.fake.Calls(tt.api); n != 2 {
				t.Errorf("%s called %d times in %s; want 2 (the window waited out once, then no room for 2 s more)", tt.api, n, elapsed)
			}
			if !strings.Contains(err.Error(), "attempts") {
				t.Errorf("error %q does not say it retried", err)
			}
		})
	}
}

// Without a deadline, retries end within the connector's Timeout.
func TestLastingThrottleWithoutDeadline(t *testing.T) {
	e := newEnv(t, dingtalktest.Config{}, inCorp, func(c *dingtalk.Config) { c.Timeout = 700 * time.Millisecond })
	code := e.inAppCode(zhangsan().UnionID)
	e.fake.Fail(dingtalktest.APIGetUserInfo, dingtalktest.Failure{ErrCode: 90002})
	start := time.Now()
	_, err := e.conn.HandleInAppCode(context.Background(), code)
	e.noLeak(err)
	assertSentinel(t, err, upstream.ErrUnavailable)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("gave up after %s", elapsed)
	}
}

// A failure that is not throttling is not retried: DingTalk may have used the code up.
func TestOtherFailuresAreNotRetried(t *testing.T) {
	tests := []struct {
		inApp   bool
		api     string
		failure dingtalktest.Failure
		want    error
	}{
		{false, dingtalktest.APIUserAccessToken, dingtalktest.Failure{Status: 500, Code: "InternalError"}, upstream.ErrUnavailable},
		{false, dingtalktest.APIUserAccessToken, dingtalktest.Failure{Status: 502, Body: "<html>Bad Gateway</html>"}, upstream.ErrUnavailable},
		{true, dingtalktest.APIGetUserInfo, dingtalktest.Failure{Status: 503, Body: "<html>busy</html>"}, upstream.ErrUnavailable},
		{true, dingtalktest.APIGetUserInfo, dingtalktest.Failure{ErrCode: 40078}, upstream.ErrLoginExpired},
		{true, dingtalktest.APIGetUserInfo, dingtalktest.Failure{ErrCode: 90020}, upstream.ErrMisconfigured},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d %d", tt.api, tt.failure.Status, tt.failure.ErrCode), func(t *testing.T) {
			e := newEnv(t, dingtalktest.Config{}, inCorp)
			var err error
			if tt.inApp {
				code := e.inAppCode(zhangsan().UnionID)
				e.fake.Fail(tt.api, tt.failure)
				_, err = e.conn.HandleInAppCode(context.Background(), code)
			} else {
				r := e.login(zhangsan().UnionID)
				e.fake.Fail(tt.api, tt.failure)
				_, err = e.conn.HandleCallback(context.Background(), r)
			}
			e.noLeak(err)
			assertSentinel(t, err, tt.want)
			if n := e.fake.Calls(tt.api); n != 1 {
				t.Errorf("%s called %d times, want 1", tt.api, n)
			}
		})
	}
}

func TestMetricsCountEveryCall(t *testing.T) {
	metrics := dingtalk.NewMetrics()
	e := newEnv(t, dingtalktest.Config{}, inCorp, func(c *dingtalk.Config) {
		c.Metrics = metrics
		c.Groups = dingtalk.GroupsPath
		c.Timeout = 200 * time.Millisecond
	})
	if _, err := e.callback(e.login(zhangsan().UnionID)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.inApp(context.Background(), lisi().UnionID); err != nil {
		t.Fatal(err)
	}
	e.fake.Fail(dingtalktest.APIUserGet, dingtalktest.Failure{Hang: true, Times: 1})
	_, err := e.inApp(context.Background(), zhangsan().UnionID)
	assertSentinel(t, err, upstream.ErrUnavailable)
	e.fake.Fail(dingtalktest.APIGetUserInfo, dingtalktest.Failure{ErrCode: 40078, Times: 1})
	_, err = e.inApp(context.Background(), zhangsan().UnionID)
	assertSentinel(t, err, upstream.ErrLoginExpired)

	var got []string
	metrics.Each(func(api, result string, n uint64) { got = append(got, fmt.Sprintf("%s %s %d", api, result, n)) })
	want := []string{
		"department/get ok 3", // 研发部, 后端组 for 张三; 市场部 for 李四 (研发部 is cached)
		"getbyunionid ok 1",
		"gettoken ok 1",
		"getuserinfo error 1",
		"getuserinfo ok 2",
		"user/get ok 2",
		"user/get timeout 1",
		"userAccessToken ok 1",
		"users/me ok 1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("metrics:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
