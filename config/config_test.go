package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envOf is an environment holding exactly vars.
func envOf(vars map[string]string) Env {
	return func(key string) (string, bool) {
		v, ok := vars[key]
		return v, ok
	}
}

// minimal is the smallest valid config; tests append top-level keys to it.
const minimal = `issuer: https://sso.example.com
storage: {path: /var/lib/dingbridge/dingbridge.db}
connectors:
  - id: dingtalk
    clientID: app-key
    clientSecret: app-secret
`

// withConnector is minimal with the connector's extra lines (indented by four spaces).
func withConnector(lines string) string { return minimal + lines }

func mustParse(t *testing.T, yaml string, env map[string]string) *Config {
	t.Helper()
	c, err := Parse([]byte(yaml), envOf(env))
	if err != nil {
		t.Fatalf("Parse failed:\n%v\nconfig:\n%s", err, yaml)
	}
	return c
}

// parseErr parses yaml, which must fail, and returns the error text.
func parseErr(t *testing.T, yaml string, env map[string]string) string {
	t.Helper()
	_, err := Parse([]byte(yaml), envOf(env))
	if err == nil {
		t.Fatalf("Parse succeeded, want an error; config:\n%s", yaml)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error is %T, want *ValidationError: %v", err, err)
	}
	return err.Error()
}

