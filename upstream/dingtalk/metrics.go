package dingtalk

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// Metrics counts the HTTP calls connectors make to DingTalk, by API and result, for
// an operator's dashboard (a Prometheus collector reads it with Each). One Metrics may
// be shared by several connectors. It is safe for concurrent use.
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
