package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cfgpkg "github.com/dingbridge/dingbridge/config"
	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/bolt"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// adminEnv is a configuration file (with the static client grafana), its database
// and a fake DingTalk, for the admin commands. DINGBRIDGE_CONFIG points at the file.
type adminEnv struct {
	dir, dbPath, socket, cfgPath string
	issuer                       string
	env                          map[string]string
	fake                         *dingtalktest.Server
	user                         dingtalktest.User // approved at the fake DingTalk
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	addr := freeAddr(t)
	e := &adminEnv{dir: shortTempDir(t), issuer: "http://" + addr, user: dingtalktest.DemoUsers()[1]}
	e.dbPath = filepath.Join(e.dir, "dingbridge.db")
	e.socket = e.dbPath + ".sock" // the default adminSocket
	e.fake = dingtalktest.NewServer(dingtalktest.Config{
		Apps:  []dingtalktest.App{{ClientID: dtClientID, ClientSecret: dtSecret, RedirectURIs: []string{e.issuer + "/callback/dingtalk"}}},
		Users: dingtalktest.DemoUsers(),
	})
	t.Cleanup(e.fake.Close)
	e.fake.AutoApprove(e.user.UnionID)
	e.cfgPath = writeFile(t, "dingbridge.yaml", serveConfig(e.issuer, addr, e.dbPath, e.fake.URL))
	e.env = map[string]string{"DINGTALK_CLIENT_SECRET": dtSecret, "GRAFANA_OIDC_SECRET": rpSecret, "DINGBRIDGE_CONFIG": e.cfgPath}
	return e
}

