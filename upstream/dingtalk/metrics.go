package dingtalk

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Observer is told about the calls connectors make to DingTalk, so that an
// operator's monitoring (dingbridge's Prometheus metrics) can follow them without
// this package knowing how they are exported. Implementations must be safe for
// concurrent use and quick: they run on the login path.
type Observer interface {
	// ObserveCall: one attempt of a call to api ended with result (ResultOK,
	// ResultBusy, ResultTimeout, ResultError) after took.
	ObserveCall(api, result string, took time.Duration)
	// ObserveRetry: a throttled call to api is about to be tried again.
	ObserveRetry(api string)
	// ObserveAppTokenFetch: the app access token was fetched from DingTalk (the
	// cache had none), with result ResultOK or the failed attempt's result.
	ObserveAppTokenFetch(result string)
}

// Metrics is the simplest Observer: it counts the HTTP calls connectors make to
// DingTalk, by API and result, and reads them back with Count and Each. One
// Metrics may be shared by several connectors. It is safe for concurrent use.
//
// The APIs are named "userAccessToken", "users/me", "sns/getuserinfo_bycode",
// "gettoken", "getuserinfo", "getbyunionid", "user/get" and "department/get"; each
// attempt of a retried call counts once.
type Metrics struct {
	counts sync.Map // metricKey → *atomic.Uint64
}

// Results of a call, as Metrics counts them.
const (
	ResultOK      = "ok"      // DingTalk answered with what was asked
	ResultBusy    = "busy"    // DingTalk was busy or throttling (errcode -1, 900xx, QPS limits, IP ban)
	ResultTimeout = "timeout" // no answer in time (the call's timeout or the caller's deadline)
	ResultError   = "error"   // anything else: an error answer, a 5xx, a network error
)

// The APIs' names in Metrics.
const (
	apiUserAccessToken = "userAccessToken"
	apiUsersMe         = "users/me"
	apiSNSUserInfo     = "sns/getuserinfo_bycode"
	apiGetToken        = "gettoken"
	apiGetUserInfo     = "getuserinfo"
	apiGetByUnionID    = "getbyunionid"
	apiUserGet         = "user/get"
	apiDepartmentGet   = "department/get"
)

type metricKey struct{ api, result string }

var _ Observer = (*Metrics)(nil)

// ObserveCall counts the attempt.
func (m *Metrics) ObserveCall(api, result string, _ time.Duration) { m.add(api, result) }

// ObserveRetry is not counted: every attempt is already a call.
func (m *Metrics) ObserveRetry(string) {}

// ObserveAppTokenFetch is not counted: each fetch is a call to "gettoken".
func (m *Metrics) ObserveAppTokenFetch(string) {}

// NewMetrics returns a Metrics with every count at zero.
func NewMetrics() *Metrics { return &Metrics{} }

// add counts one call; a nil Metrics counts nothing.
func (m *Metrics) add(api, result string) {
	if m == nil {
		return
	}
	n, ok := m.counts.Load(metricKey{api, result})
	if !ok {
		n, _ = m.counts.LoadOrStore(metricKey{api, result}, new(atomic.Uint64))
	}
	n.(*atomic.Uint64).Add(1)
}

// Count is how many calls to api ended with result.
func (m *Metrics) Count(api, result string) uint64 {
	if n, ok := m.counts.Load(metricKey{api, result}); ok {
		return n.(*atomic.Uint64).Load()
	}
	return 0
}

// Each calls fn for every API and result counted so far, sorted by API, then result.
func (m *Metrics) Each(fn func(api, result string, n uint64)) {
	type count struct {
		metricKey
		n uint64
	}
	var all []count
	m.counts.Range(func(k, v any) bool {
		all = append(all, count{k.(metricKey), v.(*atomic.Uint64).Load()})
		return true
	})
	slices.SortFunc(all, func(a, b count) int {
		return cmp.Or(cmp.Compare(a.api, b.api), cmp.Compare(a.result, b.result))
	})
	for _, c := range all {
		fn(c.api, c.result, c.n)
	}
}

// noObserver observes nothing: a Client without an Observer.
type noObserver struct{}

func (noObserver) ObserveCall(string, string, time.Duration) {}
func (noObserver) ObserveRetry(string)                       {}
func (noObserver) ObserveAppTokenFetch(string)               {}
