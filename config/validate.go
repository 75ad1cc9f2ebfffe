package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Defaults and limits, in one place to compare with what example.yaml documents.
const (
	defaultListen        = "127.0.0.1:5556"
	defaultConnectorName = "钉钉"
	defaultScope         = "openid"
	defaultLoginURL      = "https://login.dingtalk.com"
	defaultAPIURL        = "https://api.dingtalk.com"
	defaultOAPIURL       = "https://oapi.dingtalk.com"
	defaultJSAPIURL      = "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js"
	// DingTalk's scripts that embed the QR login (loginPage: embedded).
	defaultFrameLoginURL    = "https://g.alicdn.com/dingding/h5-dingtalk-login/0.21.0/ddlogin.js"
	defaultSNSFrameLoginURL = "https://g.alicdn.com/dingding/dinglogin/0.0.5/ddLogin.js"
	defaultTimeout          = 10 * time.Second
	maxTimeout              = 60 * time.Second
	maxAuthCode             = 10 * time.Minute
	// A unix socket path must fit sockaddr_un.sun_path (108 bytes on Linux,
	// 104 on BSDs and macOS) with its terminating NUL.
	maxSocketPath = 103
	// PostgreSQL's own default max_connections is 100.
	defaultMaxConns = 20
	maxMaxConns     = 1000
)