// seed creates the database as a first `serve` would, with one user who logged in.
func (e *adminEnv) seed(t *testing.T) {
	t.Helper()
	store, err := bolt.Open(e.dbPath, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := newKeyManager(context.Background(), store, cfgpkg.Keys{}, false); err != nil {
		t.Fatal(err)
	}
	login := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	_, err = store.UpsertUser(context.Background(), e.user.UnionID, func(storage.User, bool) (storage.User, error) {
		return storage.User{
			Subject: e.user.UnionID, ConnectorID: "dingtalk", UnionID: e.user.UnionID, OpenID: e.user.OpenID,
			Nick: e.user.Nick, Email: e.user.Email, CorpID: e.user.CorpID, FirstLogin: login, LastLogin: login,
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// serve starts `dingbridge serve` and waits until it is ready.
func (e *adminEnv) serve(t *testing.T) *process {
	t.Helper()
	p := start(t, e.env, "serve")
	p.waitReady(t, e.issuer+"/readyz")
	return p
}

// cli runs one command to completion.
func (e *adminEnv) cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runCLI(t, e.env, args...)
}

// shortTempDir is a directory whose paths fit in a unix socket address.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// adminStep is one command and what it must answer, offline and online alike.
type adminStep struct {
	args      []string
	code      int
	stdout    []string // substrings
	stderr    []string
	notStdout []string
}

// The whole admin surface, every refusal included. Run against the database file
// and against a running server, it must answer the same.
func adminSteps(subject string) []adminStep {
	web, native := "https://web.example.com/cb", "com.example.app:/cb"
	add := func(id string, extra ...string) []string {
		return append([]string{"client", "add", "--name", "App " + id, "--id", id}, extra...)
	}
	return []adminStep{
		{args: []string{"client", "list"}, stdout: []string{"grafana", "static (config file)"}},
		{args: add("web", "--redirect-uri", web, "--post-logout-redirect-uri", "https://web.example.com/"),
			stdout: []string{"client id:     web", "client secret:", "cannot be shown again"}},
		{args: add("native", "--public", "--redirect-uri", native, "--redirect-uri", "http://127.0.0.1/cb"),
			stdout: []string{"public client", "client id:     native", "none"}},
		{args: add("loopback", "--redirect-uri", "http://localhost:3000/cb", "--redirect-uri", "http://[::1]/cb", "-o", "json"),
			stdout: []string{`"id": "loopback"`, `"secret": "`}},
		{args: add("web", "--redirect-uri", web), code: exitUsage, stderr: []string{`client "web" already exists`}},
		{args: add("grafana", "--redirect-uri", web), code: exitUsage, stderr: []string{"staticClients"}},
		{args: add("x1", "--redirect-uri", "/cb"), code: exitUsage, stderr: []string{"is not an absolute URL"}},
		{args: add("x2", "--redirect-uri", "http://web.example.com/cb"), code: exitUsage, stderr: []string{"must use https"}},
		{args: add("x3", "--redirect-uri", web+"#top"), code: exitUsage, stderr: []string{"has a fragment"}},
		{args: add("x4", "--redirect-uri", "https://*.example.com/cb"), code: exitUsage, stderr: []string{"wildcard"}},
		{args: add("x5", "--redirect-uri", native), code: exitUsage, stderr: []string{"allowed only for public (native) clients"}},
		{args: add("x6", "--redirect-uri", web, "--post-logout-redirect-uri", "http://web.example.com/"), code: exitUsage, stderr: []string{"post-logout redirect URI", "must use https"}},
		{args: add("x7", "--redirect-uri", web, "--id-token-lifetime", "soon"), code: exitUsage, stderr: []string{"--id-token-lifetime"}},
		{args: []string{"client", "list", "-o", "json"}, stdout: []string{`"id": "web"`, `"id": "native"`, `"static": true`}, notStdout: []string{"secret"}},
		{args: []string{"client", "show", "web"}, stdout: []string{"App web", web, "confidential", "registered"}},
		{args: []string{"client", "show", "grafana", "-o", "yaml"}, stdout: []string{"id: grafana", "static: true"}},
		{args: []string{"client", "show", "nope"}, code: exitNotFound, stderr: []string{`client "nope" not found`}},
		{args: []string{"client", "show"}, code: exitUsage, stderr: []string{"needs ID"}},
		{args: []string{"client", "update", "web", "--name", "Web 2", "--add-redirect-uri", web + "2", "--remove-redirect-uri", web, "--id-token-lifetime", "30m"},
			stdout: []string{"Web 2", web + "2", "30m0s"}, notStdout: []string{web + "\n"}},
		{args: []string{"client", "update", "web", "--add-redirect-uri", "https://*.example.com/cb"}, code: exitUsage, stderr: []string{"wildcard"}},
		{args: []string{"client", "update", "web", "--remove-redirect-uri", "https://other.example.com/cb"}, code: exitUsage, stderr: []string{"does not have it"}},
		{args: []string{"client", "update", "web"}, code: exitUsage, stderr: []string{"nothing to change"}},
		{args: []string{"client", "update", "grafana", "--name", "G"}, code: exitUsage, stderr: []string{"static client", "configuration file's staticClients"}},
		{args: []string{"client", "update", "nope", "--name", "G"}, code: exitNotFound, stderr: []string{"not found"}},
		{args: []string{"client", "rotate-secret", "grafana"}, code: exitUsage, stderr: []string{"staticClients"}},
		{args: []string{"client", "rotate-secret", "native"}, code: exitUsage, stderr: []string{"public"}},
		{args: []string{"client", "rotate-secret", "web"}, stdout: []string{"client secret:", "cannot be shown again"}},
		{args: []string{"client", "delete", "grafana"}, code: exitUsage, stderr: []string{"staticClients"}},
		{args: []string{"client", "delete", "web"}, stdout: []string{`Deleted client "web"`}},
		{args: []string{"client", "delete", "web"}, code: exitNotFound, stderr: []string{"not found"}},
		{args: []string{"client", "list", "-o", "xml"}, code: exitUsage, stderr: []string{`--output "xml"`}},
		{args: []string{"client", "frobnicate"}, code: exitUsage, stderr: []string{"unknown command"}},

		{args: []string{"keys", "list"}, stdout: []string{"KID", "RS256", "active"}},
		{args: []string{"keys", "rotate"}, stdout: []string{"signs from now on", "retired-until", "active"}},
		{args: []string{"keys", "list", "-o", "yaml"}, stdout: []string{"state: retired", "state: active", "alg: RS256"}},

		{args: []string{"users", "list"}, stdout: []string{"SUBJECT", subject, "李四", dingtalktest.DemoCorpID, "2025-03-04T05:06:07Z"}},
		{args: []string{"users", "show", subject}, stdout: []string{"unionid:", "lisi@example.com", "disabled:    no"}},
		{args: []string{"users", "show", "nobody"}, code: exitNotFound, stderr: []string{`user "nobody" not found`}},
		{args: []string{"users", "disable", subject}, stdout: []string{"Disabled user " + subject}},
		{args: []string{"users", "list", "-o", "json"}, stdout: []string{`"disabled": true`}},
		{args: []string{"claims", "--client", "grafana", "--user", subject}, stdout: []string{`"unionid": "` + subject, `"aud": [`, `"email": "lisi@example.com"`, "the user is disabled"}},
		{args: []string{"users", "enable", subject}, stdout: []string{"Enabled user " + subject}},
		{args: []string{"users", "disable", "nobody"}, code: exitNotFound, stderr: []string{"not found"}},
		{args: []string{"claims", "--client", "native", "--user", subject, "--scopes", "openid", "-o", "json"},
			stdout: []string{`"azp": "native"`, `"sub": "` + subject}, notStdout: []string{"email", "disabled"}},
		{args: []string{"claims", "--client", "nope", "--user", subject}, code: exitNotFound, stderr: []string{`client "nope" not found`}},
		{args: []string{"claims", "--client", "grafana", "--user", "nobody"}, code: exitNotFound, stderr: []string{"not found"}},
		{args: []string{"claims", "--client", "grafana"}, code: exitUsage, stderr: []string{`"user" not set`}},
	}
}

func TestAdminCommandsOfflineAndOnline(t *testing.T) {
	results := map[string][]string{}
	for _, mode := range []string{"offline", "online"} {
		t.Run(mode, func(t *testing.T) {
			e := newAdminEnv(t)
			e.seed(t)
			var srv *process
			if mode == "online" {
				srv = e.serve(t)
			}
			for _, s := range adminSteps(e.user.UnionID) {
				code, stdout, stderr := e.cli(t, s.args...)
				if code != s.code {
					t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(s.args, " "), code, s.code, stdout, stderr)
				}
				for _, want := range s.stdout {
					if !strings.Contains(stdout, want) {
						t.Errorf("%s: stdout lacks %q:\n%s", strings.Join(s.args, " "), want, stdout)
					}
				}
				for _, want := range s.stderr {
					if !strings.Contains(stderr, want) {
						t.Errorf("%s: stderr lacks %q:\n%s", strings.Join(s.args, " "), want, stderr)
					}
				}
				for _, unwanted := range s.notStdout {
					if strings.Contains(stdout, unwanted) {
						t.Errorf("%s: stdout has %q:\n%s", strings.Join(s.args, " "), unwanted, stdout)
					}
				}
				if code == exitOK && stderr != "" {
					t.Errorf("%s: succeeded but wrote to stderr:\n%s", strings.Join(s.args, " "), stderr)
				}
				results[mode] = append(results[mode], normalize(e, stdout+"\n--- stderr\n"+stderr))
			}
			if srv == nil {
				return
			}
			// Online, every command went through the socket: the server held the file.
			if logs := srv.stderr.String(); !strings.Contains(logs, "admin change") {
				t.Errorf("no admin change in the server's logs:\n%s", logs)
			}
			if code := srv.stop(t); code != 0 {
				t.Errorf("serve exited %d", code)
			}
			assertNoSecrets(t, srv.stderr.String(), rpSecret)
		})
	}
	if len(results["offline"]) != len(results["online"]) {
		return
	}
	for i, s := range adminSteps("") {
		if off, on := results["offline"][i], results["online"][i]; off != on {
			t.Errorf("%s answers differently\noffline:\n%s\nonline:\n%s", strings.Join(s.args, " "), off, on)
		}
	}
}

var (
	timestamps = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	unixTimes  = regexp.MustCompile(`"(exp|iat)": \d+`)
	randomIDs  = regexp.MustCompile(`[A-Za-z0-9_-]{43}`) // secrets and key ids
)

// normalize blanks out what differs between two runs: times, secrets, key ids, paths.
func normalize(e *adminEnv, out string) string {
	out = strings.ReplaceAll(out, e.dir, "<dir>")
	out = strings.ReplaceAll(out, e.issuer, "<issuer>")
	out = timestamps.ReplaceAllString(out, "<time>")
	out = unixTimes.ReplaceAllString(out, `"$1": <unix>`)
	return randomIDs.ReplaceAllString(out, "<random>")
}
