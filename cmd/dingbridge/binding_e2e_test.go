package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// Who may log in, through the real server: closed registration, records an
// administrator provisioned and the first login binds, and people who leave the
// organisation losing their sessions and refresh tokens.

const wikiRedirect = "http://127.0.0.1:1/wiki/callback" // never contacted

// The demo organisation's people, with 王五 a member too and 赵六 added.
func bindingUsers() []dingtalktest.User {
	users := dingtalktest.DemoUsers() // 张三, 李四 (mobile +8613800138000), 王五
	users[2].CorpID, users[2].UserID = dingtalktest.DemoCorpID, "wangwu"
	return append(users, dingtalktest.User{
		UnionID: "Zl7pQw3Ex5RtY9uIoiEiE", OpenID: "Op2aSd4Fg6Hj8KlZxiEiE", Nick: "赵六",
		Mobile: "13900139000", StateCode: "86", CorpID: dingtalktest.DemoCorpID, UserID: "zhaoliu",
	})
}

// newCorpEnv is a server whose connector reads the demo organisation's directory
// and admits its members only, with extra lines for the configuration file.
// Clients: grafana and wiki, both told of logouts at logouts.URL.
func newCorpEnv(t *testing.T, logouts *logoutRecorder, extra string) *adminEnv {
	t.Helper()
	addr := freeAddr(t)
	e := &adminEnv{dir: shortTempDir(t), issuer: "http://" + addr}
	e.dbPath = filepath.Join(e.dir, "dingbridge.db")
	e.socket = e.dbPath + ".sock"
	e.fake = dingtalktest.NewServer(dingtalktest.Config{
		Apps: []dingtalktest.App{{ClientID: dtClientID, ClientSecret: dtSecret,
			RedirectURIs: []string{e.issuer + "/callback/dingtalk"}, CorpID: dingtalktest.DemoCorpID}},
		Users: bindingUsers(),
		Corps: []dingtalktest.Corp{dingtalktest.DemoCorp()},
	})
	t.Cleanup(e.fake.Close)
	cfg := fmt.Sprintf(`issuer: %q
listen: %q
storage: {path: %q}
connectors:
  - id: dingtalk
    clientID: %s
    clientSecret: $DINGTALK_CLIENT_SECRET
    corpID: %s
    requireMembership: true
    timeout: 5s
    endpoints: {login: %q, api: %q, oapi: %q}
staticClients:
  - id: %s
    secretEnv: GRAFANA_OIDC_SECRET
    redirectURIs: [%q]
    backchannelLogoutURI: %q
  - id: wiki
    secretEnv: GRAFANA_OIDC_SECRET
    redirectURIs: [%q]
    backchannelLogoutURI: %q
logging: {level: debug}
%s`, e.issuer, addr, e.dbPath, dtClientID, dingtalktest.DemoCorpID, e.fake.URL, e.fake.URL, e.fake.URL,
		rpClientID, rpRedirect, logouts.url+"/grafana", wikiRedirect, logouts.url+"/wiki", extra)
	e.cfgPath = writeFile(t, "dingbridge.yaml", cfg)
	e.env = map[string]string{"DINGTALK_CLIENT_SECRET": dtSecret, "GRAFANA_OIDC_SECRET": rpSecret, "DINGBRIDGE_CONFIG": e.cfgPath}
	return e
}

