package dingtalk_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dingbridge/dingbridge/upstream/dingtalk"
)

// Calls share kept-alive connections: a burst of concurrent logins, again and
// again, dials about once per concurrent call, not once per call as with
// http.DefaultTransport's two idle connections per host.
func TestCallsKeepConnectionsAlive(t *testing.T) {
	var dials atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"accessToken":"at","refreshToken":"rt","expireIn":7200}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := dingtalk.NewClient(dingtalk.ClientConfig{ClientID: "app", ClientSecret: "secret",
		Endpoints: dingtalk.Endpoints{Login: srv.URL, API: srv.URL, OAPI: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	const concurrent, rounds = 16, 10
	for range rounds {
		var wg sync.WaitGroup
		for range concurrent {
			wg.Go(func() {
				if _, err := c.UserAccessToken(context.Background(), "code"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	if n := dials.Load(); n > 2*concurrent {
		t.Errorf("%d calls in bursts of %d opened %d connections; want them kept alive (at most %d)",
			concurrent*rounds, concurrent, n, 2*concurrent)
	}
}

// A redirect from an API is not followed: it would carry the user's access
// token header to wherever it points.
func TestCallsDoNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer srv.Close()
	c, err := dingtalk.NewClient(dingtalk.ClientConfig{ClientID: "app", ClientSecret: "secret",
		Endpoints: dingtalk.Endpoints{Login: srv.URL, API: srv.URL, OAPI: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(context.Background(), "user-access-token"); err == nil {
		t.Error("a redirected users/me answered")
	}
	if elsewhere.Load() != 0 {
		t.Error("the redirect was followed")
	}
}
