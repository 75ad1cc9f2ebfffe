package op_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dingbridge/dingbridge/op/telemetry"
)

// logoutReceiver is a relying party's back-channel logout endpoint. It answers
// 500 to the first failFirst deliveries.
type logoutReceiver struct {
	*httptest.Server
	tokens    chan string
	attempts  atomic.Int32
	failFirst int32
}

func newLogoutReceiver(t *testing.T, failFirst int32) *logoutReceiver {
	l := &logoutReceiver{tokens: make(chan string, 10), failFirst: failFirst}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.attempts.Add(1) <= l.failFirst {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		l.tokens <- r.PostFormValue("logout_token")
	}))
	t.Cleanup(l.Close)
	return l
}

func (l *logoutReceiver) await(t *testing.T) string {
	t.Helper()
	select {
	case tok := <-l.tokens:
		return tok
	case <-time.After(15 * time.Second):
		t.Fatalf("no logout token after %d attempts", l.attempts.Load())
		return ""
	}
}

// verifyLogoutToken checks the token as a relying party must (Back-Channel Logout §2.6).
func (e *env) verifyLogoutToken(t *testing.T, token string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := jws.Signatures[0].Header.ExtraHeaders["typ"]; typ != "logout+jwt" {
		t.Errorf("typ = %v, want logout+jwt", typ)
	}
	resp, err := http.Get(e.issuer + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jwks jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil {
		t.Fatal(err)
	}
	keys := jwks.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("logout token kid not in the JWKS")
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestBackchannelLogoutTellsTheClientsOfTheSession(t *testing.T) {
	receiver := newLogoutReceiver(t, 0)
	e := newEnv(t, envOptions{backchannelLogoutURI: receiver.URL})
	b := newBrowser(t)
	grafana := e.loginWith(t, b, e.relyingParty(rpClientID, rpSecret, rpRedirectURI), &loginAttempt{})
	e.loginWith(t, b, e.relyingParty(publicClientID, "", publicRedirect), &loginAttempt{}) // no back-channel URI

	if resp, _ := b.visit(e.endSessionURL(grafana.IDToken, rpLoggedOut, "")); resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: status %d", resp.StatusCode)
	}
	claims := e.verifyLogoutToken(t, receiver.await(t))
	aud, ok := claims["aud"].([]any) // a single audience may also be a plain string
	if s, isString := claims["aud"].(string); !ok && isString {
		aud = []any{s}
	}
	events, _ := claims["events"].(map[string]any)
	switch {
	case claims["iss"] != e.issuer:
		t.Errorf("iss = %v", claims["iss"])
	case len(aud) != 1 || aud[0] != rpClientID:
		t.Errorf("aud = %v, want [%s]", claims["aud"], rpClientID)
	case claims["sub"] != e.user.UnionID:
		t.Errorf("sub = %v", claims["sub"])
	case claims["sid"] != grafana.IDTokenClaims.Claims["sid"]:
		t.Errorf("sid = %v, want the id_token's %v", claims["sid"], grafana.IDTokenClaims.Claims["sid"])
	case events == nil || events["http://schemas.openid.net/event/backchannel-logout"] == nil:
		t.Errorf("events = %v", claims["events"])
	case claims["nonce"] != nil:
		t.Error("a logout token must not carry a nonce")
	case claims["jti"] == nil || claims["iat"] == nil:
		t.Errorf("jti/iat missing: %v", claims)
	}
	select {
	case extra := <-receiver.tokens:
		t.Errorf("a second logout token was sent: %s", extra)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestBackchannelLogoutIsRetried(t *testing.T) {
	receiver := newLogoutReceiver(t, 2)
	metrics := telemetry.New()
	e := newEnv(t, envOptions{backchannelLogoutURI: receiver.URL, metrics: metrics})
	b := newBrowser(t)
	tokens := e.loginWith(t, b, e.relyingParty(rpClientID, rpSecret, rpRedirectURI), &loginAttempt{})
	if resp, _ := b.visit(e.endSessionURL(tokens.IDToken, rpLoggedOut, "")); resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: status %d", resp.StatusCode)
	}
	e.verifyLogoutToken(t, receiver.await(t))
	if n := receiver.attempts.Load(); n != 3 {
		t.Errorf("%d attempts, want 3 (two failures, then success)", n)
	}
	e.provider.Wait()
	// One delivery, counted once however many attempts it took.
	want := `# HELP dingbridge_backchannel_logout_deliveries_total Back-channel logout tokens sent to clients, by result (ok, failed after every attempt, error before sending).
# TYPE dingbridge_backchannel_logout_deliveries_total counter
dingbridge_backchannel_logout_deliveries_total{result="ok"} 1
`
	if err := testutil.GatherAndCompare(metrics.Registry(), strings.NewReader(want), "dingbridge_backchannel_logout_deliveries_total"); err != nil {
		t.Error(err)
	}
}
