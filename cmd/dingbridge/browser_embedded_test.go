package main

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// loginPage: embedded in Chromium: dingbridge's page with the company's name
// and logo loads (the fake) DingTalk's script under the page's CSP (a violation
// fails the test), the script draws DingTalk's frame, the person logs in inside
// it, the frame posts the result to our page, and the app gets its code — for
// today's DTFrameLogin and for the legacy DDLogin with goto and loginTmpCode.
func TestBrowserEmbeddedLogin(t *testing.T) {
	browser := startChromium(t)
	ln := listenLoopback(t)
	issuer := "http://" + ln.Addr().String()
	fake := startCorpAndLegacyFake(t, issuer)
	appLn, appCB, _ := listenRP(t)
	yaml := fmt.Sprintf(`issuer: %[1]s
storage: {path: %[2]q}
branding: {title: 示例科技 统一登录, logoURL: "%[5]s/logo.png"}
connectors:
  - id: corp
    name: 示例科技
    clientID: %[3]s
    clientSecret: $DINGTALK_CLIENT_SECRET
    corpID: %[4]s
    loginPage: embedded
    endpoints: {login: %[5]s, api: %[5]s, oapi: %[5]s, frameLogin: %[5]s%[6]s}
  - id: legacy
    name: 钉钉扫码（旧版）
    mode: sns
    clientID: %[7]s
    clientSecret: $LEGACY_SECRET
    loginPage: embedded
    endpoints: {login: %[5]s, api: %[5]s, oapi: %[5]s, snsFrameLogin: %[5]s%[8]s}
staticClients:
  - {id: grafana, name: Grafana, secretEnv: GRAFANA_OIDC_SECRET, redirectURIs: [%[9]q]}
rateLimit: {perSecond: 0}
`, issuer, tempDBPath(t), corpAppKey, dingtalktest.DemoCorpID, fake.URL, dingtalktest.FrameLoginPath,
		legacyAppID, dingtalktest.SNSFrameLoginPath, appCB)
	startServeOn(t, ln, yaml, browserEnv())
	app := newTestRP(t, appLn, issuer, "grafana", rpSecret)
	zhang := dingtalktest.DemoUsers()[0]

	for _, c := range []struct {
		connector, amr string
	}{{"corp", "dingtalk"}, {"legacy", "dingtalk-sns"}} {
		for _, lang := range []string{"zh-CN", "en"} {
			t.Run(c.connector+"/"+lang, func(t *testing.T) {
				tb := browser.newTab(t, issuer, lang, "")
				tb.open(app.authURL())
				tb.click(`a[href*="connector=` + c.connector + `"]`)
				tb.waitFor(`#dingtalk-qr iframe`)
				tb.waitText("示例科技 统一登录")
				tb.page("embedded-" + c.connector)
				// The person logs in inside the frame: DingTalk's page there, then
				// its answer to our page, which goes on to the callback.
				tb.do("log in inside the frame", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
					frames, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS(`#dingtalk-qr iframe`)))
					if err != nil {
						return err
					}
					// The frame is DingTalk's page (the fake's, on another port of the same site).
					return chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[name=unionId][value="`+zhang.UnionID+`"]`), chromedp.FromNode(frames[0])))
				}))
				claims := app.exchange(tb).IDTokenClaims
				if claims.Subject != zhang.UnionID || !slices.Equal(claims.AuthenticationMethodsReferences, []string{c.amr}) {
					t.Errorf("embedded %s login: sub %q amr %v", c.connector, claims.Subject, claims.AuthenticationMethodsReferences)
				}
			})
		}
	}
}
