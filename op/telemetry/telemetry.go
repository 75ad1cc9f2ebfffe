// Package telemetry is what an operator's monitoring sees of dingbridge: the
// Prometheus metrics, on a registry of their own, and the handler of the
// telemetry listener that serves them with /healthz and /readyz.
//
// Every label takes a bounded set of values (a connector ID, an API name, a
// result, a grant type, a route): never a person, a token or an address.
package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dingbridge/dingbridge/storage"
)

const namespace = "dingbridge"

// Metrics holds every metric dingbridge exports. Its methods are safe for
// concurrent use, and a nil *Metrics records nothing, so code paths need no
// "is telemetry on" checks.
type Metrics struct {
	reg *prometheus.Registry

	logins        *prometheus.CounterVec
	loginDuration *prometheus.HistogramVec

	dingtalkCalls     *prometheus.CounterVec
	dingtalkDuration  *prometheus.HistogramVec
	dingtalkRetries   *prometheus.CounterVec
	dingtalkThrottled *prometheus.CounterVec
	appTokenFetches   *prometheus.CounterVec

	tokenGrants   *prometheus.CounterVec
	refreshReuses prometheus.Counter
	codeReplays   prometheus.Counter
	rateLimited   *prometheus.CounterVec
	backchannel   *prometheus.CounterVec

	records        *prometheus.GaugeVec
	sessionsActive prometheus.Gauge
	sweeps         *prometheus.CounterVec

	storageDuration *prometheus.HistogramVec
	storageErrors   *prometheus.CounterVec

	reloads *prometheus.CounterVec
}