// validate fills in defaults, resolves secrets and checks every value of c.
func (l *loader) validate(c *Config) {
	l.issuer(c)

	setDefault(&c.Listen, defaultListen)
	if !validHostPort(c.Listen) {
		l.add("listen", "listen %q is not host:port: write it like %s, or :5556 for every interface", c.Listen, defaultListen)
	}

	if c.Telemetry.Listen != "" {
		switch {
		case !validHostPort(c.Telemetry.Listen):
			l.add("telemetry.listen", "telemetry.listen %q is not host:port: write it like 127.0.0.1:9464", c.Telemetry.Listen)
		case sameListenPort(c.Telemetry.Listen, c.Listen):
			l.add("telemetry.listen", "telemetry.listen %q is the public listen address's port: metrics must not be served to everyone; use another port, e.g. 127.0.0.1:9464", c.Telemetry.Listen)
		}
	}

	l.storage(&c.Storage)
	if c.AdminSocket == "" && c.Storage.Type == "bolt" && c.Storage.Path != "" {
		c.AdminSocket = c.Storage.Path + ".sock"
	}
	if len(c.AdminSocket) > maxSocketPath {
		l.add("adminSocket", "adminSocket %q is longer than a unix socket path may be (%d bytes): set adminSocket to a shorter path", c.AdminSocket, maxSocketPath)
	}

	if len(c.Connectors) == 0 {
		l.add("connectors", "connectors is empty: add the DingTalk app people log in with (id, clientID, clientSecret)")
	}
	seen := map[string]bool{}
	for i := range c.Connectors {
		l.connector(&c.Connectors[i], fmt.Sprintf("connectors[%d]", i), seen)
	}

	setDefault(&c.Claims.Subject, "unionid")
	if !oneOf(c.Claims.Subject, "unionid", "openid", "userid") {
		l.add("claims.subject", "claims.subject %q is unknown: use unionid (the default), openid or userid", c.Claims.Subject)
	}
	setDefault(&c.Claims.Groups, "name")
	if !oneOf(c.Claims.Groups, "name", "id", "path") {
		l.add("claims.groups", "claims.groups %q is unknown: use name (the default), id or path", c.Claims.Groups)
	}
	setDefault(&c.Claims.PreferredUsername, "pinyin")
	if !oneOf(c.Claims.PreferredUsername, "pinyin", "nick", "userid", "email-local") {
		l.add("claims.preferredUsername", "claims.preferredUsername %q is unknown: use pinyin (the default; 张三 → zhangsan), nick, userid or email-local", c.Claims.PreferredUsername)
	}
	if c.Branding.LogoURL != "" {
		u, err := url.Parse(c.Branding.LogoURL)
		if err != nil || u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())) {
			l.add("branding.logoURL", "branding.logoURL %q is not an https URL: write it like https://static.example.com/logo.png", c.Branding.LogoURL)
		}
	}
	setDefault(&c.Registration, "open")
	if !oneOf(c.Registration, "open", "closed") {
		l.add("registration", "registration %q is unknown: use open (the default: anyone DingTalk vouches for) or closed (only people with a user record)", c.Registration)
	}
	if !l.given["membershipRecheck"] {
		c.MembershipRecheck = Duration(15 * time.Minute)
	}
	l.duration("membershipRecheck", c.MembershipRecheck, 24*time.Hour, "a leaver keeps their access until the next re-check")
	if !l.given["membershipGrace"] {
		c.MembershipGrace = Duration(24 * time.Hour)
	}
	l.duration("membershipGrace", c.MembershipGrace, 30*24*time.Hour, "while DingTalk cannot be asked, a leaver keeps their access this long")
	if c.MembershipGrace < c.MembershipRecheck {
		l.add("membershipGrace", "membershipGrace %s is shorter than membershipRecheck %s: a DingTalk hiccup would log people out; make it longer", c.MembershipGrace, c.MembershipRecheck)
	}

	// openid is unique within one app and userid within one organisation; only
	// unionid keeps sub unique when people arrive through several connectors.
	if len(c.Connectors) > 1 && c.Claims.Subject != "unionid" {
		l.add("claims.subject", "claims.subject %s is only unique within one DingTalk app or organisation: with several connectors use unionid", c.Claims.Subject)
	}

	seen = map[string]bool{}
	for i := range c.StaticClients {
		l.staticClient(&c.StaticClients[i], fmt.Sprintf("staticClients[%d]", i), seen)
	}

	l.expiry(&c.Expiry)
	l.rateLimit(c)
	setDefault(&c.Keys.Algorithm, "RS256")
	if !oneOf(c.Keys.Algorithm, "RS256", "ES256") {
		l.add("keys.algorithm", "keys.algorithm %q is not supported: use RS256 (the default, what every RP accepts) or ES256", c.Keys.Algorithm)
	}
	for _, d := range []struct {
		key string
		v   *Duration
		def time.Duration
	}{{"keys.rotationPeriod", &c.Keys.RotationPeriod, 720 * time.Hour}, {"keys.publishAhead", &c.Keys.PublishAhead, 24 * time.Hour}} {
		if !l.given[d.key] {
			*d.v = Duration(d.def)
		}
		l.duration(d.key, *d.v, 0, "")
	}
	if c.Keys.PublishAhead >= c.Keys.RotationPeriod {
		l.add("keys.publishAhead", "keys.publishAhead %s must be shorter than keys.rotationPeriod %s", c.Keys.PublishAhead, c.Keys.RotationPeriod)
	}

	setDefault(&c.Logging.Level, "info")
	if !oneOf(c.Logging.Level, "debug", "info", "warn", "error") {
		l.add("logging.level", "logging.level %q is unknown: use debug, info, warn or error", c.Logging.Level)
	}
	setDefault(&c.Logging.Format, "text")
	if !oneOf(c.Logging.Format, "text", "json") {
		l.add("logging.format", "logging.format %q is unknown: use text or json", c.Logging.Format)
	}
}