func wantErr(t *testing.T, yaml string, env map[string]string, want ...string) {
	t.Helper()
	got := parseErr(t, yaml, env)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("error does not contain %q; got:\n%s", w, got)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMinimalConfigGetsAllDefaults(t *testing.T) {
	got := mustParse(t, minimal, nil)
	want := &Config{
		Issuer:  "https://sso.example.com",
		Listen:  "127.0.0.1:5556",
		Storage: Storage{Type: "bolt", Path: "/var/lib/dingbridge/dingbridge.db"},
		Connectors: []Connector{{
			ID:           "dingtalk",
			Type:         "dingtalk",
			Name:         "钉钉",
			Mode:         "oauth2",
			ClientID:     "app-key",
			ClientSecret: "app-secret",
			Scope:        "openid",
			Endpoints: Endpoints{
				Login:         "https://login.dingtalk.com",
				API:           "https://api.dingtalk.com",
				OAPI:          "https://oapi.dingtalk.com",
				JSAPI:         "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js",
				FrameLogin:    "https://g.alicdn.com/dingding/h5-dingtalk-login/0.21.0/ddlogin.js",
				SNSFrameLogin: "https://g.alicdn.com/dingding/dinglogin/0.0.5/ddLogin.js",
			},
			Timeout:           Duration(10 * time.Second),
			DirectoryCacheTTL: Duration(10 * time.Minute),
			LoginPage:         "redirect",
		}},
		Claims: Claims{Subject: "unionid", EmailVerified: false, Groups: "name", PreferredUsername: "pinyin"},
		Expiry: Expiry{
			IDToken:              Duration(time.Hour),
			AccessToken:          Duration(time.Hour),
			RefreshToken:         Duration(720 * time.Hour),
			RefreshTokenAbsolute: Duration(2160 * time.Hour), RefreshTokenReuseGrace: Duration(10 * time.Second),
			SessionIdle: Duration(24 * time.Hour), SessionAbsolute: Duration(168 * time.Hour),
			AuthRequest:   Duration(15 * time.Minute),
			AuthCode:      Duration(60 * time.Second),
			UpstreamState: Duration(10 * time.Minute),
			DeviceCode:    Duration(10 * time.Minute), DevicePollInterval: Duration(5 * time.Second),
		},
		Logging:           Logging{Level: "info", Format: "text"},
		RateLimit:         RateLimit{PerSecond: 10, Burst: 50},
		Keys:              Keys{Algorithm: "RS256", RotationPeriod: Duration(720 * time.Hour), PublishAhead: Duration(24 * time.Hour)},
		AdminSocket:       "/var/lib/dingbridge/dingbridge.db.sock",
		Registration:      "open",
		MembershipRecheck: Duration(15 * time.Minute),
		MembershipGrace:   Duration(24 * time.Hour),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestExplicitValuesAreKept(t *testing.T) {
	c := mustParse(t, `issuer: http://127.0.0.1:5556/
listen: ":8080"
storage: {type: bolt, path: ./db}
adminSocket: /run/dingbridge.sock
telemetry: {listen: "127.0.0.1:9464"}
connectors:
  - id: corp-1
    type: dingtalk
    name: Acme
    mode: oauth2
    clientID: app-key
    clientSecret: app-secret
    corpID: dingcorp
    scope: openid corpid
    endpoints: {login: "http://127.0.0.1:9000/", api: "http://127.0.0.1:9000/api", oapi: "http://127.0.0.1:9000/oapi/"}
    timeout: 3s
claims: {subject: userid, emailVerified: true}
staticClients:
  - id: app
    secret: s
    redirectURIs: [https://app.example.com/cb]
    postLogoutRedirectURIs: [https://app.example.com/]
expiry: {idToken: 5m, accessToken: 10m, refreshToken: 24h, authRequest: 5m, authCode: 30s, upstreamState: 2m}
logging: {level: debug, format: json}
`, nil)
	if c.Issuer != "http://127.0.0.1:5556" {
		t.Errorf("Issuer = %q, want the trailing slash stripped", c.Issuer)
	}
	if c.Listen != ":8080" || c.AdminSocket != "/run/dingbridge.sock" || c.Telemetry.Listen != "127.0.0.1:9464" {
		t.Errorf("Listen, AdminSocket, Telemetry.Listen = %q, %q, %q", c.Listen, c.AdminSocket, c.Telemetry.Listen)
	}
	k := c.Connectors[0]
	if k.Name != "Acme" || k.CorpID != "dingcorp" || k.Scope != "openid corpid" || k.Timeout != Duration(3*time.Second) {
		t.Errorf("connector = %+v", k)
	}
	wantEndpoints := Endpoints{Login: "http://127.0.0.1:9000", API: "http://127.0.0.1:9000/api", OAPI: "http://127.0.0.1:9000/oapi",
		JSAPI:      "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js",
		FrameLogin: "https://g.alicdn.com/dingding/h5-dingtalk-login/0.21.0/ddlogin.js", SNSFrameLogin: "https://g.alicdn.com/dingding/dinglogin/0.0.5/ddLogin.js"}
	if k.Endpoints != wantEndpoints {
		t.Errorf("Endpoints = %+v, want %+v (trailing slashes stripped)", k.Endpoints, wantEndpoints)
	}
	if c.Claims != (Claims{Subject: "userid", EmailVerified: true, Groups: "name", PreferredUsername: "pinyin"}) {
		t.Errorf("Claims = %+v", c.Claims)
	}
	if s := c.StaticClients[0]; s.Name != "app" || s.Secret != "s" || s.Public {
		t.Errorf("static client = %+v, want name defaulting to the id", s)
	}
	if c.Expiry.AuthCode != Duration(30*time.Second) || c.Expiry.RefreshToken != Duration(24*time.Hour) {
		t.Errorf("Expiry = %+v", c.Expiry)
	}
	if c.Logging != (Logging{Level: "debug", Format: "json"}) {
		t.Errorf("Logging = %+v", c.Logging)
	}
}

func TestEnvironmentVariablesAreExpandedInValues(t *testing.T) {
	env := map[string]string{
		"NAME":  "DingTalk",
		"OTHER": "other",
		"DOLLY": "a$OTHER${OTHER}$$b",
		"YAML":  "x\nissuer: http://evil.example.com\n",
		"EMPTY": "",
	}
	for _, tc := range []struct {
		value string // the connector's name, as written in the file
		want  string
	}{
		{`$NAME`, "DingTalk"},
		{`${NAME}`, "DingTalk"},
		{`Login with $NAME!`, "Login with DingTalk!"},
		{`${NAME}Login`, "DingTalkLogin"},
		{`"$NAME in double quotes"`, "DingTalk in double quotes"},
		{`'$NAME in single quotes'`, "DingTalk in single quotes"},
		{`$$`, "$"},
		{`$$NAME`, "$NAME"},
		{`a$$${NAME}`, "a$DingTalk"},
		{`costs 5$`, "costs 5$"},
		{`$5 or $-`, "$5 or $-"},
		{`$DOLLY`, "a$OTHER${OTHER}$$b"}, // a value from the environment is not expanded again
		{`$YAML`, "x\nissuer: http://evil.example.com\n"},
		{`$EMPTY`, "钉钉"}, // empty, so the default
	} {
		t.Run(tc.value, func(t *testing.T) {
			c := mustParse(t, withConnector("    name: "+tc.value+"\n"), env)
			if got := c.Connectors[0].Name; got != tc.want {
				t.Errorf("name: %s gave %q, want %q", tc.value, got, tc.want)
			}
			if c.Issuer != "https://sso.example.com" {
				t.Errorf("issuer changed to %q", c.Issuer)
			}
		})
	}
}

func TestKeysAreNotExpanded(t *testing.T) {
	wantErr(t, minimal+"$KEY: x\n", map[string]string{"KEY": "listen"}, "line 7: $KEY is not a known key")
}

func TestExpandedValuesTakeTheFieldsType(t *testing.T) {
	c := mustParse(t, minimal+`claims: {emailVerified: $VERIFIED}
expiry: {idToken: $TTL}
staticClients:
  - id: spa
    public: ${PUBLIC}
    redirectURIs: [$APP_URL/cb]
`, map[string]string{"VERIFIED": "true", "TTL": "90s", "PUBLIC": "true", "APP_URL": "https://app.example.com"})
	if !c.Claims.EmailVerified || c.Expiry.IDToken != Duration(90*time.Second) || !c.StaticClients[0].Public {
		t.Errorf("claims %+v, expiry %+v, client %+v", c.Claims, c.Expiry, c.StaticClients[0])
	}
	if got := c.StaticClients[0].RedirectURIs[0]; got != "https://app.example.com/cb" {
		t.Errorf("redirect URI = %q", got)
	}
}

func TestUnsetVariables(t *testing.T) {
	t.Run("a required value names the variable to set", func(t *testing.T) {
		got := parseErr(t, `issuer: https://sso.example.com
storage: {path: /db}
connectors:
  - id: dingtalk
    clientID: $DINGTALK_CLIENT_ID
    clientSecret: $DINGTALK_CLIENT_SECRET
`, nil)
		for _, want := range []string{
			"line 5: connectors[0].clientID is empty: set DINGTALK_CLIENT_ID",
			"line 6: connectors[0].clientSecret is empty: set DINGTALK_CLIENT_SECRET",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("missing %q in:\n%s", want, got)
			}
		}
	})
	t.Run("a set but empty variable is named too", func(t *testing.T) {
		wantErr(t, strings.Replace(minimal, "app-key", "${APP_KEY}", 1), map[string]string{"APP_KEY": ""},
			"connectors[0].clientID is empty: APP_KEY is set but empty")
	})
	t.Run("an optional value may stay empty", func(t *testing.T) {
		c := mustParse(t, withConnector("    corpID: $CORP_ID\n    timeout: $TIMEOUT\n"), nil)
		if c.Connectors[0].CorpID != "" || c.Connectors[0].Timeout != Duration(10*time.Second) {
			t.Errorf("connector = %+v, want no corp id and the default timeout", c.Connectors[0])
		}
	})
	t.Run("an unset variable inside other text is a problem, reported once", func(t *testing.T) {
		got := parseErr(t, strings.Replace(minimal, "https://sso.example.com", "https://${HOST}/dex", 1), nil)
		want := "line 1: issuer refers to $HOST, which is not set: set HOST, or write $$ for a literal $"
		if got != want {
			t.Errorf("got:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("an access policy that cannot be enforced is refused, not ignored", func(t *testing.T) {
		wantErr(t, withConnector("    mode: sns\n    allowedCorpIDs: [dingcorp]\n"), nil, "connectors[0].allowedCorpIDs cannot be enforced in sns mode")
		wantErr(t, withConnector("    allowedCorpIDs: [dingA, \"\"]\n"), nil, "connectors[0].allowedCorpIDs[1] is empty")
		wantErr(t, withConnector("    requireMembership: true\n"), nil, "connectors[0].requireMembership needs corpID")
		wantErr(t, withConnector("    corpID: dingA\n    allowedCorpIDs: [dingB]\n"), nil, "connectors[0].allowedCorpIDs does not contain corpID dingA")
		wantErr(t, withConnector("    mode: sns\n    corpID: dingA\n"), nil, "connectors[0].corpAppKey is empty: a legacy sns app cannot read corpID's directory")
		wantErr(t, withConnector("    corpID: dingA\n    corpAppKey: k\n"), nil, "connectors[0].corpAppKey and corpAppSecret go together")
	})
	t.Run("corp settings and policy are kept", func(t *testing.T) {
		c := mustParse(t, withConnector("    mode: sns\n    corpID: dingA\n    corpAppKey: k\n    corpAppSecret: $CORP_SECRET\n    requireMembership: true\n    directoryCacheTTL: 1m\n"),
			map[string]string{"CORP_SECRET": "corp-secret"})
		k := c.Connectors[0]
		if k.Mode != "sns" || k.CorpAppKey != "k" || k.CorpAppSecret != "corp-secret" || !k.RequireMembership || k.DirectoryCacheTTL != Duration(time.Minute) {
			t.Errorf("connector = %+v", k)
		}
	})
	t.Run("scope is the oauth2 login's: defaulted by mode and corpID, refused in sns mode", func(t *testing.T) {
		for _, tt := range []struct{ lines, want string }{
			{"", "openid"},
			{"    corpID: dingA\n", "openid corpid"},
			{"    mode: sns\n", ""},
			{"    mode: sns\n    corpID: dingA\n    corpAppKey: k\n    corpAppSecret: s\n", ""},
		} {
			if got := mustParse(t, withConnector(tt.lines), nil).Connectors[0].Scope; got != tt.want {
				t.Errorf("%q: scope %q, want %q", tt.lines, got, tt.want)
			}
		}
		wantErr(t, withConnector("    mode: sns\n    scope: openid\n"), nil, "connectors[0].scope applies to mode oauth2 only: remove it")
		wantErr(t, withConnector("    scope: corpid\n"), nil, `connectors[0].scope "corpid" must contain openid`)
		wantErr(t, withConnector("    corpID: dingA\n    scope: openid\n"), nil, `connectors[0].scope "openid" lacks corpid, which corpID needs`)
	})
	t.Run("a malformed reference", func(t *testing.T) {
		wantErr(t, withConnector("    name: ${NAME\n"), nil, "line 7: connectors[0].name has a ${ that does not enclose a variable name and }")
		wantErr(t, withConnector("    name: ${NOT A NAME}\n"), nil, "line 7: connectors[0].name has a ${ that does not enclose")
	})
	t.Run("a nil Env is an empty environment", func(t *testing.T) {
		_, err := Parse([]byte(strings.Replace(minimal, "app-secret", "$S", 1)), nil)
		if err == nil || !strings.Contains(err.Error(), "connectors[0].clientSecret is empty: set S") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestStaticClientSecrets(t *testing.T) {
	file := writeFile(t, "grafana-secret", "from-file\n")
	env := map[string]string{"GRAFANA_OIDC_SECRET": "from-env", "EMPTY": ""}
	client := func(lines string) string {
		return minimal + "staticClients:\n  - id: grafana\n    redirectURIs: [https://grafana.example.com/cb]\n" + lines
	}
	for _, tc := range []struct {
		name, lines string
		want        string // the resolved secret, when wantErr is empty
		wantErr     string
	}{
		{name: "inline", lines: "    secret: inline\n", want: "inline"},
		{name: "inline from a variable", lines: "    secret: $GRAFANA_OIDC_SECRET\n", want: "from-env"},
		{name: "secretEnv", lines: "    secretEnv: GRAFANA_OIDC_SECRET\n", want: "from-env"},
		{name: "secretFile, trailing newline trimmed", lines: "    secretFile: " + file + "\n", want: "from-file"},
		{name: "public client has none", lines: "    public: true\n", want: ""},
		{name: "secretEnv names an unset variable", lines: "    secretEnv: NOPE\n",
			wantErr: "line 10: staticClients[0].secretEnv names NOPE, which is not set: set NOPE to the client secret"},
		{name: "secretEnv names an empty variable", lines: "    secretEnv: EMPTY\n",
			wantErr: "staticClients[0].secretEnv names EMPTY, which is empty"},
		{name: "two sources", lines: "    secret: inline\n    secretFile: " + file + "\n",
			wantErr: "line 8: staticClients[0] sets secret and secretFile: keep one"},
		{name: "three sources", lines: "    secret: inline\n    secretEnv: GRAFANA_OIDC_SECRET\n    secretFile: " + file + "\n",
			wantErr: "staticClients[0] sets secret, secretEnv and secretFile: keep one"},
		{name: "public client with a secret", lines: "    public: true\n    secretEnv: GRAFANA_OIDC_SECRET\n",
			wantErr: "staticClients[0] is public but sets secretEnv: public clients cannot keep a secret and must have none; remove secretEnv, or set public: false"},
		{name: "confidential client without one", lines: "",
			wantErr: "staticClients[0] has no secret: set secret, secretEnv or secretFile, or set public: true for an app that cannot keep one"},
		{name: "secret from an unset variable", lines: "    secret: $GRAFANA_SECRET\n",
			wantErr: "line 10: staticClients[0].secret is empty: set GRAFANA_SECRET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantErr != "" {
				wantErr(t, client(tc.lines), env, tc.wantErr)
				return
			}
			c := mustParse(t, client(tc.lines), env)
			if got := c.StaticClients[0].Secret; got != tc.want {
				t.Errorf("Secret = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConnectorSecretFile(t *testing.T) {
	dir := t.TempDir()
	noSecret := strings.Replace(minimal, "    clientSecret: app-secret\n", "", 1)
	t.Run("read and trimmed", func(t *testing.T) {
		path := writeFile(t, "dingtalk", "app-secret-from-file \r\n\n")
		c := mustParse(t, noSecret+"    clientSecretFile: "+path+"\n", nil)
		if got := c.Connectors[0].ClientSecret; got != "app-secret-from-file" {
			t.Errorf("ClientSecret = %q", got)
		}
	})
	t.Run("path from a variable", func(t *testing.T) {
		path := writeFile(t, "dingtalk", "s")
		c := mustParse(t, noSecret+"    clientSecretFile: ${CREDENTIALS_DIRECTORY}/dingtalk\n",
			map[string]string{"CREDENTIALS_DIRECTORY": filepath.Dir(path)})
		if got := c.Connectors[0].ClientSecret; got != "s" {
			t.Errorf("ClientSecret = %q", got)
		}
	})
	empty := writeFile(t, "empty", " \n")
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing file", filepath.Join(dir, "nope"), `connectors[0].clientSecretFile: cannot read "` + filepath.Join(dir, "nope") + `": no such file or directory`},
		{"a directory", dir, `connectors[0].clientSecretFile: cannot read "` + dir + `": is a directory`},
		{"empty file", empty, `connectors[0].clientSecretFile: "` + empty + `" is empty: put the secret in it`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, noSecret+"    clientSecretFile: "+tc.path+"\n", nil, tc.want)
		})
	}
	t.Run("both clientSecret and clientSecretFile", func(t *testing.T) {
		wantErr(t, withConnector("    clientSecretFile: /run/secrets/x\n"), nil,
			"connectors[0] sets clientSecret and clientSecretFile: keep one")
	})
	t.Run("neither", func(t *testing.T) {
		wantErr(t, noSecret, nil,
			"connectors[0].clientSecret is empty: set it to the DingTalk app's Client Secret (AppSecret), or name a file holding it in clientSecretFile")
	})
	t.Run("file path from an unset variable", func(t *testing.T) {
		wantErr(t, noSecret+"    clientSecretFile: $SECRET_PATH\n", nil, "connectors[0].clientSecretFile is empty: set SECRET_PATH")
	})
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		// issuer
		{"issuer missing", strings.Replace(minimal, "issuer: https://sso.example.com\n", "", 1),
			"issuer is empty: set it to the URL clients use to reach dingbridge, e.g. https://sso.example.com"},
		{"issuer not absolute", strings.Replace(minimal, "https://sso.example.com", "sso.example.com", 1),
			`line 1: issuer "sso.example.com" is not an absolute URL: write it like https://sso.example.com`},
		{"issuer over http", strings.Replace(minimal, "https://", "http://", 1),
			`issuer "http://sso.example.com" must use https: http is allowed only for 127.0.0.1, [::1] and localhost`},
		{"issuer other scheme", strings.Replace(minimal, "https://", "ftp://", 1), `issuer "ftp://sso.example.com" must be an https URL`},
		{"issuer with query", strings.Replace(minimal, "example.com", "example.com/?a=b", 1), `issuer "https://sso.example.com/?a=b" must not have a query`},
		{"issuer with fragment", strings.Replace(minimal, "example.com", "example.com#x", 1), `issuer "https://sso.example.com#x" must not have a fragment`},
		{"issuer with user", strings.Replace(minimal, "https://", "https://me@", 1), `must not contain a user name or password`},
		{"issuer with two trailing slashes", strings.Replace(minimal, "example.com", "example.com//", 1), `issuer "https://sso.example.com/" must not end with /`},
		// listen, storage, admin socket
		{"listen without port", minimal + "listen: 127.0.0.1\n", `listen "127.0.0.1" is not host:port: write it like 127.0.0.1:5556, or :5556 for every interface`},
		{"listen with a bad port", minimal + "listen: :99999\n", `listen ":99999" is not host:port`},
		{"storage type", strings.Replace(minimal, "{path:", "{type: sqlite, path:", 1), `storage.type "sqlite" is not supported: use bolt (one file, one process) or postgres (several replicas)`},
		{"storage path", strings.Replace(minimal, "storage: {path: /var/lib/dingbridge/dingbridge.db}", "storage: {type: bolt}", 1),
			"storage.path is empty: set it to the database file, e.g. /var/lib/dingbridge/dingbridge.db"},
		{"admin socket too long", minimal + "adminSocket: /" + strings.Repeat("a", 110) + "\n", "is longer than a unix socket path may be"},
		{"telemetry listen without port", minimal + "telemetry: {listen: 127.0.0.1}\n", `telemetry.listen "127.0.0.1" is not host:port: write it like 127.0.0.1:9464`},
		{"telemetry on the public port", minimal + "listen: 0.0.0.0:5556\ntelemetry: {listen: 127.0.0.1:5556}\n",
			`telemetry.listen "127.0.0.1:5556" is the public listen address's port: metrics must not be served to everyone`},
		// connectors
		{"no connectors", "issuer: https://sso.example.com\nstorage: {path: /db}\n", "connectors is empty: add the DingTalk app people log in with"},
		{"connector id missing", strings.Replace(minimal, "  - id: dingtalk\n", "  - type: dingtalk\n", 1), "connectors[0].id is empty: set it to a short name such as dingtalk"},
		{"connector id with capitals", strings.Replace(minimal, "id: dingtalk", "id: DingTalk", 1), `line 4: connectors[0].id "DingTalk" may only contain a-z, 0-9 and -`},
		{"connector id twice", minimal + "  - {id: dingtalk, clientID: b, clientSecret: c}\n", `line 7: connectors[1].id "dingtalk" is used twice`},
		{"connector type", withConnector("    type: github\n"), `connectors[0].type "github" is not supported: use dingtalk`},
		{"connector mode inapp", withConnector("    mode: inapp\n"), `connectors[0].mode inapp does not exist: the in-app login (免登) needs no mode; set corpID`},
		{"connector mode unknown", withConnector("    mode: qr\n"), `connectors[0].mode "qr" is unknown: use oauth2 (the default) or sns`},
		{"connector client id", strings.Replace(minimal, "    clientID: app-key\n", "", 1),
			"connectors[0].clientID is empty: set it to the DingTalk app's Client ID (AppKey)"},
		{"connector endpoint", withConnector("    endpoints: {api: api.dingtalk.com}\n"),
			`connectors[0].endpoints.api "api.dingtalk.com" is not an absolute http(s) URL without query: write it like https://api.dingtalk.com`},
		{"connector timeout zero", withConnector("    timeout: 0s\n"), "connectors[0].timeout 0s must be greater than 0"},
		{"connector timeout too long", withConnector("    timeout: 61s\n"), "connectors[0].timeout 1m1s is too long: at most 1m0s"},
		// claims
		{"subject", minimal + "claims: {subject: email}\n", `claims.subject "email" is unknown: use unionid (the default), openid or userid`},
		{"several connectors need unionid subjects", minimal + "  - {id: second, clientID: b, clientSecret: s}\nclaims: {subject: userid}\n",
			"claims.subject userid is only unique within one DingTalk app or organisation: with several connectors use unionid"},
		{"groups format", minimal + "claims: {groups: names}\n", `claims.groups "names" is unknown: use name (the default), id or path`},
		{"preferred username", minimal + "claims: {preferredUsername: email}\n", `claims.preferredUsername "email" is unknown: use pinyin (the default; 张三 → zhangsan), nick, userid or email-local`},
		// who may log in
		{"login page", withConnector("    loginPage: frame\n"), `connectors[0].loginPage "frame" is unknown: use redirect (the default: DingTalk's own page) or embedded`},
		{"branding logo", minimal + "branding: {logoURL: http://cdn.example.com/logo.png}\n", `branding.logoURL "http://cdn.example.com/logo.png" is not an https URL`},
		{"registration", minimal + "registration: invite\n", `registration "invite" is unknown: use open (the default: anyone DingTalk vouches for) or closed`},
		{"membership grace shorter than the recheck", minimal + "membershipRecheck: 1h\nmembershipGrace: 30m\n",
			"membershipGrace 30m0s is shorter than membershipRecheck 1h0m0s"},
		{"membership recheck too long", minimal + "membershipRecheck: 48h\n", "membershipRecheck 48h0m0s is too long: at most 24h0m0s"},
		// static clients
		{"client id missing", minimal + "staticClients: [{secret: s, redirectURIs: [https://a.example.com/cb]}]\n",
			"staticClients[0].id is empty: set it to the client_id the app sends"},
		{"client id twice", minimal + "staticClients:\n  - {id: grafana, secret: s, redirectURIs: [https://a.example.com/cb]}\n  - {id: grafana, secret: t, redirectURIs: [https://a.example.com/cb]}\n",
			`line 9: staticClients[1].id "grafana" is used twice`},
		{"no redirect URIs", minimal + "staticClients: [{id: a, secret: s}]\n", "staticClients[0].redirectURIs is empty: list the URLs"},
		{"unknown grant", minimal + "staticClients: [{id: a, secret: s, redirectURIs: [https://a.example.com/cb], grantTypes: [password]}]\n",
			`staticClients[0].grantTypes[0] "password" is not supported: use authorization_code, refresh_token or device_code`},
		{"device and code grants still need redirect URIs", minimal + "staticClients: [{id: a, public: true, grantTypes: [device_code, authorization_code]}]\n",
			"staticClients[0].redirectURIs is empty"},
		{"poll interval too long", minimal + "expiry: {devicePollInterval: 2m}\n", "expiry.devicePollInterval 2m0s is too long: at most 1m0s"},
		// expiry, logging
		{"auth code too long", minimal + "expiry: {authCode: 11m}\n", "expiry.authCode 11m0s is too long: at most 10m0s"},
		{"expiry zero", minimal + "expiry: {refreshToken: 0s}\n", "expiry.refreshToken 0s must be greater than 0: remove it to get the default"},
		{"expiry negative", minimal + "expiry: {idToken: -1h}\n", "expiry.idToken -1h0m0s must be greater than 0"},
		{"log level", minimal + "logging: {level: verbose}\n", `logging.level "verbose" is unknown: use debug, info, warn or error`},
		{"log format", minimal + "logging: {format: xml}\n", `logging.format "xml" is unknown: use text or json`},
		// the file's shape
		{"key set twice", minimal + "storage: bolt\n", "line 7: storage is set twice (first on line 2): keep one"},
		{"checks go on after a key set twice", minimal + "connectors: []\nlogging: {level: loud}\n", `logging.level "loud" is unknown`},
		{"the first of a key set twice is checked", strings.Replace(minimal, "app-key", "''", 1) + "connectors: []\n", "connectors[0].clientID is empty"},
		{"mapping expected", strings.Replace(minimal, "storage: {path: /var/lib/dingbridge/dingbridge.db}", "storage: bolt", 1),
			"line 2: storage must be a mapping (key: value lines), not a single value"},
		{"list expected", withConnector("    allowedCorpIDs: dingcorp\n"), "line 7: connectors[0].allowedCorpIDs must be a list, not a single value"},
		{"bool expected", minimal + "claims: {emailVerified: yes}\n", `line 7: claims.emailVerified "yes" must be true or false`},
		{"not YAML", "issuer: [\n", "line 1: the config is not valid YAML: did not find expected node content"},
		{"alias to nothing", minimal + "listen: *port\n", "the config is not valid YAML: unknown anchor referenced: quote values that start with * or &"},
		{"not a mapping", "- issuer\n", "line 1: the config must be a mapping (key: value lines), not a list"},
		{"two documents", minimal + "---\nissuer: x\n", "line 7: the config holds more than one YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.yaml, nil, tc.want)
		})
	}
}

func TestValidIssuers(t *testing.T) {
	for in, want := range map[string]string{
		"https://sso.example.com/":      "https://sso.example.com",
		"https://example.com/dex":       "https://example.com/dex",
		"https://example.com:8443/sso/": "https://example.com:8443/sso",
		"http://127.0.0.1:5556":         "http://127.0.0.1:5556",
		"http://localhost:5556/":        "http://localhost:5556",
		`"http://[::1]:5556"`:           "http://[::1]:5556",
	} {
		c := mustParse(t, strings.Replace(minimal, "https://sso.example.com", in, 1), nil)
		if c.Issuer != want {
			t.Errorf("issuer: %s gave %q, want %q", in, c.Issuer, want)
		}
	}
}

func TestRedirectURIs(t *testing.T) {
	for _, tc := range []struct {
		uri    string
		public bool
		want   string // "" means valid
	}{
		{uri: "https://grafana.example.com/login/generic_oauth"},
		{uri: "https://grafana.example.com/cb?tenant=1"},
		{uri: "http://127.0.0.1:3000/cb"},
		{uri: "http://localhost/cb"},
		{uri: "http://[::1]:8000/cb"},
		{uri: "com.example.app:/cb", public: true},
		{uri: "grafana.example.com/cb", want: `staticClients[0].redirectURIs[0] "grafana.example.com/cb" is not an absolute URL`},
		{uri: "/cb", want: `"/cb" is not an absolute URL`},
		{uri: "https://app.example.com/cb#x", want: `"https://app.example.com/cb#x" has a fragment`},
		{uri: "http://app.example.com/cb", want: `"http://app.example.com/cb" must use https: http is allowed only for 127.0.0.1, [::1] and localhost`},
		{uri: "https:///cb", want: `"https:///cb" has no host`},
		{uri: "com.example.app:/cb", want: `"com.example.app:/cb" uses the custom scheme com.example.app, allowed only for public (native) clients`},
		{uri: "com.example.app:", public: true, want: `"com.example.app:" has nothing after the scheme`},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			secret := "secret: s"
			if tc.public {
				secret = "public: true"
			}
			yaml := minimal + "staticClients:\n  - id: app\n    " + secret + "\n    redirectURIs: ['" + tc.uri + "']\n"
			if tc.want == "" {
				mustParse(t, yaml, nil)
				return
			}
			wantErr(t, yaml, nil, tc.want)
		})
	}
	t.Run("post-logout URIs are checked too", func(t *testing.T) {
		wantErr(t, minimal+"staticClients: [{id: a, secret: s, redirectURIs: [https://a.example.com/cb], postLogoutRedirectURIs: [a.example.com]}]\n",
			nil, `staticClients[0].postLogoutRedirectURIs[0] "a.example.com" is not an absolute URL`)
	})
}

func TestDurations(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
		err   string
	}{
		{value: "90s", want: 90 * time.Second},
		{value: "1h30m", want: 90 * time.Minute},
		{value: "250ms", want: 250 * time.Millisecond},
		{value: `"2h"`, want: 2 * time.Hour},
		{value: "", want: time.Hour}, // empty: the default
		{value: "1 hour", err: `line 8: expiry.idToken "1 hour" is not a duration: write it like 90s, 15m or 1h30m`},
		{value: "60", err: `expiry.idToken "60" is not a duration`},
		{value: "[1h]", err: "line 8: expiry.idToken must be a single value, not a list"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			yaml := minimal + "expiry:\n  idToken: " + tc.value + "\n"
			if tc.err != "" {
				wantErr(t, yaml, nil, tc.err)
				return
			}
			if got := mustParse(t, yaml, nil).Expiry.IDToken; got != Duration(tc.want) {
				t.Errorf("idToken = %v, want %v", got, tc.want)
			}
		})
	}
	if got := Duration(90 * time.Minute).String(); got != "1h30m0s" {
		t.Errorf("String() = %q", got)
	}
}

func TestUnknownKeysAreReportedWithTheirLine(t *testing.T) {
	got := parseErr(t, `issuer: https://sso.example.com
storage: {path: /db}
connectors:
  - id: dingtalk
    clientID: app-key
    clientSecret: app-secret
    clientSecert: typo
    colour: blue
logging: {level: info, fromat: json}
`, nil)
	for _, want := range []string{
		"line 7: connectors[0].clientSecert is not a known key; did you mean clientSecret?",
		"line 8: connectors[0].colour is not a known key; the keys here are allowedCorpIDs, clientID, clientSecret, clientSecretFile, corpAppKey, corpAppSecret, corpAppSecretFile, corpID, directoryCacheTTL, endpoints, id, loginPage, mode, name, requireMembership, scope, timeout, type",
		"line 9: logging.fromat is not a known key; did you mean format?",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	wantErr(t, strings.Replace(minimal, "clientID", "clientId", 1), nil, "line 5: connectors[0].clientId is not a known key; did you mean clientID?")
}

func TestSeveralProblemsAreReportedTogether(t *testing.T) {
	_, err := Parse([]byte(`issuer: http://sso.example.com
storage: {type: bolt}
connectors:
  - id: dingtalk
    clientSecret: $DINGTALK_CLIENT_SECRET
staticClients:
  - id: grafana
    secretEnv: GRAFANA_OIDC_SECRET
    redirectURIs: [grafana.example.com/cb]
logging: {level: loud}
`), envOf(map[string]string{"GRAFANA_OIDC_SECRET": "x"}))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a *ValidationError", err)
	}
	want := []string{
		`line 1: issuer "http://sso.example.com" must use https: http is allowed only for 127.0.0.1, [::1] and localhost`,
		"storage.path is empty: set it to the database file, e.g. /var/lib/dingbridge/dingbridge.db",
		"connectors[0].clientID is empty: set it to the DingTalk app's Client ID (AppKey)",
		"line 5: connectors[0].clientSecret is empty: set DINGTALK_CLIENT_SECRET",
		`line 9: staticClients[0].redirectURIs[0] "grafana.example.com/cb" is not an absolute URL: write it with its scheme, e.g. https://app.example.com/callback`,
		`line 10: logging.level "loud" is unknown: use debug, info, warn or error`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if ve.Problems[3].Key != "connectors[0].clientSecret" || ve.Problems[3].Line != 5 {
		t.Errorf("problem 3 = %+v", ve.Problems[3])
	}
}

// Errors end up in logs and terminals; whatever is wrong, they must not carry
// a secret, however it was given.
func TestErrorsNeverContainSecrets(t *testing.T) {
	const (
		inline    = "inline-S3CRET-a1"
		fromEnv   = "env-S3CRET-b2"
		fromFile  = "file-S3CRET-c3"
		withVar   = "Tr0ub4dor$Zebra9" // a literal secret that happens to contain a $
		connector = "connector-S3CRET-d4"
	)
	secrets := []string{inline, fromEnv, fromFile, connector, "S3CRET", "Zebra9", "Tr0ub4dor"}
	file := writeFile(t, "secret", fromFile+"\n")
	env := map[string]string{"CLIENT_SECRET": fromEnv, "DINGTALK_CLIENT_SECRET": connector}
	broken := "listen: nonsense\n" // so every config fails
	for name, yaml := range map[string]string{
		"two sources": minimal + broken + "staticClients:\n  - id: a\n    secret: " + inline + "\n    secretFile: " + file +
			"\n    secretEnv: CLIENT_SECRET\n    redirectURIs: [https://a.example.com/cb]\n",
		"public with secrets": minimal + broken + "staticClients:\n  - id: a\n    public: true\n    secret: " + inline +
			"\n    redirectURIs: [https://a.example.com/cb]\n  - id: b\n    public: true\n    secretEnv: CLIENT_SECRET\n    redirectURIs: [x]\n",
		"connector with both": strings.Replace(minimal, "app-secret", "$DINGTALK_CLIENT_SECRET\n    clientSecretFile: "+file, 1) + broken,
		"connector inline":    strings.Replace(minimal, "app-secret", connector, 1) + broken,
		"literal secret with a $ and an unset variable": minimal + broken +
			"staticClients:\n  - id: a\n    secret: " + withVar + "\n    redirectURIs: [https://a.example.com/cb]\n",
		"unterminated ${ in a secret": strings.Replace(minimal, "app-secret", "'S3CRET${Zebra9'", 1) + broken,
		"secret in a boolean":         minimal + broken + "claims: {emailVerified: $CLIENT_SECRET}\n",
		"secret in a duration":        minimal + broken + "expiry: {idToken: $CLIENT_SECRET}\n",
		"secret in a wrong key":       minimal + broken + "staticClients:\n  - id: a\n    secrte: " + inline + "\n",
		"broken YAML around a secret": minimal + "staticClients:\n  - id: a\n    secret: \"" + inline + "\n",
		"secret read as a YAML alias": minimal + "staticClients:\n  - id: a\n    secret: *" + inline + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			got := parseErr(t, yaml, env)
			for _, s := range secrets {
				if strings.Contains(got, s) {
					t.Errorf("error contains secret %q:\n%s", s, got)
				}
			}
		})
	}
}

