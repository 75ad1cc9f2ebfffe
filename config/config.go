// Package config reads dingbridge's YAML file into plain values.
//
// The file is read once at start: Parse decodes it, expands $VAR and ${VAR} from
// the environment, reads secret files, fills in defaults and validates everything,
// reporting every problem at once with the key it concerns and how to fix it.
// The result is passed down as values; no other package reads the file or the
// environment for configuration.
//
// This package imports no other dingbridge package, so every part of the binary
// (server, admin CLI, `config check`) can use it without dragging the rest along.
package config

import (
	_ "embed"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Env looks up an environment variable; os.LookupEnv fits. Parse takes it as an
// argument, rather than reading the process environment, so tests can pass a map
// and so the config is a function of its inputs. A nil Env is an empty environment.
type Env func(key string) (string, bool)

// Config is the whole configuration file after loading: env expanded, secrets
// resolved, defaults filled in.
type Config struct {
	// Issuer is the URL clients use to reach dingbridge: the "iss" of every token.
	// Absolute https (http only for loopback hosts), no query or fragment, no
	// trailing slash.
	Issuer string `yaml:"issuer"`
	// Listen is the address of the HTTP server. Default "127.0.0.1:5556".
	Listen        string         `yaml:"listen"`
	Storage       Storage        `yaml:"storage"`
	Connectors    []Connector    `yaml:"connectors"`
	Claims        Claims         `yaml:"claims"`
	StaticClients []StaticClient `yaml:"staticClients"`
	Expiry        Expiry         `yaml:"expiry"`
	Logging       Logging        `yaml:"logging"`
	RateLimit     RateLimit      `yaml:"rateLimit"`
	Keys          Keys           `yaml:"keys"`
	// TrustedProxies are reverse proxies (IPs or CIDRs) whose X-Forwarded-For is
	// believed when telling clients apart for rate limiting.
	TrustedProxies []string `yaml:"trustedProxies"`
	// AdminSocket is the unix socket the admin CLI talks to while the server runs
	// (bbolt lets one process open the file). Default "<storage.path>.sock" for
	// bolt; none for postgres, where the CLI works on the database directly.
	AdminSocket string `yaml:"adminSocket"`
	// Branding is what the embedded login page shows of the company.
	Branding Branding `yaml:"branding"`
	// Registration is "open" (default: anyone DingTalk vouches for may log in,
	// and gets a user record) or "closed" (only people with a user record:
	// provisioned with `dingbridge users add/import`, or from an earlier login).
	Registration string `yaml:"registration"`
	// RegistrationContact tells a person refused by closed registration whom to
	// ask, e.g. "IT 服务台 it@example.com".
	RegistrationContact string `yaml:"registrationContact"`
	// MembershipRecheck is how often, at most, a person of a connector with
	// requireMembership is looked up in the directory again when their session
	// or refresh token is used. Default 15m.
	MembershipRecheck Duration `yaml:"membershipRecheck"`
	// MembershipGrace is how long the last confirmation of membership stands while
	// DingTalk cannot be asked. Default 24h.
	MembershipGrace Duration `yaml:"membershipGrace"`
	// Telemetry is the private listener for Prometheus metrics and probes.
	Telemetry Telemetry `yaml:"telemetry"`
}

// Telemetry configures the listener that serves /metrics, /healthz and /readyz.
type Telemetry struct {
	// Listen is its address, e.g. "127.0.0.1:9464". Empty (the default): no
	// telemetry listener. Never the public listen address.
	Listen string `yaml:"listen"`
}

// Storage says where dingbridge keeps its records.
type Storage struct {
	// Type is "bolt" (the default: one file, one process) or "postgres" (a
	// PostgreSQL database that several replicas share).
	Type string `yaml:"type"`
	// Path is the bolt database file. Required for bolt.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string (postgres://user:password@host/db
	// or key=value pairs), a secret. After loading it holds the DSN whether it
	// was given inline (usually as $DINGBRIDGE_DB_DSN) or through DSNFile.
	// Required for postgres.
	DSN     string `yaml:"dsn"`
	DSNFile string `yaml:"dsnFile"`
	// MaxConns caps each replica's connections to PostgreSQL. Default 20.
	MaxConns int `yaml:"maxConns"`
}

// Connector is one DingTalk app that people log in through.
type Connector struct {
	// ID names the connector in URLs (/callback/<id>): [a-z0-9-]+, unique.
	ID string `yaml:"id"`
	// Type is "dingtalk" (the default and the only type).
	Type string `yaml:"type"`
	// Name is shown on the login page. Default "钉钉".
	Name string `yaml:"name"`
	// Mode is the DingTalk login flow: "oauth2" (default; login.dingtalk.com) or
	// "sns" (the legacy scan login, for apps made on the old platform). Inside the
	// DingTalk client, a connector with a corpID logs people in without a page (免登).
	Mode string `yaml:"mode"`
	// ClientID is the DingTalk app's Client ID (AppKey).
	ClientID string `yaml:"clientID"`
	// ClientSecret is the DingTalk app's Client Secret (AppSecret). After loading it
	// holds the secret whether it was given inline or through ClientSecretFile.
	ClientSecret     string `yaml:"clientSecret"`
	ClientSecretFile string `yaml:"clientSecretFile"`
	// CorpID is the organisation of a corp-internal app: it turns on the in-app
	// login, the directory (corp claims, groups) and requireMembership. Optional.
	CorpID string `yaml:"corpID"`
	// CorpAppKey and CorpAppSecret are an internal app of CorpID, for DingTalk's
	// app access token. Default in oauth2 mode: clientID and clientSecret; sns
	// mode needs them for anything corp-related.
	CorpAppKey        string `yaml:"corpAppKey"`
	CorpAppSecret     string `yaml:"corpAppSecret"`
	CorpAppSecretFile string `yaml:"corpAppSecretFile"`
	// AllowedCorpIDs, when not empty, admits only people who log in with one of
	// these organisations (oauth2 mode: the login asks for "openid corpid").
	AllowedCorpIDs []string `yaml:"allowedCorpIDs"`
	// RequireMembership admits only people in CorpID's directory.
	RequireMembership bool `yaml:"requireMembership"`
	// DirectoryCacheTTL is how long department names are kept. Default 10m.
	DirectoryCacheTTL Duration `yaml:"directoryCacheTTL"`
	// Scope is sent to DingTalk's authorize endpoint. Default "openid".
	Scope     string    `yaml:"scope"`
	Endpoints Endpoints `yaml:"endpoints"`
	// Timeout bounds each DingTalk call. Default 10s, at most 60s.
	Timeout Duration `yaml:"timeout"`
	// LoginPage is "redirect" (default: the person goes to DingTalk's login page)
	// or "embedded" (dingbridge's own page, with branding, runs DingTalk's QR login
	// in a frame; DingTalk's page stays a link underneath).
	LoginPage string `yaml:"loginPage"`
}

// Endpoints are DingTalk's base URLs, without a trailing slash. They are
// configurable so tests and `dingbridge dev` can point at a fake DingTalk.
type Endpoints struct {
	Login string `yaml:"login"` // default https://login.dingtalk.com
	API   string `yaml:"api"`   // default https://api.dingtalk.com
	OAPI  string `yaml:"oapi"`  // default https://oapi.dingtalk.com
	// JSAPI is DingTalk's JavaScript API, loaded by the in-app login page.
	JSAPI string `yaml:"jsapi"` // default https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js
	// FrameLogin and SNSFrameLogin are DingTalk's scripts that embed the QR login
	// in our page (loginPage: embedded): DTFrameLogin for oauth2, DDLogin for sns.
	FrameLogin    string `yaml:"frameLogin"`    // default https://g.alicdn.com/dingding/h5-dingtalk-login/0.21.0/ddlogin.js
	SNSFrameLogin string `yaml:"snsFrameLogin"` // default https://g.alicdn.com/dingding/dinglogin/0.0.5/ddLogin.js
}

// Branding is the company's name and logo on the embedded login page.
type Branding struct {
	Title   string `yaml:"title"`
	LogoURL string `yaml:"logoURL"` // https (http only on loopback)
}

// Claims says how a DingTalk identity becomes token claims.
type Claims struct {
	// Subject is the DingTalk id used as "sub": "unionid" (default), "openid" or "userid".
	Subject string `yaml:"subject"`
	// EmailVerified is what "email_verified" says. Default false: dingbridge cannot
	// know whether DingTalk checked the address.
	EmailVerified bool `yaml:"emailVerified"`
	// Groups says how the groups claim names departments: "name" (default),
	// "id", or "path" (研发部/后端组).
	Groups string `yaml:"groups"`
	// OrgEmailAsEmail releases the organisation's address (org_email) as email,
	// with email_verified true, where the directory has one.
	OrgEmailAsEmail bool `yaml:"orgEmailAsEmail"`
	// PreferredUsername is where preferred_username comes from: "pinyin"
	// (default: the name in pinyin, ASCII, unique), "nick", "userid" or "email-local".
	PreferredUsername string `yaml:"preferredUsername"`
}

// StaticClient is an OAuth client declared in the file rather than through the CLI.
type StaticClient struct {
	ID string `yaml:"id"`
	// Name is shown to people. Default: the ID.
	Name string `yaml:"name"`
	// Secret holds the client secret after loading, whichever of Secret, SecretEnv
	// or SecretFile gave it. Empty for public clients.
	Secret string `yaml:"secret"`
	// SecretEnv names an environment variable holding the secret.
	SecretEnv string `yaml:"secretEnv"`
	// SecretFile names a file holding the secret.
	SecretFile             string   `yaml:"secretFile"`
	RedirectURIs           []string `yaml:"redirectURIs"`
	PostLogoutRedirectURIs []string `yaml:"postLogoutRedirectURIs"`
	// BackchannelLogoutURI receives a signed logout token when a session that
	// logged in to this client ends (OpenID Connect Back-Channel Logout).
	BackchannelLogoutURI string `yaml:"backchannelLogoutURI"`
	// Public clients (native and browser apps) cannot keep a secret and have none.
	Public bool `yaml:"public"`
	// RequirePKCE makes a confidential client use PKCE too; public clients always must.
	RequirePKCE bool `yaml:"requirePKCE"`
	// RequireConsent asks each person once which scopes the client may have.
	RequireConsent bool `yaml:"requireConsent"`
	// GrantTypes: authorization_code, refresh_token, device_code. Default: the first two.
	GrantTypes []string `yaml:"grantTypes"`
}

// Expiry holds how long each kind of token and request lives.
type Expiry struct {
	IDToken      Duration `yaml:"idToken"`      // default 1h
	AccessToken  Duration `yaml:"accessToken"`  // default 1h
	RefreshToken Duration `yaml:"refreshToken"` // default 720h (30 days) without use
	// RefreshTokenAbsolute ends a login's refresh chain however often it is used.
	RefreshTokenAbsolute Duration `yaml:"refreshTokenAbsolute"` // default 2160h (90 days)
	// RefreshTokenReuseGrace lets a client retry a refresh with the token it just
	// rotated; after it, presenting a rotated token revokes the whole chain.
	RefreshTokenReuseGrace Duration `yaml:"refreshTokenReuseGrace"` // default 10s, at most 1m
	// SessionIdle and SessionAbsolute bound the SSO session at dingbridge.
	SessionIdle     Duration `yaml:"sessionIdle"`     // default 24h without use
	SessionAbsolute Duration `yaml:"sessionAbsolute"` // default 168h (7 days)
	AuthRequest     Duration `yaml:"authRequest"`     // default 15m
	AuthCode        Duration `yaml:"authCode"`        // default 60s, at most 10m
	UpstreamState   Duration `yaml:"upstreamState"`   // default 10m
	// DeviceCode is how long a device flow (RFC 8628) waits for its person.
	DeviceCode Duration `yaml:"deviceCode"` // default 10m
	// DevicePollInterval is how often a device may poll the token endpoint.
	DevicePollInterval Duration `yaml:"devicePollInterval"` // default 5s
}

// Keys says how id_tokens are signed and how often the key changes.
type Keys struct {
	Algorithm      string   `yaml:"algorithm"`      // RS256 (default) or ES256
	RotationPeriod Duration `yaml:"rotationPeriod"` // default 720h (30 days)
	PublishAhead   Duration `yaml:"publishAhead"`   // default 24h: a next key is in the JWKS this long before it signs
}

// RateLimit bounds requests per client IP to the login, callback and token endpoints.
type RateLimit struct {
	PerSecond float64 `yaml:"perSecond"` // default 10; 0 turns limiting off
	Burst     int     `yaml:"burst"`     // default 50
}

// Logging says what the server logs and how.
type Logging struct {
	Level  string `yaml:"level"`  // debug, info (default), warn or error
	Format string `yaml:"format"` // text (default) or json
}

// Duration is a time.Duration written in YAML as a Go duration string ("90s", "1h30m").
type Duration time.Duration

// String formats d the way it is written in the file.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads a Go duration string. Parse does not go through it (it
// decodes the tree itself, to report every problem with its key), but other code
// decoding a Duration with yaml gets the same syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, why := parseDuration(n.Value)
	if why != "" {
		return fmt.Errorf("line %d: %q %s", n.Line, n.Value, why)
	}
	*d = Duration(v)
	return nil
}