// storage checks the keys of the chosen type and refuses the other type's.
func (l *loader) storage(s *Storage) {
	setDefault(&s.Type, "bolt")
	switch s.Type {
	case "bolt":
		if s.Path == "" {
			l.empty("storage.path", "set it to the database file, e.g. /var/lib/dingbridge/dingbridge.db")
		}
		for key, set := range map[string]bool{"dsn": s.DSN != "" || l.given["storage.dsn"], "dsnFile": s.DSNFile != "", "maxConns": l.given["storage.maxConns"]} {
			if set {
				l.add("storage."+key, "storage.%s is for type postgres: remove it, or set storage.type: postgres", key)
			}
		}
	case "postgres":
		if s.Path != "" {
			l.add("storage.path", "storage.path is for type bolt: remove it (postgres takes storage.dsn)")
		}
		s.DSN = l.secret("storage", false, "set it to the PostgreSQL connection string, e.g. $DINGBRIDGE_DB_DSN with DINGBRIDGE_DB_DSN=postgres://dingbridge:PASSWORD@db.example.com:5432/dingbridge, or name a file holding it in storage.dsnFile",
			source{key: "dsn", value: s.DSN},
			source{key: "dsnFile", value: s.DSNFile, read: (*loader).readFile},
		)
		if s.DSN != "" && !plausibleDSN(s.DSN) {
			// The message never repeats the value: it holds a password.
			l.add("storage.dsn", "storage.dsn is not a PostgreSQL connection string: write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE (add ?sslmode=verify-full for TLS) or as key=value pairs (host=… user=… dbname=…)")
		}
		if !l.given["storage.maxConns"] {
			s.MaxConns = defaultMaxConns
		}
		if s.MaxConns < 1 || s.MaxConns > maxMaxConns {
			l.add("storage.maxConns", "storage.maxConns %d is out of range: use 1 to %d (default %d); every replica opens up to this many connections", s.MaxConns, maxMaxConns, defaultMaxConns)
		}
	default:
		l.add("storage.type", "storage.type %q is not supported: use bolt (one file, one process) or postgres (several replicas)", s.Type)
	}
}

// plausibleDSN is a first look at a connection string, so `config check`
// catches a mistyped one; the database driver parses it for real at start.
func plausibleDSN(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		return err == nil && (u.Host != "" || u.Query().Get("host") != "")
	}
	for _, field := range strings.Fields(dsn) {
		if k, _, ok := strings.Cut(field, "="); ok && k != "" {
			return true
		}
	}
	return false
}

func (l *loader) issuer(c *Config) {
	const example = "https://sso.example.com"
	if c.Issuer == "" {
		l.empty("issuer", "set it to the URL clients use to reach dingbridge, e.g. "+example)
		return
	}
	// Clients compare "iss" byte for byte with what they were configured with, and
	// dingbridge appends paths to it; one trailing slash is a common way to write
	// the same URL, so drop it rather than complain.
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	u, err := url.Parse(c.Issuer)
	switch {
	case err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "":
		l.add("issuer", "issuer %q is not an absolute URL: write it like %s", c.Issuer, example)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		l.add("issuer", "issuer %q must use https: http is allowed only for 127.0.0.1, [::1] and localhost", c.Issuer)
	case u.Scheme != "https" && u.Scheme != "http":
		l.add("issuer", "issuer %q must be an https URL, e.g. %s", c.Issuer, example)
	case u.User != nil:
		l.add("issuer", "issuer %q must not contain a user name or password: remove the part before @", c.Issuer)
	case u.RawQuery != "" || u.ForceQuery:
		l.add("issuer", "issuer %q must not have a query: remove the ? and what follows", c.Issuer)
	case u.Fragment != "" || strings.Contains(c.Issuer, "#"):
		l.add("issuer", "issuer %q must not have a fragment: remove the # and what follows", c.Issuer)
	case strings.HasSuffix(c.Issuer, "/"):
		l.add("issuer", "issuer %q must not end with /: remove it", c.Issuer)
	}
}