func TestAliasesAreExpandedOnce(t *testing.T) {
	c := mustParse(t, minimal+`staticClients:
  - id: a
    secret: &s "p$$ss"
    redirectURIs: &uris [https://a.example.com/cb]
  - id: b
    secret: *s
    redirectURIs: *uris
`, nil)
	for _, sc := range c.StaticClients {
		if sc.Secret != "p$ss" || len(sc.RedirectURIs) != 1 {
			t.Errorf("client %s = %+v", sc.ID, sc)
		}
	}
}

func TestMergeKeys(t *testing.T) {
	c := mustParse(t, minimal+`staticClients:
  - &base
    id: a
    secret: s
    redirectURIs: [https://a.example.com/cb]
  - <<: *base
    id: b
`, nil)
	if b := c.StaticClients[1]; b.ID != "b" || b.Secret != "s" || len(b.RedirectURIs) != 1 {
		t.Errorf("merged client = %+v, want a's values with its own id", b)
	}
}

func TestLoad(t *testing.T) {
	t.Run("missing file names the path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "dingbridge.yaml")
		_, err := Load(path, nil)
		if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want one naming %s", err, path)
		}
	})
	t.Run("valid file", func(t *testing.T) {
		c, err := Load(writeFile(t, "dingbridge.yaml", minimal), nil)
		if err != nil || c.Issuer != "https://sso.example.com" {
			t.Errorf("Load = %+v, %v", c, err)
		}
	})
	t.Run("problems are prefixed with file and line", func(t *testing.T) {
		path := writeFile(t, "dingbridge.yaml", minimal+"listen: nowhere\nlogging: {level: loud}\n")
		_, err := Load(path, nil)
		want := path + `:7: listen "nowhere" is not host:port: write it like 127.0.0.1:5556, or :5556 for every interface` + "\n" +
			path + `:8: logging.level "loud" is unknown: use debug, info, warn or error`
		if err == nil || err.Error() != want {
			t.Errorf("got:\n%v\nwant:\n%s", err, want)
		}
	})
}

