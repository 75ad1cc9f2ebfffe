package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/storage/bolt"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// The storage contract says what a crash may lose: flow state (a login in the
// middle of its DingTalk round trip), never what a response acknowledged. These
// tests hold the real binary to it: `serve` from a YAML file, logins and
// refreshes from several people at once, SIGKILL in the middle, `serve` again on
// the same file, and then every refresh token a client received still refreshes,
// every access token still answers userinfo, every session cookie whose login
// ended in a token response still logs in without DingTalk, and every such
// person is stored. (A session whose login's code was never exchanged may be
// lost: it was a login in flight.)

// crashLoad is how much acknowledged work must exist before the kill; the
// workers keep going while the process dies, so requests are in flight then.
const (
	crashWorkers             = 6
	crashLoginsBeforeKill    = 12
	crashRefreshesBeforeKill = 24
)

func TestKillDuringLoginsAndRefreshesLosesNothingAcknowledged(t *testing.T) {
	dir := shortTempDir(t)
	addr := freeAddr(t)
	issuer := "http://" + addr
	users := dingtalktest.DemoUsers()
	fake := dingtalktest.NewServer(dingtalktest.Config{
		Apps:  []dingtalktest.App{{ClientID: dtClientID, ClientSecret: dtSecret, RedirectURIs: []string{issuer + "/callback/dingtalk"}}},
		Users: users,
	})
	t.Cleanup(fake.Close)
	// No AutoApprove: each person presses "approve" on the fake's page, so a
	// browser that reaches the client later without that page rode its session.
	dbPath := filepath.Join(dir, "dingbridge.db")
	cfg := serveConfig(issuer, addr, dbPath, fake.URL) +
		"expiry: {refreshTokenReuseGrace: 1m}\n" + // a refresh lost in the crash is retried, as a client would
		"rateLimit: {perSecond: 100000, burst: 100000}\n"
	cfgPath := writeFile(t, "dingbridge.yaml", cfg)
	env := []string{"DINGTALK_CLIENT_SECRET=" + dtSecret, "GRAFANA_OIDC_SECRET=" + rpSecret}

	srv := startChild(t, "serve", env, "serve", "--config", cfgPath)
	srv.waitReady(t, issuer+"/readyz")
	httpClient := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(httpClient.CloseIdleConnections)
	party, err := rp.NewRelyingPartyOIDC(context.Background(), issuer, rpClientID, rpSecret, rpRedirect,
		[]string{"openid", "profile", "offline_access"}, rp.WithHTTPClient(httpClient))
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}

	acked := &acknowledged{progress: make(chan struct{}, 1)}
	load, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range crashWorkers {
		wg.Go(func() {
			user := users[w%len(users)]
			for load.Err() == nil {
				crashLoginAndRefresh(load, party, fake.URL, user.UnionID, acked)
			}
		})
	}
	deadline := time.After(60 * time.Second)
	for !acked.enough(crashLoginsBeforeKill, crashRefreshesBeforeKill) {
		select {
		case <-acked.progress:
		case <-deadline:
			stopLoad()
			wg.Wait()
			t.Fatalf("load made too little progress: %s; serve's log:\n%s", acked.summary(), srv.logs)
		}
	}
	srv.kill(t) // mid-load: the workers have requests in flight
	stopLoad()
	wg.Wait()
	httpClient.CloseIdleConnections()
	t.Logf("killed serve after %s", acked.summary())

	srv = startChild(t, "restarted serve", env, "serve", "--config", cfgPath)
	srv.waitReady(t, issuer+"/readyz")
	ctx := context.Background()
	chains, sessions := acked.snapshot()
	for i, c := range chains {
		if _, err := rp.Userinfo[*oidc.UserInfo](ctx, c.accessToken, oidc.BearerToken, c.subject, party); err != nil {
			t.Errorf("chain %d: the last access token received no longer answers userinfo: %v", i, err)
		}
		if _, err := rp.RefreshTokens[*oidc.IDTokenClaims](ctx, party, c.refreshToken, "", ""); err != nil {
			t.Errorf("chain %d: the last refresh token received no longer refreshes: %v", i, err)
		}
	}
	for i, s := range sessions {
		authURL := rp.AuthURL("st-"+rand.Text(), party, rp.WithCodeChallenge(oidc.NewSHACodeChallenge("v-"+rand.Text()+rand.Text())))
		code, err := s.browser.follow(ctx, authURL)
		if err != nil || code == "" {
			t.Errorf("session %d (%s): the session cookie received no longer logs in: code %q, %v", i, s.subject, code, err)
		}
	}
	httpClient.CloseIdleConnections()
	if code := srv.terminate(t); code != 0 {
		t.Errorf("restarted serve exited %d after SIGTERM; output:\n%s", code, srv.logs)
	}

	store, err := bolt.Open(dbPath, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, s := range sessions {
		if _, err := store.GetUser(ctx, s.subject); err != nil {
			t.Errorf("user %s, whose session a browser received: %v", s.subject, err)
		}
	}
	t.Logf("after the restart: %d refresh chains refreshed, %d sessions logged in again", len(chains), len(sessions))
}

