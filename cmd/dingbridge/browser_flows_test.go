package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/zitadel/oidc/v3/pkg/client/rp"

	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// Every login a person can do, in a real browser against serve's own wiring,
// in both languages the pages speak. Each flow ends at the app with a code the
// RP library exchanges, or with the error the app must be told.
func TestBrowserFlows(t *testing.T) {
	browser := startChromium(t)
	started := time.Now()
	t.Cleanup(func() { t.Logf("browser flows took %s", time.Since(started).Round(time.Millisecond)) })

	site := startBrowserSite(t)
	zhang, wang := dingtalktest.DemoUsers()[0], dingtalktest.DemoUsers()[2]

	for _, lang := range []string{"zh-CN", "en"} {
		words := pageWords[lang]
		t.Run(lang, func(t *testing.T) {
			t.Run("login, then SSO at a second app, then logout", func(t *testing.T) {
				tb := browser.newTab(t, site.issuer, lang, "")
				tb.open(site.grafana.authURL())
				tb.pickAtDingTalk(zhang.UnionID)
				tokens := site.grafana.exchange(tb)
				claims := tokens.IDTokenClaims
				if claims.Subject != zhang.UnionID || !slices.Equal(claims.AuthenticationMethodsReferences, []string{"dingtalk"}) || claims.Claims["userid"] != zhang.UserID {
					t.Errorf("id_token sub %q amr %v userid %v; want %s, [dingtalk], %s", claims.Subject, claims.AuthenticationMethodsReferences, claims.Claims["userid"], zhang.UnionID, zhang.UserID)
				}

				dingtalkLogins := site.fake.Calls(dingtalktest.APIAuthorize)
				tb.open(site.wiki.authURL())
				wikiClaims := site.wiki.exchange(tb).IDTokenClaims
				if wikiClaims.Subject != zhang.UnionID || wikiClaims.Claims["sid"] != claims.Claims["sid"] {
					t.Errorf("second app: sub %q sid %v; want the same person and session (%v)", wikiClaims.Subject, wikiClaims.Claims["sid"], claims.Claims["sid"])
				}
				if n := site.fake.Calls(dingtalktest.APIAuthorize); n != dingtalkLogins {
					t.Errorf("the second app's login went to DingTalk (%d more authorize requests)", n-dingtalkLogins)
				}

				// An unregistered post_logout_redirect_uri: a page, never a redirect; still logged in.
				tb.open(site.endSession(url.Values{"id_token_hint": {tokens.IDToken}, "post_logout_redirect_uri": {"https://evil.example/"}}))
				tb.waitText(words.logoutRefused)
				tb.page("logout-refused")

				// Logout back to the app, with its state.
				tb.open(site.endSession(url.Values{"id_token_hint": {tokens.IDToken}, "post_logout_redirect_uri": {site.grafana.LogoutURI}, "state": {"bye"}}))
				if q := site.grafana.arrived(tb); q.Get("_path") != "/logged-out" || q.Get("state") != "bye" {
					t.Errorf("logout sent the app %v; want its post_logout_redirect_uri with state bye", q)
				}
				// The session is gone: the next login goes to DingTalk again.
				tb.open(site.grafana.authURL())
				tb.waitFor(`button[name=unionId]`)
			})

			t.Run("logout without post_logout_redirect_uri shows the logged-out page", func(t *testing.T) {
				tb := browser.newTab(t, site.issuer, lang, "")
				tb.open(site.grafana.authURL())
				tb.pickAtDingTalk(zhang.UnionID)
				tokens := site.grafana.exchange(tb)
				tb.open(site.endSession(url.Values{"id_token_hint": {tokens.IDToken}}))
				tb.waitText(words.loggedOut)
				tb.page("logged-out")
			})

			t.Run("logout without id_token_hint is confirmed by the person, then goes back to the app", func(t *testing.T) {
				tb := browser.newTab(t, site.issuer, lang, "")
				tb.open(site.grafana.authURL())
				tb.pickAtDingTalk(zhang.UnionID)
				site.grafana.exchange(tb)
				tb.open(site.endSession(url.Values{"client_id": {"grafana"}, "post_logout_redirect_uri": {site.grafana.LogoutURI}, "state": {"bye"}}))
				tb.waitText(words.logoutConfirm)
				tb.page("logout-confirm")
				tb.click(`button[type=submit]`)
				if q := site.grafana.arrived(tb); q.Get("_path") != "/logged-out" || q.Get("state") != "bye" {
					t.Errorf("confirmed logout sent the app %v; want its post_logout_redirect_uri with state bye", q)
				}
			})

			t.Run("consent: allow after a reload, then deny", func(t *testing.T) {
				tb := browser.newTab(t, site.issuer, lang, "")
				tb.open(site.partner.authURL(rp.WithPrompt("consent")))
				tb.pickAtDingTalk(zhang.UnionID)
				tb.waitText(words.consent)
				tb.page("consent")
				if text := tb.text(); !strings.Contains(text, "Partner portal") || !strings.Contains(text, words.profileScope) {
					t.Errorf("consent page does not name the app and the scopes:\n%s", text)
				}
				tb.do("reload", chromedp.Reload()) // F5: the same question again
				tb.waitText(words.consent)
				tb.click(`button[value=allow]`)
				site.partner.exchange(tb)

				tb.open(site.partner.authURL(rp.WithPrompt("consent")))
				tb.waitText(words.consent)
				tb.click(`button[value=deny]`)
				site.partner.refused(tb, "access_denied")
			})

			t.Run("device flow: without a session, with one, cancelled", func(t *testing.T) {
				tb := browser.newTab(t, site.issuer, lang, "")
				device := site.startDevice(t)
				tb.open(site.issuer + "/device")
				tb.page("device-enter")
				tb.do("type the code", chromedp.SendKeys(chromedp.CSS("#user_code"), device.UserCode))
				tb.click(`button[type=submit]`)
				tb.waitText(words.deviceConfirm)
				tb.page("device-confirm")
				tb.click(`button[value=allow]`)
				tb.pickAtDingTalk(zhang.UnionID)
				tb.waitText(words.deviceDone)
				tb.page("device-done")
				if got := site.pollDevice(t, device); got.IDToken == "" || got.Error != "" {
					t.Errorf("device poll after approval: %+v, want tokens", got)
				}

				// The browser has a session now: no DingTalk page.
				device = site.startDevice(t)
				tb.open(device.VerificationURIComplete)
				tb.click(`button[type=submit]`)
				tb.waitText(words.deviceConfirm)
				tb.click(`button[value=allow]`)
				tb.waitText(words.deviceDone)
				if got := site.pollDevice(t, device); got.IDToken == "" {
					t.Errorf("device poll with a session: %+v, want tokens", got)
				}

				device = site.startDevice(t)
				tb.open(device.VerificationURIComplete)
				tb.click(`button[type=submit]`)
				tb.waitText(words.deviceConfirm)
				tb.click(`button[value=deny]`)
				tb.waitText(words.deviceDenied)
				tb.page("device-denied")
				if got := site.pollDevice(t, device); got.Error != "access_denied" {
					t.Errorf("device poll after cancel: %+v, want access_denied", got)
				}
			})

			t.Run("in-app login inside the DingTalk client", func(t *testing.T) {
				for _, tt := range []struct {
					name   string
					client dingtalktest.JSAPI
					amr    string
				}{
					{"new JSAPI", dingtalktest.JSAPI{UnionID: zhang.UnionID, RequestAuthCode: true}, "dingtalk-inapp"},
					{"old JSAPI only", dingtalktest.JSAPI{UnionID: zhang.UnionID, RuntimeRequestAuthCode: true}, "dingtalk-inapp"},
					{"both fail, the login button works", dingtalktest.JSAPI{UnionID: zhang.UnionID}, "dingtalk"},
				} {
					t.Run(tt.name, func(t *testing.T) {
						site.fake.SetJSAPI(tt.client)
						scripts := site.fake.Calls(dingtalktest.APIJSAPI)
						tb := browser.newTab(t, site.issuer, lang, dingTalkUserAgent)
						tb.open(site.grafana.authURL())
						if tt.amr == "dingtalk" {
							tb.waitText(words.inAppFailed)
							tb.page("inapp-failed")
							tb.click(`#fallback`)
							tb.pickAtDingTalk(zhang.UnionID)
						}
						claims := site.grafana.exchange(tb).IDTokenClaims
						if claims.Subject != zhang.UnionID || !slices.Equal(claims.AuthenticationMethodsReferences, []string{tt.amr}) {
							t.Errorf("sub %q amr %v; want %s [%s]", claims.Subject, claims.AuthenticationMethodsReferences, zhang.UnionID, tt.amr)
						}
						if site.fake.Calls(dingtalktest.APIJSAPI) == scripts {
							t.Error("the page never loaded the JSAPI script")
						}
					})
				}
			})

			t.Run("error pages", func(t *testing.T) {
				tb := browser.newTab(t, site.issuer, lang, "")
				authorize := func(clientID, redirectURI string) string {
					return site.issuer + "/authorize?" + url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI},
						"response_type": {"code"}, "scope": {"openid"}, "state": {"s"}}.Encode()
				}
				tb.open(authorize("no-such-app", site.grafana.RedirectURI))
				tb.waitText(words.unknownClient)
				tb.page("unknown-client")
				tb.open(authorize("grafana", "https://evil.example/cb"))
				tb.waitText(words.badRedirect)
				tb.page("bad-redirect-uri")
				tb.open(site.issuer + "/")
				tb.waitText(words.notFound)
				tb.page("not-found-root")
				tb.open(site.issuer + "/no/such/page")
				tb.waitText(words.notFound)

				// DingTalk failing: a page with a way back; the app is told server_error.
				site.fake.Fail(dingtalktest.APIUserAccessToken, dingtalktest.Failure{Status: http.StatusBadRequest, Code: "invalidAuthCode", Message: "fake failure", Times: 1})
				tb.open(site.grafana.authURL())
				tb.pickAtDingTalk(zhang.UnionID)
				tb.waitText(words.upstreamFailed)
				tb.page("upstream-failure")
				tb.click(`a.button:not(.primary)`)
				if q := site.grafana.arrived(tb); q.Get("error") == "" {
					t.Errorf("back to the app after a DingTalk failure: %v, want an error", q)
				}

				// The access policy refuses someone outside the organisation.
				tb.open(site.grafana.authURL())
				tb.pickAtDingTalk(wang.UnionID)
				tb.waitText(words.notAllowed)
				tb.page("policy-refusal")
				tb.click(`a.button:not(.primary)`)
				site.grafana.refused(tb, "access_denied")
			})
		})
	}

	t.Run("refused at /authorize, told to the app", func(t *testing.T) {
		tb := browser.newTab(t, site.issuer, "en", "")
		tb.open(site.grafana.authURL(rp.AuthURLOpt(rp.WithResponseModeURLParam("form_post"))))
		site.grafana.refused(tb, "invalid_request")
		tb.open(strings.Replace(site.grafana.authURL(), "response_type=code", "response_type=token", 1))
		site.grafana.refused(tb, "unsupported_response_type")

		var discovery struct {
			ResponseModes []string `json:"response_modes_supported"`
			Scopes        []string `json:"scopes_supported"`
			UILocales     []string `json:"ui_locales_supported"`
		}
		getJSON(t, site.issuer+"/.well-known/openid-configuration", &discovery)
		if slices.Contains(discovery.ResponseModes, "form_post") || !slices.Contains(discovery.Scopes, "groups") {
			t.Errorf("discovery: response_modes_supported %v scopes_supported %v; want no form_post, and groups", discovery.ResponseModes, discovery.Scopes)
		}
	})

	t.Run("ui_locales wins over Accept-Language", func(t *testing.T) {
		tb := browser.newTab(t, site.issuer, "en", "")
		tb.open(site.partner.authURL(rp.WithPrompt("consent"), rp.AuthURLOpt(rp.WithURLParam("ui_locales", "zh-CN fr"))))
		tb.pickAtDingTalk(zhang.UnionID)
		tb.waitText(pageWords["zh-CN"].consent)
		tb.lang = "zh-CN" // what the page must say now
		tb.page("consent-ui-locales")
	})

	t.Run("dev: the root leads to the demo app, which survives a reload and says it logged out", func(t *testing.T) {
		t.Setenv("TMPDIR", t.TempDir()) // where dev keeps its throwaway database
		dev := start(t, nil, "dev", "--listen", "127.0.0.1:0", "--dingtalk-listen", "127.0.0.1:0")
		m := regexp.MustCompile(`Issuer:\s+(http://127\.0\.0\.1:\d+)`).FindStringSubmatch(dev.waitOutput(t, "Fake DingTalk:"))
		if m == nil {
			t.Fatalf("no issuer in the banner:\n%s", dev.stdout)
		}
		tb := browser.newTab(t, m[1]+"/demo", "en", "")
		tb.open(m[1] + "/")
		tb.waitText("An ordinary OpenID Connect web app")
		tb.page("demo-start")
		tb.click(`a.button`)
		tb.pickAtDingTalk(zhang.UnionID)
		tb.waitText("Logged in")
		tb.page("demo-claims")
		tb.do("reload", chromedp.Reload()) // F5 on the claims page
		tb.waitText(zhang.UnionID)
		tb.click(`a[href*="end_session"]`)
		tb.waitText("You have logged out")
		tb.page("demo-logged-out")
		if code := dev.stop(t); code != 0 {
			t.Errorf("dev exited %d", code)
		}
	})

	several := startSeveralConnectorsSite(t)
	for _, lang := range []string{"zh-CN", "en"} {
		t.Run(lang+"/connector chooser, sns and oauth2", func(t *testing.T) {
			tb := browser.newTab(t, several.issuer, lang, "")
			tb.open(several.grafana.authURL())
			tb.waitFor(`a[href*="connector=legacy"]`)
			tb.page("chooser")
			tb.click(`a[href*="connector=legacy"]`)
			tb.pickAtDingTalk(zhang.UnionID)
			claims := several.grafana.exchange(tb).IDTokenClaims
			if !slices.Equal(claims.AuthenticationMethodsReferences, []string{"dingtalk-sns"}) || claims.Subject != zhang.UnionID {
				t.Errorf("sns login: sub %q amr %v", claims.Subject, claims.AuthenticationMethodsReferences)
			}

			other := browser.newTab(t, several.issuer, lang, "")
			other.open(several.grafana.authURL())
			other.click(`a[href*="connector=corp"]`)
			other.pickAtDingTalk(zhang.UnionID)
			claims = several.grafana.exchange(other).IDTokenClaims
			if !slices.Equal(claims.AuthenticationMethodsReferences, []string{"dingtalk"}) {
				t.Errorf("oauth2 login through the chooser: amr %v", claims.AuthenticationMethodsReferences)
			}
		})
	}
}

