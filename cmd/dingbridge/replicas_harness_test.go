package main

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"testing"
)

// replica is `dingbridge serve` in a child process (see startChild), so that
// one can be killed with SIGKILL as a crashed machine would be.
type replica struct {
	*child
	addr string
}

// startReplica serves configPath in a child process with exactly env (and PATH)
// as its environment and waits until it answers /readyz on addr.
func startReplica(t *testing.T, name, addr, configPath string, env map[string]string) *replica {
	t.Helper()
	vars := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		vars = append(vars, k+"="+v)
	}
	r := &replica{child: startChild(t, name, vars, "serve", "--config", configPath), addr: addr}
	r.waitReady(t, "http://"+addr+"/readyz")
	return r
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