func TestExampleIsValid(t *testing.T) {
	c, err := Parse([]byte(Example()), envOf(map[string]string{
		"DINGTALK_CLIENT_ID":     "dingappkey",
		"DINGTALK_CLIENT_SECRET": "app-secret",
		"GRAFANA_OIDC_SECRET":    "grafana-secret",
	}))
	if err != nil {
		t.Fatalf("Example does not parse:\n%v", err)
	}
	if c.Connectors[0].ClientSecret != "app-secret" || c.StaticClients[0].Secret != "grafana-secret" {
		t.Errorf("secrets not resolved: %+v", c)
	}
	t.Run("and says what is missing without the environment", func(t *testing.T) {
		wantErr(t, Example(), nil,
			"connectors[0].clientID is empty: set DINGTALK_CLIENT_ID",
			"connectors[0].clientSecret is empty: set DINGTALK_CLIENT_SECRET",
			"staticClients[0].secretEnv names GRAFANA_OIDC_SECRET, which is not set")
	})
}

func TestRateLimit(t *testing.T) {
	c := mustParse(t, minimal+"rateLimit: {perSecond: 0.5, burst: 3}\ntrustedProxies: [10.0.0.0/8, 192.168.1.1]\n", nil)
	if c.RateLimit.PerSecond != 0.5 || c.RateLimit.Burst != 3 || len(c.TrustedProxies) != 2 {
		t.Errorf("rateLimit = %+v, trustedProxies = %v", c.RateLimit, c.TrustedProxies)
	}
	if off := mustParse(t, minimal+"rateLimit: {perSecond: 0}\n", nil); off.RateLimit.PerSecond != 0 {
		t.Errorf("perSecond: 0 should turn limiting off, got %v", off.RateLimit.PerSecond)
	}
	wantErr(t, minimal+"rateLimit: {perSecond: -1}\n", nil, "rateLimit.perSecond -1 is negative")
	wantErr(t, minimal+"rateLimit: {burst: many}\n", nil, `rateLimit.burst "many" must be a number`)
	wantErr(t, minimal+"trustedProxies: [proxy.internal]\n", nil, `trustedProxies[0] "proxy.internal" is not an IP address or CIDR`)
}