// pageWords are phrases each page shows, by language: the test waits for them
// as a person reads them.
var pageWords = map[string]struct {
	consent, profileScope, deviceConfirm, deviceDone, deviceDenied, inAppFailed string
	unknownClient, badRedirect, notFound, upstreamFailed, notAllowed            string
	loggedOut, logoutRefused, logoutConfirm                                     string
}{
	"zh-CN": {"允许访问？", "您的姓名和头像", "在设备上登录？", "设备已连接", "设备未连接", "无法在此处通过钉钉免登",
		"未知的应用", "回调地址未注册", "页面不存在", "钉钉登录失败", "您所在的组织无权登录", "您已退出登录", "退出请求被拒绝", "退出登录？"},
	"en": {"Allow access?", "Your name and avatar", "Log in on a device?", "Device connected", "Device not connected", "DingTalk could not log you in here",
		"Unknown application", "Address not registered", "Page not found", "DingTalk login failed", "Your organisation is not admitted",
		"You have logged out", "Logout request refused", "Log out?"},
}

// browserSite is serve with one organisation's connector (in-app login,
// membership required), the fake DingTalk, and its apps.
type browserSite struct {
	issuer                 string
	fake                   *dingtalktest.Server
	grafana, wiki, partner *testRP
}

const (
	corpAppKey    = "dingcorpapp"
	corpAppSecret = "corp-app-secret-0123456789"
	legacyAppID   = "dingoalegacy"
	legacySecret  = "legacy-app-secret-0123456789"
	wikiSecret    = "wiki-secret-0123456789abcdef"
	partnerSecret = "partner-secret-0123456789abcd"
)

