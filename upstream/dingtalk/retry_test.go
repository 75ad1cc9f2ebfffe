package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/upstream"
)

func TestThrottledIsOnlyBusyOrRateLimited(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&OAPIError{ErrCode: -1}, true},
		{&OAPIError{ErrCode: 90002}, true},
		{&OAPIError{ErrCode: 90018}, true},
		{&OAPIError{ErrCode: 45009}, true},
		{&OAPIError{ErrCode: 88, SubCode: "90018"}, true},
		{&APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}, true},
		{&APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi"}, true},
		{&APIError{HTTPStatus: 429}, true},
		{&APIError{HTTPStatus: 200, IPThrottled: true}, true},
		{fmt.Errorf("POST /x: %w", &OAPIError{ErrCode: 90006}), true},
		// Unavailable, but not throttling: DingTalk may have acted on the request.
		{&APIError{HTTPStatus: 500, Code: "InternalError"}, false},
		{&APIError{HTTPStatus: 502, Excerpt: "<html>"}, false},
		{fmt.Errorf("%w: no answer in time: %w", upstream.ErrUnavailable, context.DeadlineExceeded), false},
		{fmt.Errorf("%w: connection refused", upstream.ErrUnavailable), false},
		{&OAPIError{ErrCode: 40078}, false},
		{&OAPIError{ErrCode: 88, SubCode: "40014"}, false},
		{&OAPIError{ErrCode: 90020}, false}, // monthly quota: no use retrying in seconds
	}
	for _, tt := range tests {
		if got := throttled(tt.err); got != tt.want {
			t.Errorf("throttled(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestResultOf(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ResultOK},
		{&OAPIError{ErrCode: -1}, ResultBusy},
		{&APIError{HTTPStatus: 200, IPThrottled: true}, ResultBusy},
		{fmt.Errorf("%w: no answer in time: %w", upstream.ErrUnavailable, context.DeadlineExceeded), ResultTimeout},
		{&APIError{HTTPStatus: 503}, ResultError},
		{&OAPIError{ErrCode: 60121}, ResultError},
		{errors.New("malformed JSON"), ResultError},
	}
	for _, tt := range tests {
		if got := resultOf(tt.err); got != tt.want {
			t.Errorf("resultOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// DingTalk's guidance, as waits: -1 (busy) retried at most 3 times after short
// waits; a rate limit never before its one-second window has passed; the per-IP
// ban and anything else not at all.
func TestRetryWaitFollowsDingTalksGuidance(t *testing.T) {
	c := &Client{timeout: time.Hour}
	start := time.Now()
	for n, want := range []time.Duration{100, 200, 400} {
		want *= time.Millisecond
		for range 20 {
			wait, ok := c.retryWait(context.Background(), busy, n+1, start, time.Millisecond)
			if !ok || wait < want/2 || wait > want {
				t.Fatalf("busy: retryWait(attempt %d) = %s, %v; want between %s and %s", n+1, wait, ok, want/2, want)
			}
		}
	}
	if _, ok := c.retryWait(context.Background(), busy, busyMaxRetries+1, start, 0); ok {
		t.Error("busy: a fourth retry was allowed; DingTalk's table says at most 3")
	}
	for n, want := range []time.Duration{1, 2, 4, 4, 4} {
		want *= time.Second
		for range 20 {
			wait, ok := c.retryWait(context.Background(), rateLimited, n+1, start, time.Millisecond)
			if !ok || wait < want || wait > want+want/4 {
				t.Fatalf("rate limited: retryWait(attempt %d) = %s, %v; want between %s and %s", n+1, wait, ok, want, want+want/4)
			}
		}
	}
	if wait, ok := c.retryWait(context.Background(), rateLimited, 1000, start, 0); !ok || wait > rateLimitMaxWait+rateLimitMaxWait/4 {
		t.Errorf("retryWait(attempt 1000) = %s, %v: the cap must hold for any attempt", wait, ok)
	}
	for _, kind := range []throttle{ipBanned, notThrottled} {
		if _, ok := c.retryWait(context.Background(), kind, 1, start, 0); ok {
			t.Errorf("kind %d is retried", kind)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 900*time.Millisecond)
	defer cancel()
	if _, ok := c.retryWait(ctx, rateLimited, 1, start, time.Millisecond); ok {
		t.Error("retryWait let a 1 s wait run into a deadline 900 ms away")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel2()
	if _, ok := c.retryWait(ctx2, busy, 3, start, time.Millisecond); ok {
		t.Error("retryWait let a 200-400 ms wait run into a deadline 120 ms away")
	}
	short := &Client{timeout: 100 * time.Millisecond}
	if _, ok := short.retryWait(context.Background(), busy, 1, start, 60*time.Millisecond); ok {
		t.Error("without a deadline, retries must stop within the client's timeout")
	}
}

func TestThrottleOf(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want throttle
	}{
		{&OAPIError{ErrCode: -1}, busy},
		{&OAPIError{ErrCode: 90018}, rateLimited},
		{&OAPIError{ErrCode: 88, SubCode: "90002"}, rateLimited},
		{&APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.QpsLimitForApi"}, rateLimited},
		{&APIError{HTTPStatus: 429}, rateLimited},
		{&APIError{HTTPStatus: 403, IPThrottled: true}, ipBanned},
		{&OAPIError{ErrCode: 90020}, notThrottled},
		{&APIError{HTTPStatus: 403, Code: "Forbidden.AccessDenied.ApiCountLimitForOrg"}, notThrottled},
	} {
		if got := throttleOf(tt.err); got != tt.want {
			t.Errorf("throttleOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestAppTokenTTL(t *testing.T) {
	tests := []struct {
		expiresIn int64
		want      time.Duration
	}{
		{7200, 7200*time.Second - 5*time.Minute},
		{600, 5 * time.Minute},
		{60, 30 * time.Second}, // short-lived (a fake's): kept for half its life
		{4, 2 * time.Second},
		{0, time.Minute}, // no expires_in: kept briefly
		{-5, time.Minute},
	}
	for _, tt := range tests {
		if got := appTokenTTL(tt.expiresIn); got != tt.want {
			t.Errorf("appTokenTTL(%d) = %s, want %s", tt.expiresIn, got, tt.want)
		}
	}
}

func TestMetrics(t *testing.T) {
	m := NewMetrics()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				m.add(apiGetToken, ResultOK)
				m.add(apiUserGet, ResultBusy)
			}
		})
	}
	wg.Wait()
	m.add(apiUserGet, ResultOK)
	m.add(apiDepartmentGet, ResultTimeout)
	if got := m.Count(apiGetToken, ResultOK); got != 800 {
		t.Errorf("Count(gettoken, ok) = %d, want 800", got)
	}
	if got := m.Count("never", ResultOK); got != 0 {
		t.Errorf("Count(never, ok) = %d", got)
	}
	var lines []string
	m.Each(func(api, result string, n uint64) { lines = append(lines, fmt.Sprintf("%s %s %d", api, result, n)) })
	want := []string{"department/get timeout 1", "gettoken ok 800", "user/get busy 800", "user/get ok 1"}
	if !slices.Equal(lines, want) {
		t.Errorf("Each = %q, want %q", lines, want)
	}
	var none *Metrics
	none.add(apiGetToken, ResultOK) // a connector without Metrics counts nothing, without panicking
}

func TestOAPIErrorMisconfiguration(t *testing.T) {
	tests := []struct {
		err      OAPIError
		hint     string
		sentinel error
	}{
		{OAPIError{ErrCode: 853001}, "clock", upstream.ErrMisconfigured},
		{OAPIError{ErrCode: 853002}, "NTP", upstream.ErrMisconfigured},
		{OAPIError{ErrCode: 853003}, "check ClientID", upstream.ErrMisconfigured},
		{OAPIError{ErrCode: 853004}, "ClientSecret", upstream.ErrMisconfigured},
		{OAPIError{ErrCode: 40089}, "CorpAppKey and CorpAppSecret", upstream.ErrMisconfigured},
		{OAPIError{ErrCode: 60011, Permission: permissionMember}, "qyapi_get_member", upstream.ErrMisconfigured},
		{OAPIError{ErrCode: 88, SubCode: "60011", Permission: permissionDepartment}, "qyapi_get_department_list", upstream.ErrMisconfigured},
		{OAPIError{ErrCode: 43007, Permission: permissionMember}, "qyapi_get_member", upstream.ErrMisconfigured},
		{OAPIError{ErrCode: 60020}, "whitelist", upstream.ErrMisconfigured},
		{OAPIError{ErrCode: 88, SubCode: "60020"}, "whitelist", upstream.ErrMisconfigured},
		{OAPIError{ErrCode: 40078}, "", upstream.ErrLoginExpired},
		{OAPIError{ErrCode: 60121}, "", nil},
		{OAPIError{ErrCode: 90020}, "upgrade", upstream.ErrMisconfigured},
		{OAPIError{ErrCode: 88, SubCode: "40014"}, "", nil},
	}
	for _, tt := range tests {
		if got := tt.err.Unwrap(); got != tt.sentinel {
			t.Errorf("%v: Unwrap() = %v, want %v", &tt.err, got, tt.sentinel)
		}
		if msg := tt.err.Error(); tt.hint != "" && !strings.Contains(msg, tt.hint) {
			t.Errorf("%q lacks the hint %q", msg, tt.hint)
		}
	}
	if !appTokenRejected(&OAPIError{ErrCode: 42001}) || !appTokenRejected(&OAPIError{ErrCode: 88, SubCode: "40014"}) ||
		appTokenRejected(&OAPIError{ErrCode: 40078}) || appTokenRejected(&APIError{HTTPStatus: http.StatusBadRequest}) {
		t.Error("appTokenRejected misclassifies")
	}
}
