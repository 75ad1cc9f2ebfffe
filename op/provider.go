// Package op is dingbridge's OpenID Provider: zitadel's op.Provider for the
// protocol, wired on a chi router with the pages zitadel leaves to us — the login
// step that sends a person to DingTalk, the callback that brings them back, and the
// error pages in between.
package op

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/op/telemetry"
	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/upstream"
)

// Config is everything the provider needs, as plain values.
type Config struct {
	// Issuer is the URL clients know the provider by; may have a path.
	Issuer     string
	Connectors []Connector
	Storage    storage.Storage
	Keys       *keys.Manager

	StaticClients []StaticClient
	Claims        ClaimsPolicy
	Lifetimes     Lifetimes
	RateLimit     RateLimit
	Registration  Registration
	Membership    Membership
	// Branding is shown on embedded login pages.
	Branding Branding

	// Metrics records what an operator's monitoring sees; nil records nothing.
	Metrics *telemetry.Metrics
	// Logger gets structured logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Connector is one configured upstream login.
type Connector struct {
	ID        string // in URLs: /callback/<ID>
	Name      string // shown on the chooser page
	Connector upstream.Connector
	// Method is how its redirect login works, for metrics: upstream.MethodOAuth2
	// (the default) or upstream.MethodSNS. The in-app login reports itself.
	Method string
	// Embedded: the login runs in our own page (upstream.EmbeddedConnector)
	// instead of a redirect to the upstream's.
	Embedded bool
}

// ClaimsPolicy says how DingTalk identities become claims.
type ClaimsPolicy struct {
	// Subject: "unionid" (default), "openid" or "userid".
	Subject string
	// EmailVerified is the email_verified value released with an email: DingTalk
	// does not verify personal email addresses, so false unless an operator knows better.
	EmailVerified bool
	// OrgEmailAsEmail releases the organisation's address (org_email) as email,
	// verified, when the directory has one.
	OrgEmailAsEmail bool
	// PreferredUsername is where preferred_username comes from: UsernamePinyin
	// (default), UsernameNick, UsernameUserID or UsernameEmailLocal.
	PreferredUsername string
}

// Lifetimes of what the provider issues; zero values take the defaults.
type Lifetimes struct {
	IDToken      time.Duration // 1h
	AccessToken  time.Duration // 1h
	RefreshToken time.Duration // 30 days without use
	// RefreshTokenAbsolute ends a login's refresh chain however often it is used.
	RefreshTokenAbsolute time.Duration // 90 days
	// RefreshTokenReuseGrace: a rotated refresh token presented again within it is a
	// client's retry; after it, reuse revokes the whole chain.
	RefreshTokenReuseGrace time.Duration // 10s
	SessionIdle            time.Duration // 24h
	SessionAbsolute        time.Duration // 7 days
	AuthRequest            time.Duration // 15m: how long a person may take to log in
	AuthCode               time.Duration // 60s
	UpstreamState          time.Duration // 10m
	// UpstreamLogin bounds everything done with DingTalk in one callback
	// (retries included); each single call has the connector's own timeout.
	UpstreamLogin time.Duration // 30s
	// DeviceCode is how long a device flow waits for its person (RFC 8628).
	DeviceCode time.Duration // 10m
	// DevicePollInterval is how often a device may poll; faster gets slow_down.
	DevicePollInterval time.Duration // 5s
}

func (l Lifetimes) withDefaults() Lifetimes {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.IDToken, time.Hour)
	def(&l.AccessToken, time.Hour)
	def(&l.RefreshToken, 30*24*time.Hour)
	def(&l.RefreshTokenAbsolute, 90*24*time.Hour)
	def(&l.RefreshTokenReuseGrace, 10*time.Second)
	def(&l.SessionIdle, 24*time.Hour)
	def(&l.SessionAbsolute, 7*24*time.Hour)
	def(&l.AuthRequest, 15*time.Minute)
	def(&l.AuthCode, 60*time.Second)
	def(&l.UpstreamState, 10*time.Minute)
	def(&l.UpstreamLogin, 30*time.Second)
	def(&l.DeviceCode, 10*time.Minute)
	def(&l.DevicePollInterval, 5*time.Second)
	return l
}

// Provider is the OpenID Provider as one http.Handler.
type Provider struct {
	issuer     string // without trailing slash
	issuerPath string // "" or "/sso"
	secure     bool   // issuer is https: cookies get Secure, pages get HSTS
	store      storage.Storage
	keys       *keys.Manager
	membership *membershipChecks
	formKey    []byte // signs form tokens (forms.go)
	// clientSecretKey hashes generated client secrets (clientauth.go).
	clientSecretKey []byte
	metrics         *telemetry.Metrics
	log             *slog.Logger
	now             func() time.Time

	// current holds what Reconfigure may change, swapped as a whole so that no
	// request sees half of an old configuration and half of a new one.
	current atomic.Pointer[settings]

	oidc    *zop.Provider
	handler http.Handler

	httpClient *http.Client   // back-channel logout deliveries
	background sync.WaitGroup // deliveries in flight; Wait drains them

	// replicaID names this process as the holder of maintenance leases.
	replicaID string
}