func browserEnv() map[string]string {
	return map[string]string{"DINGTALK_CLIENT_SECRET": corpAppSecret, "LEGACY_SECRET": legacySecret,
		"GRAFANA_OIDC_SECRET": rpSecret, "WIKI_SECRET": wikiSecret, "PARTNER_SECRET": partnerSecret}
}

func startBrowserSite(t *testing.T) *browserSite {
	t.Helper()
	ln := listenLoopback(t)
	issuer := "http://" + ln.Addr().String()
	fake := dingtalktest.NewServer(dingtalktest.Config{
		Apps:  []dingtalktest.App{{ClientID: corpAppKey, ClientSecret: corpAppSecret, RedirectURIs: []string{issuer + "/callback/dingtalk"}, CorpID: dingtalktest.DemoCorpID}},
		Users: dingtalktest.DemoUsers(), Corps: []dingtalktest.Corp{dingtalktest.DemoCorp()},
	})
	t.Cleanup(fake.Close)
	grafanaLn, grafanaCB, grafanaOut := listenRP(t)
	wikiLn, wikiCB, _ := listenRP(t)
	partnerLn, partnerCB, _ := listenRP(t)
	yaml := fmt.Sprintf(`issuer: %s
storage: {path: %q}
connectors:
  - id: dingtalk
    name: 示例科技
    clientID: %s
    clientSecret: $DINGTALK_CLIENT_SECRET
    corpID: %s
    requireMembership: true
    timeout: 5s
    endpoints: {login: %[5]s, api: %[5]s, oapi: %[5]s, jsapi: %[5]s%[6]s}
staticClients:
  - {id: grafana, name: Grafana, secretEnv: GRAFANA_OIDC_SECRET, redirectURIs: [%q], postLogoutRedirectURIs: [%q]}
  - {id: wiki, name: Wiki, secretEnv: WIKI_SECRET, redirectURIs: [%q]}
  - {id: partner, name: Partner portal, secretEnv: PARTNER_SECRET, redirectURIs: [%q], requireConsent: true}
  - {id: cli, name: Deploy CLI, public: true, grantTypes: [device_code, refresh_token]}
expiry: {devicePollInterval: 1s}
rateLimit: {perSecond: 0}
`, issuer, tempDBPath(t), corpAppKey, dingtalktest.DemoCorpID, fake.URL, dingtalktest.JSAPIPath,
		grafanaCB, grafanaOut, wikiCB, partnerCB)
	startServeOn(t, ln, yaml, browserEnv())
	return &browserSite{
		issuer: issuer, fake: fake,
		grafana: newTestRP(t, grafanaLn, issuer, "grafana", rpSecret),
		wiki:    newTestRP(t, wikiLn, issuer, "wiki", wikiSecret),
		partner: newTestRP(t, partnerLn, issuer, "partner", partnerSecret, "openid", "profile"),
	}
}

