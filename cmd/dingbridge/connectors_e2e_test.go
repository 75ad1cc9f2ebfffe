package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// One path from file to connector: every connector mode a person can write in
// the configuration file passes `config check`, starts under serve, and logs a
// person in through the fake DingTalk with the method and claims that mode gives.
func TestEveryConnectorModeStartsFromItsFileAndLogsIn(t *testing.T) {
	const (
		corpAppID, corpAppSecret = "dingcorpapp", "corp-app-secret-0123456789"
		snsAppID, snsAppSecret   = "dingoasnsapp", "sns-app-secret-0123456789"
	)
	env := map[string]string{
		"DINGTALK_CLIENT_SECRET": dtSecret, "CORP_APP_SECRET": corpAppSecret,
		"SNS_APP_SECRET": snsAppSecret, "GRAFANA_OIDC_SECRET": rpSecret,
	}
	user := dingtalktest.DemoUsers()[0] // 张三, a member of the demo organisation
	corpID := dingtalktest.DemoCorpID

	type login struct {
		connector string // "" when the file has one connector: no chooser
		amr       string
		corp      bool // corp claims (userid, groups) are released
	}
	for _, tt := range []struct {
		name, connectors string
		logins           []login
	}{{
		name: "oauth2",
		connectors: `  - id: dingtalk
    clientID: ` + dtClientID + `
    clientSecret: $DINGTALK_CLIENT_SECRET
`,
		logins: []login{{amr: "dingtalk"}},
	}, {
		name: "oauth2 with corpID, scope left to its default",
		connectors: `  - id: dingtalk
    clientID: ` + corpAppID + `
    clientSecret: $CORP_APP_SECRET
    corpID: ` + corpID + `
    allowedCorpIDs: [` + corpID + `]
    requireMembership: true
`,
		logins: []login{{amr: "dingtalk", corp: true}},
	}, {
		name: "sns",
		connectors: `  - id: legacy
    mode: sns
    clientID: ` + snsAppID + `
    clientSecret: $SNS_APP_SECRET
`,
		logins: []login{{amr: "dingtalk-sns"}},
	}, {
		name: "sns with corpID and the organisation's internal app",
		connectors: `  - id: legacy
    mode: sns
    clientID: ` + snsAppID + `
    clientSecret: $SNS_APP_SECRET
    corpID: ` + corpID + `
    corpAppKey: ` + corpAppID + `
    corpAppSecret: $CORP_APP_SECRET
    requireMembership: true
`,
		logins: []login{{amr: "dingtalk-sns", corp: true}},
	}, {
		name: "several connectors: an organisation's app and a legacy app",
		connectors: `  - id: corp
    name: 示例科技
    clientID: ` + corpAppID + `
    clientSecret: $CORP_APP_SECRET
    corpID: ` + corpID + `
  - id: legacy
    name: 钉钉扫码（旧版）
    mode: sns
    clientID: ` + snsAppID + `
    clientSecret: $SNS_APP_SECRET
`,
		logins: []login{{connector: "corp", amr: "dingtalk", corp: true}, {connector: "legacy", amr: "dingtalk-sns"}},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			var fake *dingtalktest.Server
			srv := startServe(t, env, func(issuer string) string {
				var callbacks []string
				for _, id := range []string{"dingtalk", "corp", "legacy"} {
					callbacks = append(callbacks, issuer+"/callback/"+id)
				}
				fake = dingtalktest.NewServer(dingtalktest.Config{
					Apps: []dingtalktest.App{
						{ClientID: dtClientID, ClientSecret: dtSecret, RedirectURIs: callbacks},
						{ClientID: corpAppID, ClientSecret: corpAppSecret, RedirectURIs: callbacks, CorpID: corpID},
						{ClientID: snsAppID, ClientSecret: snsAppSecret, RedirectURIs: callbacks},
					},
					Users: dingtalktest.DemoUsers(), Corps: []dingtalktest.Corp{dingtalktest.DemoCorp()},
				})
				t.Cleanup(fake.Close)
				fake.AutoApprove(user.UnionID)
				return fileWithConnectors(issuer, tempDBPath(t), fake.URL, tt.connectors)
			})
			code, stdout, stderr := runCLI(t, env, "config", "check", "--config", srv.ConfigPath)
			if code != 0 || !strings.Contains(stdout, ": OK") {
				t.Fatalf("config check of the file serve runs: exit %d\n%s%s", code, stdout, stderr)
			}

			party := loopbackParty(t, srv.Issuer, []string{"openid", "profile", "groups"})
			for _, l := range tt.logins {
				claims := logInThroughChooser(t, party, l.connector)
				if claims.Subject != user.UnionID || !slices.Equal(claims.AuthenticationMethodsReferences, []string{l.amr}) {
					t.Errorf("connector %q: sub %q amr %v; want %s and [%s]", l.connector, claims.Subject, claims.AuthenticationMethodsReferences, user.UnionID, l.amr)
				}
				if got := claims.Claims["userid"]; l.corp != (got == user.UserID) {
					t.Errorf("connector %q: userid claim %v; corp claims expected: %v", l.connector, got, l.corp)
				}
			}
		})
	}
}

