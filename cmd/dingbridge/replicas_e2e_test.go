package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/storage/postgres/postgrestest"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// Two `serve` replicas on one PostgreSQL database, behind a balancer that sends
// each request to the next replica in turn: every step of a login lands on a
// different replica than the one before, and everything must work as it does
// with one server.

const (
	rpLoggedOut    = "http://127.0.0.1:1/logged-out"
	deviceClientID = "cli"
)

// replicaEnv is the running setup: two replicas, the balancer in front (whose
// address is the issuer), the fake DingTalk, and the CLI's environment.
type replicaEnv struct {
	issuer   string
	a, b     *replica
	lb       *balancer
	fake     *dingtalktest.Server
	user     dingtalktest.User
	env      map[string]string // the replicas' environment, and the CLI's
	cfgPaths []string          // one file per replica
}

func newReplicaEnv(t *testing.T) *replicaEnv {
	t.Helper()
	dsn := postgrestest.DSN(t) // skips without DINGBRIDGE_TEST_POSTGRES
	lbListener := listenLoopback(t)
	e := &replicaEnv{issuer: "http://" + lbListener.Addr().String(), user: dingtalktest.DemoUsers()[0]}
	e.fake = dingtalktest.NewServer(dingtalktest.Config{
		Apps:  []dingtalktest.App{{ClientID: dtClientID, ClientSecret: dtSecret, RedirectURIs: []string{e.issuer + "/callback/dingtalk"}}},
		Users: dingtalktest.DemoUsers(),
	})
	t.Cleanup(e.fake.Close)
	e.fake.AutoApprove(e.user.UnionID)
	e.env = map[string]string{"DINGBRIDGE_DB_DSN": dsn, "DINGTALK_CLIENT_SECRET": dtSecret, "GRAFANA_OIDC_SECRET": rpSecret}

	var replicas []*replica
	for _, name := range []string{"a", "b"} {
		addr := freeAddr(t)
		path := writeFile(t, "dingbridge-"+name+".yaml", replicaConfig(e.issuer, addr, e.fake.URL))
		e.cfgPaths = append(e.cfgPaths, path)
		replicas = append(replicas, startReplica(t, name, addr, path, e.env))
	}
	e.a, e.b = replicas[0], replicas[1]
	e.lb = newBalancer(e.a, e.b)
	srv := &http.Server{Handler: e.lb, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lbListener) }()
	t.Cleanup(func() { _ = srv.Close() })
	return e
}

// cli runs an admin command against the database, as an operator on any host
// with the configuration file would: no socket, no replica involved.
func (e *replicaEnv) cli(t *testing.T, v any, args ...string) {
	t.Helper()
	args = append(args, "--config", e.cfgPaths[0], "-o", "json")
	code, stdout, stderr := runCLI(t, e.env, args...)
	if code != 0 {
		t.Fatalf("dingbridge %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(stdout), v); err != nil {
			t.Fatalf("dingbridge %s: %v\n%s", strings.Join(args, " "), err, stdout)
		}
	}
}

func (e *replicaEnv) party(t *testing.T, clientID, secret, redirect string, scopes ...string) rp.RelyingParty {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"openid", "profile", "offline_access"}
	}
	httpClient := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	t.Cleanup(httpClient.CloseIdleConnections)
	party, err := rp.NewRelyingPartyOIDC(context.Background(), e.issuer, clientID, secret, redirect, scopes,
		rp.WithHTTPClient(httpClient), rp.WithVerifierOpts(rp.WithNonce(func(ctx context.Context) string {
			n, _ := ctx.Value(nonceKey{}).(string)
			return n
		})))
	if err != nil {
		t.Fatalf("discovery through the balancer: %v", err)
	}
	return party
}

func (e *replicaEnv) dingtalkLogins() int { return e.fake.Calls(dingtalktest.APIUserAccessToken) }

// person is a browser: it keeps its cookies and stops at the relying party.
type person struct{ client *http.Client }

