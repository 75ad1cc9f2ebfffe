package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/config"
	"github.com/dingbridge/dingbridge/storage/bolt"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// These tests drive the binary through run, as a person at a shell would: with
// arguments, an environment (a map, never the process's) and two output streams.
// None of them runs in parallel: serve and dev set slog's default logger and
// TestVersion sets the package's version variable.

const (
	dtClientID   = "dingtestapp"
	dtSecret     = "dingtalk-app-secret-0123456789"
	rpClientID   = "grafana"
	rpSecret     = "grafana-secret-0123456789abcdef"
	rpRedirect   = "http://127.0.0.1:1/login/generic_oauth" // never contacted: the browser stops there
	readyTimeout = 10 * time.Second
)

func TestVersion(t *testing.T) {
	old := version
	version = "v1.2.3-test" // what -ldflags "-X main.version=v1.2.3-test" sets
	t.Cleanup(func() { version = old })

	code, stdout, stderr := runCLI(t, nil, "version")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	// A build from a VCS checkout appends " (<revision>)".
	if !strings.HasPrefix(stdout, "dingbridge v1.2.3-test") || !strings.HasSuffix(stdout, "\n") || strings.Count(stdout, "\n") != 1 {
		t.Errorf("stdout = %q, want one line starting with %q", stdout, "dingbridge v1.2.3-test")
	}
}

func TestConfigCheck(t *testing.T) {
	secrets := map[string]string{
		"DINGTALK_CLIENT_ID":     "dingexampleappkey",
		"DINGTALK_CLIENT_SECRET": "dt-secret-must-not-leak-8f3a",
		"GRAFANA_OIDC_SECRET":    "grafana-secret-must-not-leak-51c2",
	}
	// The commented example README points people at: it must pass as shipped.
	path := writeFile(t, "dingbridge.yaml", config.Example())

	t.Run("valid file is OK", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, secrets, "config", "check", "--config", path)
		if code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
		if !strings.Contains(stdout, path+": OK") || !strings.Contains(stdout, "issuer https://sso.example.com") {
			t.Errorf("stdout = %q, want %q and the issuer", stdout, path+": OK")
		}
		assertNoSecrets(t, stdout+stderr, secrets["DINGTALK_CLIENT_SECRET"], secrets["GRAFANA_OIDC_SECRET"])
	})

	t.Run("DINGBRIDGE_CONFIG is used without --config", func(t *testing.T) {
		env := with(secrets, "DINGBRIDGE_CONFIG", path)
		code, stdout, stderr := runCLI(t, env, "config", "check")
		if code != 0 || !strings.Contains(stdout, path+": OK") {
			t.Errorf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
		}
	})

	t.Run("every problem named with its key, line and fix", func(t *testing.T) {
		env := map[string]string{
			"DINGTALK_CLIENT_ID":  secrets["DINGTALK_CLIENT_ID"],
			"GRAFANA_OIDC_SECRET": secrets["GRAFANA_OIDC_SECRET"],
		}
		bad := writeFile(t, "bad.yaml", strings.Replace(config.Example(), "subject: unionid", "subject: email", 1))
		code, stdout, stderr := runCLI(t, env, "config", "check", "--config", bad)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if stdout != "" {
			t.Errorf("stdout = %q, want nothing", stdout)
		}
		for _, want := range []string{
			"connectors[0].clientSecret is empty: set DINGTALK_CLIENT_SECRET",
			`claims.subject "email" is unknown: use unionid (the default), openid or userid`,
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		// file:line: so editors can jump to it.
		if !regexp.MustCompile(`(?m)^dingbridge: ` + regexp.QuoteMeta(bad) + `:\d+: connectors\[0\]\.clientSecret`).MatchString(stderr) {
			t.Errorf("stderr does not start the problem with %s:<line>:\n%s", bad, stderr)
		}
		assertNoSecrets(t, stdout+stderr, secrets["GRAFANA_OIDC_SECRET"])
	})

	t.Run("missing file names the path", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nowhere.yaml")
		code, _, stderr := runCLI(t, secrets, "config", "check", "--config", missing)
		if code != 1 || !strings.Contains(stderr, missing) {
			t.Errorf("exit %d, stderr %q; want 1 and the path %s", code, stderr, missing)
		}
	})

	t.Run("no --config and no DINGBRIDGE_CONFIG", func(t *testing.T) {
		code, _, stderr := runCLI(t, secrets, "config", "check")
		if code != exitUsage || !strings.Contains(stderr, `"config" not set`) {
			t.Errorf("exit %d, stderr %q; want %d (usage) and the missing flag", code, stderr, exitUsage)
		}
	})
}

