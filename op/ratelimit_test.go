package op_test

import (
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/op"
)

func TestRateLimitIsReachedAndRecovers(t *testing.T) {
	e := newEnv(t, envOptions{rateLimit: op.RateLimit{PerSecond: 2, Burst: 2}})
	get := func() *http.Response {
		resp, err := http.Get(e.issuer + "/login?authRequestID=none")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 2 {
		if resp := get(); resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d of the burst was limited", i+1)
		}
	}
	resp := get()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third request: status %d, want 429", resp.StatusCode)
	}
	wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || wait < 1 {
		t.Fatalf("Retry-After %q, want whole seconds", resp.Header.Get("Retry-After"))
	}
	// Other endpoints are not limited.
	if r, err := http.Get(e.issuer + "/.well-known/openid-configuration"); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("discovery while limited: %v %v", r, err)
	}
	time.Sleep(time.Duration(wait) * time.Second)
	if resp := get(); resp.StatusCode == http.StatusTooManyRequests {
		t.Fatal("still limited after Retry-After")
	}
}

func TestTokenEndpointIsRateLimited(t *testing.T) {
	e := newEnv(t, envOptions{rateLimit: op.RateLimit{PerSecond: 0.1, Burst: 1}})
	post := func() int {
		resp, err := http.PostForm(e.issuer+"/oauth/token", map[string][]string{"grant_type": {"authorization_code"}, "code": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post(); s == http.StatusTooManyRequests {
		t.Fatal("first token request limited")
	}
	if s := post(); s != http.StatusTooManyRequests {
		t.Fatalf("second token request: status %d, want 429", s)
	}
}

// The token endpoint counts failures, not successes: Grafana's backend
// exchanging codes for everyone from one address is never throttled (it was,
// at the per-address browser limit).
func TestTokenEndpointDoesNotCountSuccesses(t *testing.T) {
	// A burst of 3 covers the login's own browser requests: /authorize (which serves
	// the login step itself) and /callback.
	e := newEnv(t, envOptions{rateLimit: op.RateLimit{PerSecond: 0.001, Burst: 3}})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	tokens, _ := e.login(t, party)
	for i := range 6 {
		refreshed, err := refresh(party, tokens.RefreshToken)
		if err != nil {
			t.Fatalf("refresh %d from one address with a burst of 3: %v", i+1, err)
		}
		tokens = refreshed
	}
	// Failures still count: three bad codes, and the address waits.
	for i := range 3 {
		resp, err := http.PostForm(e.issuer+"/oauth/token", map[string][]string{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {publicClientID}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("failure %d limited already", i+1)
		}
	}
	if _, err := refresh(party, tokens.RefreshToken); oauthErrorCode(err) != "slow_down" {
		t.Errorf("after 3 failures from the address: %v, want 429 slow_down", err)
	}
}

// Behind a proxy that writes the client's port into X-Forwarded-For, each
// client still has its own bucket (they all shared the proxy's before).
func TestForwardedForWithPortsKeepsClientsApart(t *testing.T) {
	e := newEnv(t, envOptions{rateLimit: op.RateLimit{PerSecond: 0.001, Burst: 1,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	get := func(xff string) int {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/login?authRequestID=none", nil)
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get("198.51.100.7:5555"); s == http.StatusTooManyRequests {
		t.Fatal("first request limited")
	}
	if s := get("198.51.100.7:6666"); s != http.StatusTooManyRequests {
		t.Errorf("the same address from another port: status %d, want 429", s)
	}
	for _, other := range []string{"198.51.100.8:5555", "[2001:db8::1]:443"} {
		if s := get(other); s == http.StatusTooManyRequests {
			t.Errorf("%s shares another client's bucket", other)
		}
	}
}