func (l *loader) connector(c *Connector, key string, seen map[string]bool) {
	switch {
	case c.ID == "":
		l.empty(key+".id", "set it to a short name such as dingtalk; it appears in the callback URL /callback/<id>")
	case !validConnectorID(c.ID):
		l.add(key+".id", "%s.id %q may only contain a-z, 0-9 and -: it appears in the callback URL /callback/<id>", key, c.ID)
	case seen[c.ID]:
		l.add(key+".id", "%s.id %q is used twice: give each connector its own id", key, c.ID)
	}
	seen[c.ID] = true

	setDefault(&c.Type, "dingtalk")
	if c.Type != "dingtalk" {
		l.add(key+".type", "%s.type %q is not supported: use dingtalk (the only connector type)", key, c.Type)
	}
	setDefault(&c.Name, defaultConnectorName)
	setDefault(&c.Mode, "oauth2")
	switch c.Mode {
	case "oauth2", "sns":
	case "inapp":
		l.add(key+".mode", "%s.mode inapp does not exist: the in-app login (免登) needs no mode; set corpID on an oauth2 connector", key)
	default:
		l.add(key+".mode", "%s.mode %q is unknown: use oauth2 (the default) or sns (the legacy scan login)", key, c.Mode)
	}

	if c.ClientID == "" {
		l.empty(key+".clientID", "set it to the DingTalk app's Client ID (AppKey)")
	}
	c.ClientSecret = l.secret(key, false, "set it to the DingTalk app's Client Secret (AppSecret), or name a file holding it in clientSecretFile",
		source{key: "clientSecret", value: c.ClientSecret},
		source{key: "clientSecretFile", value: c.ClientSecretFile, read: (*loader).readFile},
	)

	if c.CorpAppSecret != "" || c.CorpAppSecretFile != "" {
		c.CorpAppSecret = l.secret(key, false, "",
			source{key: "corpAppSecret", value: c.CorpAppSecret},
			source{key: "corpAppSecretFile", value: c.CorpAppSecretFile, read: (*loader).readFile},
		)
	}
	if (c.CorpAppKey == "") != (c.CorpAppSecret == "") {
		l.add(key+".corpAppKey", "%s.corpAppKey and corpAppSecret go together: set both (an internal app of corpID) or neither", key)
	}
	if c.CorpAppKey != "" && c.CorpID == "" {
		l.add(key+".corpID", "%s.corpID is empty but corpAppKey is set: set corpID to the organisation the internal app belongs to", key)
	}
	if c.Mode == "sns" && c.CorpID != "" && c.CorpAppKey == "" {
		l.add(key+".corpAppKey", "%s.corpAppKey is empty: a legacy sns app cannot read corpID's directory; set corpAppKey and corpAppSecret of an internal app, or remove corpID", key)
	}
	// An access policy that cannot be enforced is refused, never ignored: it
	// would let in the people it names as kept out.
	for i, id := range c.AllowedCorpIDs {
		if strings.TrimSpace(id) == "" {
			l.add(fmt.Sprintf("%s.allowedCorpIDs[%d]", key, i), "%s.allowedCorpIDs[%d] is empty: remove it, or write the organisation's corpId", key, i)
		}
	}
	if len(c.AllowedCorpIDs) > 0 && c.Mode == "sns" {
		l.add(key+".allowedCorpIDs", "%s.allowedCorpIDs cannot be enforced in sns mode (the legacy login names no organisation): use corpID with requireMembership: true", key)
	}
	if len(c.AllowedCorpIDs) > 0 && c.CorpID != "" && !slices.Contains(c.AllowedCorpIDs, c.CorpID) {
		l.add(key+".allowedCorpIDs", "%s.allowedCorpIDs does not contain corpID %s: the in-app login would refuse everyone; add it", key, c.CorpID)
	}
	if c.RequireMembership && c.CorpID == "" {
		l.add(key+".requireMembership", "%s.requireMembership needs corpID: set the organisation whose members may log in", key)
	}
	if !l.given[key+".directoryCacheTTL"] {
		c.DirectoryCacheTTL = Duration(10 * time.Minute)
	}
	l.duration(key+".directoryCacheTTL", c.DirectoryCacheTTL, 24*time.Hour, "department changes should show within a day")
	l.scope(c, key)

	for _, e := range []struct {
		name, def string
		value     *string
	}{
		{"login", defaultLoginURL, &c.Endpoints.Login},
		{"api", defaultAPIURL, &c.Endpoints.API},
		{"oapi", defaultOAPIURL, &c.Endpoints.OAPI},
		{"jsapi", defaultJSAPIURL, &c.Endpoints.JSAPI},
		{"frameLogin", defaultFrameLoginURL, &c.Endpoints.FrameLogin},
		{"snsFrameLogin", defaultSNSFrameLoginURL, &c.Endpoints.SNSFrameLogin},
	} {
		setDefault(e.value, e.def)
		*e.value = strings.TrimSuffix(*e.value, "/")
		u, err := url.Parse(*e.value)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			l.add(key+".endpoints."+e.name, "%s.endpoints.%s %q is not an absolute http(s) URL without query: write it like %s", key, e.name, *e.value, e.def)
		}
	}

	setDefault(&c.LoginPage, "redirect")
	if !oneOf(c.LoginPage, "redirect", "embedded") {
		l.add(key+".loginPage", "%s.loginPage %q is unknown: use redirect (the default: DingTalk's own page) or embedded (DingTalk's QR code in dingbridge's page)", key, c.LoginPage)
	}
	if !l.given[key+".timeout"] {
		c.Timeout = Duration(defaultTimeout)
	}
	l.duration(key+".timeout", c.Timeout, maxTimeout, "a person is waiting for the login")
}