// logInWith runs the redirect dance in b (so its session cookie is kept) and
// exchanges the code.
func (e *adminEnv) logInWith(t *testing.T, b *browser, party rp.RelyingParty) *oidc.Tokens[*oidc.IDTokenClaims] {
	t.Helper()
	nonce, verifier := "n-"+rand.Text(), "v-"+rand.Text()+rand.Text()
	authURL := rp.AuthURL("st-"+rand.Text(), party, rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", nonce)))
	q := b.loginAt(authURL)
	if q.Get("code") == "" {
		t.Fatalf("login did not produce a code: %v", q)
	}
	ctx := context.WithValue(context.Background(), nonceKey{}, nonce)
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, q.Get("code"), party, rp.WithCodeVerifier(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	return tokens
}

// refusedPage follows a login that must not reach the relying party and returns
// the page the person ends on, with the "back to the application" link.
func refusedPage(t *testing.T, b *browser, authURL string, lang string) (status int, body, back string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, authURL, nil)
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", authURL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	body = html.UnescapeString(string(raw))
	if m := regexp.MustCompile(`href="(http://127\.0\.0\.1:1/[^"]*)"`).FindStringSubmatch(string(raw)); m != nil {
		back = html.UnescapeString(m[1])
	}
	return resp.StatusCode, body, back
}

func TestClosedRegistrationAdmitsOnlyProvisionedPeople(t *testing.T) {
	e := newCorpEnv(t, newLogoutRecorder(t), "registration: closed\nregistrationContact: \"IT 服务台 it@example.com\"\n")
	srv := e.serve(t)
	zhang, li, wang, zhao := bindingUsers()[0], bindingUsers()[1], bindingUsers()[2], bindingUsers()[3]

	// What the administrator knows: 张三's unionid, 王五's staff id, 李四's mobile.
	for _, args := range [][]string{
		{"users", "add", "--subject", "zhang.san", "--unionid", zhang.UnionID, "--name", "张三"},
		{"users", "add", "--subject", "wang.wu", "--userid", "wangwu"}, // the one connector's corpID
		{"users", "add", "--subject", "li.si", "--mobile", "+86 138 0013 8000"},
	} {
		if code, _, stderr := e.cli(t, args...); code != 0 {
			t.Fatalf("%s: exit %d\n%s", strings.Join(args, " "), code, stderr)
		}
	}
	party := e.relyingParty(t, rpClientID, rpSecret, rpRedirect)
	for _, c := range []struct {
		person            dingtalktest.User
		subject, username string
	}{{zhang, "zhang.san", "zhangsan"}, {wang, "wang.wu", "wangwu"}, {li, "li.si", "lisi"}} {
		e.fake.AutoApprove(c.person.UnionID)
		tokens := e.logInWith(t, newBrowser(t, "http://127.0.0.1:1/"), party)
		if got := tokens.IDTokenClaims.Subject; got != c.subject {
			t.Errorf("%s: sub %q, want the subject the administrator chose, %q", c.person.Nick, got, c.subject)
		}
		if got := tokens.IDTokenClaims.Claims["unionid"]; got != c.person.UnionID {
			t.Errorf("%s: unionid claim %v, want %s", c.person.Nick, got, c.person.UnionID)
		}
		// An ASCII username apps accept (pinyin, the default); name stays the display name.
		if got, name := tokens.IDTokenClaims.PreferredUsername, tokens.IDTokenClaims.Name; got != c.username || name != c.person.Nick {
			t.Errorf("%s: preferred_username %q, name %q; want %q and %q", c.person.Nick, got, name, c.username, c.person.Nick)
		}
	}
	var bound admin.User
	e.cliJSON(t, &bound, "users", "show", "li.si")
	if bound.UnionID != li.UnionID || bound.BoundAt.IsZero() || bound.ProvisionedAt.IsZero() || bound.Phone != "+8613800138000" {
		t.Errorf("li.si after her first login: unionid %q, bound %v, provisioned %v, phone %q; want bound to %s",
			bound.UnionID, bound.BoundAt, bound.ProvisionedAt, bound.Phone, li.UnionID)
	}
	// A second login finds the bound record by unionid, not by the mobile again.
	e.fake.AutoApprove(li.UnionID)
	if again := e.logInWith(t, newBrowser(t, "http://127.0.0.1:1/"), party); again.IDTokenClaims.Subject != "li.si" {
		t.Errorf("li.si's second login: sub %q", again.IDTokenClaims.Subject)
	}

	// 赵六 is a member DingTalk vouches for, but nobody added him.
	e.fake.AutoApprove(zhao.UnionID)
	for _, lang := range []string{"en", "zh-CN"} {
		status, body, back := refusedPage(t, newBrowser(t, "http://127.0.0.1:1/"), e.authorizeURL(party, "n-"+rand.Text()), lang)
		want := map[string]string{"en": "Your DingTalk account is not bound here", "zh-CN": "您的钉钉账号未绑定"}[lang]
		if status != http.StatusForbidden || !strings.Contains(body, want) || !strings.Contains(body, "IT 服务台 it@example.com") || !strings.Contains(body, zhao.UnionID) {
			t.Errorf("unbound person (%s): status %d, want 403 with %q, the contact and his unionid:\n%s", lang, status, want, body)
		}
		if u, err := url.Parse(back); err != nil || u.Query().Get("error") != "access_denied" {
			t.Errorf("unbound person (%s): the way back to the app is %q, want error=access_denied", lang, back)
		}
	}
	if code, stdout, _ := e.cli(t, "users", "list"); code != 0 || strings.Contains(stdout, zhao.UnionID) {
		t.Errorf("the refused person got a user record:\n%s", stdout)
	}

	// Two records match 赵六's mobile: binding would have to guess, so it refuses.
	for _, subject := range []string{"zhao.liu", "liu.zhao"} {
		if code, _, stderr := e.cli(t, "users", "add", "--subject", subject, "--mobile", "13900139000"); code != 0 {
			t.Fatalf("users add %s: exit %d\n%s", subject, code, stderr)
		}
	}
	status, body, back := refusedPage(t, newBrowser(t, "http://127.0.0.1:1/"), e.authorizeURL(party, "n-"+rand.Text()), "en")
	if status != http.StatusForbidden || !strings.Contains(body, "more than one account") {
		t.Errorf("two records on one mobile: status %d, want 403 saying more than one account matches:\n%s", status, body)
	}
	if u, err := url.Parse(back); err != nil || u.Query().Get("error") != "access_denied" {
		t.Errorf("two records on one mobile: the way back is %q, want error=access_denied", back)
	}
	if logs := srv.stderr.String(); !strings.Contains(logs, "matches more than one user record") || !strings.Contains(logs, "liu.zhao, zhao.liu") {
		t.Errorf("the log does not say which records matched:\n%s", logs)
	}
	// The administrator links the right one; then he logs in as zhao.liu.
	if code, _, stderr := e.cli(t, "users", "link", "zhao.liu", "--unionid", zhao.UnionID); code != 0 {
		t.Fatalf("users link: exit %d\n%s", code, stderr)
	}
	if tokens := e.logInWith(t, newBrowser(t, "http://127.0.0.1:1/"), party); tokens.IDTokenClaims.Subject != "zhao.liu" {
		t.Errorf("after users link: sub %q, want zhao.liu", tokens.IDTokenClaims.Subject)
	}
	if code, _, stderr := e.cli(t, "users", "link", "liu.zhao", "--unionid", zhao.UnionID); code != exitUsage || !strings.Contains(stderr, "already bound to user \"zhao.liu\"") {
		t.Errorf("linking a second record to the same unionid: exit %d, want %d and a refusal naming zhao.liu:\n%s", code, exitUsage, stderr)
	}
	// Unlinked, zhao.liu forgets the account and what it told (its mobile too),
	// so his next login does not bind it again: the one record left that has his
	// mobile does.
	if code, _, stderr := e.cli(t, "users", "unlink", "zhao.liu"); code != 0 {
		t.Fatalf("users unlink: exit %d\n%s", code, stderr)
	}
	if tokens := e.logInWith(t, newBrowser(t, "http://127.0.0.1:1/"), party); tokens.IDTokenClaims.Subject != "liu.zhao" {
		t.Errorf("after users unlink zhao.liu: sub %q, want liu.zhao", tokens.IDTokenClaims.Subject)
	}
	var unlinked admin.User
	e.cliJSON(t, &unlinked, "users", "show", "zhao.liu")
	if unlinked.UnionID != "" || unlinked.Phone != "" || !unlinked.BoundAt.IsZero() {
		t.Errorf("zhao.liu after unlink: unionid %q, phone %q, bound %v; want none", unlinked.UnionID, unlinked.Phone, unlinked.BoundAt)
	}
}

func TestImportIsAllOrNothing(t *testing.T) {
	e := newCorpEnv(t, newLogoutRecorder(t), "registration: closed\n")
	e.serve(t)
	bad := writeFile(t, "people.csv", "subject,unionid,userid,mobile,email,name\n"+
		"zhang.san,"+bindingUsers()[0].UnionID+",,,,张三\n"+
		"li.si,,,12345,,李四\n"+ // not a phone number
		"wang.wu,,wangwu,,wangwu@corp.example.com,王五\n")
	code, stdout, stderr := e.cli(t, "users", "import", bad)
	if code != exitUsage || !strings.Contains(stdout, `line 3: invalid: mobile "12345" is not a phone number`) || !strings.Contains(stderr, "nothing was added") {
		t.Errorf("import with a bad row: exit %d, want %d, the row and that nothing was added\nstdout:\n%s\nstderr:\n%s", code, exitUsage, stdout, stderr)
	}
	var users []admin.User
	e.cliJSON(t, &users, "users", "list")
	if len(users) != 0 {
		t.Errorf("a file with a bad row added %d user(s)", len(users))
	}

	good := writeFile(t, "fixed.csv", strings.Replace(mustRead(t, bad), "12345", "+8613800138000", 1))
	var report admin.ImportReport
	e.cliJSON(t, &report, "users", "import", good)
	if len(report.Added) != 3 || len(report.AlreadyThere) != 0 || len(report.Invalid) != 0 {
		t.Errorf("import of the fixed file: %+v, want 3 added", report)
	}
	code, stdout, _ = e.cli(t, "users", "import", good)
	if code != 0 || !strings.Contains(stdout, "0 added, 3 already there, 0 invalid.") {
		t.Errorf("importing the same file again: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = e.cli(t, "users", "export")
	if code != 0 || !strings.HasPrefix(stdout, "subject,unionid,userid,corp,mobile,email,name\n") ||
		!strings.Contains(stdout, "wang.wu,,wangwu,"+dingtalktest.DemoCorpID+",,wangwu@corp.example.com,王五\n") {
		t.Errorf("users export: exit %d\n%s", code, stdout)
	}
	// What export writes, import reads: everyone is already there.
	code, stdout, _ = e.cli(t, "users", "import", writeFile(t, "export.csv", stdout))
	if code != 0 || !strings.Contains(stdout, "0 added, 3 already there") {
		t.Errorf("importing the export: exit %d\n%s", code, stdout)
	}
	// 王五 is found by his directory address (the organisation sets it).
	e.fake.AutoApprove(bindingUsers()[2].UnionID)
	party := e.relyingParty(t, rpClientID, rpSecret, rpRedirect)
	if tokens := e.logInWith(t, newBrowser(t, "http://127.0.0.1:1/"), party); tokens.IDTokenClaims.Subject != "wang.wu" {
		t.Errorf("王五 imported with his staff id: sub %q, want wang.wu", tokens.IDTokenClaims.Subject)
	}
}

func TestLeaverLosesRefreshAndSSOAndHerAppsAreToldOfTheLogout(t *testing.T) {
	logouts := newLogoutRecorder(t)
	e := newCorpEnv(t, logouts, "membershipRecheck: 1s\n")
	e.serve(t)
	zhang, li := bindingUsers()[0], bindingUsers()[1]
	grafana := e.relyingParty(t, rpClientID, rpSecret, rpRedirect)
	wiki := e.relyingParty(t, "wiki", rpSecret, wikiRedirect)

	her := newBrowser(t, "http://127.0.0.1:1/")
	e.fake.AutoApprove(zhang.UnionID)
	atGrafana := e.logInWith(t, her, grafana)
	atWiki := e.logInWith(t, her, wiki) // single sign-on: no DingTalk round trip
	if atGrafana.RefreshToken == "" || atWiki.RefreshToken == "" {
		t.Fatal("no refresh tokens")
	}
	e.fake.AutoApprove(li.UnionID)
	colleague := e.logInWith(t, newBrowser(t, "http://127.0.0.1:1/"), grafana)

	e.fake.RemoveMember(zhang.UnionID) // she leaves the company
	time.Sleep(1100 * time.Millisecond)

	// Her next SSO login is checked against the directory: the session is gone,
	// DingTalk logs her in, and the policy refuses her.
	e.fake.AutoApprove(zhang.UnionID)
	status, body, _ := refusedPage(t, her, e.authorizeURL(wiki, "n-"+rand.Text()), "en")
	if status != http.StatusForbidden || !strings.Contains(body, "not admitted") {
		t.Errorf("SSO after leaving: status %d, want 403 from the access policy:\n%s", status, body)
	}
	for name, c := range map[string]struct {
		party rp.RelyingParty
		token string
	}{"grafana": {grafana, atGrafana.RefreshToken}, "wiki": {wiki, atWiki.RefreshToken}} {
		if _, err := refresh(c.party, c.token); oauthError(err) != "invalid_grant" {
			t.Errorf("refresh at %s after leaving: %v, want invalid_grant", name, err)
		}
	}
	for _, client := range []string{"grafana", "wiki"} {
		token := logouts.wait(t, client)
		if sub := jwtClaim(t, token, "sub"); sub != zhang.UnionID {
			t.Errorf("logout token to %s has sub %v, want %s", client, sub, zhang.UnionID)
		}
	}
	var gone admin.User
	e.cliJSON(t, &gone, "users", "show", zhang.UnionID)
	if !gone.Disabled || gone.DisabledAt.IsZero() || !strings.Contains(gone.DisabledReason, "not a member of organisation "+dingtalktest.DemoCorpID) {
		t.Errorf("her record: disabled %t at %v because %q; want disabled, when, and that she is not a member", gone.Disabled, gone.DisabledAt, gone.DisabledReason)
	}
	// Her colleague, still a member, is asked about too and keeps her access.
	if _, err := refresh(grafana, colleague.RefreshToken); err != nil {
		t.Errorf("a member's refresh after the re-check period: %v", err)
	}
}

func TestDingTalkDownDuringRecheckKeepsPeopleLoggedInForTheGrace(t *testing.T) {
	e := newCorpEnv(t, newLogoutRecorder(t), "membershipRecheck: 1s\nmembershipGrace: 4s\n")
	srv := e.serve(t)
	zhang := bindingUsers()[0]
	grafana := e.relyingParty(t, rpClientID, rpSecret, rpRedirect)
	wiki := e.relyingParty(t, "wiki", rpSecret, wikiRedirect)
	her := newBrowser(t, "http://127.0.0.1:1/")
	e.fake.AutoApprove(zhang.UnionID)
	tokens := e.logInWith(t, her, grafana)
	loggedIn := time.Now()

	// The directory answers 503 from now on.
	e.fake.Fail(dingtalktest.APIGetByUnionID, dingtalktest.Failure{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Message: "down"})
	time.Sleep(1100 * time.Millisecond)
	fresh, err := refresh(grafana, tokens.RefreshToken)
	if err != nil {
		t.Fatalf("refresh while DingTalk is down, within the grace: %v", err)
	}
	e.logInWith(t, her, wiki) // SSO too
	if !strings.Contains(srv.stderr.String(), "keeping the last confirmation within the grace") {
		t.Errorf("the log does not say the last confirmation was kept:\n%s", srv.stderr)
	}

	time.Sleep(time.Until(loggedIn.Add(4*time.Second + 200*time.Millisecond)))
	if _, err := refresh(grafana, fresh.RefreshToken); oauthError(err) != "invalid_grant" {
		t.Errorf("refresh once the grace is over and DingTalk still down: %v, want invalid_grant", err)
	}
	var u admin.User
	e.cliJSON(t, &u, "users", "show", zhang.UnionID)
	if u.Disabled {
		t.Errorf("an outage disabled the person: %q", u.DisabledReason)
	}
}

// logoutRecorder is a relying party's back-channel logout endpoint: it keeps
// each logout_token posted to /<client>.
type logoutRecorder struct {
	url    string
	mu     sync.Mutex
	tokens map[string][]string
	posted chan struct{}
}

func newLogoutRecorder(t *testing.T) *logoutRecorder {
	l := &logoutRecorder{tokens: map[string][]string{}, posted: make(chan struct{}, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.tokens[strings.TrimPrefix(r.URL.Path, "/")] = append(l.tokens[strings.TrimPrefix(r.URL.Path, "/")], r.PostFormValue("logout_token"))
		l.mu.Unlock()
		select {
		case l.posted <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	l.url = srv.URL
	return l
}

// wait returns the first logout token client received, waiting up to 10s.
func (l *logoutRecorder) wait(t *testing.T, client string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		got := l.tokens[client]
		l.mu.Unlock()
		if len(got) > 0 {
			return got[0]
		}
		select {
		case <-l.posted:
		case <-deadline:
			t.Fatalf("no back-channel logout reached %s", client)
			return ""
		}
	}
}

func jwtClaim(t *testing.T, jwt, name string) any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims[name]
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUsersSyncReportsLeaversAndDisablesThemWithApply(t *testing.T) {
	logouts := newLogoutRecorder(t)
	e := newCorpEnv(t, logouts, "")
	srv := e.serve(t)
	zhang, li := bindingUsers()[0], bindingUsers()[1]
	grafana := e.relyingParty(t, rpClientID, rpSecret, rpRedirect)
	e.fake.AutoApprove(zhang.UnionID)
	e.logInWith(t, newBrowser(t, "http://127.0.0.1:1/"), grafana)
	e.fake.AutoApprove(li.UnionID)
	hers := e.logInWith(t, newBrowser(t, "http://127.0.0.1:1/"), grafana)
	e.fake.RemoveMember(li.UnionID)

	// A dry run, through the running server: reported, nothing changed.
	code, stdout, stderr := e.cli(t, "users", "sync")
	if code != 0 || !strings.Contains(stdout, "would disable "+li.UnionID+" (李四): not a member of organisation "+dingtalktest.DemoCorpID) ||
		!strings.Contains(stdout, "2 checked, 1 leaver(s), 0 unknown.") || !strings.Contains(stdout, "Dry run") {
		t.Errorf("users sync: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if _, err := refresh(grafana, hers.RefreshToken); err != nil {
		t.Fatalf("a dry run changed something: refresh %v", err)
	}

	// --apply with the server stopped: the command asks DingTalk itself, and
	// still tells her apps.
	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	var report struct {
		Checked int `json:"checked"`
		Leavers []struct {
			Subject string `json:"subject"`
		} `json:"leavers"`
		Applied bool `json:"applied"`
	}
	e.cliJSON(t, &report, "users", "sync", "--apply")
	if report.Checked != 2 || len(report.Leavers) != 1 || report.Leavers[0].Subject != li.UnionID || !report.Applied {
		t.Errorf("users sync --apply: %+v", report)
	}
	if sub := jwtClaim(t, logouts.wait(t, "grafana"), "sub"); sub != li.UnionID {
		t.Errorf("logout token sub %v, want %s", sub, li.UnionID)
	}
	var u admin.User
	e.cliJSON(t, &u, "users", "show", li.UnionID)
	if !u.Disabled || !strings.HasPrefix(u.DisabledReason, "directory: ") {
		t.Errorf("after sync --apply: disabled %t, reason %q", u.Disabled, u.DisabledReason)
	}
	e.serve(t)
	if _, err := refresh(grafana, hers.RefreshToken); oauthError(err) != "invalid_grant" {
		t.Errorf("refresh after sync --apply: %v, want invalid_grant", err)
	}
}

// loginPage: embedded from the file: serve's page names exactly the configured
// script and frame origins, and the frame's answer logs the person in. (The
// browser test runs the same page in Chromium.)
func TestServeEmbeddedLoginPageFromConfig(t *testing.T) {
	addr := freeAddr(t)
	issuer := "http://" + addr
	fake := dingtalktest.NewServer(dingtalktest.Config{
		Apps:  []dingtalktest.App{{ClientID: dtClientID, ClientSecret: dtSecret, RedirectURIs: []string{issuer + "/callback/dingtalk"}}},
		Users: dingtalktest.DemoUsers(),
	})
	t.Cleanup(fake.Close)
	cfg := strings.Replace(serveConfig(issuer, addr, filepath.Join(t.TempDir(), "dingbridge.db"), fake.URL),
		"    endpoints: {", fmt.Sprintf("    loginPage: embedded\n    endpoints: {frameLogin: %q, ", fake.URL+dingtalktest.FrameLoginPath), 1) +
		"branding: {title: \"示例科技 统一登录\", logoURL: \"https://static.example.com/logo.png\"}\n"
	start(t, map[string]string{"DINGTALK_CLIENT_SECRET": dtSecret, "GRAFANA_OIDC_SECRET": rpSecret},
		"serve", "--config", writeFile(t, "dingbridge.yaml", cfg)).waitReady(t, issuer+"/readyz")

	e := &adminEnv{issuer: issuer}
	party := e.relyingParty(t, rpClientID, rpSecret, rpRedirect)
	b := newBrowser(t, "http://127.0.0.1:1/")
	nonce, verifier := "n-"+rand.Text(), "v-"+rand.Text()+rand.Text()
	resp, body := b.visit(rp.AuthURL("st-"+rand.Text(), party, rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", nonce))))
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "示例科技 统一登录") ||
		!strings.Contains(csp, "script-src 'nonce-") || !strings.Contains(csp, " "+fake.URL+"; frame-src "+fake.URL+";") ||
		!strings.Contains(csp, "img-src 'self' data: https://static.example.com;") {
		t.Fatalf("embedded page: status %d, CSP %q\n%s", resp.StatusCode, csp, body)
	}
	attr := func(name string) string {
		m := regexp.MustCompile(`data-` + name + `="([^"]*)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("page has no data-%s", name)
		}
		return html.UnescapeString(m[1])
	}
	state, callback := attr("state"), attr("callback")
	fake.AutoApprove(dingtalktest.DemoUsers()[0].UnionID)
	frame := url.Values{"redirect_uri": {callback}, "client_id": {attr("client-id")}, "scope": {attr("scope")},
		"response_type": {"code"}, "state": {state}, "prompt": {"consent"}, "embed": {"1"}}
	_, answer := newBrowser(t, "").visit(fake.URL + "/oauth2/auth?" + frame.Encode())
	code := regexp.MustCompile(`"authCode":"([^"]+)"`).FindStringSubmatch(answer)
	if code == nil {
		t.Fatalf("the frame posted no authCode:\n%s", answer)
	}
	q := b.loginAt(callback + "?authCode=" + url.QueryEscape(code[1]) + "&state=" + url.QueryEscape(state))
	ctx := context.WithValue(context.Background(), nonceKey{}, nonce)
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, q.Get("code"), party, rp.WithCodeVerifier(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	if tokens.IDTokenClaims.Subject != dingtalktest.DemoUsers()[0].UnionID {
		t.Errorf("sub %q", tokens.IDTokenClaims.Subject)
	}
}