// acknowledged is what clients and browsers received before the kill.
type acknowledged struct {
	mu        sync.Mutex
	chains    []*chain
	sessions  []ackedSession
	logins    int
	refreshes int
	progress  chan struct{}
}

// chain is one login's tokens as its client last received them.
type chain struct {
	subject, accessToken, refreshToken string
}

type ackedSession struct {
	subject string
	browser *crashBrowser
}

func (a *acknowledged) addSession(subject string, b *crashBrowser) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sessions = append(a.sessions, ackedSession{subject, b})
}

func (a *acknowledged) addChain(c *chain) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.chains = append(a.chains, c)
	a.logins++
	a.signal()
}

func (a *acknowledged) refreshed(c *chain, accessToken, refreshToken string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c.accessToken, c.refreshToken = accessToken, refreshToken
	a.refreshes++
	a.signal()
}

func (a *acknowledged) signal() {
	select {
	case a.progress <- struct{}{}:
	default:
	}
}

func (a *acknowledged) enough(logins, refreshes int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.logins >= logins && a.refreshes >= refreshes
}

func (a *acknowledged) summary() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("%d token responses to logins, %d to refreshes, %d session cookies", a.logins, a.refreshes, len(a.sessions))
}

// snapshot copies what was acknowledged; the workers have stopped.
func (a *acknowledged) snapshot() ([]chain, []ackedSession) {
	a.mu.Lock()
	defer a.mu.Unlock()
	chains := make([]chain, len(a.chains))
	for i, c := range a.chains {
		chains[i] = *c
	}
	return chains, a.sessions
}

// crashLoginAndRefresh is one person logging in through DingTalk in a new
// browser, then their client refreshing a few times. It records each answer as
// it arrives; any error (the process died) ends it.
func crashLoginAndRefresh(ctx context.Context, party rp.RelyingParty, fakeURL, unionID string, acked *acknowledged) {
	b := newCrashBrowser()
	verifier := "v-" + rand.Text() + rand.Text()
	authURL := rp.AuthURL("st-"+rand.Text(), party, rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier)))
	code, err := b.loginThroughFake(ctx, authURL, fakeURL, unionID)
	if err != nil || code == "" {
		return
	}
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, code, party, rp.WithCodeVerifier(verifier))
	if err != nil || tokens.RefreshToken == "" {
		return
	}
	if b.hasSession(party.Issuer()) {
		// The token response of the login that set the session cookie arrived:
		// it acknowledges the session with the tokens (storage's package comment).
		acked.addSession(unionID, b)
	}
	c := &chain{subject: tokens.IDTokenClaims.Subject, accessToken: tokens.AccessToken, refreshToken: tokens.RefreshToken}
	acked.addChain(c)
	for range 3 {
		next, err := rp.RefreshTokens[*oidc.IDTokenClaims](ctx, party, c.refreshToken, "", "")
		if err != nil {
			return
		}
		acked.refreshed(c, next.AccessToken, next.RefreshToken)
	}
}

// crashBrowser is a browser that stops at the relying party's redirect URI and
// at the fake DingTalk's login page.
type crashBrowser struct {
	jar    *cookiejar.Jar
	client *http.Client
}

func newCrashBrowser() *crashBrowser {
	jar, _ := cookiejar.New(nil)
	return &crashBrowser{jar: jar, client: &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), rpRedirect) {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return fmt.Errorf("stopped after %d redirects", len(via))
			}
			return nil
		},
	}}
}

// follow GETs rawURL and returns the code the relying party was sent, or ""
// if the browser stopped elsewhere (such as DingTalk's login page).
func (b *crashBrowser) follow(ctx context.Context, rawURL string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	return b.do(req)
}

func (b *crashBrowser) do(req *http.Request) (string, error) {
	resp, err := b.client.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("stopped at %s with status %d", resp.Request.URL.Redacted(), resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", err
	}
	if e := loc.Query().Get("error"); e != "" {
		return "", errors.New("relying party sent error " + e)
	}
	return loc.Query().Get("code"), nil
}

// loginThroughFake goes from the authorize URL to DingTalk's page and presses
// "approve" there as unionID, which leads back through the callback to the client.
func (b *crashBrowser) loginThroughFake(ctx context.Context, authURL, fakeURL, unionID string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	page := resp.Request.URL
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(page.String(), fakeURL) {
		return "", fmt.Errorf("expected DingTalk's login page, got status %d at %s", resp.StatusCode, page.Redacted())
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, page.String(), strings.NewReader(url.Values{"unionId": {unionID}}.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *crashBrowser) hasSession(issuer string) bool {
	u, err := url.Parse(issuer + "/")
	if err != nil {
		return false
	}
	for _, c := range b.jar.Cookies(u) {
		if c.Name == "dingbridge_session" && c.Value != "" {
			return true
		}
	}
	return false
}