// scope fills in and checks what the connector asks DingTalk for. Only the oauth2
// login takes a scope: the legacy sns login always asks for snsapi_login, and
// the connector refuses a scope there, so none is defaulted in that mode.
func (l *loader) scope(c *Connector, key string) {
	if c.Mode == "sns" {
		if c.Scope != "" {
			l.add(key+".scope", "%s.scope applies to mode oauth2 only: remove it (the legacy sns login always asks DingTalk for snsapi_login)", key)
		}
		return
	}
	if c.Mode != "oauth2" {
		return // already reported
	}
	if c.Scope == "" {
		c.Scope = defaultScope
		if c.CorpID != "" {
			c.Scope = defaultScope + " corpid" // the login preselects corpID, which needs corpid
		}
	}
	scopes := strings.Fields(c.Scope)
	if !slices.Contains(scopes, "openid") {
		l.add(key+".scope", "%s.scope %q must contain openid: write it like \"openid corpid\"", key, c.Scope)
	}
	if c.CorpID != "" && !slices.Contains(scopes, "corpid") {
		l.add(key+".scope", "%s.scope %q lacks corpid, which corpID needs: write \"%s corpid\", or remove scope", key, c.Scope, c.Scope)
	}
}

func (l *loader) staticClient(c *StaticClient, key string, seen map[string]bool) {
	switch {
	case c.ID == "":
		l.empty(key+".id", "set it to the client_id the app sends, e.g. grafana")
	case seen[c.ID]:
		l.add(key+".id", "%s.id %q is used twice: give each client its own id", key, c.ID)
	}
	seen[c.ID] = true
	setDefault(&c.Name, c.ID)

	c.Secret = l.secret(key, c.Public, "",
		source{key: "secret", value: c.Secret},
		source{key: "secretEnv", value: c.SecretEnv, read: (*loader).readEnv},
		source{key: "secretFile", value: c.SecretFile, read: (*loader).readFile},
	)

	deviceOnly := len(c.GrantTypes) > 0
	for i, g := range c.GrantTypes {
		switch g {
		case "authorization_code":
			deviceOnly = false
		case "refresh_token", "device_code":
		default:
			l.add(fmt.Sprintf("%s.grantTypes[%d]", key, i), "%s.grantTypes[%d] %q is not supported: use authorization_code, refresh_token or device_code", key, i, g)
		}
	}
	if len(c.RedirectURIs) == 0 && !deviceOnly {
		l.add(key+".redirectURIs", "%s.redirectURIs is empty: list the URLs the app may be sent back to after login, e.g. [https://grafana.example.com/login/generic_oauth]", key)
	}
	for i, u := range c.RedirectURIs {
		l.redirectURI(fmt.Sprintf("%s.redirectURIs[%d]", key, i), u, c.Public)
	}
	if c.BackchannelLogoutURI != "" {
		// Called server to server, so never a custom scheme.
		l.redirectURI(key+".backchannelLogoutURI", c.BackchannelLogoutURI, false)
	}
	for i, u := range c.PostLogoutRedirectURIs {
		l.redirectURI(fmt.Sprintf("%s.postLogoutRedirectURIs[%d]", key, i), u, c.Public)
	}
}

