package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/config"
	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/op/telemetry"
	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/bolt"
	"github.com/dingbridge/dingbridge/storage/timed"
	"github.com/dingbridge/dingbridge/upstream"
	"github.com/dingbridge/dingbridge/upstream/dingtalk"
)

func serveCommand(env config.Env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the OpenID Provider",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serveFile(cmd.Context(), path, env, cmd.ErrOrStderr(), nil)
		},
	}
	addConfigFlag(cmd, &path, env)
	return cmd
}

// serveFile is `dingbridge serve`: it loads the configuration file at path, logs
// to logs as the file says, and serves until ctx is done. ln, when not nil, is
// served instead of the file's listen address; it lets a test reserve a free
// port before it writes the file, so the file's issuer can name that port.
func serveFile(ctx context.Context, path string, env config.Env, logs io.Writer, ln net.Listener) error {
	cfg, err := config.Load(path, env)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	logger := newLogger(logs, cfg.Logging)
	defer useDefaultLogger(logger)()
	// SIGHUP re-reads the file, as `dingbridge reload` does.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return runServe(ctx, cfg, logger, ln, func() (*config.Config, error) { return config.Load(path, env) }, hup)
}

// runServe serves the provider, the admin socket and (when configured) the
// telemetry listener until ctx is done: on ln, or on cfg.Listen when ln is nil.
// load reads the configuration again; a value on hup reloads with it.
func runServe(ctx context.Context, cfg *config.Config, logger *slog.Logger, ln net.Listener, load func() (*config.Config, error), hup <-chan os.Signal) error {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen on %s: %w: set listen in the configuration file to a free address", cfg.Listen, err)
		}
	}
	defer ln.Close() // on early errors; serveHTTP's shutdown closes it otherwise
	db, err := openStorage(ctx, cfg.Storage, false)
	if err != nil {
		return err
	}
	defer db.Close()
	var metrics *telemetry.Metrics // nil: telemetry is off and nothing is recorded
	var store storage.Storage = db
	var telemetryLn net.Listener
	if cfg.Telemetry.Listen != "" {
		if telemetryLn, err = net.Listen("tcp", cfg.Telemetry.Listen); err != nil {
			return fmt.Errorf("telemetry: listen on %s: %w: set telemetry.listen to a free address", cfg.Telemetry.Listen, err)
		}
		defer telemetryLn.Close()
		metrics = telemetry.New()
		store = timed.New(db, metrics)
	}
	km, err := newKeyManager(ctx, store, cfg.Keys, shared(cfg.Storage))
	if err != nil {
		return err
	}
	provider, err := newProvider(ctx, cfg, store, km, metrics, logger)
	if err != nil {
		return err
	}
	// The admin service shares the provider's storage and key manager, so
	// what the CLI changes through the socket is what the provider serves.
	svc, err := admin.NewService(adminServiceConfig(cfg, store, km, provider))
	if err != nil {
		return err
	}
	file, _ := db.(*bolt.Storage) // nil for postgres: backups are pg_dump's
	srv := &running{cfg: cfg, load: load, db: file, store: store, keys: km, provider: provider, admin: svc, metrics: metrics, log: logger}
	// With postgres there is no socket unless one is configured: the CLI
	// works on the database itself.
	adminCtx, stopAdmin := context.WithCancel(ctx)
	adminDone := make(chan error, 1)
	if cfg.AdminSocket == "" {
		adminDone <- nil
	} else {
		adminLn, err := admin.Listen(cfg.AdminSocket)
		if err != nil {
			stopAdmin()
			return err
		}
		go func() { adminDone <- admin.ServeListener(adminCtx, adminLn, serverAdmin{svc, srv}, logger) }()
	}
	telemetryDone := make(chan error, 1)
	if telemetryLn != nil {
		go func() {
			telemetryDone <- serveHTTP(adminCtx, telemetryLn, telemetry.Handler(metrics, provider.Ready, logger), nil, logger)
		}()
	} else {
		telemetryDone <- nil
	}
	go srv.reloadOn(adminCtx, hup)
	logger.Info("dingbridge serving", "version", version, "issuer", cfg.Issuer,
		"listen", ln.Addr().String(), "adminSocket", cfg.AdminSocket, "telemetry", cfg.Telemetry.Listen)
	err = serveHTTP(ctx, ln, provider, provider, logger)
	// Stop the admin socket before the deferred db.Close: its requests use the store.
	stopAdmin()
	for _, done := range []chan error{adminDone, telemetryDone} {
		if otherErr := <-done; otherErr != nil && err == nil {
			err = otherErr
		}
	}
	return err
}

