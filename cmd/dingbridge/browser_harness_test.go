package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// The browser harness: Debian's Chromium, headless, driven over the DevTools
// protocol, clicking through pages served by serve (startServe) as a person
// would. One browser process serves a whole test; each person is a tab in an
// incognito browser context of their own (own cookies, language and
// User-Agent). Every console message and browser log entry of a tab is kept;
// a Content Security Policy violation or an uncaught exception fails the test.
//
//	browser := startChromium(t)                 // skips without DINGBRIDGE_TEST_CHROMIUM
//	ln, redirectURI, logoutURI := listenRP(t)      // the app's address, for the config file
//	srv := startServeOn(t, ...)                    // serve, with the client registered
//	app := newTestRP(t, ln, issuer, clientID, secret)
//	tab := browser.newTab(t, issuer, "zh-CN", "") // a person, in Chinese
//	tab.open(app.authURL())                        // the app sends the person to log in
//	tab.pickAtDingTalk(unionID)                    // they click themself at DingTalk
//	tokens := app.exchange(tab)                    // they arrive; the RP library exchanges the code
//
// With DINGBRIDGE_SCREENSHOTS=dir, tab.shot saves each page at 1280×800 and
// 390×844 (a phone) under dir.

const (
	desktopWidth, desktopHeight = 1280, 800
	phoneWidth, phoneHeight     = 390, 844
	stepTimeout                 = 15 * time.Second
	// dingTalkUserAgent is the DingTalk client's webview on Android.
	dingTalkUserAgent = "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36 AliApp(DingTalk/7.6.10) com.alibaba.android.rimet/36571706 Channel/700159 language/zh-CN abi/64 UT4Aplus/0.2.25 colorScheme/light"
)

// chromium is one headless browser process.
type chromium struct {
	ctx     context.Context // the browser's; tabs derive from it
	shotDir string          // DINGBRIDGE_SCREENSHOTS, or ""
}

// startChromium starts the browser DINGBRIDGE_TEST_CHROMIUM names, or skips t.
func startChromium(t *testing.T) *chromium {
	t.Helper()
	path := os.Getenv("DINGBRIDGE_TEST_CHROMIUM")
	if path == "" {
		t.Skip("browser tests need Chromium: set DINGBRIDGE_TEST_CHROMIUM=/usr/bin/chromium (.ci/run does)")
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(desktopWidth, desktopHeight),
	)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	c := &chromium{ctx: browserCtx, shotDir: os.Getenv("DINGBRIDGE_SCREENSHOTS")}
	if c.shotDir != "" {
		if err := os.MkdirAll(c.shotDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// tab is one person at one browser: a tab in its own incognito context.
type tab struct {
	t      *testing.T
	c      *chromium
	ctx    context.Context
	lang   string
	issuer string // pages under it are ours: their layout is checked

	mu       sync.Mutex
	messages []string // console and browser log, in order
	problems []string // CSP violations and uncaught exceptions
}

// newTab opens a tab whose browser asks for lang (Accept-Language) and, if
// userAgent is not empty, says it is that browser.
func (c *chromium) newTab(t *testing.T, issuer, lang, userAgent string) *tab {
	t.Helper()
	tb := &tab{t: t, c: c, lang: lang, issuer: issuer}
	ctx, cancel := chromedp.NewContext(c.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(tb.listen))
	t.Cleanup(func() {
		cancel()
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, p := range tb.problems {
			t.Errorf("browser: %s", p)
		}
		if t.Failed() && len(tb.messages) > 0 {
			t.Logf("browser console:\n%s", strings.Join(tb.messages, "\n"))
		}
	})
	tb.ctx = ctx
	if userAgent == "" {
		ua, err := chromedp.Run(ctx, chromedp.Evaluate[string]("navigator.userAgent"))
		if err != nil {
			t.Fatalf("open tab: %v", err)
		}
		userAgent = strings.Replace(ua, "HeadlessChrome", "Chrome", 1)
	}
	_, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: userAgent, AcceptLanguage: lang})
	if err != nil {
		t.Fatalf("set language %s: %v", lang, err)
	}
	return tb
}

// cspViolation is how Chromium words a Content Security Policy refusal.
var cspViolation = regexp.MustCompile(`(?i)content security policy`)

func (tb *tab) listen(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch ev := ev.(type) {
	case *cdplog.EventEntryAdded:
		line := fmt.Sprintf("[%s %s] %s (%s)", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
		tb.messages = append(tb.messages, line)
		if cspViolation.MatchString(ev.Entry.Text) {
			tb.problems = append(tb.problems, "CSP violation: "+line)
		}
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			args = append(args, strings.Trim(string(a.Value), `"`)+a.Description)
		}
		tb.messages = append(tb.messages, fmt.Sprintf("[console.%s] %s", ev.Type, strings.Join(args, " ")))
	case *runtime.EventExceptionThrown:
		line := "uncaught exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			line += " " + ev.ExceptionDetails.Exception.Description
		}
		tb.messages = append(tb.messages, line)
		tb.problems = append(tb.problems, line)
	}
}

