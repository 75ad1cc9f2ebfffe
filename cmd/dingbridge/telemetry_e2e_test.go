package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/admin"
)

// A login through serve's own wiring, then a scrape of the telemetry listener:
// the series an operator alerts on are there with the values the login caused.
func TestTelemetryAfterALogin(t *testing.T) {
	e := newAdminEnv(t)
	telemetryAddr := freeAddr(t)
	appendFile(t, e.cfgPath, fmt.Sprintf("telemetry: {listen: %q}\n", telemetryAddr))
	var added admin.ClientWithSecret // before the first start: one stored client when serve counts
	e.cliJSON(t, &added, "client", "add", "--name", "Wiki", "--redirect-uri", appRedirect)
	srv := e.serve(t)
	base := "http://" + telemetryAddr

	for _, probe := range []string{"/healthz", "/readyz"} {
		if status, body := get(t, base+probe); status != http.StatusOK || body != "ok\n" {
			t.Errorf("GET %s: %d %q, want 200 ok", probe, status, body)
		}
	}
	if status, _ := get(t, e.issuer+"/metrics"); status == http.StatusOK {
		t.Error("the public listener serves /metrics")
	}

	// A DingTalk login, then an SSO login at a second client in the same browser,
	// a refresh, and a replayed code.
	browser := newBrowser(t, "http://127.0.0.1:1/")
	grafana := e.relyingParty(t, rpClientID, rpSecret, rpRedirect)
	code, verifier, nonce := startLogin(t, browser, grafana)
	tokens := exchange(t, grafana, code, verifier, nonce)
	refreshed, err := refresh(grafana, tokens.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := exchangeErr(grafana, code, verifier, nonce); oauthError(err) != "invalid_grant" {
		t.Errorf("replayed code: %v, want invalid_grant", err)
	}
	wiki := e.relyingParty(t, added.ID, added.Secret, appRedirect)
	code2, verifier2, nonce2 := startLogin(t, browser, wiki)
	exchange(t, wiki, code2, verifier2, nonce2)

	text, families := scrape(t, base+"/metrics")
	for _, want := range []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"dingbridge_logins_total", map[string]string{"connector": "dingtalk", "method": "oauth2", "result": "ok"}, 1},
		{"dingbridge_logins_total", map[string]string{"connector": "dingtalk", "method": "sso", "result": "ok"}, 1},
		{"dingbridge_login_duration_seconds", map[string]string{"method": "oauth2"}, 1}, // the count of a histogram
		{"dingbridge_dingtalk_requests_total", map[string]string{"api": "userAccessToken", "result": "ok"}, 1},
		{"dingbridge_dingtalk_requests_total", map[string]string{"api": "users/me", "result": "ok"}, 1},
		{"dingbridge_dingtalk_request_duration_seconds", map[string]string{"api": "users/me"}, 1},
		{"dingbridge_token_grants_total", map[string]string{"grant_type": "authorization_code", "result": "ok"}, 2},
		{"dingbridge_token_grants_total", map[string]string{"grant_type": "authorization_code", "result": "invalid_grant"}, 1},
		{"dingbridge_token_grants_total", map[string]string{"grant_type": "refresh_token", "result": "ok"}, 1},
		{"dingbridge_auth_code_replays_total", nil, 1},
		{"dingbridge_refresh_token_reuse_total", nil, 0},
		{"dingbridge_stored_records", map[string]string{"kind": "clients"}, 1},
		{"dingbridge_sso_sessions_active", nil, 0}, // counted at start, before the login
	} {
		got, ok := metricValue(families, want.name, want.labels)
		if !ok || got != want.value {
			t.Errorf("%s%v = %v (present %t), want %v", want.name, want.labels, got, ok, want.value)
		}
	}
	// Three IssueTokens at least: two code exchanges and a refresh.
	if n, ok := metricValue(families, "dingbridge_storage_operation_duration_seconds", map[string]string{"operation": "IssueTokens"}); !ok || n < 3 {
		t.Errorf("storage IssueTokens observed %v times, want at least 3", n)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		if _, ok := families[name]; !ok {
			t.Errorf("no %s: the Go runtime and process collectors are missing", name)
		}
	}
	// Bounded labels only: nothing of a person or a token, anywhere.
	assertNoSecrets(t, text, e.user.UnionID, e.user.OpenID, e.user.Nick, code, code2, tokens.AccessToken,
		tokens.RefreshToken, refreshed.RefreshToken, rpSecret, added.Secret, dtSecret)

	// A reload to a rate limit of one request: the refusal is counted under its route.
	appendFile(t, e.cfgPath, "rateLimit: {perSecond: 0.01, burst: 1}\n")
	if code, _, stderr := e.cli(t, "reload"); code != 0 {
		t.Fatalf("reload: exit %d\n%s", code, stderr)
	}
	for range 2 {
		get(t, e.issuer+"/login?authRequestID=x")
	}
	_, families = scrape(t, base+"/metrics")
	for _, want := range []struct {
		name   string
		labels map[string]string
	}{
		{"dingbridge_rate_limited_requests_total", map[string]string{"endpoint": "/login"}},
		{"dingbridge_config_reloads_total", map[string]string{"result": "ok"}},
	} {
		if got, ok := metricValue(families, want.name, want.labels); got != 1 {
			t.Errorf("%s%v = %v (present %t), want 1", want.name, want.labels, got, ok)
		}
	}

	// The container's HEALTHCHECK command.
	if code, stdout, stderr := runCLI(t, nil, "health", "--url", base+"/healthz"); code != 0 || stdout != "ok\n" {
		t.Errorf("health: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	if code, _, stderr := runCLI(t, nil, "health", "--url", base+"/healthz"); code != exitError || !strings.Contains(stderr, "health:") {
		t.Errorf("health of a stopped server: exit %d, stderr %s; want 1", code, stderr)
	}
}