// keyRetention is how long a retired signing key stays in the JWKS; no token
// may live longer (the admin service caps per-client lifetimes with it).
const keyRetention = 24 * time.Hour

// newKeyManager returns the key manager over store, with key material ensured.
// A store that other processes share (replicas) gets a key manager that
// notices their changes quickly, and a rotation that waits for that before the
// new key signs.
func newKeyManager(ctx context.Context, store storage.Storage, cfg config.Keys, shared bool) (*keys.Manager, error) {
	km, err := keys.New(store, keyOptions(cfg, shared))
	if err != nil {
		return nil, err
	}
	if err := km.Ensure(ctx); err != nil {
		return nil, err
	}
	return km, nil
}

// newConnectors builds the configured upstream logins. serve and `config check`
// both call it, so a file that check accepts has connectors that start.
// observer, when not nil, is told about every DingTalk call.
func newConnectors(cfg *config.Config, observer dingtalk.Observer) ([]op.Connector, error) {
	var connectors []op.Connector
	// One pool of kept-alive connections to DingTalk for every connector.
	httpClient := dingtalk.NewHTTPClient()
	for _, c := range cfg.Connectors {
		conn, err := dingtalk.New(dingtalk.Config{
			Mode:              c.Mode,
			ClientID:          c.ClientID,
			ClientSecret:      c.ClientSecret,
			Scope:             c.Scope,
			CorpID:            c.CorpID,
			CorpAppKey:        c.CorpAppKey,
			CorpAppSecret:     c.CorpAppSecret,
			AllowedCorpIDs:    c.AllowedCorpIDs,
			RequireMembership: c.RequireMembership,
			Groups:            cfg.Claims.Groups,
			DirectoryCacheTTL: time.Duration(c.DirectoryCacheTTL),
			Timeout:           time.Duration(c.Timeout),
			Metrics:           observer,
			HTTPClient:        httpClient,
			Endpoints: dingtalk.Endpoints{
				Login: c.Endpoints.Login, API: c.Endpoints.API, OAPI: c.Endpoints.OAPI, JSAPI: c.Endpoints.JSAPI,
				FrameLogin: c.Endpoints.FrameLogin, SNSFrameLogin: c.Endpoints.SNSFrameLogin,
			},
		})
		if err != nil {
			return nil, fmt.Errorf("connectors: %s: %w", c.ID, err)
		}
		method := upstream.MethodOAuth2
		if c.Mode == dingtalk.ModeSNS {
			method = upstream.MethodSNS
		}
		connectors = append(connectors, op.Connector{ID: c.ID, Name: c.Name, Connector: conn, Method: method,
			Embedded: c.LoginPage == "embedded"})
	}
	return connectors, nil
}

// newProvider wires the configuration into an op.Provider; metrics may be nil.
func newProvider(ctx context.Context, cfg *config.Config, store storage.Storage, km *keys.Manager, metrics *telemetry.Metrics, logger *slog.Logger) (*op.Provider, error) {
	connectors, err := newConnectors(cfg, observerOf(metrics))
	if err != nil {
		return nil, err
	}
	return op.New(ctx, providerConfig(cfg, connectors, store, km, metrics, logger))
}