func TestServeLogsInThroughDingTalk(t *testing.T) {
	addr := freeAddr(t)
	issuer := "http://" + addr
	user := dingtalktest.DemoUsers()[0]
	fake := dingtalktest.NewServer(dingtalktest.Config{
		Apps:  []dingtalktest.App{{ClientID: dtClientID, ClientSecret: dtSecret, RedirectURIs: []string{issuer + "/callback/dingtalk"}}},
		Users: dingtalktest.DemoUsers(),
	})
	t.Cleanup(fake.Close)
	fake.AutoApprove(user.UnionID) // the person presses "approve" at DingTalk

	dbPath := filepath.Join(t.TempDir(), "state", "dingbridge.db")
	cfgPath := writeFile(t, "dingbridge.yaml", serveConfig(issuer, addr, dbPath, fake.URL))
	env := map[string]string{"DINGTALK_CLIENT_SECRET": dtSecret, "GRAFANA_OIDC_SECRET": rpSecret}

	srv := start(t, env, "serve", "--config", cfgPath)
	srv.waitReady(t, issuer+"/readyz")

	// An ordinary relying party: discovery, PKCE, nonce, then the code exchange
	// with the id_token verified against the provider's JWKS.
	httpClient := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	t.Cleanup(httpClient.CloseIdleConnections)
	nonce, state, verifier := "n-"+rand.Text(), "st-"+rand.Text(), "v-"+rand.Text()+rand.Text()
	party, err := rp.NewRelyingPartyOIDC(context.Background(), issuer, rpClientID, rpSecret, rpRedirect,
		[]string{"openid", "profile", "email"}, rp.WithHTTPClient(httpClient),
		rp.WithVerifierOpts(rp.WithNonce(func(context.Context) string { return nonce })))
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	authURL := rp.AuthURL(state, party,
		rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier)), rp.AuthURLOpt(rp.WithURLParam("nonce", nonce)))

	q := newBrowser(t, rpRedirect).loginAt(authURL)
	if q.Get("error") != "" || q.Get("state") != state {
		t.Fatalf("relying party got %v, want a code and state %q", q, state)
	}
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](context.Background(), q.Get("code"), party, rp.WithCodeVerifier(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	claims := tokens.IDTokenClaims
	if claims.Issuer != issuer || claims.Subject != user.UnionID || claims.Claims["unionid"] != user.UnionID || claims.Claims["openid"] != user.OpenID {
		t.Errorf("id_token iss %q sub %q unionid %v openid %v; want %s, %s, %s, %s",
			claims.Issuer, claims.Subject, claims.Claims["unionid"], claims.Claims["openid"], issuer, user.UnionID, user.UnionID, user.OpenID)
	}
	httpClient.CloseIdleConnections()

	// SIGTERM: main cancels the context run was given.
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exited %d after SIGTERM, want 0; stderr:\n%s", code, srv.stderr)
	}
	fi, err := os.Stat(dbPath)
	if err != nil {
		t.Fatalf("database: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v, want 0600 (it holds the signing keys)", fi.Mode().Perm())
	}
	logs := srv.stderr.String()
	if !strings.Contains(logs, "dingbridge serving") {
		t.Errorf("no start-up line in the logs:\n%s", logs)
	}
	assertNoSecrets(t, srv.stdout.String()+logs, dtSecret, rpSecret, q.Get("code"), tokens.AccessToken, tokens.IDToken)
}

