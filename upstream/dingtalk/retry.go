package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// How DingTalk asks to be retried, from its own guidance:
//
//   - 系统繁忙 (errcode -1): "服务器暂不可用，建议稍候再重试1次，最多重试3次" — the
//     global error table. Retried at most three times, after short waits.
//   - A rate limit (90002 platform-wide, 90018 per app and organisation, 90019,
//     the old 45009, the new API's Forbidden.AccessDenied.Qps…/Qpm… and HTTP 429):
//     the QPS window is one second, so the guidance is to sleep a second and go
//     on. Retried after at least a second, then two, while the login's deadline
//     leaves room.
//   - The gateway's per-IP ban (more than 10,000 calls from one address in 20 s):
//     it lasts five minutes and answers no API. Not retried: the operator is told.
//
// Nothing else is retried: a timeout or a 5xx may mean DingTalk acted on the
// request, e.g. used a login code up, while a throttled request never reached
// the API.
const (
	busyFirstWait  = 100 * time.Millisecond
	busyMaxRetries = 3
	// rateLimitWindow is how long a QPS limit lasts.
	rateLimitWindow  = time.Second
	rateLimitMaxWait = 4 * time.Second
	// minCallEstimate is the least a further attempt is assumed to take, when deciding
	// whether the caller's deadline leaves room for it.
	minCallEstimate = 50 * time.Millisecond
)

// throttle is what an answer says about DingTalk's load.
type throttle int

const (
	notThrottled throttle = iota
	busy                  // errcode -1
	rateLimited           // a QPS or QPM limit
	ipBanned              // the gateway's per-IP ban
)

// call runs attempt (one HTTP request to DingTalk and the decoding of its answer) and
// counts it under api. Busy and rate-limited answers are retried as DingTalk asks
// (above) while the caller's deadline leaves room for the wait plus another attempt,
// and for at most the client's timeout in all; then the last error is returned, still
// matching upstream.ErrUnavailable.
func (c *Client) call(ctx context.Context, api string, attempt func() error) error {
	start := time.Now()
	for n := 1; ; n++ {
		began := time.Now()
		err := attempt()
		c.metrics.ObserveCall(api, resultOf(err), time.Since(began))
		if err == nil {
			return nil
		}
		kind := throttleOf(err)
		if kind == notThrottled || kind == ipBanned {
			return err
		}
		wait, ok := c.retryWait(ctx, kind, n, start, time.Since(began))
		if !ok {
			if n == 1 {
				return err
			}
			return fmt.Errorf("%w (gave up after %d attempts)", err, n)
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
			c.metrics.ObserveRetry(api)
		case <-ctx.Done():
			timer.Stop()
			if errors.Is(ctx.Err(), context.Canceled) {
				return fmt.Errorf("caller gave up while waiting to retry: %w", ctx.Err())
			}
			return fmt.Errorf("%w (gave up after %d attempts)", err, n)
		}
	}
}

// retryWait is how long to wait before attempt n+1 after an answer of kind, and
// whether there is time for it. Waits have jitter, so that many logins throttled
// together do not come back together; a rate limit's wait never drops below the
// limit's one-second window.
func (c *Client) retryWait(ctx context.Context, kind throttle, n int, start time.Time, lastCall time.Duration) (time.Duration, bool) {
	var wait time.Duration
	switch kind {
	case busy:
		if n > busyMaxRetries {
			return 0, false
		}
		backoff := busyFirstWait << (n - 1)
		wait = backoff/2 + rand.N(backoff/2+1)
	case rateLimited:
		backoff := rateLimitMaxWait
		if n < 8 {
			backoff = min(rateLimitWindow<<(n-1), rateLimitMaxWait)
		}
		wait = backoff + rand.N(backoff/4+1)
	default:
		return 0, false
	}
	end := start.Add(c.timeout)
	if deadline, ok := ctx.Deadline(); ok && deadline.Before(end) {
		end = deadline
	}
	if time.Until(end) < wait+max(lastCall, minCallEstimate) {
		return 0, false
	}
	return wait, true
}

// throttleOf classifies an error: errcode -1 is busy; the rate-limit errcodes
// (also as the gateway's sub_code), the new API's Forbidden.AccessDenied.Qps…/Qpm…
// codes and HTTP 429 are rate limits; the gateway's ban body is the per-IP ban.
// Timeouts, 5xx answers, network errors and the monthly quota (90020) are none.
func throttleOf(err error) throttle {
	var oapiErr *OAPIError
	if errors.As(err, &oapiErr) {
		switch code := oapiErr.code(); {
		case code == oapiBusy:
			return busy
		case isOAPIRateLimited(code):
			return rateLimited
		}
		return notThrottled
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.IPThrottled:
			return ipBanned
		case apiErr.HTTPStatus == http.StatusTooManyRequests,
			strings.HasPrefix(apiErr.Code, codeRateLimitPrefixPerSec),
			strings.HasPrefix(apiErr.Code, codeRateLimitPrefixPerMin):
			return rateLimited
		}
	}
	return notThrottled
}

// throttled reports an answer saying DingTalk is busy or limiting our rate, the
// per-IP ban included (Metrics counts them as busy).
func throttled(err error) bool { return throttleOf(err) != notThrottled }

// resultOf is the Metrics result of one attempt.
func resultOf(err error) string {
	switch {
	case err == nil:
		return ResultOK
	case throttled(err):
		return ResultBusy
	case errors.Is(err, context.DeadlineExceeded):
		return ResultTimeout
	}
	return ResultError
}