// redirectURI checks a URL the authorization server sends the browser to with a
// code or after logout, by the rule `client add` applies too.
func (l *loader) redirectURI(key, raw string, public bool) {
	if raw == "" {
		l.empty(key, "set it to a URL or remove it")
		return
	}
	if problem := RedirectURIProblem(raw, public); problem != "" {
		l.add(key, "%s %q %s", key, raw, problem)
	}
}

func (l *loader) expiry(e *Expiry) {
	for _, d := range []struct {
		name  string
		v     *Duration
		def   time.Duration
		limit time.Duration
		why   string
	}{
		{"idToken", &e.IDToken, time.Hour, 0, ""},
		{"accessToken", &e.AccessToken, time.Hour, 0, ""},
		{"refreshToken", &e.RefreshToken, 720 * time.Hour, 0, ""},
		{"refreshTokenAbsolute", &e.RefreshTokenAbsolute, 2160 * time.Hour, 0, ""},
		// Long enough for a client's retry of the same request, short enough that a
		// stolen, already-rotated token is useless.
		{"refreshTokenReuseGrace", &e.RefreshTokenReuseGrace, 10 * time.Second, time.Minute, "it only covers a client retrying the same request"},
		{"sessionIdle", &e.SessionIdle, 24 * time.Hour, 0, ""},
		{"sessionAbsolute", &e.SessionAbsolute, 168 * time.Hour, 0, ""},
		{"authRequest", &e.AuthRequest, 15 * time.Minute, 0, ""},
		// A code is exchanged within seconds; RFC 6749 §4.1.2 recommends at most 10 minutes.
		{"authCode", &e.AuthCode, time.Minute, maxAuthCode, "a code is exchanged within seconds"},
		{"upstreamState", &e.UpstreamState, 10 * time.Minute, 0, ""},
		{"deviceCode", &e.DeviceCode, 10 * time.Minute, 0, ""},
		{"devicePollInterval", &e.DevicePollInterval, 5 * time.Second, time.Minute, "a device polls every few seconds"},
	} {
		key := "expiry." + d.name
		if !l.given[key] {
			*d.v = Duration(d.def)
		}
		l.duration(key, *d.v, d.limit, d.why)
	}
}

func (l *loader) rateLimit(c *Config) {
	if !l.given["rateLimit.perSecond"] {
		c.RateLimit.PerSecond = 10
	}
	if !l.given["rateLimit.burst"] {
		c.RateLimit.Burst = 50
	}
	if c.RateLimit.PerSecond < 0 {
		l.add("rateLimit.perSecond", "rateLimit.perSecond %v is negative: use 0 to turn rate limiting off", c.RateLimit.PerSecond)
	}
	if c.RateLimit.Burst < 1 {
		l.add("rateLimit.burst", "rateLimit.burst %d must be at least 1", c.RateLimit.Burst)
	}
	for i, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			key := fmt.Sprintf("trustedProxies[%d]", i)
			l.add(key, "%s %q is not an IP address or CIDR (e.g. 10.0.0.0/8)", key, p)
		}
	}
}