func newPerson(t *testing.T) *person {
	jar, _ := cookiejar.New(nil)
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	return &person{client: &http.Client{Jar: jar, Transport: transport, Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), "http://127.0.0.1:1/") {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return fmt.Errorf("stopped after %d redirects", len(via))
			}
			return nil
		}}}
}

func (p *person) do(req *http.Request) (*http.Response, string, error) {
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

func (p *person) get(rawURL string) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, "", err
	}
	return p.do(req)
}

func (p *person) post(rawURL string, form url.Values) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return p.do(req)
}

// logIn runs a whole login of p at party and returns the verified tokens, or
// what went wrong; it may run on any goroutine. extra adds authorize parameters.
func logIn(p *person, party rp.RelyingParty, extra ...rp.AuthURLOpt) (*oidc.Tokens[*oidc.IDTokenClaims], error) {
	nonce, verifier := "n-"+rand.Text(), "v-"+rand.Text()+rand.Text()
	opts := append([]rp.AuthURLOpt{rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", nonce))}, extra...)
	resp, body, err := p.get(rp.AuthURL("st-"+rand.Text(), party, opts...))
	if err != nil {
		return nil, err
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("code") == "" {
		return nil, fmt.Errorf("login ended with status %d at %s, not a code: %s %.300s", resp.StatusCode, resp.Request.URL, resp.Header.Get("Location"), body)
	}
	ctx := context.WithValue(context.Background(), nonceKey{}, nonce)
	return rp.CodeExchange[*oidc.IDTokenClaims](ctx, loc.Query().Get("code"), party, rp.WithCodeVerifier(verifier))
}

func mustLogIn(t *testing.T, p *person, party rp.RelyingParty, extra ...rp.AuthURLOpt) *oidc.Tokens[*oidc.IDTokenClaims] {
	t.Helper()
	tokens, err := logIn(p, party, extra...)
	if err != nil {
		t.Fatalf("login through the balancer: %v", err)
	}
	return tokens
}

func userinfo(party rp.RelyingParty, accessToken, subject string) (*oidc.UserInfo, error) {
	return rp.Userinfo[*oidc.UserInfo](context.Background(), accessToken, oidc.BearerToken, subject, party)
}

// onEveryReplica runs check once per replica: the balancer alternates, so two
// calls in a row reach both.
func onEveryReplica(t *testing.T, what string, check func() error) {
	t.Helper()
	for i := range 2 {
		if err := check(); err != nil {
			t.Errorf("%s (call %d of 2, one per replica): %v", what, i+1, err)
		}
	}
}

func TestReplicasLogInRefreshAndLogOutAsOneProvider(t *testing.T) {
	e := newReplicaEnv(t)
	party := e.party(t, rpClientID, rpSecret, rpRedirect)

	// Two logins, one starting on each replica: every step of the flow is
	// served once by each, and within a login each step's state (the auth
	// request and upstream state /authorize wrote, the code) is read by the
	// other replica.
	p := newPerson(t)
	e.lb.startOn(e.a)
	first := mustLogIn(t, p, party)
	e.lb.startOn(e.b)
	other := mustLogIn(t, newPerson(t), party)
	for _, path := range []string{"/authorize", "/callback/dingtalk", "/oauth/token"} {
		if got := e.lb.served(path); got["a"] == 0 || got["b"] == 0 {
			t.Errorf("%s was served %v: want both replicas", path, got)
		}
	}
	for _, tokens := range []*oidc.Tokens[*oidc.IDTokenClaims]{first, other} {
		if tokens.IDTokenClaims.Subject != e.user.UnionID || tokens.RefreshToken == "" {
			t.Fatalf("id_token sub %q, refresh token %t", tokens.IDTokenClaims.Subject, tokens.RefreshToken != "")
		}
	}
	onEveryReplica(t, "userinfo", func() error {
		_, err := userinfo(party, first.AccessToken, e.user.UnionID)
		return err
	})

	// SSO: the session made on one replica lets the next login skip DingTalk,
	// whichever replica it reaches.
	before := e.dingtalkLogins()
	for _, r := range []*replica{e.a, e.b} {
		e.lb.startOn(r)
		sso := mustLogIn(t, p, party)
		if sso.IDTokenClaims.Claims["sid"] != first.IDTokenClaims.Claims["sid"] {
			t.Errorf("SSO login sid %v, want the first login's %v", sso.IDTokenClaims.Claims["sid"], first.IDTokenClaims.Claims["sid"])
		}
	}
	if n := e.dingtalkLogins() - before; n != 0 {
		t.Errorf("SSO logins went to DingTalk %d times, want 0", n)
	}

	// Refresh: each rotation lands on the other replica than the one before.
	e.lb.startOn(e.a)
	current := first
	for i := range 4 {
		next, err := refresh(party, current.RefreshToken)
		if err != nil {
			t.Fatalf("refresh %d: %v", i+1, err)
		}
		current = next
	}
	if served := e.lb.served("/oauth/token"); served["a"] < 3 || served["b"] < 3 {
		t.Errorf("token requests per replica %v, want several on each", served)
	}
	// A rotated token presented again after the grace period revokes the login,
	// on every replica.
	time.Sleep(1100 * time.Millisecond)
	if _, err := refresh(party, first.RefreshToken); oauthError(err) != "invalid_grant" {
		t.Errorf("reused refresh token: %v, want invalid_grant", err)
	}
	onEveryReplica(t, "refresh after reuse was detected", func() error {
		if _, err := refresh(party, current.RefreshToken); oauthError(err) != "invalid_grant" {
			return fmt.Errorf("%v, want invalid_grant", err)
		}
		return nil
	})

	// Logout on one replica ends the session for both.
	resp, body, err := p.get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {first.IDToken},
		"post_logout_redirect_uri": {rpLoggedOut}, "state": {"bye"}}.Encode())
	if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), rpLoggedOut) {
		t.Fatalf("logout: %v, status %d, location %q\n%.500s", err, statusOf(resp), locationOf(resp), body)
	}
	for _, r := range []*replica{e.a, e.b} {
		e.lb.startOn(r)
		if _, err := logIn(p, party, rp.WithPrompt("none")); err == nil || !strings.Contains(err.Error(), "login_required") {
			t.Errorf("prompt=none after logout: %v, want login_required", err)
		}
	}
}