// startSeveralConnectorsSite is serve with an organisation's app and a legacy
// (sns) app: people choose.
func startSeveralConnectorsSite(t *testing.T) *browserSite {
	t.Helper()
	ln := listenLoopback(t)
	issuer := "http://" + ln.Addr().String()
	fake := startCorpAndLegacyFake(t, issuer)
	grafanaLn, grafanaCB, _ := listenRP(t)
	yaml := fmt.Sprintf(`issuer: %s
storage: {path: %q}
connectors:
  - id: corp
    name: 示例科技
    clientID: %s
    clientSecret: $DINGTALK_CLIENT_SECRET
    corpID: %s
    endpoints: {login: %[5]s, api: %[5]s, oapi: %[5]s}
  - id: legacy
    name: 钉钉扫码（旧版）
    mode: sns
    clientID: %s
    clientSecret: $LEGACY_SECRET
    endpoints: {login: %[5]s, api: %[5]s, oapi: %[5]s}
staticClients:
  - {id: grafana, name: Grafana, secretEnv: GRAFANA_OIDC_SECRET, redirectURIs: [%[7]q]}
rateLimit: {perSecond: 0}
`, issuer, tempDBPath(t), corpAppKey, dingtalktest.DemoCorpID, fake.URL, legacyAppID, grafanaCB)
	startServeOn(t, ln, yaml, browserEnv())
	return &browserSite{issuer: issuer, fake: fake, grafana: newTestRP(t, grafanaLn, issuer, "grafana", rpSecret)}
}