// duration checks that d is positive and, when limit is not 0, at most limit.
func (l *loader) duration(key string, d Duration, limit time.Duration, why string) {
	switch {
	case d <= 0:
		l.add(key, "%s %s must be greater than 0: remove it to get the default", key, d)
	case limit > 0 && time.Duration(d) > limit:
		l.add(key, "%s %s is too long: at most %s (%s)", key, d, Duration(limit), why)
	}
}

// source is one of the keys a secret may be given by.
type source struct {
	key   string // YAML key, e.g. "secretFile"
	value string
	// read turns value into the secret; nil when value is the secret itself.
	read func(l *loader, key, value string) string
}

// secret returns the secret of the item at key from whichever source is set. A
// confidential item needs exactly one; a public one must have none. fix says how
// to give a missing secret ("" for the generic advice). Messages name the keys,
// never a value.
func (l *loader) secret(key string, public bool, fix string, sources ...source) string {
	var set []source
	for _, s := range sources {
		if s.value != "" {
			set = append(set, s)
		}
	}
	keys := make([]string, len(set))
	for i, s := range set {
		keys[i] = s.key
	}
	switch {
	case public && len(set) > 0:
		l.add(key, "%s is public but sets %s: public clients cannot keep a secret and must have none; remove %s, or set public: false", key, and(keys, ""), and(keys, ""))
		return ""
	case public:
		return ""
	case len(set) > 1:
		l.add(key, "%s sets %s: keep one", key, and(keys, ""))
		return ""
	case len(set) == 1 && set[0].read == nil:
		return set[0].value
	case len(set) == 1:
		return set[0].read(l, join(key, set[0].key), set[0].value)
	}
	// None set. If one of them referred to an unset variable, that is the fix.
	for _, s := range sources {
		if k := join(key, s.key); len(l.refs[k]) > 0 {
			l.empty(k, "")
			return ""
		}
	}
	if fix != "" {
		l.empty(join(key, sources[0].key), fix)
		return ""
	}
	names := make([]string, len(sources))
	for i, s := range sources {
		names[i] = s.key
	}
	l.add(key, "%s has no secret: set %s, or set public: true for an app that cannot keep one", key, or(names))
	return ""
}

func (l *loader) readEnv(key, name string) string {
	v, ok := l.env(name)
	switch {
	case !ok:
		l.add(key, "%s names %s, which is not set: set %s to the client secret", key, name, name)
	case v == "":
		l.add(key, "%s names %s, which is empty: set %s to the client secret", key, name, name)
	}
	return v
}

// readFile reads a secret from the file at path, without its trailing newline
// (editors and `echo` add one). The error names the key and the path, never content.
func (l *loader) readFile(key, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		l.add(key, "%s: cannot read %q: %v: check the path and that dingbridge may read the file", key, path, err)
		return ""
	}
	v := strings.TrimRightFunc(string(data), unicode.IsSpace)
	if v == "" {
		l.add(key, "%s: %q is empty: put the secret in it", key, path)
	}
	return v
}

// empty reports that a required key has no value. If the value referred to
// environment variables, setting them is the fix.
func (l *loader) empty(key, fix string) {
	switch unset := l.unset[key]; {
	case len(unset) > 0:
		fix = "set " + and(unset, "")
	case len(l.refs[key]) > 0:
		fix = and(l.refs[key], "") + " " + isAre(l.refs[key]) + " set but empty"
	}
	l.add(key, "%s is empty: %s", key, fix)
}

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func oneOf(s string, values ...string) bool {
	for _, v := range values {
		if s == v {
			return true
		}
	}
	return false
}

// or lists names as "A", "A or B" or "A, B or C".
func or(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n <= 65535
}

// sameListenPort reports whether two host:port listen addresses share a port,
// so that one would take the other's (":5556" includes 127.0.0.1:5556).
func sameListenPort(a, b string) bool {
	_, pa, errA := net.SplitHostPort(a)
	_, pb, errB := net.SplitHostPort(b)
	return errA == nil && errB == nil && pa == pb
}

func validConnectorID(id string) bool {
	for _, c := range id {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