// do runs actions, failing the test after stepTimeout.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v (at %s)\n%s", what, err, tb.location(), tb.text())
	}
}

// open loads rawURL as a person typing it would. Chromium reports
// net::ERR_ABORTED for a navigation that a later one of the same chain took
// over (a redirect landing while the previous page was still settling); the
// page that chain ends on is what the next step checks, so that answer waits
// for the document instead of failing.
func (tb *tab) open(rawURL string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.Navigate(rawURL))
	if err != nil && strings.Contains(err.Error(), "net::ERR_ABORTED") {
		tb.t.Logf("open %s: %v; waiting for the page it led to (%s)", rawURL, err, tb.location())
		err = chromedp.Do(ctx, chromedp.WaitReady("body"))
	}
	if err != nil {
		tb.t.Fatalf("open %s: %v (at %s)\n%s", rawURL, err, tb.location(), tb.text())
	}
}

// click presses the element css selects, as a person does with the mouse.
func (tb *tab) click(css string) {
	tb.t.Helper()
	tb.do("click "+css, chromedp.WaitVisible(chromedp.CSS(css)), chromedp.Click(chromedp.CSS(css)))
}

// waitFor waits until the page shows an element css selects.
func (tb *tab) waitFor(css string) {
	tb.t.Helper()
	tb.do("wait for "+css, chromedp.WaitVisible(chromedp.CSS(css)))
}

// waitText waits until the page's text contains want.
func (tb *tab) waitText(want string) {
	tb.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for !strings.Contains(tb.text(), want) {
		if time.Now().After(deadline) {
			tb.t.Fatalf("page at %s never showed %q; it shows:\n%s", tb.location(), want, tb.text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text is what the page says (its body's innerText), or "" between pages.
func (tb *tab) text() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return s
}

func (tb *tab) location() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Location())
	return s
}

// page checks the page on screen: its language is the tab's, it names what
// it is (title and heading), and it fits a phone screen; then it is saved as
// screenshots named name when DINGBRIDGE_SCREENSHOTS is set.
func (tb *tab) page(name string) {
	tb.t.Helper()
	type facts struct {
		Lang, Title, Heading string
		Overflow             bool
		Left, Right          float64
	}
	measure := `(() => { const m = document.querySelector("main"), r = m ? m.getBoundingClientRect() : {left: 0, right: 0};
		return {Lang: document.documentElement.lang, Title: document.title, Heading: (document.querySelector("h1") || {}).innerText || "",
			Overflow: document.documentElement.scrollWidth > window.innerWidth, Left: r.left, Right: window.innerWidth - r.right}; })()`
	var desktop, phone facts
	tb.do("measure "+name, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		var err error
		desktop, err = chromedp.Run(ctx, chromedp.Evaluate[facts](measure))
		return err
	}))
	tb.screenshot(name, desktopWidth)
	tb.do("phone "+name, chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateMobile),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			var err error
			phone, err = chromedp.Run(ctx, chromedp.Evaluate[facts](measure))
			return err
		}))
	tb.screenshot(name, phoneWidth)
	tb.do("desktop "+name, chromedp.EmulateViewport(desktopWidth, desktopHeight))

	if !strings.HasPrefix(tb.location(), tb.issuer) {
		return // DingTalk's or the app's page
	}
	wantLang := map[string]string{"zh-CN": "zh-CN", "en": "en"}[tb.lang]
	if wantLang != "" && desktop.Lang != wantLang {
		tb.t.Errorf("%s: page lang %q, want %q (Accept-Language %s)", name, desktop.Lang, wantLang, tb.lang)
	}
	if desktop.Title == "" || desktop.Heading == "" || !strings.Contains(desktop.Title, desktop.Heading) {
		tb.t.Errorf("%s: title %q and heading %q: a page must say what it is", name, desktop.Title, desktop.Heading)
	}
	if phone.Overflow || phone.Left < 8 || phone.Right < 8 {
		tb.t.Errorf("%s on a %dpx phone: scrolls sideways %v, card %.0fpx from the left edge and %.0fpx from the right", name, phoneWidth, phone.Overflow, phone.Left, phone.Right)
	}
}

var shotName = regexp.MustCompile(`[^a-z0-9-]+`)