func TestKeys(t *testing.T) {
	c := mustParse(t, minimal+"keys: {algorithm: ES256, rotationPeriod: 168h, publishAhead: 12h}\n", nil)
	if c.Keys.Algorithm != "ES256" || c.Keys.RotationPeriod != Duration(168*time.Hour) || c.Keys.PublishAhead != Duration(12*time.Hour) {
		t.Errorf("keys = %+v", c.Keys)
	}
	wantErr(t, minimal+"keys: {algorithm: HS256}\n", nil, `keys.algorithm "HS256" is not supported`)
	wantErr(t, minimal+"keys: {rotationPeriod: 12h, publishAhead: 24h}\n", nil, "keys.publishAhead 24h0m0s must be shorter than keys.rotationPeriod 12h0m0s")
}

func TestBackchannelLogoutURI(t *testing.T) {
	c := mustParse(t, minimal+`staticClients:
  - id: app
    secret: s
    redirectURIs: [https://app.example.com/cb]
    backchannelLogoutURI: https://app.example.com/backchannel
`, nil)
	if c.StaticClients[0].BackchannelLogoutURI != "https://app.example.com/backchannel" {
		t.Errorf("backchannelLogoutURI = %q", c.StaticClients[0].BackchannelLogoutURI)
	}
	wantErr(t, minimal+`staticClients:
  - id: app
    secret: s
    redirectURIs: [https://app.example.com/cb]
    backchannelLogoutURI: http://app.example.com/backchannel
`, nil, "staticClients[0].backchannelLogoutURI")
}

