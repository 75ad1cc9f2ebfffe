package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Replicas run as child processes, so that one can be killed with SIGKILL as a
// crashed machine would be: the test binary, started again with childEnv set,
// is the dingbridge binary (TestMain hands its arguments to run, as main does).

const childEnv = "DINGBRIDGE_TEST_AS_DINGBRIDGE"

func TestMain(m *testing.M) {
	runAsDingbridgeIfChild()
	os.Exit(m.Run())
}

// runAsDingbridgeIfChild is called first thing in TestMain: in a child started
// by startReplica it runs the CLI and exits; in the test process it returns.
func runAsDingbridgeIfChild() {
	if os.Getenv(childEnv) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// replica is `dingbridge serve` in a child process.
type replica struct {
	name, addr string
	cmd        *exec.Cmd
	logs       *syncBuffer
	exited     chan struct{}
}

// startReplica serves configPath in a child process with exactly env as its
// environment and waits until it answers /readyz on addr.
func startReplica(t *testing.T, name, addr, configPath string, env map[string]string) *replica {
	t.Helper()
	r := &replica{name: name, addr: addr, logs: newSyncBuffer(), exited: make(chan struct{})}
	r.cmd = exec.Command(os.Args[0], "serve", "--config", configPath)
	r.cmd.Env = []string{childEnv + "=1", "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start replica %s: %v", name, err)
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			t.Logf("replica %s logs:\n%s", name, r.logs)
		}
	})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second) // a cold start under -race on a busy machine
	for {
		select {
		case <-r.exited:
			t.Fatalf("replica %s exited before it was ready (%v):\n%s", name, r.cmd.ProcessState, r.logs)
		default:
		}
		if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready at %s:\n%s", name, addr, r.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the replica with SIGKILL: no shutdown, no drain, no deferred code.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill replica %s: %v", r.name, err)
	}
	<-r.exited
}

// stop ends the replica as SIGTERM does, if it is still running.
func (r *replica) stop(t *testing.T) {
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("replica %s still running 30s after SIGTERM", r.name)
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}

// balancer is a load balancer with no sticky sessions: each request goes to
// the next live backend in turn, whatever connection or cookie it came with.
type balancer struct {
	mu      sync.Mutex
	live    []*replica
	next    int
	counts  map[string]map[string]int // path → replica name → requests
	handler http.Handler
}

func newBalancer(replicas ...*replica) *balancer {
	b := &balancer{live: replicas, counts: map[string]map[string]int{}}
	b.handler = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			r := b.pick(pr.In.URL.Path)
			pr.SetURL(&url.URL{Scheme: "http", Host: r.addr})
			pr.Out.Host = pr.In.Host // as a proxy that preserves Host does
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}
	return b
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.handler.ServeHTTP(w, r) }

func (b *balancer) pick(path string) *replica {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.live[b.next%len(b.live)]
	b.next++
	if b.counts[path] == nil {
		b.counts[path] = map[string]int{}
	}
	b.counts[path][r.name]++
	return r
}

// startOn makes the next request go to r; the ones after it alternate as usual.
func (b *balancer) startOn(r *replica) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, l := range b.live {
		if l == r {
			b.next = i
		}
	}
}

// remove takes r out of the rotation, as a health check would after it died.
func (b *balancer) remove(r *replica) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, l := range b.live {
		if l == r {
			b.live = append(b.live[:i:i], b.live[i+1:]...)
			return
		}
	}
}

// served returns how many requests for path each replica answered.
func (b *balancer) served(path string) map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int{}
	for k, v := range b.counts[path] {
		out[k] = v
	}
	return out
}

// replicaConfig is the file every replica serves, but for its listen address:
// PostgreSQL from $DINGBRIDGE_DB_DSN, the issuer the balancer's address.
func replicaConfig(issuer, listen, dingtalkURL string) string {
	return fmt.Sprintf(`issuer: %q
listen: %q
storage: {type: postgres, dsn: $DINGBRIDGE_DB_DSN, maxConns: 8}
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
    postLogoutRedirectURIs: [%q]
  - id: %s
    name: kubectl
    public: true
    grantTypes: [device_code, refresh_token]
expiry: {refreshTokenReuseGrace: 1s, devicePollInterval: 1s}
rateLimit: {perSecond: 0}
logging: {level: info}
`, issuer, listen, dtClientID, dingtalkURL, dingtalkURL, dingtalkURL, rpClientID, rpRedirect, rpLoggedOut, deviceClientID)
}
