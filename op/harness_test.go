package op_test

import (
	"context"
	"crypto/rand"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/op/telemetry"
	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/bolt"
	"github.com/dingbridge/dingbridge/upstream/dingtalk"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// The relying party the tests log in to. Its redirect URI is never contacted:
// the browser stops when it is sent there and hands the code to the RP library.
const (
	rpClientID      = "grafana"
	rpSecret        = "grafana-secret-0123456789abcdef"
	rpRedirectURI   = "http://127.0.0.1:1/login/generic_oauth"
	rpLoggedOut     = "http://127.0.0.1:1/logged-out"
	publicClientID  = "cli"
	pkceClientID    = "argocd"
	publicRedirect  = "http://127.0.0.1:2/callback"
	deviceClientID  = "kubectl"
	consentClientID = "partner"
	dtClientID      = "dingtestapp"
	dtSecret        = "dingtalk-app-secret-42"
)

// env is one provider with its own database and its own fake DingTalk.
type env struct {
	t        testing.TB
	issuer   string
	dbPath   string
	store    *bolt.Storage
	keys     *keys.Manager
	provider *op.Provider
	server   *httptest.Server
	dingtalk *dingtalktest.Server
	user     dingtalktest.User
}

type envOptions struct {
	// metrics, when not nil, records what the provider does.
	metrics *telemetry.Metrics
	dbPath  string
	fake    *dingtalktest.Server
	// upstreamTimeout bounds each DingTalk call.
	upstreamTimeout time.Duration
	// addr to listen on; a restart reuses the previous address so the issuer stays.
	addr string
	// twoConnectors adds a second DingTalk app, so the login offers a choice.
	twoConnectors bool
	lifetimes     op.Lifetimes
	rateLimit     op.RateLimit
	// backchannelLogoutURI is registered for the grafana client.
	backchannelLogoutURI string
	// logger replaces the test logger (a test that reads what is logged).
	logger *slog.Logger
	// connector adjusts the first connector (mode, corp, policy).
	connector func(*dingtalk.Config)
	// claims is the provider's claims policy.
	claims op.ClaimsPolicy
	// users replaces the fake DingTalk's demo users; the first one logs in.
	users []dingtalktest.User
	// keyAlgorithm signs the tokens; "": the default, RS256.
	keyAlgorithm jose.SignatureAlgorithm
	// limits bound the storage's flow state (zero: the defaults).
	limits storage.Limits
	// registration says who may log in without a user record.
	registration op.Registration
	// membership: how often membership is asked again.
	membership op.Membership
	// embedded runs the first connector's login in our own page, with branding.
	embedded bool
	branding op.Branding
	// wrapStorage, when set, stands between the provider and its database.
	wrapStorage func(storage.Storage) storage.Storage
}

func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	e := &env{t: t, dbPath: opts.dbPath}
	if e.dbPath == "" {
		e.dbPath = filepath.Join(t.TempDir(), "dingbridge.db")
	}
	addr := opts.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	e.issuer = "http://" + ln.Addr().String()

	e.dingtalk = opts.fake
	if e.dingtalk == nil {
		users := dingtalktest.DemoUsers()
		if opts.users != nil {
			users = opts.users
		}
		e.dingtalk = dingtalktest.NewServer(dingtalktest.Config{
			Apps: []dingtalktest.App{
				{ClientID: dtClientID, ClientSecret: dtSecret, RedirectURIs: []string{e.issuer + "/callback/dingtalk"}, CorpID: dingtalktest.DemoCorpID},
				{ClientID: dtClientID + "-b", ClientSecret: dtSecret + "-b", RedirectURIs: []string{e.issuer + "/callback/second-org"}},
			},
			Users: users,
			Corps: []dingtalktest.Corp{dingtalktest.DemoCorp()},
		})
		t.Cleanup(e.dingtalk.Close)
	}
	e.user = dingtalktest.DemoUsers()[0]
	if opts.users != nil {
		e.user = opts.users[0]
	}
	e.dingtalk.Fake.AutoApprove(e.user.UnionID)

	e.store, err = bolt.Open(e.dbPath, bolt.Options{Limits: opts.limits})
	if err != nil {
		t.Fatal(err)
	}
	km, err := keys.New(e.store, keys.Options{Algorithm: opts.keyAlgorithm})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := km.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	e.keys = km
	timeout := opts.upstreamTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	connectors := []op.Connector{{ID: "dingtalk", Name: "钉钉", Embedded: opts.embedded}}
	if opts.twoConnectors {
		connectors = append(connectors, op.Connector{ID: "second-org", Name: "Second org"})
	}
	for i := range connectors {
		clientID, secret := dtClientID, dtSecret
		if i > 0 {
			clientID, secret = dtClientID+"-b", dtSecret+"-b"
		}
		cfg := dingtalk.Config{
			ClientID: clientID, ClientSecret: secret, Timeout: timeout, Endpoints: e.dingtalk.Endpoints(),
		}
		if i == 0 && opts.connector != nil {
			opts.connector(&cfg)
		}
		connectors[i].Connector, err = dingtalk.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
	}
	logger := opts.logger
	if logger == nil {
		logger = testLogger(t)
	}
	var store storage.Storage = e.store
	if opts.wrapStorage != nil {
		store = opts.wrapStorage(store)
	}
	e.provider, err = op.New(ctx, op.Config{
		Issuer:     e.issuer,
		Connectors: connectors,
		Storage:    store,
		Keys:       km,
		StaticClients: []op.StaticClient{
			{ID: rpClientID, Name: "Grafana", Secret: rpSecret, RedirectURIs: []string{rpRedirectURI}, PostLogoutRedirectURIs: []string{rpLoggedOut}, BackchannelLogoutURI: opts.backchannelLogoutURI},
			{ID: publicClientID, Name: "CLI", Public: true, RedirectURIs: []string{publicRedirect}},
			{ID: pkceClientID, Name: "Argo CD", Secret: rpSecret, RequirePKCE: true, RedirectURIs: []string{rpRedirectURI}},
			{ID: deviceClientID, Name: "kubectl", Public: true, GrantTypes: []string{op.GrantTypeDeviceCode, "refresh_token"}},
			{ID: consentClientID, Name: "Partner portal", Secret: rpSecret, RequireConsent: true, RedirectURIs: []string{rpRedirectURI}},
		},
		Lifetimes:    opts.lifetimes,
		RateLimit:    opts.rateLimit,
		Claims:       opts.claims,
		Registration: opts.registration,
		Branding:     opts.branding,
		Membership:   opts.membership,
		Metrics:      opts.metrics,
		Logger:       logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: e.provider}}
	e.server.Start()
	t.Cleanup(e.stop)
	return e
}

