package op_test

import (
	"net/http"
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