// withStorage is minimal with its storage line replaced.
func withStorage(storage string) string {
	return strings.Replace(minimal, "storage: {path: /var/lib/dingbridge/dingbridge.db}", "storage: "+storage, 1)
}

func TestPostgresStorage(t *testing.T) {
	const dsn = "postgres://dingbridge:pa55word@db.example.com:5432/dingbridge?sslmode=verify-full"
	env := map[string]string{"DINGBRIDGE_DB_DSN": dsn}
	c := mustParse(t, withStorage("{type: postgres, dsn: $DINGBRIDGE_DB_DSN}"), env)
	want := Storage{Type: "postgres", DSN: dsn, MaxConns: 20}
	if c.Storage != want {
		t.Errorf("storage = %+v, want %+v", c.Storage, want)
	}
	if c.AdminSocket != "" {
		t.Errorf("adminSocket defaults to %q for postgres, want none (the CLI opens the database)", c.AdminSocket)
	}

	file := writeFile(t, "dsn", "host=/run/postgresql user=dingbridge dbname=dingbridge\n")
	c = mustParse(t, withStorage("{type: postgres, dsnFile: "+file+", maxConns: 5}"), nil)
	want = Storage{Type: "postgres", DSN: "host=/run/postgresql user=dingbridge dbname=dingbridge", DSNFile: file, MaxConns: 5}
	if c.Storage != want {
		t.Errorf("storage from dsnFile = %+v, want %+v", c.Storage, want)
	}
}