// New returns the metrics registered on a new registry, with the Go runtime and
// process collectors beside them.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := factory{reg}
	m := &Metrics{
		reg: reg,
		logins: f.counterVec("logins_total",
			"Logins finished, by connector, method (oauth2, sns, inapp, sso) and result (ok, denied, policy, expired, upstream_unavailable, misconfigured, error).",
			"connector", "method", "result"),
		loginDuration: f.histogramVec("login_duration_seconds",
			"Time the provider spent finishing a login: the callback's DingTalk calls and storage writes, or the check of an SSO session; the person's own time is not in it.",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "method"),
		dingtalkCalls: f.counterVec("dingtalk_requests_total",
			"HTTP requests to DingTalk, each attempt of a retried call once, by api and result (ok, busy, timeout, error).",
			"api", "result"),
		dingtalkDuration: f.histogramVec("dingtalk_request_duration_seconds",
			"Latency of HTTP requests to DingTalk, by api.",
			[]float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "api"),
		dingtalkRetries: f.counterVec("dingtalk_retries_total",
			"Calls to DingTalk tried again after a throttling answer, by api.", "api"),
		dingtalkThrottled: f.counterVec("dingtalk_throttled_total",
			"Throttling answers from DingTalk (errcode -1, 900xx, QPS limits, the IP ban), by api: the quota DingTalk bills is running out.", "api"),
		appTokenFetches: f.counterVec("dingtalk_app_token_fetches_total",
			"Fetches of a DingTalk app access token (cache misses), by result.", "result"),
		tokenGrants: f.counterVec("token_grants_total",
			"Token endpoint requests, by grant type and result (ok or the OAuth error code).", "grant_type", "result"),
		refreshReuses: f.counter("refresh_token_reuse_total",
			"Rotated refresh tokens presented again after the grace period; each revoked its login's tokens."),
		codeReplays: f.counter("auth_code_replays_total",
			"Authorization codes presented a second time; each revoked what the code had issued."),
		rateLimited: f.counterVec("rate_limited_requests_total",
			"Requests answered 429 by the per-IP rate limit, by endpoint (route).", "endpoint"),
		backchannel: f.counterVec("backchannel_logout_deliveries_total",
			"Back-channel logout tokens sent to clients, by result (ok, failed after every attempt, error before sending).", "result"),
		records: f.gaugeVec("stored_records",
			"Live records in storage by kind, as the sweeper last counted them.", "kind"),
		sessionsActive: f.gauge("sso_sessions_active",
			"SSO sessions in storage, as the sweeper last counted them."),
		sweeps: f.counterVec("sweeper_runs_total",
			"Sweeps of expired records, by result (ok, error).", "result"),
		storageDuration: f.histogramVec("storage_operation_duration_seconds",
			"Latency of storage operations, by operation.",
			[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}, "operation"),
		storageErrors: f.counterVec("storage_operation_errors_total",
			"Storage operations that failed (not found, already used and the like are answers, not failures), by operation.", "operation"),
		reloads: f.counterVec("config_reloads_total",
			"Configuration reloads (SIGHUP or `dingbridge reload`), by result (ok, invalid).", "result"),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry is where the metrics are registered, for tests and for exposing them.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Login records a finished login.
func (m *Metrics) Login(connector, method, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.logins.WithLabelValues(connector, method, result).Inc()
	m.loginDuration.WithLabelValues(method).Observe(took.Seconds())
}

// ObserveCall records one attempt of a DingTalk call (dingtalk.Observer).
func (m *Metrics) ObserveCall(api, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.dingtalkCalls.WithLabelValues(api, result).Inc()
	m.dingtalkDuration.WithLabelValues(api).Observe(took.Seconds())
	if result == "busy" {
		m.dingtalkThrottled.WithLabelValues(api).Inc()
	}
}

// ObserveRetry records a throttled DingTalk call tried again (dingtalk.Observer).
func (m *Metrics) ObserveRetry(api string) {
	if m == nil {
		return
	}
	m.dingtalkRetries.WithLabelValues(api).Inc()
}

// ObserveAppTokenFetch records an app access token fetch (dingtalk.Observer).
func (m *Metrics) ObserveAppTokenFetch(result string) {
	if m == nil {
		return
	}
	m.appTokenFetches.WithLabelValues(result).Inc()
}

// TokenGrant records a token endpoint request.
func (m *Metrics) TokenGrant(grantType, result string) {
	if m == nil {
		return
	}
	m.tokenGrants.WithLabelValues(grantType, result).Inc()
}

// RefreshReuse records a rotated refresh token presented after its grace.
func (m *Metrics) RefreshReuse() {
	if m == nil {
		return
	}
	m.refreshReuses.Inc()
}

// CodeReplay records an authorization code presented again.
func (m *Metrics) CodeReplay() {
	if m == nil {
		return
	}
	m.codeReplays.Inc()
}

// RateLimited records a request refused by the rate limit at endpoint.
func (m *Metrics) RateLimited(endpoint string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(endpoint).Inc()
}

// BackchannelLogout records one logout token delivery.
func (m *Metrics) BackchannelLogout(result string) {
	if m == nil {
		return
	}
	m.backchannel.WithLabelValues(result).Inc()
}

// Sweep records a sweeper run.
func (m *Metrics) Sweep(err error) {
	if m == nil {
		return
	}
	m.sweeps.WithLabelValues(resultOf(err)).Inc()
}

// StoredRecords sets the record gauges from a storage count.
func (m *Metrics) StoredRecords(c storage.RecordCounts) {
	if m == nil {
		return
	}
	for _, k := range []struct {
		kind string
		n    int
	}{
		{"auth_requests", c.AuthRequests}, {"auth_codes", c.AuthCodes},
		{"access_tokens", c.AccessTokens}, {"refresh_tokens", c.RefreshTokens},
		{"sessions", c.Sessions}, {"users", c.Users}, {"clients", c.Clients},
		{"upstream_states", c.UpstreamStates}, {"device_authorizations", c.Devices},
		{"consents", c.Consents},
	} {
		m.records.WithLabelValues(k.kind).Set(float64(k.n))
	}
	m.sessionsActive.Set(float64(c.Sessions))
}

// StorageOperation records one storage call; expected answers (not found,
// already used, already exists) are not failures.
func (m *Metrics) StorageOperation(operation string, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.storageDuration.WithLabelValues(operation).Observe(took.Seconds())
	if err != nil && !isAnswer(err) {
		m.storageErrors.WithLabelValues(operation).Inc()
	}
}

// Reload records a configuration reload.
func (m *Metrics) Reload(err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "invalid"
	}
	m.reloads.WithLabelValues(result).Inc()
}

func isAnswer(err error) bool {
	return errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrAlreadyUsed) ||
		errors.Is(err, storage.ErrAlreadyExists) || errors.Is(err, context.Canceled)
}

func resultOf(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// Handler serves the telemetry listener: /metrics (Prometheus), /healthz (the
// process answers) and /readyz (ready reports nil: storage answers and the
// signing keys are loaded). It is meant for a private address, never the public
// port: the metrics tell an outsider too much about the traffic.
func Handler(m *Metrics, ready func(context.Context) error, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg, // promhttp's own errors counter
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		EnableOpenMetrics: true,
		Timeout:           10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(ctx); err != nil {
			logger.ErrorContext(ctx, "readiness check failed", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// factory creates metrics under the namespace and registers them.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}
