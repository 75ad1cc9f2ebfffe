package op_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// A storage holding as many logins in progress as it may (storage.ErrCapacity)
// makes /authorize answer the client temporarily_unavailable, so it can retry.
func TestAuthorizeAtCapacityIsTemporarilyUnavailable(t *testing.T) {
	e := newEnv(t, envOptions{limits: storage.Limits{AuthRequests: 1}})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	// The first login stops at the client with its code unexchanged: its auth
	// request stays until the exchange.
	if q := newBrowser(t).loginAt(e.authorizeURL(party, &loginAttempt{})); q.Get("code") == "" {
		t.Fatalf("first login: %v", q)
	}
	a := &loginAttempt{}
	q := newBrowser(t).loginAt(e.authorizeURL(party, a))
	if q.Get("error") != "temporarily_unavailable" || q.Get("state") != a.state {
		t.Fatalf("second login at capacity: %v, want temporarily_unavailable with its state", q)
	}
}

// Upstream states at capacity: the person sees a 503 page asking them to wait.
func TestLoginAtCapacityShowsBusyPage(t *testing.T) {
	e := newEnv(t, envOptions{limits: storage.Limits{UpstreamStates: 1}})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	err := e.store.CreateUpstreamState(context.Background(), storage.UpstreamState{
		ID: "someone-else-at-dingtalk", AuthRequestID: "x", ConnectorID: "dingtalk", Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := newBrowser(t).visit(e.authorizeURL(party, &loginAttempt{}))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "busy") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d (Retry-After %q), want 503 busy page:\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// Device authorizations are bounded too: beyond the storage's limit a device
// is told temporarily_unavailable, in JSON, and nothing is stored.
func TestDeviceAuthorizationAtCapacityIsTemporarilyUnavailable(t *testing.T) {
	e := newEnv(t, envOptions{limits: storage.Limits{Devices: 1}})
	e.startDevice(t)
	resp, body := getJSON(t, postForm(t, e.issuer+"/device_authorization", url.Values{"client_id": {deviceClientID}, "scope": {"openid"}}, "", ""))
	if resp.StatusCode < 400 || body["error"] != "temporarily_unavailable" {
		t.Fatalf("second device flow at capacity: %d %v, want temporarily_unavailable", resp.StatusCode, body)
	}
	if c, err := e.store.Count(context.Background()); err != nil || c.Devices != 1 {
		t.Errorf("devices stored: %+v, %v; want 1", c, err)
	}
}
