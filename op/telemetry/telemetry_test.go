package telemetry_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dingbridge/dingbridge/op/telemetry"
	"github.com/dingbridge/dingbridge/storage"
)

// A nil *Metrics is telemetry switched off: every method is safe and does nothing.
func TestNilMetricsRecordNothing(t *testing.T) {
	var m *telemetry.Metrics
	m.Login("dingtalk", "oauth2", "ok", time.Second)
	m.ObserveCall("users/me", "ok", time.Millisecond)
	m.ObserveRetry("users/me")
	m.ObserveAppTokenFetch("ok")
	m.TokenGrant("authorization_code", "ok")
	m.RefreshReuse()
	m.CodeReplay()
	m.RateLimited("/login")
	m.BackchannelLogout("ok")
	m.Sweep(nil)
	m.StoredRecords(storage.RecordCounts{Sessions: 1})
	m.StorageOperation("GetClient", time.Millisecond, nil)
	m.Reload(nil)
}

// What the DingTalk client reports becomes calls, latency, throttling,
// retries and app-token fetches; storage answers are not failures.
func TestDingTalkAndStorageSeries(t *testing.T) {
	m := telemetry.New()
	m.ObserveCall("gettoken", "busy", 20*time.Millisecond)
	m.ObserveRetry("gettoken")
	m.ObserveCall("gettoken", "ok", 30*time.Millisecond)
	m.ObserveAppTokenFetch("ok")
	m.StorageOperation("GetClient", time.Millisecond, fmt.Errorf("bolt: %w", storage.ErrNotFound))
	m.StorageOperation("IssueTokens", time.Millisecond, errors.New("disk full"))
	m.RateLimited("/oauth/token")
	m.Sweep(errors.New("boom"))

	for _, c := range []struct {
		metric string
		want   string
	}{
		{"dingbridge_dingtalk_requests_total", `
# HELP dingbridge_dingtalk_requests_total HTTP requests to DingTalk, each attempt of a retried call once, by api and result (ok, busy, timeout, error).
# TYPE dingbridge_dingtalk_requests_total counter
dingbridge_dingtalk_requests_total{api="gettoken",result="busy"} 1
dingbridge_dingtalk_requests_total{api="gettoken",result="ok"} 1
`},
		{"dingbridge_dingtalk_throttled_total", `
# HELP dingbridge_dingtalk_throttled_total Throttling answers from DingTalk (errcode -1, 900xx, QPS limits, the IP ban), by api: the quota DingTalk bills is running out.
# TYPE dingbridge_dingtalk_throttled_total counter
dingbridge_dingtalk_throttled_total{api="gettoken"} 1
`},
		{"dingbridge_dingtalk_retries_total", `
# HELP dingbridge_dingtalk_retries_total Calls to DingTalk tried again after a throttling answer, by api.
# TYPE dingbridge_dingtalk_retries_total counter
dingbridge_dingtalk_retries_total{api="gettoken"} 1
`},
		{"dingbridge_dingtalk_app_token_fetches_total", `
# HELP dingbridge_dingtalk_app_token_fetches_total Fetches of a DingTalk app access token (cache misses), by result.
# TYPE dingbridge_dingtalk_app_token_fetches_total counter
dingbridge_dingtalk_app_token_fetches_total{result="ok"} 1
`},
		{"dingbridge_storage_operation_errors_total", `
# HELP dingbridge_storage_operation_errors_total Storage operations that failed (not found, already used and the like are answers, not failures), by operation.
# TYPE dingbridge_storage_operation_errors_total counter
dingbridge_storage_operation_errors_total{operation="IssueTokens"} 1
`},
		{"dingbridge_rate_limited_requests_total", `
# HELP dingbridge_rate_limited_requests_total Requests answered 429 by the per-IP rate limit, by endpoint (route).
# TYPE dingbridge_rate_limited_requests_total counter
dingbridge_rate_limited_requests_total{endpoint="/oauth/token"} 1
`},
		{"dingbridge_sweeper_runs_total", `
# HELP dingbridge_sweeper_runs_total Sweeps of expired records, by result (ok, error).
# TYPE dingbridge_sweeper_runs_total counter
dingbridge_sweeper_runs_total{result="error"} 1
`},
	} {
		if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(c.want), c.metric); err != nil {
			t.Errorf("%s: %v", c.metric, err)
		}
	}
	if n := testutil.CollectAndCount(m.Registry(), "dingbridge_dingtalk_request_duration_seconds"); n != 1 {
		t.Errorf("%d latency series, want 1 (gettoken)", n)
	}
}