// New builds the provider. The key manager must have been Ensure'd.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	issuerURL, err := url.Parse(cfg.Issuer)
	if err != nil || issuerURL.Host == "" {
		return nil, fmt.Errorf("op: issuer %q is not an absolute URL", cfg.Issuer)
	}
	if cfg.Storage == nil || cfg.Keys == nil {
		return nil, errors.New("op: storage and keys are required")
	}
	p := &Provider{
		issuer:     strings.TrimSuffix(cfg.Issuer, "/"),
		issuerPath: strings.TrimSuffix(issuerURL.Path, "/"),
		secure:     issuerURL.Scheme == "https",
		store:      cfg.Storage,
		keys:       cfg.Keys,
		metrics:    cfg.Metrics,
		log:        cfg.Logger,
		now:        cfg.Now,
		httpClient: &http.Client{Timeout: backchannelTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		replicaID:  newReplicaID(),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	tokenKey, err := cfg.Keys.TokenKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("op: %w", err)
	}
	p.formKey = formKeyFrom(tokenKey)
	p.clientSecretKey = ClientSecretKey(tokenKey)
	if err := p.Reconfigure(cfg); err != nil {
		return nil, err
	}
	p.membership = newMembershipChecks(cfg.Membership)
	lifetimes := p.settings().lifetimes

	// zitadel's CORS policy allows every origin with credentials on every
	// endpoint; cors.go applies ours to the endpoints that need one.
	opts := []zop.Option{zop.WithCORSOptions(nil)}
	if !p.secure {
		opts = append(opts, zop.WithAllowInsecure())
	}
	p.oidc, err = zop.NewProvider(&zop.Config{
		CryptoKey:                         tokenKey,
		DefaultLogoutRedirectURI:          p.issuerPath + "/logged-out",
		CodeMethodS256:                    true,
		AuthMethodPost:                    true,
		GrantTypeRefreshToken:             true,
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
		SupportedUILocales:                []language.Tag{language.SimplifiedChinese, language.English},
		DeviceAuthorization: zop.DeviceAuthorizationConfig{
			Lifetime:     lifetimes.DeviceCode,
			PollInterval: lifetimes.DevicePollInterval,
			UserFormPath: p.issuerPath + "/device",
			UserCode:     zop.UserCodeBase20,
		},
		SupportedScopes: []string{"openid", "profile", "email", "phone", "offline_access", "groups"},
		SupportedClaims: []string{
			"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "azp", "at_hash", "c_hash",
			"unionid", "openid", "name", "preferred_username", "picture",
			"email", "email_verified", "phone_number", "phone_number_verified", "sid",
			"corp_id", "userid", "title", "job_number", "org_email", "groups",
		},
	}, &oidcStorage{p: p}, zop.StaticIssuer(p.issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("op: %w", err)
	}
	p.handler = p.routes()
	return p, nil
}

func (p *Provider) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(p.logRequests, securityHeaders(p.secure), limitBodies)
	r.Get("/healthz", p.healthz)
	r.Get("/readyz", p.readyz)
	r.With(p.rateLimit).Get("/login", p.login)
	r.With(p.rateLimit).Get("/callback/{connector}", p.callback)
	r.With(p.rateLimit).Post("/callback/{connector}/inapp", p.inAppCallback)
	r.Get("/logged-out", p.loggedOut)
	r.With(p.rateLimit).Handle("/authorize", p.checkAuthorize(p.loginInline(p.oidc)))
	r.With(publicAPICORS).HandleFunc(oidc.DiscoveryEndpoint, p.discovery)
	r.With(publicAPICORS, p.guardClientAuth, withTokenGrant, p.countTokenGrants).Handle(p.oidc.TokenEndpoint().Relative(), p.tokenEndpoint(answerAfterCommit(p.log, p.oidc)))
	r.With(publicAPICORS).HandleFunc(p.oidc.UserinfoEndpoint().Relative(), p.userinfo)
	r.With(p.guardClientAuth).HandleFunc(p.oidc.IntrospectionEndpoint().Relative(), p.introspect)
	r.With(publicAPICORS, p.guardClientAuth).Handle(p.oidc.RevocationEndpoint().Relative(), revokeIgnoresHint(p.oidc))
	r.With(p.rateLimit, p.guardClientAuth).Handle(p.oidc.DeviceAuthorizationEndpoint().Relative(), p.oidc)
	r.Get("/device", p.deviceEnter)
	r.With(p.rateLimit).Post("/device", p.deviceLookup)
	r.With(p.rateLimit).Post("/device/confirm", p.deviceConfirm)
	r.Get("/consent", p.consentPage)
	r.With(p.rateLimit).Post("/consent", p.consent)
	r.Handle(p.oidc.EndSessionEndpoint().Relative(), p.endSession(p.oidc))
	r.With(publicAPICORS).Handle(p.oidc.KeysEndpoint().Relative(), p.cacheJWKS(p.oidc))
	r.Mount("/", p.pageWhenNotFound(p.oidc))
	if p.issuerPath == "" {
		return r
	}
	outer := chi.NewRouter()
	outer.Use(securityHeaders(p.secure))
	outer.Mount(p.issuerPath, http.StripPrefix(p.issuerPath, r))
	outer.NotFound(p.notFound)
	return outer
}

