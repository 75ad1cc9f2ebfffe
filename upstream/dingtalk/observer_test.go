package dingtalk_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/upstream/dingtalk"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// recordingObserver is a dingtalk.Observer that remembers what it was told.
type recordingObserver struct {
	mu        sync.Mutex
	calls     []string // api/result
	durations []time.Duration
	retries   []string
	fetches   []string
}

func (o *recordingObserver) ObserveCall(api, result string, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, api+"/"+result)
	o.durations = append(o.durations, took)
}

func (o *recordingObserver) ObserveRetry(api string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.retries = append(o.retries, api)
}

func (o *recordingObserver) ObserveAppTokenFetch(result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fetches = append(o.fetches, result)
}

// An Observer hears every attempt with its latency, each retry, and the app
// token fetched once for two logins.
func TestObserverHearsAttemptsRetriesAndAppTokenFetches(t *testing.T) {
	obs := &recordingObserver{}
	e := newEnv(t, dingtalktest.Config{}, inCorp, func(c *dingtalk.Config) { c.Metrics = obs })
	code := e.inAppCode(zhangsan().UnionID)
	e.fake.Fail(dingtalktest.APIGetToken, dingtalktest.Failure{ErrCode: -1, Times: 1})
	if _, err := e.conn.HandleInAppCode(context.Background(), code); err != nil {
		t.Fatalf("first login: %v", err)
	}
	if _, err := e.conn.HandleInAppCode(context.Background(), e.inAppCode(zhangsan().UnionID)); err != nil {
		t.Fatalf("second login: %v", err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	count := func(list []string, want string) (n int) {
		for _, s := range list {
			if s == want {
				n++
			}
		}
		return n
	}
	if n := count(obs.calls, "gettoken/busy"); n != 1 {
		t.Errorf("gettoken/busy observed %d times, want 1; calls %v", n, obs.calls)
	}
	if n := count(obs.calls, "gettoken/ok"); n != 1 {
		t.Errorf("gettoken/ok observed %d times, want 1 (the token is cached); calls %v", n, obs.calls)
	}
	if n := count(obs.calls, "getuserinfo/ok"); n != 2 {
		t.Errorf("getuserinfo/ok observed %d times, want 2; calls %v", n, obs.calls)
	}
	if len(obs.retries) != 1 || obs.retries[0] != "gettoken" {
		t.Errorf("retries %v, want [gettoken]", obs.retries)
	}
	if len(obs.fetches) != 1 || obs.fetches[0] != dingtalk.ResultOK {
		t.Errorf("app token fetches %v, want one ok", obs.fetches)
	}
	for i, d := range obs.durations {
		if d <= 0 {
			t.Errorf("%s observed with latency %s", obs.calls[i], d)
		}
	}
}