// parseDuration returns the duration in s, or why s is not one.
func parseDuration(s string) (time.Duration, string) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, "is not a duration: write it like 90s, 15m or 1h30m"
	}
	return v, ""
}

//go:embed example.yaml
var example string

// Example returns a commented example configuration, the one README shows. It
// needs DINGTALK_CLIENT_ID, DINGTALK_CLIENT_SECRET and GRAFANA_OIDC_SECRET set.
func Example() string { return example }

// Load reads the file at path and parses it; see Parse. Problems in the file come
// back as a *ValidationError whose lines start with the path.
func Load(path string, env Env) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data, env)
	if ve, ok := err.(*ValidationError); ok {
		ve.File = path
	}
	return c, err
}

// Parse decodes a YAML configuration, expands environment variables in its
// values, reads secret files, fills in defaults and validates the result.
//
// In every scalar value (never in keys), $NAME and ${NAME} are replaced with the
// variable's value and $$ with a literal $; a $ followed by anything else is kept.
// Expansion happens after YAML parsing, so a value from the environment is never
// expanded again and cannot change the structure of the file. Relative secret
// file paths are relative to the working directory.
//
// Any problem with the file, however many, is returned as one *ValidationError.
// No error text contains a secret.
func Parse(data []byte, env Env) (*Config, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	l := newLoader(env)
	var c Config
	if root, bad := parseYAML(data); bad != nil {
		l.problems = append(l.problems, *bad)
	} else {
		if root != nil {
			l.decode(root, reflect.ValueOf(&c).Elem(), "")
		}
		l.validate(&c)
	}
	if len(l.problems) > 0 {
		return nil, &ValidationError{Problems: l.problems}
	}
	return &c, nil
}

// ValidationError lists everything wrong with a configuration file.
type ValidationError struct {
	File     string // set by Load
	Problems []Problem
}

// Problem is one thing wrong with the file.
type Problem struct {
	// Key is the YAML path of the value concerned, like "connectors[0].clientSecret";
	// empty for the file as a whole.
	Key string
	// Line is where the value is in the file; 0 when the key is missing.
	Line int
	// Message says what is wrong and how to fix it, starting with the key.
	Message string
}

// String formats p as "line N: message" (or just the message when there is no line).
func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s", p.Line, p.Message)
	}
	return p.Message
}

// Error prints one problem a line, as "file:line: message" when loaded from a
// file so editors can jump to it.
func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		switch {
		case e.File != "" && p.Line > 0:
			fmt.Fprintf(&b, "%s:%d: %s", e.File, p.Line, p.Message)
		case e.File != "":
			fmt.Fprintf(&b, "%s: %s", e.File, p.Message)
		default:
			b.WriteString(p.String())
		}
	}
	return b.String()
}