// providerConfig is the provider's view of cfg, for New and for Reconfigure.
func providerConfig(cfg *config.Config, connectors []op.Connector, store storage.Storage, km *keys.Manager, metrics *telemetry.Metrics, logger *slog.Logger) op.Config {
	return op.Config{
		Issuer:        cfg.Issuer,
		Connectors:    connectors,
		Storage:       store,
		Keys:          km,
		StaticClients: staticClients(cfg),
		Claims:        claimsPolicy(cfg),
		Lifetimes: op.Lifetimes{
			IDToken:                time.Duration(cfg.Expiry.IDToken),
			AccessToken:            time.Duration(cfg.Expiry.AccessToken),
			RefreshToken:           time.Duration(cfg.Expiry.RefreshToken),
			RefreshTokenAbsolute:   time.Duration(cfg.Expiry.RefreshTokenAbsolute),
			RefreshTokenReuseGrace: time.Duration(cfg.Expiry.RefreshTokenReuseGrace),
			SessionIdle:            time.Duration(cfg.Expiry.SessionIdle),
			SessionAbsolute:        time.Duration(cfg.Expiry.SessionAbsolute),
			AuthRequest:            time.Duration(cfg.Expiry.AuthRequest),
			AuthCode:               time.Duration(cfg.Expiry.AuthCode),
			UpstreamState:          time.Duration(cfg.Expiry.UpstreamState),
			DeviceCode:             time.Duration(cfg.Expiry.DeviceCode),
			DevicePollInterval:     time.Duration(cfg.Expiry.DevicePollInterval),
		},
		RateLimit:    rateLimit(cfg),
		Registration: op.Registration{Closed: cfg.Registration == "closed", Contact: cfg.RegistrationContact},
		Branding:     op.Branding{Title: cfg.Branding.Title, LogoURL: cfg.Branding.LogoURL},
		Membership:   op.Membership{Recheck: time.Duration(cfg.MembershipRecheck), Grace: time.Duration(cfg.MembershipGrace)},
		Metrics:      metrics,
		Logger:       logger,
	}
}

func rateLimit(cfg *config.Config) op.RateLimit {
	rl := op.RateLimit{PerSecond: cfg.RateLimit.PerSecond, Burst: cfg.RateLimit.Burst}
	for _, p := range cfg.TrustedProxies { // validated by config
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr := netip.MustParseAddr(p)
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		rl.TrustedProxies = append(rl.TrustedProxies, prefix)
	}
	return rl
}

func staticClients(cfg *config.Config) []op.StaticClient {
	var clients []op.StaticClient
	for _, c := range cfg.StaticClients {
		var grants []string
		for _, g := range c.GrantTypes {
			t, _ := op.ParseGrantType(g) // validated by config
			grants = append(grants, t)
		}
		clients = append(clients, op.StaticClient{
			ID: c.ID, Name: c.Name, Secret: c.Secret, Public: c.Public, RequirePKCE: c.RequirePKCE,
			RequireConsent: c.RequireConsent, GrantTypes: grants,
			RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			BackchannelLogoutURI: c.BackchannelLogoutURI,
		})
	}
	return clients
}

func claimsPolicy(cfg *config.Config) op.ClaimsPolicy {
	return op.ClaimsPolicy{Subject: cfg.Claims.Subject, EmailVerified: cfg.Claims.EmailVerified,
		OrgEmailAsEmail: cfg.Claims.OrgEmailAsEmail, PreferredUsername: cfg.Claims.PreferredUsername}
}

// serveHTTP serves handler on ln until ctx is done, then drains connections.
// With a provider, its housekeeping runs meanwhile and its deliveries are
// waited for.
func serveHTTP(ctx context.Context, ln net.Listener, handler http.Handler, provider *op.Provider, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if provider != nil {
		sweepCtx, stopSweep := context.WithCancel(ctx)
		defer stopSweep()
		go provider.Maintain(sweepCtx)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining connections")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if provider != nil {
		provider.Wait() // back-channel logouts already under way
	}
	return nil
}

// useDefaultLogger makes logger the default (zitadel's op logs through
// slog.Default) and returns the function that puts the previous one back.
func useDefaultLogger(logger *slog.Logger) (restore func()) {
	prev := slog.Default()
	slog.SetDefault(logger)
	return func() { slog.SetDefault(prev) }
}

func newLogger(w io.Writer, cfg config.Logging) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(cfg.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