// One info line per request with method, route pattern, status, duration and
// client; never a code, state, token or secret.
func TestAccessLogOfALogin(t *testing.T) {
	e := newAdminEnv(t)
	writeConfig(t, e.cfgPath, strings.Replace(readFile(t, e.cfgPath), "logging: {level: debug}", "logging: {level: info}", 1))
	srv := e.serve(t)
	browser := newBrowser(t, "http://127.0.0.1:1/")
	grafana := e.relyingParty(t, rpClientID, rpSecret, rpRedirect)
	authURL, verifier, nonce, state := authorizeURL(grafana)
	q := browser.loginAt(authURL)
	tokens := exchange(t, grafana, q.Get("code"), verifier, nonce)
	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	logs := srv.stderr.String()

	lines := map[string]string{} // route → its access log line
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `msg="http request"`) {
			continue
		}
		if !strings.Contains(line, "level=INFO") {
			t.Errorf("access log line not at info: %s", line)
		}
		m := regexp.MustCompile(` route=(\S+)`).FindStringSubmatch(line)
		if m == nil {
			t.Errorf("access log line without a route: %s", line)
			continue
		}
		lines[m[1]] = line
	}
	for route, want := range map[string][]string{
		"/authorize":            {"method=GET", "status=302", "client=" + rpClientID},
		"/callback/{connector}": {"method=GET", "status=302", "client=" + rpClientID},
		"/oauth/token":          {"method=POST", "status=200", "client=" + rpClientID},
	} {
		line, ok := lines[route]
		if !ok {
			t.Errorf("no access log line for %s; routes logged: %v", route, keysOf(lines))
			continue
		}
		for _, w := range want {
			if !strings.Contains(line, w) {
				t.Errorf("access log line for %s lacks %s: %s", route, w, line)
			}
		}
		if !regexp.MustCompile(` duration=\d`).MatchString(line) {
			t.Errorf("access log line for %s has no duration: %s", route, line)
		}
	}
	if strings.Contains(logs, "?") && regexp.MustCompile(`route=\S*\?`).MatchString(logs) {
		t.Error("a route in the access log carries a query")
	}
	assertNoSecrets(t, logs, q.Get("code"), state, nonce, verifier, tokens.AccessToken, tokens.RefreshToken, tokens.IDToken, rpSecret, dtSecret)
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func authorizeURL(party rp.RelyingParty) (authURL, verifier, nonce, state string) {
	nonce, verifier, state = "n-"+rand.Text(), "v-"+rand.Text()+rand.Text(), "st-"+rand.Text()
	authURL = rp.AuthURL(state, party, rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", nonce)))
	return authURL, verifier, nonce, state
}

// startLogin logs in at party in browser and returns the code it got.
func startLogin(t *testing.T, b *browser, party rp.RelyingParty) (code, verifier, nonce string) {
	t.Helper()
	authURL, verifier, nonce, _ := authorizeURL(party)
	q := b.loginAt(authURL)
	if q.Get("code") == "" {
		t.Fatalf("login did not produce a code: %v", q)
	}
	return q.Get("code"), verifier, nonce
}

func exchangeErr(party rp.RelyingParty, code, verifier, nonce string) (*oidc.Tokens[*oidc.IDTokenClaims], error) {
	ctx := context.WithValue(context.Background(), nonceKey{}, nonce)
	return rp.CodeExchange[*oidc.IDTokenClaims](ctx, code, party, rp.WithCodeVerifier(verifier))
}

func exchange(t *testing.T, party rp.RelyingParty, code, verifier, nonce string) *oidc.Tokens[*oidc.IDTokenClaims] {
	t.Helper()
	tokens, err := exchangeErr(party, code, verifier, nonce)
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	return tokens
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// scrape reads the Prometheus text format at url.
func scrape(t *testing.T, url string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	status, text := get(t, url)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", url, status, text)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	return text, families
}

// metricValue is the value of the series of name with exactly labels: a
// counter's or gauge's value, a histogram's count.
func metricValue(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := families[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