func TestReplicasSeeAdminChangesAtOnce(t *testing.T) {
	e := newReplicaEnv(t)
	party := e.party(t, rpClientID, rpSecret, rpRedirect)

	// A client added with the CLI, straight into the database, logs in through
	// both replicas; a new secret and a deletion take effect on both at once.
	var added admin.ClientWithSecret
	e.cli(t, &added, "client", "add", "--name", "Wiki", "--redirect-uri", appRedirect)
	wiki := e.party(t, added.ID, added.Secret, appRedirect)
	tokens := mustLogIn(t, newPerson(t), wiki)
	var rotated admin.ClientWithSecret
	e.cli(t, &rotated, "client", "rotate-secret", added.ID)
	onEveryReplica(t, "refresh with the secret rotate-secret replaced", func() error {
		if _, err := refresh(wiki, tokens.RefreshToken); oauthError(err) != "invalid_client" {
			return fmt.Errorf("%v, want invalid_client", err)
		}
		return nil
	})
	renewed := e.party(t, added.ID, rotated.Secret, appRedirect)
	fresh, err := refresh(renewed, tokens.RefreshToken)
	if err != nil {
		t.Fatalf("refresh with the new secret: %v", err)
	}
	e.cli(t, nil, "client", "delete", added.ID)
	onEveryReplica(t, "the deleted client's tokens", func() error {
		if _, err := refresh(renewed, fresh.RefreshToken); oauthError(err) != "invalid_client" {
			return fmt.Errorf("refresh: %v, want invalid_client", err)
		}
		if _, err := userinfo(renewed, fresh.AccessToken, e.user.UnionID); err == nil {
			return errors.New("userinfo still answers")
		}
		return nil
	})

	// Disabling a person stops their refresh tokens and userinfo on both.
	mine := mustLogIn(t, newPerson(t), party)
	e.cli(t, nil, "users", "disable", e.user.UnionID)
	onEveryReplica(t, "a disabled person's tokens", func() error {
		if _, err := refresh(party, mine.RefreshToken); oauthError(err) != "invalid_grant" {
			return fmt.Errorf("refresh: %v, want invalid_grant", err)
		}
		if _, err := userinfo(party, mine.AccessToken, e.user.UnionID); err == nil {
			return errors.New("userinfo still answers")
		}
		return nil
	})
	e.cli(t, nil, "users", "enable", e.user.UnionID)

	// keys rotate: every replica publishes the new key before any signs with it.
	old := mustLogIn(t, newPerson(t), party)
	oldKid := kidOf(t, old.IDToken)
	var next struct {
		ID        string    `json:"kid"`
		State     string    `json:"state"`
		NotBefore time.Time `json:"notBefore"`
	}
	e.cli(t, &next, "keys", "rotate")
	if next.ID == "" || next.ID == oldKid || next.State != "next" || !next.NotBefore.After(time.Now()) {
		t.Fatalf("keys rotate gave %+v, want a new key that signs later (the old one is %s)", next, oldKid)
	}
	for _, r := range []*replica{e.a, e.b} {
		waitPublished(t, r, next.ID, next.NotBefore)
	}
	for time.Now().Before(next.NotBefore) {
		if tokens, err := logIn(newPerson(t), party); err != nil {
			t.Fatal(err)
		} else if kid := kidOf(t, tokens.IDToken); kid != oldKid && time.Now().Before(next.NotBefore) {
			t.Fatalf("signed by %s before the new key's NotBefore %s", kid, next.NotBefore)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for i := range 2 {
		if kid := kidOf(t, mustLogIn(t, newPerson(t), party).IDToken); kid != next.ID {
			t.Errorf("login %d after NotBefore signed by %s, want the new key %s", i+1, kid, next.ID)
		}
	}
	newcomer := e.party(t, rpClientID, rpSecret, rpRedirect)
	ctx := context.WithValue(context.Background(), nonceKey{}, old.IDTokenClaims.Nonce)
	if _, err := rp.VerifyIDToken[*oidc.IDTokenClaims](ctx, old.IDToken, newcomer.IDTokenVerifier()); err != nil {
		t.Errorf("an id_token signed before the rotation no longer verifies: %v", err)
	}
}

// waitPublished waits until r's own JWKS (not through the balancer) has kid,
// failing if that is not before notBefore.
func waitPublished(t *testing.T, r *replica, kid string, notBefore time.Time) {
	t.Helper()
	for {
		resp, err := http.Get("http://" + r.addr + "/keys")
		if err == nil {
			var jwks struct {
				Keys []struct {
					Kid string `json:"kid"`
				} `json:"keys"`
			}
			err = json.NewDecoder(resp.Body).Decode(&jwks)
			resp.Body.Close()
			if slices.ContainsFunc(jwks.Keys, func(k struct {
				Kid string `json:"kid"`
			}) bool {
				return k.Kid == kid
			}) {
				return
			}
		}
		if !time.Now().Before(notBefore) {
			t.Fatalf("replica %s does not publish key %s by its NotBefore %s (%v)", r.name, kid, notBefore, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	formActionRe  = regexp.MustCompile(`<form [^>]*action="([^"]*)"`)
	hiddenInputRe = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	textInputRe   = regexp.MustCompile(`<input type="text" id="[^"]*" name="([^"]*)" value="([^"]*)"`)
)

// submitForm posts the page's form with its fields, and set on top.
func (e *replicaEnv) submitForm(t *testing.T, p *person, page string, set url.Values) (*http.Response, string) {
	t.Helper()
	m := formActionRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("page has no form:\n%s", page)
	}
	fields := url.Values{}
	for _, re := range []*regexp.Regexp{hiddenInputRe, textInputRe} {
		for _, f := range re.FindAllStringSubmatch(page, -1) {
			fields.Set(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
		}
	}
	for k, v := range set {
		fields[k] = v
	}
	resp, body, err := p.post(e.issuer+html.UnescapeString(m[1]), fields)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestReplicasRunTheDeviceFlow(t *testing.T) {
	e := newReplicaEnv(t)
	device := e.party(t, deviceClientID, "", "")
	dev, err := rp.DeviceAuthorization(context.Background(), []string{"openid", "offline_access"}, device, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newPerson(t)
	resp, body, err := p.get(dev.VerificationURIComplete)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("device page: %v %d\n%s", err, statusOf(resp), body)
	}
	resp, body = e.submitForm(t, p, body, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "kubectl") {
		t.Fatalf("confirmation page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = e.submitForm(t, p, body, url.Values{"decision": {"allow"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Device connected") {
		t.Fatalf("after the login: %d\n%s", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tokens, err := rp.DeviceAccessToken(ctx, dev.DeviceCode, time.Second, device)
	if err != nil {
		t.Fatalf("device token: %v", err)
	}
	if tokens.RefreshToken == "" {
		t.Fatal("no refresh token for offline_access")
	}
	onEveryReplica(t, "the device's access token", func() error {
		_, err := userinfo(device, tokens.AccessToken, e.user.UnionID)
		return err
	})
	// The device code is spent: polling again, on either replica, gets nothing.
	onEveryReplica(t, "polling a spent device code", func() error {
		form := url.Values{"grant_type": {string(oidc.GrantTypeDeviceCode)}, "device_code": {dev.DeviceCode}, "client_id": {deviceClientID}}
		resp, err := http.PostForm(e.issuer+"/oauth/token", form)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var answer struct {
			Error       string `json:"error"`
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&answer)
		if answer.AccessToken != "" || answer.Error == "" {
			return fmt.Errorf("status %d, %+v: want an error", resp.StatusCode, answer)
		}
		return nil
	})
}

// A replica killed mid-load loses nothing it answered: every login whose token
// response arrived before the kill still has a working access token and
// refresh token on the survivor.
func TestKilledReplicaLosesNoAnsweredLogin(t *testing.T) {
	e := newReplicaEnv(t)
	party := e.party(t, rpClientID, rpSecret, rpRedirect)

	type answered struct {
		tokens *oidc.Tokens[*oidc.IDTokenClaims]
		at     time.Time
	}
	var (
		mu      sync.Mutex
		logins  []answered
		failed  int
		workers sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	for range 4 {
		workers.Go(func() {
			for ctx.Err() == nil {
				tokens, err := logIn(newPerson(t), party)
				at := time.Now()
				mu.Lock()
				if err == nil {
					logins = append(logins, answered{tokens, at})
				} else {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	// Let logins run on both, kill b in the middle of them, go on a little.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(logins)
		mu.Unlock()
		if n >= 16 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.b.kill(t)
	killedAt := time.Now()
	e.lb.remove(e.b)
	time.Sleep(time.Second)
	stop()
	workers.Wait()

	var before []answered
	for _, l := range logins {
		if l.at.Before(killedAt) {
			before = append(before, l)
		}
	}
	t.Logf("%d logins answered before the kill, %d after, %d failed (in flight at the kill)", len(before), len(logins)-len(before), failed)
	if len(before) < 16 {
		t.Fatalf("only %d logins answered before the kill: the load did not run", len(before))
	}
	if served := e.lb.served("/oauth/token"); served["b"] == 0 {
		t.Fatalf("replica b served no token request before it was killed: %v", served)
	}
	for i, l := range before {
		if _, err := userinfo(party, l.tokens.AccessToken, e.user.UnionID); err != nil {
			t.Errorf("login %d (answered before the kill): userinfo: %v", i, err)
		}
		if _, err := refresh(party, l.tokens.RefreshToken); err != nil {
			t.Errorf("login %d (answered before the kill): refresh: %v", i, err)
		}
	}
	// The survivor still logs people in, by itself.
	mustLogIn(t, newPerson(t), party)
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

func locationOf(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	return resp.Header.Get("Location")
}