func TestPostgresStorageProblems(t *testing.T) {
	for _, tc := range []struct {
		name, storage, want string
	}{
		{"no dsn", "{type: postgres}", "storage.dsn is empty: set it to the PostgreSQL connection string, e.g. $DINGBRIDGE_DB_DSN"},
		{"dsn variable unset", "{type: postgres, dsn: $DINGBRIDGE_DB_DSN}", "storage.dsn is empty: set DINGBRIDGE_DB_DSN"},
		{"dsn and dsnFile", "{type: postgres, dsn: host=db, dsnFile: /run/secrets/dsn}", "storage sets dsn and dsnFile: keep one"},
		{"unreadable dsnFile", "{type: postgres, dsnFile: /nonexistent/dsn}", `storage.dsnFile: cannot read "/nonexistent/dsn"`},
		{"not a dsn", "{type: postgres, dsn: dingbridge}", "storage.dsn is not a PostgreSQL connection string: write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE"},
		{"url without host", "{type: postgres, dsn: 'postgres:///dingbridge'}", "storage.dsn is not a PostgreSQL connection string"},
		{"path with postgres", "{type: postgres, dsn: host=db, path: /db}", "storage.path is for type bolt: remove it (postgres takes storage.dsn)"},
		{"dsn with bolt", "{path: /db, dsn: host=db}", "storage.dsn is for type postgres: remove it, or set storage.type: postgres"},
		{"maxConns with bolt", "{path: /db, maxConns: 4}", "storage.maxConns is for type postgres"},
		{"maxConns zero", "{type: postgres, dsn: host=db, maxConns: 0}", "storage.maxConns 0 is out of range: use 1 to 1000 (default 20)"},
		{"maxConns too many", "{type: postgres, dsn: host=db, maxConns: 5000}", "storage.maxConns 5000 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, withStorage(tc.storage), nil, tc.want)
		})
	}
}

// The DSN carries the database password: no message may repeat it, whatever
// else is wrong with the file.
func TestPostgresDSNNeverInErrors(t *testing.T) {
	const password = "pa55-S3CRET-word"
	broken := "listen: nonsense\n"
	for name, storage := range map[string]string{
		"valid dsn":          "{type: postgres, dsn: 'postgres://u:" + password + "@db/x'}",
		"malformed dsn":      "{type: postgres, dsn: 'u:" + password + "'}",
		"dsn with bolt":      "{path: /db, dsn: 'password=" + password + " host=db'}",
		"dsn and dsnFile":    "{type: postgres, dsn: 'password=" + password + "', dsnFile: /x}",
		"dsn in a wrong key": "{type: postgres, dsm: 'password=" + password + "'}",
		"dsn with a $":       "{type: postgres, dsn: 'postgres://u:" + password + "$X@db/x'}",
	} {
		t.Run(name, func(t *testing.T) {
			got := parseErr(t, withStorage(storage)+broken, nil)
			if strings.Contains(got, password) || strings.Contains(got, "S3CRET") {
				t.Errorf("error contains the password:\n%s", got)
			}
		})
	}
}