// stop shuts the provider down and closes its database (a restart test reopens it).
func (e *env) stop() {
	if e.server != nil {
		e.server.Close()
		e.server = nil
	}
	if e.store != nil {
		_ = e.store.Close()
		e.store = nil
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// relyingParty is zitadel's RP library configured like an ordinary OIDC app.
func (e *env) relyingParty(clientID, secret, redirectURI string, scopes ...string) rp.RelyingParty {
	e.t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"openid", "profile", "email", "phone", "offline_access"}
	}
	party, err := rp.NewRelyingPartyOIDC(context.Background(), e.issuer, clientID, secret, redirectURI, scopes,
		rp.WithVerifierOpts(rp.WithNonce(nonceFromContext)), rp.WithHTTPClient(&http.Client{Transport: sharedTransport, Timeout: 20 * time.Second}))
	if err != nil {
		e.t.Fatal(err)
	}
	return party
}

type nonceKey struct{}

func nonceFromContext(ctx context.Context) string {
	n, _ := ctx.Value(nonceKey{}).(string)
	return n
}

// browser is a person's browser: it keeps cookies and follows redirects until
// it is sent to a relying party's redirect URI, where it stops.
type browser struct {
	t      testing.TB
	client *http.Client
}

// sharedTransport keeps connections alive across browsers, as the benchmark
// would otherwise run out of loopback ports.
var sharedTransport = &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}

func newBrowser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{
		Jar:       jar,
		Transport: sharedTransport,
		Timeout:   20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if u := req.URL.String(); strings.HasPrefix(u, rpRedirectURI) || strings.HasPrefix(u, publicRedirect) || strings.HasPrefix(u, rpLoggedOut) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// visit GETs url following redirects; it returns the final response with its body read.
func (b *browser) visit(rawURL string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Get(rawURL)
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// login is one pass through the redirect dance; it returns the query the RP's
// redirect URI received (code and state, or error), failing if there was none.
type loginAttempt struct {
	state, nonce, verifier string
	extra                  []rp.AuthURLOpt
}

func (e *env) authorizeURL(party rp.RelyingParty, a *loginAttempt) string {
	if a.state == "" {
		a.state = "st-" + randomString()
	}
	if a.nonce == "" {
		a.nonce = "n-" + randomString()
	}
	if a.verifier == "" {
		a.verifier = "verifier-" + randomString() + randomString()
	}
	opts := append([]rp.AuthURLOpt{
		rp.WithCodeChallenge(oidc.NewSHACodeChallenge(a.verifier)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", a.nonce)),
	}, a.extra...)
	return rp.AuthURL(a.state, party, opts...)
}

func (b *browser) loginAt(authorizeURL string) url.Values {
	b.t.Helper()
	resp, body := b.visit(authorizeURL)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc == "" {
		b.t.Fatalf("login did not reach the relying party: status %d\n%s", resp.StatusCode, body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		b.t.Fatal(err)
	}
	return u.Query()
}

func randomString() string { return rand.Text() }

// submit posts a page's form as the browser would, following redirects like visit.
func (b *browser) submit(action string, fields url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.PostForm(action, fields)
	if err != nil {
		b.t.Fatalf("POST %s: %v", action, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var (
	formActionRe  = regexp.MustCompile(`<form [^>]*action="([^"]*)"`)
	hiddenInputRe = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	textInputRe   = regexp.MustCompile(`<input type="text" id="[^"]*" name="([^"]*)" value="([^"]*)"`)
)

// pageForm reads the form of one of our pages: where it posts and its fields.
func pageForm(t testing.TB, issuer, body string) (string, url.Values) {
	t.Helper()
	m := formActionRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("page has no form:\n%s", body)
	}
	fields := url.Values{}
	for _, f := range hiddenInputRe.FindAllStringSubmatch(body, -1) {
		fields.Set(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	for _, f := range textInputRe.FindAllStringSubmatch(body, -1) {
		fields.Set(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	action := html.UnescapeString(m[1])
	u, err := url.Parse(issuer)
	if err != nil {
		t.Fatal(err)
	}
	return u.Scheme + "://" + u.Host + action, fields
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