// A file the connector would refuse is refused by `config check` too, not only
// when serve starts.
func TestConfigCheckRefusesWhatServeWouldRefuse(t *testing.T) {
	for _, tt := range []struct{ lines, want string }{
		{"    mode: sns\n    scope: openid\n", "connectors[0].scope applies to mode oauth2 only"},
		{"    corpID: dingA\n    scope: openid\n", `connectors[0].scope "openid" lacks corpid`},
		{"    allowedCorpIDs: [\"\"]\n", "connectors[0].allowedCorpIDs[0] is empty"},
	} {
		connectors := "  - id: dingtalk\n    clientID: " + dtClientID + "\n    clientSecret: $DINGTALK_CLIENT_SECRET\n" + tt.lines
		path := writeFile(t, "dingbridge.yaml", fileWithConnectors("https://sso.example.com", "/var/lib/dingbridge/dingbridge.db", "https://dingtalk.example.com", connectors))
		code, stdout, stderr := runCLI(t, map[string]string{"DINGTALK_CLIENT_SECRET": dtSecret, "GRAFANA_OIDC_SECRET": rpSecret}, "config", "check", "--config", path)
		if code != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 1 and %q", tt.lines, code, stdout, stderr, tt.want)
		}
	}
}

// fileWithConnectors is a configuration file with the given connectors (YAML
// list items), all pointed at dingtalkURL, and the static client grafana.
func fileWithConnectors(issuer, dbPath, dingtalkURL, connectors string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "issuer: %s\nstorage: {path: %q}\nconnectors:\n", issuer, dbPath)
	for _, line := range strings.SplitAfter(connectors, "\n") {
		b.WriteString(line)
		if strings.HasPrefix(line, "  - id:") {
			fmt.Fprintf(&b, "    timeout: 5s\n    endpoints: {login: %q, api: %q, oapi: %q}\n", dingtalkURL, dingtalkURL, dingtalkURL)
		}
	}
	fmt.Fprintf(&b, "staticClients:\n  - id: %s\n    secretEnv: GRAFANA_OIDC_SECRET\n    redirectURIs: [%q]\n", rpClientID, rpRedirect)
	return b.String()
}

// loopbackParty is the grafana client as an RP library sees it, after discovery.
func loopbackParty(t *testing.T, issuer string, scopes []string) rp.RelyingParty {
	t.Helper()
	httpClient := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(httpClient.CloseIdleConnections)
	party, err := rp.NewRelyingPartyOIDC(context.Background(), issuer, rpClientID, rpSecret, rpRedirect, scopes,
		rp.WithHTTPClient(httpClient), rp.WithVerifierOpts(rp.WithNonce(func(ctx context.Context) string {
			n, _ := ctx.Value(nonceKey{}).(string)
			return n
		})))
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return party
}

var chooserLink = regexp.MustCompile(`href="([^"]*[?&](?:amp;)?connector=([a-z0-9-]+))"`)

// logInThroughChooser logs in with a cookie-keeping HTTP client, picking
// connector on the chooser page when there is one, and returns the verified
// id_token's claims.
func logInThroughChooser(t *testing.T, party rp.RelyingParty, connector string) *oidc.IDTokenClaims {
	t.Helper()
	nonce, verifier := "n-"+rand.Text(), "v-"+rand.Text()+rand.Text()
	authURL := rp.AuthURL("st-"+rand.Text(), party, rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", nonce)))
	b := newBrowser(t, rpRedirect)
	resp, body := b.visit(authURL)
	if connector != "" {
		var next string
		for _, m := range chooserLink.FindAllStringSubmatch(body, -1) {
			if m[2] == connector {
				next = html.UnescapeString(m[1])
			}
		}
		if resp.StatusCode != http.StatusOK || next == "" {
			t.Fatalf("no chooser link for connector %s (status %d):\n%s", connector, resp.StatusCode, body)
		}
		resp, body = b.visit(resp.Request.URL.ResolveReference(&url.URL{Path: strings.Split(next, "?")[0], RawQuery: strings.SplitN(next, "?", 2)[1]}).String())
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("login did not reach the relying party with a code: status %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	ctx := context.WithValue(context.Background(), nonceKey{}, nonce)
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, loc.Query().Get("code"), party, rp.WithCodeVerifier(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	return tokens.IDTokenClaims
}
