package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// buildDingbridge builds the provider binary the load command starts, with the
// test's own race setting so the packages come from the build cache.
func buildDingbridge(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a test that builds and starts the dingbridge binary")
	}
	bin := filepath.Join(t.TempDir(), "dingbridge")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/dingbridge/dingbridge/cmd/dingbridge")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	if out, err := exec.Command(goTool, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var resultLine = regexp.MustCompile(`^RESULT mode=(\w+) ok=(\d+) ops_per_s=[0-9.]+ p50_ms=[0-9.]+ p99_ms=[0-9.]+ errors=(\d+)( cpu_ms_per_op=[0-9.]+ rss_anon_mb=[0-9.]+ load_cpu_ms_per_op=[0-9.]+)?$`)

// checkResult asserts the output's last line is a RESULT line of mode with
// operations done and none failed, and reports whether the provider was measured.
func checkResult(t *testing.T, mode string, stdout, stderr *bytes.Buffer) (measured bool) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	m := resultLine.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line is not a RESULT line: %q\nstdout:\n%s\nstderr:\n%s", last, stdout, stderr)
	}
	if m[1] != mode {
		t.Errorf("mode = %s, want %s", m[1], mode)
	}
	if ok, _ := strconv.Atoi(m[2]); ok == 0 {
		t.Errorf("no operation completed: %s\nstderr:\n%s", last, stderr)
	}
	if m[3] != "0" {
		t.Errorf("%s operations failed: %s\nstderr:\n%s", m[3], last, stderr)
	}
	return m[4] != ""
}

// The load command starts `dingbridge serve` with a fake DingTalk and drives
// each mode through it for about a second, measuring the provider's process.
func TestLoadAgainstAProviderItStarts(t *testing.T) {
	bin := buildDingbridge(t)
	for _, mode := range []string{modeLogin, modeRefresh, modeUserinfo} {
		t.Run(mode, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"-provider", bin, "-mode", mode,
				"-concurrency", "2", "-clients", "3", "-duration", "1s", "-warmup", "0s"}, &stdout, &stderr, noEnv)
			if err != nil {
				t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
			}
			if !checkResult(t, mode, &stdout, &stderr) {
				t.Errorf("a run that started the provider must report its CPU and memory:\n%s", &stdout)
			}
		})
	}
}

// Against an issuer it did not start (here a dingbridge started by the test,
// whose DingTalk is the fake the load command starts with -dingtalk-listen) the
// load command logs in through discovery alone and measures nothing it cannot.
func TestLoadAgainstAnyIssuer(t *testing.T) {
	bin := buildDingbridge(t)
	dir := t.TempDir()
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	fakeAddr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + addr
	cfg := providerConfig{
		Issuer: issuer, Listen: addr,
		Storage: storageConfig{Type: "bolt", Path: filepath.Join(dir, "db")},
		Connectors: []connectorConfig{{ID: "corp", Type: "dingtalk", ClientID: "app-1", ClientSecret: "app-secret-1",
			Endpoints: endpointsConfig{Login: "http://" + fakeAddr, API: "http://" + fakeAddr, OAPI: "http://" + fakeAddr}}},
		StaticClients: []clientConfig{{ID: "wiki", Secret: "wiki-secret-0123456789", RedirectURIs: []string{"http://127.0.0.1:9/cb"}}},
		RateLimit:     rateLimitConfig{PerSecond: 0, Burst: 1},
		Keys:          keysConfig{Algorithm: "ES256"},
		Logging:       loggingConfig{Level: "warn"},
	}
	configPath := filepath.Join(dir, "config.yaml")
	if err := writeConfig(configPath, cfg); err != nil {
		t.Fatal(err)
	}
	var serveLog bytes.Buffer
	serve := exec.Command(bin, "serve", "--config", configPath)
	serve.Stdout, serve.Stderr = &serveLog, &serveLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	p := &startedProvider{target: target{issuer: issuer}, cmd: serve, exited: make(chan struct{}), dir: dir, keepDir: true}
	go func() { _ = serve.Wait(); close(p.exited) }()
	t.Cleanup(p.stop)
	if err := p.waitReady(context.Background(), time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, &serveLog)
	}
	dtSecret := filepath.Join(dir, "dingtalk-secret")
	if err := os.WriteFile(dtSecret, []byte("app-secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(name string) (string, bool) {
		if name == secretEnv {
			return "wiki-secret-0123456789", true
		}
		return "", false
	}
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"-issuer", issuer, "-client-id", "wiki", "-redirect-uri", "http://127.0.0.1:9/cb",
		"-dingtalk-listen", fakeAddr, "-dingtalk-client-id", "app-1", "-dingtalk-client-secret-file", dtSecret, "-connector", "corp",
		"-concurrency", "2", "-duration", "1s", "-warmup", "0s"}, &stdout, &stderr, env)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s\nprovider:\n%s", err, &stdout, &stderr, &serveLog)
	}
	if checkResult(t, modeLogin, &stdout, &stderr) {
		t.Errorf("without -provider or -provider-pid nothing is measured, yet:\n%s", &stdout)
	}
}