func TestServeRefusesDatabaseInUse(t *testing.T) {
	addr := freeAddr(t)
	dbPath := filepath.Join(t.TempDir(), "dingbridge.db")
	holder, err := bolt.Open(dbPath, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Close() })

	cfgPath := writeFile(t, "dingbridge.yaml", serveConfig("http://"+addr, addr, dbPath, "http://127.0.0.1:1"))
	env := map[string]string{"DINGTALK_CLIENT_SECRET": dtSecret, "GRAFANA_OIDC_SECRET": rpSecret}
	code, _, stderr := runCLI(t, env, "serve", "--config", cfgPath)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr, dbPath) || !strings.Contains(stderr, "is in use") {
		t.Errorf("stderr does not say %s is in use:\n%s", dbPath, stderr)
	}
}

func TestDevLogsInToTheDemoApp(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where dev keeps its throwaway database

	dev := start(t, nil, "dev", "--listen", "127.0.0.1:0", "--dingtalk-listen", "127.0.0.1:0", "--auto-approve", "张三")
	banner := dev.waitOutput(t, "Fake DingTalk:")
	m := regexp.MustCompile(`Demo app:\s+(http://127\.0\.0\.1:\d+/demo)/`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("no demo app URL in the banner:\n%s", banner)
	}
	var zhang dingtalktest.User
	for _, u := range dingtalktest.DemoUsers() {
		if u.Nick == "张三" {
			zhang = u
		}
	}
	if !strings.Contains(banner, zhang.UnionID) {
		t.Errorf("banner does not list 张三's unionId %s:\n%s", zhang.UnionID, banner)
	}

	// A browser pressing "log in": every redirect followed, through the fake DingTalk and back.
	resp, body := newBrowser(t, "").visit(m[1] + "/login")
	body = html.UnescapeString(body)
	wantClaim := fmt.Sprintf("%q: %q", "unionid", zhang.UnionID) // in the pretty-printed id_token claims
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Logged in") || !strings.Contains(body, wantClaim) {
		t.Errorf("final page %s: status %d, want 200 with \"Logged in\" and %s:\n%s", resp.Request.URL, resp.StatusCode, wantClaim, body)
	}

	if code := dev.stop(t); code != 0 {
		t.Errorf("dev exited %d, want 0; stderr:\n%s", code, dev.stderr)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("dev left %d file(s) behind in $TMPDIR, e.g. %s", len(left), left[0].Name())
	}
}

// serveConfig is a file for `serve` with one connector pointing at dingtalkURL
// and the grafana client; secrets come from DINGTALK_CLIENT_SECRET and GRAFANA_OIDC_SECRET.
func serveConfig(issuer, listen, dbPath, dingtalkURL string) string {
	return fmt.Sprintf(`issuer: %q
listen: %q
storage: {path: %q}
connectors:
  - id: dingtalk
    clientID: %s
    clientSecret: $DINGTALK_CLIENT_SECRET
    timeout: 5s
    endpoints: {login: %q, api: %q, oapi: %q}
staticClients:
  - id: %s
    secretEnv: GRAFANA_OIDC_SECRET
    redirectURIs: [%q]
logging: {level: debug}
`, issuer, listen, dbPath, dtClientID, dingtalkURL, dingtalkURL, dingtalkURL, rpClientID, rpRedirect)
}

// runCLI runs the CLI to completion.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, mapEnv(env))
	return code, out.String(), errOut.String()
}

// process is the CLI running in a goroutine, as a long-lived process.
type process struct {
	cancel         context.CancelFunc
	done           chan struct{}
	code           int
	stdout, stderr *syncBuffer
}

func start(t *testing.T, env map[string]string, args ...string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{cancel: cancel, done: make(chan struct{}), stdout: newSyncBuffer(), stderr: newSyncBuffer()}
	go func() {
		defer close(p.done)
		p.code = run(ctx, args, p.stdout, p.stderr, mapEnv(env))
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		if t.Failed() {
			t.Logf("%s stderr:\n%s", args[0], p.stderr)
		}
	})
	return p
}

