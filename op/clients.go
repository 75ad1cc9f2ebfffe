package op

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/dingbridge/dingbridge/storage"
)

// StaticClient is a client declared in the configuration file. It never reaches
// storage; its secret is compared in memory.
type StaticClient struct {
	ID                     string
	Name                   string
	Secret                 string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI receives a logout token when a session that logged in
	// to this client ends (OpenID Connect Back-Channel Logout 1.0).
	BackchannelLogoutURI string
	Public               bool
	// RequirePKCE makes a confidential client use PKCE too (public ones always must).
	RequirePKCE bool
	// RequireConsent asks each person once which scopes the client may have.
	RequireConsent bool
	// GrantTypes the client may use; empty: authorization_code and refresh_token.
	// The device flow is GrantTypeDeviceCode.
	GrantTypes []string
}

// GrantTypeDeviceCode is the device authorization grant (RFC 8628).
const GrantTypeDeviceCode = string(oidc.GrantTypeDeviceCode)

// GrantTypeNames are the grants a client may be given, as operators write them.
var GrantTypeNames = []string{"authorization_code", "refresh_token", "device_code"}

// ParseGrantType turns an operator's name for a grant (one of GrantTypeNames, or
// the device grant's URN) into what the protocol calls it.
func ParseGrantType(name string) (string, error) {
	switch name {
	case "authorization_code", "refresh_token":
		return name, nil
	case "device_code", GrantTypeDeviceCode:
		return GrantTypeDeviceCode, nil
	}
	return "", fmt.Errorf("grant type %q is not supported: use authorization_code, refresh_token or device_code", name)
}

// client is what zitadel's op sees of a registered client.
type client struct {
	storage.Client
	static          bool
	staticSecret    [32]byte // sha256 of a static client's secret
	loginURL        func(authRequestID string) string
	idTokenLifetime time.Duration
}

var _ zop.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.ID }
func (c *client) RedirectURIs() []string           { return c.Client.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.Client.PostLogoutRedirectURIs }
func (c *client) LoginURL(id string) string        { return c.loginURL(id) }
func (c *client) AccessTokenType() zop.AccessTokenType {
	return zop.AccessTokenTypeBearer
}
func (c *client) IDTokenLifetime() time.Duration { return c.idTokenLifetime }
func (c *client) DevMode() bool                  { return false }
func (c *client) ClockSkew() time.Duration       { return 0 }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

// IsScopeAllowed admits non-standard scopes: groups for every client, others
// only where the client was registered with them.
func (c *client) IsScopeAllowed(scope string) bool {
	return scope == ScopeGroups || slices.Contains(c.Scopes, scope)
}

// IDTokenUserinfoClaimsAssertion is true so that the id_token carries the same
// profile claims as userinfo: many RPs (Grafana, oauth2-proxy) read only one of them.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

// ApplicationType: public clients are native apps or SPAs; zitadel's native rules
// allow their loopback redirect ports to vary (RFC 8252 §7.3) and custom schemes.
func (c *client) ApplicationType() zop.ApplicationType {
	if c.Public {
		return zop.ApplicationTypeNative
	}
	return zop.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic // zitadel accepts client_secret_post for these too
}

func (c *client) GrantTypes() []oidc.GrantType {
	if len(c.Client.GrantTypes) == 0 {
		return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	}
	types := make([]oidc.GrantType, len(c.Client.GrantTypes))
	for i, t := range c.Client.GrantTypes {
		types[i] = oidc.GrantType(t)
	}
	return types
}

// redirectURIRegistered reports whether uri may receive this client's responses:
// an exact match, or for public clients a loopback URI that differs only in port.
func (c *client) redirectURIRegistered(uri string) bool {
	if slices.Contains(c.Client.RedirectURIs, uri) {
		return true
	}
	if !c.Public {
		return false
	}
	got, ok := loopback(uri)
	if !ok {
		return false
	}
	for _, registered := range c.Client.RedirectURIs {
		want, ok := loopback(registered)
		if ok && want.Scheme == got.Scheme && want.Hostname() == got.Hostname() &&
			want.Path == got.Path && want.RawQuery == got.RawQuery {
			return true
		}
	}
	return false
}

func loopback(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return nil, false
	}
	ip := net.ParseIP(u.Hostname())
	return u, u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
}

// clients finds clients (static first, then storage) and checks their secrets.
type clients struct {
	static    map[string]*client
	store     storage.Storage
	defaults  Lifetimes
	loginURL  func(string) string
	secretKey []byte // ClientSecretKey
	log       *slog.Logger
}

func newClients(static []StaticClient, store storage.Storage, defaults Lifetimes, loginURL func(string) string, secretKey []byte, log *slog.Logger) *clients {
	cs := &clients{
		static: make(map[string]*client, len(static)), store: store, defaults: defaults,
		loginURL: loginURL, secretKey: secretKey, log: log,
	}
	for _, s := range static {
		cs.static[s.ID] = &client{
			Client: storage.Client{
				ID: s.ID, Name: s.Name, Public: s.Public, RequirePKCE: s.RequirePKCE, RedirectURIs: s.RedirectURIs,
				PostLogoutRedirectURIs: s.PostLogoutRedirectURIs, BackchannelLogoutURI: s.BackchannelLogoutURI,
				RequireConsent: s.RequireConsent, GrantTypes: s.GrantTypes,
			},
			static:          true,
			staticSecret:    sha256.Sum256([]byte(s.Secret)),
			loginURL:        loginURL,
			idTokenLifetime: defaults.IDToken,
		}
	}
	return cs
}

// errUnknownClient is returned for a client id nobody registered.
var errUnknownClient = errors.New("unknown client")

// name is what people are shown for a client: its name, or its id if it has none.
func (cs *clients) name(ctx context.Context, id string) (string, error) {
	c, err := cs.get(ctx, id)
	if err != nil {
		return "", err
	}
	if c.Name == "" {
		return c.ID, nil
	}
	return c.Name, nil
}

func (cs *clients) get(ctx context.Context, id string) (*client, error) {
	if c, ok := cs.static[id]; ok {
		return c, nil
	}
	stored, err := cs.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("client %q: %w", id, errUnknownClient)
	}
	if err != nil {
		return nil, fmt.Errorf("load client %q: %w", id, err)
	}
	c := &client{Client: stored, loginURL: cs.loginURL, idTokenLifetime: cs.defaults.IDToken}
	if stored.IDTokenLifetime > 0 {
		c.idTokenLifetime = stored.IDTokenLifetime
	}
	return c, nil
}
