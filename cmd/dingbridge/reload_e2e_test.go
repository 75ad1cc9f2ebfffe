package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/admin"
)

// A reload (SIGHUP, or `dingbridge reload`) changes static clients, connectors,
// claims, lifetimes and rate limits; a login at DingTalk's page meanwhile, the
// SSO session and the tokens issued before all carry on; an invalid file is
// refused with the messages of `config check` and the running configuration stays.
func TestReloadChangesSettingsAndKeepsLoginsSessionsAndTokens(t *testing.T) {
	e := newAdminEnv(t)
	srv := e.serve(t)
	original := readFile(t, e.cfgPath)
	grafana := e.relyingParty(t, rpClientID, rpSecret, rpRedirect)

	// Before: a session in this browser and tokens from it.
	browser := newBrowser(t, "http://127.0.0.1:1/")
	code, verifier, nonce := startLogin(t, browser, grafana)
	before := exchange(t, grafana, code, verifier, nonce)
	if before.IDTokenClaims.EmailVerified {
		t.Fatal("email_verified before the reload; the test needs it false")
	}
	// In flight: another browser stands at DingTalk's login page.
	inFlight := newBrowser(t, e.fake.URL)
	authURL, verifier2, nonce2, _ := authorizeURL(grafana)
	resp, _ := inFlight.visit(authURL)
	atDingTalk := resp.Header.Get("Location")
	if !strings.HasPrefix(atDingTalk, e.fake.URL) {
		t.Fatalf("login did not reach DingTalk: %d %s", resp.StatusCode, atDingTalk)
	}
	if status, _ := get(t, e.issuer+"/callback/corp2"); status != http.StatusNotFound {
		t.Fatalf("/callback/corp2 before the reload: %d, want 404 (no such connector)", status)
	}

	// The new file: a second static client, a second connector, 5-minute
	// id_tokens, email_verified released as true.
	const wikiSecret = "wiki-secret-0123456789abcdef0123"
	changed := strings.Replace(original, "staticClients:\n", fmt.Sprintf(
		"staticClients:\n  - id: wiki\n    secret: %s\n    redirectURIs: [%q]\n", wikiSecret, appRedirect), 1)
	changed = strings.Replace(changed, "connectors:\n", fmt.Sprintf(
		"connectors:\n  - id: corp2\n    clientID: other-app\n    clientSecret: other-app-secret-0123\n    endpoints: {login: %q, api: %q, oapi: %q}\n",
		e.fake.URL, e.fake.URL, e.fake.URL), 1)
	changed += "expiry: {idToken: 5m}\nclaims: {emailVerified: true}\n"
	writeConfig(t, e.cfgPath, changed)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, srv, "configuration reloaded", 1)

	// The login in flight finishes at the client it started for.
	finisher := newBrowser(t, "http://127.0.0.1:1/")
	finisher.client.Jar = inFlight.client.Jar
	q := finisher.loginAt(atDingTalk)
	exchange(t, grafana, q.Get("code"), verifier2, nonce2)
	// The tokens from before still refresh, under the new lifetime.
	refreshed, err := refresh(grafana, before.RefreshToken)
	if err != nil {
		t.Fatalf("refresh after the reload: %v", err)
	}
	if life := refreshed.IDTokenClaims.Expiration.AsTime().Sub(refreshed.IDTokenClaims.IssuedAt.AsTime()); life != 5*time.Minute {
		t.Errorf("id_token after the reload lives %s, want 5m", life)
	}
	// The new static client logs in on the old session: same auth_time, no DingTalk.
	wiki := e.relyingParty(t, "wiki", wikiSecret, appRedirect)
	code3, verifier3, nonce3 := startLogin(t, browser, wiki)
	sso := exchange(t, wiki, code3, verifier3, nonce3)
	if !sso.IDTokenClaims.AuthTime.AsTime().Equal(before.IDTokenClaims.AuthTime.AsTime()) {
		t.Errorf("auth_time at the new client %v, want the session's %v", sso.IDTokenClaims.AuthTime.AsTime(), before.IDTokenClaims.AuthTime.AsTime())
	}
	if !sso.IDTokenClaims.EmailVerified {
		t.Error("email_verified still false after claims.emailVerified became true")
	}
	if status, _ := get(t, e.issuer+"/callback/corp2"); status != http.StatusBadRequest {
		t.Errorf("/callback/corp2 without a state after the reload: %d, want 400 (a connector that exists)", status)
	}
	var clients []admin.Client
	e.cliJSON(t, &clients, "client", "list")
	if !hasStaticClient(clients, "wiki") {
		t.Errorf("client list after the reload lacks the static client wiki: %+v", clients)
	}

	// An invalid file: the CLI says what `config check` says; a SIGHUP is
	// refused with that message and the configuration in force stays.
	invalid := strings.Replace(changed, "claims: {emailVerified: true}", "claims: {emailVerified: true, subject: email}", 1)
	writeConfig(t, e.cfgPath, invalid)
	const problem = `claims.subject "email" is unknown: use unionid (the default), openid or userid`
	if code, _, stderr := e.cli(t, "config", "check"); code != exitError || !strings.Contains(stderr, problem) {
		t.Fatalf("config check of the invalid file: exit %d\n%s", code, stderr)
	}
	if code, stdout, stderr := e.cli(t, "reload"); code == 0 || !strings.Contains(stderr, problem) {
		t.Errorf("reload of the invalid file: exit %d, stdout %q, stderr:\n%s\nwant a failure naming %q", code, stdout, stderr, problem)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	refusal := waitLog(t, srv, "configuration not reloaded: the running one stays", 1)
	if !strings.Contains(refusal, strings.ReplaceAll(problem, `"`, `\"`)) {
		t.Errorf("the refusal does not give config check's message %q:\n%s", problem, refusal)
	}
	code4, verifier4, nonce4 := startLogin(t, browser, wiki)
	exchange(t, wiki, code4, verifier4, nonce4)

	// `dingbridge reload` with a valid file: a rate limit of one request.
	writeConfig(t, e.cfgPath, changed+"rateLimit: {perSecond: 0.01, burst: 1}\n")
	if code, stdout, stderr := e.cli(t, "reload"); code != 0 || !strings.Contains(stdout, "reloaded") {
		t.Fatalf("reload: exit %d\n%s%s", code, stdout, stderr)
	}
	var statuses []int
	for range 2 {
		status, _ := get(t, e.issuer+"/login?authRequestID=x")
		statuses = append(statuses, status)
	}
	if statuses[1] != http.StatusTooManyRequests {
		t.Errorf("/login twice after reloading burst 1: %v, want the second 429", statuses)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	assertNoSecrets(t, srv.stderr.String(), wikiSecret, "other-app-secret-0123", rpSecret, dtSecret, before.RefreshToken)
}

func hasStaticClient(clients []admin.Client, id string) bool {
	for _, c := range clients {
		if c.ID == id && c.Static {
			return true
		}
	}
	return false
}

// waitLog waits until the process's logs hold the line with msg n times, and
// returns the last such line.
func waitLog(t *testing.T, p *process, msg string, n int) string {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		var found []string
		for _, line := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(line, `msg="`+msg+`"`) {
				found = append(found, line)
			}
		}
		if len(found) >= n {
			return found[len(found)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q within %s:\n%s", msg, readyTimeout, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
