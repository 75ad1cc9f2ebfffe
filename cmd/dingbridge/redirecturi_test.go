package main

import (
	"fmt"
	"strings"
	"testing"
)

// `config check` (a static client's redirectURIs) and `client add --redirect-uri`
// judge a redirect URI by the same rule: a URI one accepts, the other accepts.
// config check used to accept wildcards, user info and impossible ports that
// client add refused.
func TestConfigCheckAndClientAddJudgeRedirectURIsAlike(t *testing.T) {
	e := newAdminEnv(t)
	e.seed(t)
	for i, tc := range []struct {
		uri    string
		public bool
		ok     bool
	}{
		{uri: "https://app.example.com/cb", ok: true},
		{uri: "https://app.example.com:8443/cb?tenant=1", ok: true},
		{uri: "http://127.0.0.1:3000/cb", ok: true},
		{uri: "http://[::1]/cb", ok: true},
		{uri: "com.example.app:/cb", public: true, ok: true},
		{uri: "https://x.example/*"},
		{uri: "https://*.example.com/cb"},
		{uri: "https://user:pw@x.example/cb"},
		{uri: "https://x.example:99999/cb"},
		{uri: "https://x.example:0/cb"},
		{uri: "http://x.example/cb"},
		{uri: "https://x.example/cb#frag"},
		{uri: "javascript:alert(1)", public: true},
		{uri: "com.example.app:/cb"},
		{uri: "/cb"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			client := fmt.Sprintf("  - id: app%d\n    secret: s\n    redirectURIs: ['%s']\n", i, tc.uri)
			addArgs := []string{"client", "add", "--name", "App", "--id", fmt.Sprintf("app%d", i), "--redirect-uri", tc.uri}
			if tc.public {
				client = fmt.Sprintf("  - id: app%d\n    public: true\n    redirectURIs: ['%s']\n", i, tc.uri)
				addArgs = append(addArgs, "--public")
			}
			cfg := strings.Replace(serveConfig(e.issuer, "127.0.0.1:5556", e.dbPath, e.fake.URL), "staticClients:\n", "staticClients:\n"+client, 1)
			checkCode, _, checkErr := runCLI(t, e.env, "config", "check", "--config", writeFile(t, "check.yaml", cfg))
			addCode, _, addErr := e.cli(t, addArgs...)
			if (checkCode == 0) != tc.ok || (addCode == 0) != tc.ok {
				t.Errorf("config check exit %d, client add exit %d; want both %s\nconfig check: %s\nclient add: %s",
					checkCode, addCode, map[bool]string{true: "to accept", false: "to refuse"}[tc.ok], checkErr, addErr)
			}
		})
	}
}