func (p *Provider) notFound(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, &pageView{page: pageNotFound, status: http.StatusNotFound})
}

// pageWhenNotFound answers with the not-found page where next (zitadel's
// router, which knows the protocol's endpoints) has nothing at the path, the
// issuer's root included.
func (p *Provider) pageWhenNotFound(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nf := &notFoundWriter{ResponseWriter: w}
		next.ServeHTTP(nf, r)
		if nf.notFound {
			p.notFound(w, r)
		}
	})
}

// notFoundWriter swallows a 404 answer so that a page can replace it.
type notFoundWriter struct {
	http.ResponseWriter
	notFound, wrote bool
}

func (n *notFoundWriter) WriteHeader(code int) {
	if code == http.StatusNotFound && !n.wrote {
		n.notFound = true
		return
	}
	n.wrote = true
	n.ResponseWriter.WriteHeader(code)
}

func (n *notFoundWriter) Write(b []byte) (int, error) {
	if n.notFound {
		return len(b), nil
	}
	n.wrote = true
	return n.ResponseWriter.Write(b)
}

func (n *notFoundWriter) Unwrap() http.ResponseWriter { return n.ResponseWriter }

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

func (p *Provider) connector(id string) (Connector, bool) {
	for _, c := range p.settings().connectors {
		if c.ID == id {
			return c, true
		}
	}
	return Connector{}, false
}

// Maintain runs the provider's housekeeping until ctx is done: the signing-key
// schedule is advanced at once and every five minutes, expired records are swept
// every minute, and the stored-records gauges are refreshed every minute.
// Replicas sharing a database advance keys and sweep under leases (see
// maintain.go), so one of them at a time does each; every replica counts, so
// each one's gauges are current.
func (p *Provider) Maintain(ctx context.Context) {
	go p.underLease(ctx, leaseKeys, 5*time.Minute, true, func(ctx context.Context) {
		if _, err := p.keys.Advance(ctx); err != nil && ctx.Err() == nil {
			p.log.ErrorContext(ctx, "advance signing keys", "err", err)
		}
	})
	go p.underLease(ctx, leaseSweeper, time.Minute, false, p.sweep)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		p.countRecords(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep removes expired records once.
func (p *Provider) sweep(ctx context.Context) {
	res, err := p.store.GarbageCollect(ctx, p.now())
	p.metrics.Sweep(err)
	if err != nil {
		if ctx.Err() == nil {
			p.log.ErrorContext(ctx, "sweep expired records", "err", err)
		}
		return
	}
	if !res.IsZero() {
		p.log.DebugContext(ctx, "swept expired records", "authRequests", res.AuthRequests,
			"codes", res.AuthCodes, "accessTokens", res.AccessTokens, "refreshTokens", res.RefreshTokens,
			"upstreamStates", res.UpstreamStates, "sessions", res.Sessions)
	}
}

// countRecords updates the stored-records gauges (the count is cheap: no
// record is decoded).
func (p *Provider) countRecords(ctx context.Context) {
	if p.metrics == nil {
		return
	}
	counts, err := p.store.Count(ctx)
	if err != nil {
		p.log.WarnContext(ctx, "count stored records", "err", err)
		return
	}
	p.metrics.StoredRecords(counts)
}

// Wait blocks until background deliveries (back-channel logouts) are done; call
// it after the HTTP server has shut down.
func (p *Provider) Wait() { p.background.Wait() }

// cacheJWKS lets relying parties cache the key set only as long as the rotation
// schedule allows: a next key is published well before it signs.
func (p *Provider) cacheJWKS(next http.Handler) http.Handler {
	value := fmt.Sprintf("public, max-age=%d", int(p.keys.JWKSMaxAge().Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", value)
		next.ServeHTTP(w, r)
	})
}

func (p *Provider) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (p *Provider) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := p.Ready(ctx); err != nil {
		p.log.ErrorContext(ctx, "readiness", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// Ready reports whether the provider can serve logins: storage answers and a
// signing key is loaded.
func (p *Provider) Ready(ctx context.Context) error {
	if err := p.store.Ping(ctx); err != nil {
		return fmt.Errorf("storage unreachable: %w", err)
	}
	if _, err := p.keys.SigningKey(ctx); err != nil {
		return fmt.Errorf("no signing key: %w", err)
	}
	return nil
}

// signingKey adapts keys.SigningKey to zitadel.
type signingKey struct{ keys.SigningKey }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.Algorithm }
func (k signingKey) Key() any                                    { return k.Private }
func (k signingKey) ID() string                                  { return k.SigningKey.ID }

// publicKey adapts a JWKS entry to zitadel.
type publicKey struct{ jose.JSONWebKey }

func (k publicKey) ID() string { return k.KeyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.JSONWebKey.Algorithm)
}
func (k publicKey) Use() string { return k.JSONWebKey.Use }
func (k publicKey) Key() any    { return k.JSONWebKey.Key }
