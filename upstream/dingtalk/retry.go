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

// Backoff between attempts of a throttled call: exponential from retryFirstWait,
// capped at retryMaxWait, with jitter (a random half of it) so that many logins
// throttled together do not come back together.
const (
	retryFirstWait = 100 * time.Millisecond
	retryMaxWait   = 2 * time.Second
	// minCallEstimate is the least a further attempt is assumed to take, when deciding
	// whether the caller's deadline leaves room for it.
	minCallEstimate = 50 * time.Millisecond
)

// call runs attempt (one HTTP request to DingTalk and the decoding of its answer) and
// counts it under api. An answer saying DingTalk is busy or throttling (throttled) is
// retried after a backoff while the caller's deadline leaves room for the wait plus
// another attempt, and for at most the client's timeout in all; then the last error
// is returned, still matching upstream.ErrUnavailable. Any other error (a timeout, a
// 5xx, a refused code) is final: DingTalk may have acted on the request, e.g. used a
// login code up, while a throttled request never reached the API.
func (c *Client) call(ctx context.Context, api string, attempt func() error) error {
	start := time.Now()
	for n := 1; ; n++ {
		began := time.Now()
		err := attempt()
		c.metrics.ObserveCall(api, resultOf(err), time.Since(began))
		if err == nil || !throttled(err) {
			return err
		}
		wait, ok := c.retryWait(ctx, n, start, time.Since(began))
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

// retryWait is how long to wait before attempt n+1, and whether there is time for it.
func (c *Client) retryWait(ctx context.Context, n int, start time.Time, lastCall time.Duration) (time.Duration, bool) {
	backoff := retryMaxWait
	if n < 16 {
		backoff = min(retryFirstWait<<(n-1), retryMaxWait)
	}
	wait := backoff/2 + rand.N(backoff/2+1)
	end := start.Add(c.timeout)
	if deadline, ok := ctx.Deadline(); ok && deadline.Before(end) {
		end = deadline
	}
	if time.Until(end) < wait+max(lastCall, minCallEstimate) {
		return 0, false
	}
	return wait, true
}

// throttled reports an answer saying DingTalk is busy or limiting our rate: errcode -1
// and the rate-limit errcodes (also as the gateway's sub_code), the new API's
// Forbidden.AccessDenied.Qps…/Qpm… codes and HTTP 429, and the gateway's per-IP ban.
// Such a request did not reach the API, so retrying it is safe. Timeouts, 5xx answers
// and network errors are not throttling.
func throttled(err error) bool {
	var oapiErr *OAPIError
	if errors.As(err, &oapiErr) {
		code := oapiErr.code()
		return code == oapiBusy || isOAPIRateLimited(code)
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.IPThrottled ||
			apiErr.HTTPStatus == http.StatusTooManyRequests ||
			strings.HasPrefix(apiErr.Code, codeRateLimitPrefixPerSec) ||
			strings.HasPrefix(apiErr.Code, codeRateLimitPrefixPerMin)
	}
	return false
}

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
