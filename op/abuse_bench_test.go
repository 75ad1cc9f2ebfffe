package op_test

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/op"
)

// Load figures for abuse the provider must shrug off (issue: "exact to the
// specs and hard to abuse"). They print what an operator would measure; no
// figure is asserted.

// serveDefaults is the rate limit `serve` applies when the config says nothing.
var serveDefaults = op.RateLimit{PerSecond: 10, Burst: 50}

// BenchmarkAuthorizeFlood: one address sends b.N /authorize requests, 16 at a
// time, half of them GETs with ordinary parameters and half POSTs with a 31 KB
// state and nonce, and never logs in. Reported: how many auth requests ended
// up stored, how much the database file grew, and how the requests were
// answered (302 on to DingTalk, 302 back to the client with an error, 429).
//
//	go test -run ^$ -bench AuthorizeFlood -benchtime 20000x ./op
func BenchmarkAuthorizeFlood(b *testing.B) {
	e := newEnv(b, envOptions{rateLimit: serveDefaults})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	authorize := e.issuer + "/authorize"
	big := strings.Repeat("x", 31<<10)
	client := &http.Client{Transport: sharedTransport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	sizeBefore := fileSize(b, e.dbPath)
	var toLogin, toClientWithError, limited, other atomic.Int64
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				a := &loginAttempt{}
				u := e.authorizeURL(party, a)
				var resp *http.Response
				var err error
				if i%2 == 0 {
					resp, err = client.Get(u)
				} else {
					parsed, _ := url.Parse(u)
					form := parsed.Query()
					form.Set("state", big)
					form.Set("nonce", big)
					resp, err = client.PostForm(authorize, form)
				}
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				loc := resp.Header.Get("Location")
				switch {
				case resp.StatusCode == http.StatusFound && strings.Contains(loc, "error="):
					toClientWithError.Add(1)
				case resp.StatusCode == http.StatusFound && strings.HasPrefix(loc, e.dingtalk.URL):
					toLogin.Add(1)
				case resp.StatusCode == http.StatusTooManyRequests:
					limited.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(storedAuthRequests(b, e)), "stored")
	b.ReportMetric(float64(fileSize(b, e.dbPath)-sizeBefore)/1e6, "MB-file-growth")
	b.ReportMetric(float64(toLogin.Load()), "to-login")
	b.ReportMetric(float64(toClientWithError.Load()), "refused-to-client")
	b.ReportMetric(float64(limited.Load()), "429")
	b.ReportMetric(float64(other.Load()), "other")
}

func fileSize(t testing.TB, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// BenchmarkFailedClientAuthentication: 16 connections send wrong secrets for a
// client registered with `client add` to /oauth/introspect for the whole run,
// while 4 people (2 per core) log in at once, over and over. Reported: the wrong-secret
// requests answered per second and their status, the logins' median and 95th
// percentile latency, and the mean time of a wrong secret against an unknown
// client id (measured apart, one at a time, on a fresh address budget).
//
//	go test -run ^$ -bench FailedClientAuthentication -benchtime 5s ./op
func BenchmarkFailedClientAuthentication(b *testing.B) {
	for _, tc := range []struct {
		name  string
		limit op.RateLimit
	}{{"limits-off", op.RateLimit{}}, {"serve-defaults", behindProxy(serveDefaults)}} {
		b.Run(tc.name, func(b *testing.B) { benchmarkFailedClientAuthentication(b, tc.limit) })
	}
}

// behindProxy makes 127.0.0.1 a trusted proxy, so that requests can say which
// address they come from: the flood's and each person's differ, as they would.
func behindProxy(l op.RateLimit) op.RateLimit {
	l.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	return l
}

// forwardedFor sends every request as the proxy would, for addr.
type forwardedFor struct {
	next http.RoundTripper
	addr string
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return f.next.RoundTrip(r)
}

func benchmarkFailedClientAuthentication(b *testing.B, limit op.RateLimit) {
	e := newEnv(b, envOptions{rateLimit: limit})
	svc, err := admin.NewService(admin.Config{Storage: e.store, Keys: e.keys, Issuer: e.issuer})
	if err != nil {
		b.Fatal(err)
	}
	stored, err := svc.AddClient(context.Background(), admin.ClientSpec{Name: "Stored app", RedirectURIs: []string{rpRedirectURI}})
	if err != nil {
		b.Fatal(err)
	}
	introspect := e.issuer + "/oauth/introspect"
	wrong := func(clientID string) int {
		req, _ := http.NewRequest(http.MethodPost, introspect, strings.NewReader("token=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, "not-the-secret")
		req.Header.Set("X-Forwarded-For", "198.51.100.66") // the attacker's address
		resp, err := (&http.Client{Transport: sharedTransport}).Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// One at a time first: does an unknown client answer faster than a wrong secret?
	const probes = 200
	mean := func(clientID string) time.Duration {
		start := time.Now()
		for range probes {
			wrong(clientID)
		}
		return time.Since(start) / probes
	}
	wrongSecret, unknownClient := mean(stored.ID), mean("no-such-client")
	// Those probes spent the address's failure budget; a new provider for the flood.
	e.stop()
	e = newEnv(b, envOptions{rateLimit: limit})
	svc, _ = admin.NewService(admin.Config{Storage: e.store, Keys: e.keys, Issuer: e.issuer})
	stored, _ = svc.AddClient(context.Background(), admin.ClientSpec{Name: "Stored app", RedirectURIs: []string{rpRedirectURI}})
	introspect = e.issuer + "/oauth/introspect"

	stop := make(chan struct{})
	var flood sync.WaitGroup
	var sent, unauthorized, limited atomic.Int64
	for range 16 {
		flood.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				switch wrong(stored.ID) {
				case http.StatusUnauthorized:
					unauthorized.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
				}
				sent.Add(1)
			}
		})
	}
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI, "openid", "profile")
	var mu sync.Mutex
	var latencies []time.Duration
	var people atomic.Int64
	b.SetParallelism(2)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t0 := time.Now()
			a := &loginAttempt{}
			person := newBrowser(b) // a new person each time, at an address of their own
			person.client.Transport = forwardedFor{sharedTransport, "203.0.113." + strconv.Itoa(int(people.Add(1)%250+1))}
			q := person.loginAt(e.authorizeURL(party, a))
			ctx := context.WithValue(context.Background(), nonceKey{}, a.nonce)
			if _, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, q.Get("code"), party, rp.WithCodeVerifier(a.verifier)); err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			latencies = append(latencies, time.Since(t0))
			mu.Unlock()
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	flood.Wait()
	if len(latencies) == 0 {
		b.Fatal("no login succeeded")
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 { return latencies[int(float64(len(latencies)-1)*p)].Seconds() * 1000 }
	b.ReportMetric(pct(0.5), "login-p50-ms")
	b.ReportMetric(pct(0.95), "login-p95-ms")
	b.ReportMetric(float64(sent.Load())/elapsed.Seconds(), "wrong-secret-req/s")
	b.ReportMetric(float64(unauthorized.Load()), "wrong-secret-401")
	b.ReportMetric(float64(limited.Load()), "wrong-secret-429")
	b.ReportMetric(float64(wrongSecret.Microseconds())/1000, "wrong-secret-ms")
	b.ReportMetric(float64(unknownClient.Microseconds())/1000, "unknown-client-ms")
}

// BenchmarkWrongClientSecret times one refused introspection, one at a time,
// for a client registered with `client add` and a wrong secret, and for a
// client id nobody registered: the two must not be told apart by their time.
//
//	go test -run ^$ -bench WrongClientSecret ./op
func BenchmarkWrongClientSecret(b *testing.B) {
	e := newEnv(b, envOptions{})
	svc, err := admin.NewService(admin.Config{Storage: e.store, Keys: e.keys, Issuer: e.issuer})
	if err != nil {
		b.Fatal(err)
	}
	stored, err := svc.AddClient(context.Background(), admin.ClientSpec{Name: "Stored app", RedirectURIs: []string{rpRedirectURI}})
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: sharedTransport}
	for _, tc := range []struct{ name, clientID string }{{"registered-client", stored.ID}, {"unknown-client", "no-such-client"}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth/introspect", strings.NewReader("token=x"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(tc.clientID, "not-the-secret")
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					b.Fatalf("status %d, want 401", resp.StatusCode)
				}
			}
		})
	}
}