// A login redirected anywhere but the issuer and the fake is an error, and the
// request is never sent.
func TestLoginRefusesToLeaveTheIssuer(t *testing.T) {
	var elsewhereHits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhereHits.Add(1) }))
	defer elsewhere.Close()
	var issuer *httptest.Server
	issuer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":"%[1]s/authorize","token_endpoint":"%[1]s/token",
				"userinfo_endpoint":"%[1]s/userinfo","jwks_uri":"%[1]s/keys"}`, issuer.URL)
		case "/keys":
			fmt.Fprint(w, `{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}`)
		case "/authorize":
			http.Redirect(w, r, elsewhere.URL+"/login?code=leak", http.StatusFound)
		}
	}))
	defer issuer.Close()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-issuer", issuer.URL, "-client-id", "c", "-concurrency", "1",
		"-duration", "200ms", "-warmup", "0s"}, &stdout, &stderr, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if elsewhereHits.Load() != 0 {
		t.Errorf("the other host got %d requests", elsewhereHits.Load())
	}
	if !strings.Contains(stderr.String(), "refused a redirect to "+elsewhere.URL+"/login") {
		t.Errorf("stderr does not name the refused redirect:\n%s", &stderr)
	}
	if strings.Contains(stderr.String(), "leak") {
		t.Errorf("an error shows a URL's query:\n%s", &stderr)
	}
	if !strings.Contains(stdout.String(), "RESULT mode=login ok=0 ") || strings.Contains(stdout.String(), " errors=0") {
		t.Errorf("want a RESULT with no successes and errors counted:\n%s", &stdout)
	}
}

func TestParseStat(t *testing.T) {
	// The command name may contain spaces and parentheses.
	stat := "4242 (dingbridge (x) y) S 1 4242 4242 0 -1 4194560 2012 0 0 0 150 37 0 0 20 0 9 0 1234 1000000 3000 18446744073709551615\n"
	got, err := parseStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 1870 * time.Millisecond; got != want {
		t.Errorf("cpu = %s, want %s (187 ticks)", got, want)
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tdingbridge\nVmRSS:\t   23456 kB\nRssAnon:\t    8000 kB\nRssFile:\t   15456 kB\nRssShmem:\t       0 kB\n"
	m, err := parseStatus([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if m != (memory{total: 23456 << 10, anon: 8000 << 10, file: 15456 << 10}) {
		t.Errorf("memory = %+v", m)
	}
	if _, err := parseStatus([]byte("Name:\tx\nVmRSS:\t1 kB\n")); err == nil {
		t.Error("a status without RssAnon parsed")
	}
}

func TestResultLine(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	r := result{mode: modeRefresh, ok: 100, errors: 2, elapsed: 4 * time.Second, latencies: lat}
	if got, want := r.line(), "RESULT mode=refresh ok=100 ops_per_s=25.0 p50_ms=50.00 p99_ms=99.00 errors=2"; got != want {
		t.Errorf("line = %q\nwant   %q", got, want)
	}
	r.measured, r.cpuPerOp, r.rssAnonPeak, r.loadCPUPerOp = true, 1500*time.Microsecond, 12<<20, 750*time.Microsecond
	if got := r.line(); !strings.HasSuffix(got, " errors=2 cpu_ms_per_op=1.500 rss_anon_mb=12.0 load_cpu_ms_per_op=0.750") {
		t.Errorf("line = %q", got)
	}
}

// The generated configuration is YAML the provider reads as meant.
func TestGeneratedConfigRoundTrips(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	want := providerConfig{Issuer: "http://127.0.0.1:1", Listen: "127.0.0.1:1", Keys: keysConfig{Algorithm: "ES256"},
		StaticClients: []clientConfig{{ID: "x", Secret: "a: b # c"}}}
	if err := writeConfig(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v, want 0600 (it holds secrets)", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	var got providerConfig
	if err := yaml.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.StaticClients[0].Secret != "a: b # c" || got.Keys.Algorithm != "ES256" {
		t.Errorf("round trip: %+v", got)
	}
}

func noEnv(string) (string, bool) { return "", false }