// stop cancels the context, as SIGTERM does, and returns the exit code.
func (p *process) stop(t *testing.T) int {
	t.Helper()
	p.cancel()
	select {
	case <-p.done:
		return p.code
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30s after the context was cancelled")
		return -1
	}
}

// waitReady polls url until it answers 200, failing if the process exits first.
func (p *process) waitReady(t *testing.T, url string) {
	t.Helper()
	switch err := pollReady(url, readyTimeout, p.done); {
	case errors.Is(err, errExitedBeforeReady):
		t.Fatalf("exited %d before becoming ready; stderr:\n%s", p.code, p.stderr)
	case err != nil:
		t.Fatal(err)
	}
}

// waitOutput waits until stdout contains want and returns all of it.
func (p *process) waitOutput(t *testing.T, want string) string {
	t.Helper()
	timeout := time.After(readyTimeout)
	for {
		if s := p.stdout.String(); strings.Contains(s, want) {
			return s
		}
		select {
		case <-p.stdout.wrote:
		case <-p.done:
			t.Fatalf("exited %d without printing %q; stdout:\n%s\nstderr:\n%s", p.code, want, p.stdout, p.stderr)
		case <-timeout:
			t.Fatalf("%q not printed within %s; stdout:\n%s", want, readyTimeout, p.stdout)
		}
	}
}

// syncBuffer is an io.Writer the process and the test may use at once.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // signalled after each write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// browser keeps cookies and follows redirects, stopping at stopAt (a relying
// party's redirect URI) when it is not empty.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T, stopAt string) *browser {
	jar, _ := cookiejar.New(nil)
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	return &browser{t: t, client: &http.Client{
		Jar: jar, Transport: transport, Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if stopAt != "" && strings.HasPrefix(req.URL.String(), stopAt) {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return fmt.Errorf("stopped after %d redirects", len(via))
			}
			return nil
		},
	}}
}

// visit GETs rawURL following redirects and returns the last response with its body.
func (b *browser) visit(rawURL string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Get(rawURL)
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// loginAt follows the login from the authorize URL and returns the query the
// relying party's redirect URI was sent.
func (b *browser) loginAt(authorizeURL string) url.Values {
	b.t.Helper()
	resp, body := b.visit(authorizeURL)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc == "" {
		b.t.Fatalf("login did not reach the relying party: status %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		b.t.Fatal(err)
	}
	return u.Query()
}

// freeAddr returns a loopback address nothing listens on, so the issuer is
// known before the server starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mapEnv(m map[string]string) config.Env {
	return func(key string) (string, bool) {
		v, ok := m[key]
		return v, ok
	}
}

func with(m map[string]string, key, value string) map[string]string {
	out := map[string]string{key: value}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func assertNoSecrets(t *testing.T, output string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(output, s) {
			t.Errorf("output contains a secret (%.4s…)", s)
		}
	}
}

// What the file says reaches the running server: the signing algorithm shows in
// discovery, the rate limit answers 429.
func TestServeAppliesKeysAndRateLimitFromConfig(t *testing.T) {
	addr := freeAddr(t)
	issuer := "http://" + addr
	cfg := serveConfig(issuer, addr, filepath.Join(t.TempDir(), "dingbridge.db"), "http://127.0.0.1:1") +
		"keys: {algorithm: ES256}\nrateLimit: {perSecond: 0.01, burst: 1}\n"
	srv := start(t, map[string]string{"DINGTALK_CLIENT_SECRET": dtSecret, "GRAFANA_OIDC_SECRET": rpSecret},
		"serve", "--config", writeFile(t, "dingbridge.yaml", cfg))
	srv.waitReady(t, issuer+"/readyz")

	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	err = json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if err != nil || len(d.Algs) != 1 || d.Algs[0] != "ES256" {
		t.Errorf("id_token_signing_alg_values_supported = %v (%v), want [ES256]", d.Algs, err)
	}
	var statuses []int
	for range 2 {
		resp, err := http.Get(issuer + "/login?authRequestID=x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	if statuses[1] != http.StatusTooManyRequests {
		t.Errorf("second /login with burst 1: statuses %v, want the second 429", statuses)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exited %d", code)
	}
}