func (tb *tab) screenshot(name string, width int) {
	tb.t.Helper()
	if tb.c.shotDir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	file := shotName.ReplaceAllString(strings.ToLower(tb.t.Name()+"-"+name+"-"+tb.lang), "-") + fmt.Sprintf("-%d.png", width)
	if err := os.WriteFile(filepath.Join(tb.c.shotDir, file), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// pickAtDingTalk is the person choosing themself on the fake DingTalk's login page.
func (tb *tab) pickAtDingTalk(unionID string) {
	tb.t.Helper()
	button := `button[name=unionId][value="` + unionID + `"]`
	tb.waitFor(button)
	tb.page("dingtalk-login")
	tb.click(button)
}

// testRP is an application: a relying party (zitadel's rp library) whose
// redirect_uri is a tiny server on 127.0.0.1 that records what it is sent.
type testRP struct {
	RedirectURI string
	LogoutURI   string // a registered post_logout_redirect_uri
	party       rp.RelyingParty
	arrivals    chan url.Values // each request to RedirectURI or LogoutURI

	mu      sync.Mutex
	pending map[string]pendingLogin // by state
}

type pendingLogin struct{ nonce, verifier string }

// listenRP reserves the app's address, so its redirect URIs can go into the
// provider's configuration before the provider starts.
func listenRP(t *testing.T) (ln net.Listener, redirectURI, logoutURI string) {
	ln = listenLoopback(t)
	base := "http://" + ln.Addr().String()
	return ln, base + "/callback", base + "/logged-out"
}

// newTestRP serves the app on ln and discovers the provider at issuer.
func newTestRP(t *testing.T, ln net.Listener, issuer, clientID, secret string, scopes ...string) *testRP {
	t.Helper()
	base := "http://" + ln.Addr().String()
	app := &testRP{RedirectURI: base + "/callback", LogoutURI: base + "/logged-out",
		arrivals: make(chan url.Values, 16), pending: map[string]pendingLogin{}}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" && r.URL.Path != "/logged-out" {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		q := r.Form
		q.Set("_path", r.URL.Path)
		app.arrivals <- q
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>app</title><main><h1>app %s</h1></main>", r.URL.Path)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	if len(scopes) == 0 {
		scopes = []string{"openid", "profile", "groups"}
	}
	httpClient := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(httpClient.CloseIdleConnections)
	party, err := rp.NewRelyingPartyOIDC(context.Background(), issuer, clientID, secret, app.RedirectURI, scopes,
		rp.WithHTTPClient(httpClient), rp.WithVerifierOpts(rp.WithNonce(func(ctx context.Context) string {
			n, _ := ctx.Value(nonceKey{}).(string)
			return n
		})))
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	app.party = party
	return app
}

// authURL starts a login with state, nonce and PKCE, as an app does.
func (app *testRP) authURL(opts ...rp.AuthURLOpt) string {
	state, nonce, verifier := "st-"+rand.Text(), "n-"+rand.Text(), "v-"+rand.Text()+rand.Text()
	app.mu.Lock()
	app.pending[state] = pendingLogin{nonce: nonce, verifier: verifier}
	app.mu.Unlock()
	opts = append(opts, rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier)), rp.AuthURLOpt(rp.WithURLParam("nonce", nonce)))
	return rp.AuthURL(state, app.party, opts...)
}

// arrived waits for the browser to reach the app and returns what it brought.
func (app *testRP) arrived(tb *tab) url.Values {
	tb.t.Helper()
	select {
	case q := <-app.arrivals:
		return q
	case <-time.After(stepTimeout):
		tb.t.Fatalf("the browser never reached the app; it is at %s showing:\n%s", tb.location(), tb.text())
		return nil
	}
}

// exchange waits for the browser to reach the app and trades the code it brought for tokens, verifying the
// id_token (signature, issuer, audience, nonce) with the RP library.
func (app *testRP) exchange(tb *tab) *oidc.Tokens[*oidc.IDTokenClaims] {
	t := tb.t
	t.Helper()
	q := app.arrived(tb)
	if q.Get("error") != "" || q.Get("code") == "" {
		t.Fatalf("the app was sent %v, want a code", q)
	}
	app.mu.Lock()
	login, ok := app.pending[q.Get("state")]
	delete(app.pending, q.Get("state"))
	app.mu.Unlock()
	if !ok {
		t.Fatalf("the app was sent state %q, which it never sent", q.Get("state"))
	}
	ctx := context.WithValue(context.Background(), nonceKey{}, login.nonce)
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, q.Get("code"), app.party, rp.WithCodeVerifier(login.verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	return tokens
}

// refused waits for the browser to reach the app and checks it brought error (and its own state back).
func (app *testRP) refused(tb *tab, wantError string) {
	t := tb.t
	t.Helper()
	q := app.arrived(tb)
	app.mu.Lock()
	_, known := app.pending[q.Get("state")]
	app.mu.Unlock()
	if q.Get("error") != wantError || q.Get("code") != "" || !known {
		t.Errorf("the app was sent %v; want error=%s with its state", q, wantError)
	}
}