func (s *browserSite) endSession(q url.Values) string { return s.issuer + "/end_session?" + q.Encode() }

type deviceStart struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURIComplete string `json:"verification_uri_complete"`
}

type deviceAnswer struct {
	IDToken string `json:"id_token"`
	Error   string `json:"error"`
}

// startDevice is the CLI asking for a device login (RFC 8628).
func (s *browserSite) startDevice(t *testing.T) deviceStart {
	t.Helper()
	var d deviceStart
	postJSON(t, s.issuer+"/device_authorization", url.Values{"client_id": {"cli"}, "scope": {"openid profile"}}, &d)
	if d.DeviceCode == "" || d.UserCode == "" {
		t.Fatalf("device authorization: %+v", d)
	}
	return d
}

// pollDevice is the CLI's poll after the person acted.
func (s *browserSite) pollDevice(t *testing.T, d deviceStart) deviceAnswer {
	t.Helper()
	var a deviceAnswer
	postJSON(t, s.issuer+"/oauth/token", url.Values{"client_id": {"cli"}, "device_code": {d.DeviceCode},
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}}, &a)
	return a
}

func postJSON(t *testing.T, endpoint string, form url.Values, v any) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := client.PostForm(endpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("POST %s: status %d: %v", endpoint, resp.StatusCode, err)
	}
}

func getJSON(t *testing.T, endpoint string, v any) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := client.Get(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: status %d: %v", endpoint, resp.StatusCode, err)
	}
}

// startCorpAndLegacyFake is the fake DingTalk with the demo organisation's app
// (connector "corp") and a legacy sns app (connector "legacy"), both calling
// back to issuer.
func startCorpAndLegacyFake(t *testing.T, issuer string) *dingtalktest.Server {
	t.Helper()
	callbacks := []string{issuer + "/callback/corp", issuer + "/callback/legacy"}
	fake := dingtalktest.NewServer(dingtalktest.Config{
		Apps: []dingtalktest.App{
			{ClientID: corpAppKey, ClientSecret: corpAppSecret, RedirectURIs: callbacks, CorpID: dingtalktest.DemoCorpID},
			{ClientID: legacyAppID, ClientSecret: legacySecret, RedirectURIs: callbacks},
		},
		Users: dingtalktest.DemoUsers(), Corps: []dingtalktest.Corp{dingtalktest.DemoCorp()},
	})
	t.Cleanup(fake.Close)
	return fake
}
