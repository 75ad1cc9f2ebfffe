// Package admin is what an operator can do to a dingbridge: register and change
// clients, rotate signing keys, disable users, preview a person's claims.
//
// API is the whole of it. Service implements it over storage (the CLI uses it
// directly when no server runs); Handler and Serve put a Service on a local unix
// socket next to the database, and Dial returns an API that talks to that socket
// (the CLI uses it while the server holds the database, since bbolt lets one
// process open the file). Both behave alike, errors included: an *Error keeps its
// kind across the socket, so the CLI maps it to the same exit code either way.
package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/op"
)

// API is every admin operation.
type API interface {
	// AddClient registers a client. A confidential client's secret is in the
	// answer and nowhere else: only its HMAC is stored.
	AddClient(ctx context.Context, spec ClientSpec) (ClientWithSecret, error)
	// ListClients lists static clients (from the configuration file) and
	// registered ones, by ID.
	ListClients(ctx context.Context) ([]Client, error)
	GetClient(ctx context.Context, id string) (Client, error)
	UpdateClient(ctx context.Context, id string, update ClientUpdate) (Client, error)
	// DeleteClient removes a registered client; the provider refuses its codes
	// and tokens from then on.
	DeleteClient(ctx context.Context, id string) error
	// RotateClientSecret replaces a confidential client's secret; the old one
	// stops working at once. The new one is in the answer only.
	RotateClientSecret(ctx context.Context, id string) (ClientWithSecret, error)

	ListKeys(ctx context.Context) ([]keys.SigningKeyInfo, error)
	// RotateKeys makes a new signing key active at once; the old one stays in the
	// JWKS until every token it signed has expired.
	RotateKeys(ctx context.Context) (keys.SigningKeyInfo, error)

	ListUsers(ctx context.Context) ([]User, error)
	GetUser(ctx context.Context, subject string) (User, error)
	// DisableUser refuses the person's next login, refresh and userinfo at once.
	DisableUser(ctx context.Context, subject string) (User, error)
	EnableUser(ctx context.Context, subject string) (User, error)
	// AddUser provisions a person before their first login, under the subject
	// given; their first matching DingTalk login binds the record.
	AddUser(ctx context.Context, spec UserSpec) (User, error)
	// ImportUsers provisions many, all or nothing (see ImportReport).
	ImportUsers(ctx context.Context, specs []UserSpec) (ImportReport, error)
	// LinkUser binds a user to a DingTalk unionid; UnlinkUser undoes it and
	// logs the account out.
	LinkUser(ctx context.Context, subject, unionID string) (User, error)
	UnlinkUser(ctx context.Context, subject string) (User, error)
	// SyncUsers asks the directory about every user of a connector with
	// requireMembership; with apply, leavers are disabled and logged out.
	SyncUsers(ctx context.Context, apply bool) (op.SyncReport, error)

	// Claims previews what subject would get at client: the id_token's claims
	// and userinfo, for the given scopes (nil: every scope the provider offers).
	Claims(ctx context.Context, clientID, subject string, scopes []string) (ClaimsPreview, error)
}

// ClientSpec describes a client to register.
type ClientSpec struct {
	// ID is generated when empty.
	ID                     string   `json:"id,omitempty"`
	Name                   string   `json:"name"`
	Public                 bool     `json:"public,omitempty"`
	RedirectURIs           []string `json:"redirectURIs"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectURIs,omitempty"`
	// GrantTypes: authorization_code, refresh_token and device_code (RFC 8628);
	// empty means authorization_code and refresh_token.
	GrantTypes []string `json:"grantTypes,omitempty"`
	// RequirePKCE makes a confidential client use PKCE too (public ones always must).
	RequirePKCE bool `json:"requirePKCE,omitempty"`
	// RequireConsent asks each person once which scopes the client may have.
	RequireConsent bool `json:"requireConsent,omitempty"`
	// BackchannelLogoutURI receives a signed logout token when a session ends.
	BackchannelLogoutURI string `json:"backchannelLogoutURI,omitempty"`
	// Scopes the client may ask for beyond the standard ones.
	Scopes []string `json:"scopes,omitempty"`
	// Lifetimes; zero means the configured default.
	IDTokenLifetime     Duration `json:"idTokenLifetime,omitzero"`
	AccessTokenLifetime Duration `json:"accessTokenLifetime,omitzero"`
}

// ClientUpdate changes a registered client; fields left empty or nil stay as they are.
type ClientUpdate struct {
	Name                         *string   `json:"name,omitempty"`
	AddRedirectURIs              []string  `json:"addRedirectURIs,omitempty"`
	RemoveRedirectURIs           []string  `json:"removeRedirectURIs,omitempty"`
	AddPostLogoutRedirectURIs    []string  `json:"addPostLogoutRedirectURIs,omitempty"`
	RemovePostLogoutRedirectURIs []string  `json:"removePostLogoutRedirectURIs,omitempty"`
	IDTokenLifetime              *Duration `json:"idTokenLifetime,omitempty"` // 0: back to the default
	AccessTokenLifetime          *Duration `json:"accessTokenLifetime,omitempty"`
}

// IsEmpty reports whether u changes nothing.
func (u ClientUpdate) IsEmpty() bool {
	return u.Name == nil && len(u.AddRedirectURIs) == 0 && len(u.RemoveRedirectURIs) == 0 &&
		len(u.AddPostLogoutRedirectURIs) == 0 && len(u.RemovePostLogoutRedirectURIs) == 0 &&
		u.IDTokenLifetime == nil && u.AccessTokenLifetime == nil
}

// Client is a client as an operator sees it: never its secret or its hash.
type Client struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Static clients come from the configuration file's staticClients and can
	// only be changed there.
	Static                 bool     `json:"static,omitempty"`
	Public                 bool     `json:"public,omitempty"`
	RedirectURIs           []string `json:"redirectURIs"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectURIs,omitempty"`
	GrantTypes             []string `json:"grantTypes,omitempty"`
	Scopes                 []string `json:"scopes,omitempty"`
	RequirePKCE            bool     `json:"requirePKCE,omitempty"`
	RequireConsent         bool     `json:"requireConsent,omitempty"`
	BackchannelLogoutURI   string   `json:"backchannelLogoutURI,omitempty"`
	// Lifetimes are omitted when the configured default applies.
	IDTokenLifetime     Duration  `json:"idTokenLifetime,omitzero"`
	AccessTokenLifetime Duration  `json:"accessTokenLifetime,omitzero"`
	CreatedAt           time.Time `json:"createdAt,omitzero"`
	UpdatedAt           time.Time `json:"updatedAt,omitzero"`
}

// ClientWithSecret is a client with the secret just generated for it (empty for
// public clients). It is answered once; dingbridge keeps only a hash.
type ClientWithSecret struct {
	Client
	Secret string `json:"secret,omitempty"`
}

// User is one person who logged in.
type User struct {
	Subject     string    `json:"subject"`
	ConnectorID string    `json:"connector"`
	UnionID     string    `json:"unionid,omitempty"`
	OpenID      string    `json:"openid,omitempty"`
	UserID      string    `json:"userid,omitempty"`
	CorpID      string    `json:"corpID,omitempty"`
	Nick        string    `json:"nick,omitempty"`
	AvatarURL   string    `json:"avatarURL,omitempty"`
	Email       string    `json:"email,omitempty"`
	Phone       string    `json:"phone,omitempty"`
	Title       string    `json:"title,omitempty"`
	JobNumber   string    `json:"jobNumber,omitempty"`
	OrgEmail    string    `json:"orgEmail,omitempty"`
	Groups      []string  `json:"groups,omitempty"`
	FirstLogin  time.Time `json:"firstLogin"`
	LastLogin   time.Time `json:"lastLogin"`
	Disabled    bool      `json:"disabled"`
	// Why and when the user was disabled: by an administrator, or because the
	// organisation's directory no longer lists them ("directory: …").
	DisabledAt     time.Time `json:"disabledAt,omitzero"`
	DisabledReason string    `json:"disabledReason,omitempty"`
	// Username is the preferred_username chosen at the first login.
	Username string `json:"username,omitempty"`
	// ProvisionedAt: added by an administrator; BoundAt: when the record got its unionid.
	ProvisionedAt       time.Time `json:"provisionedAt,omitzero"`
	BoundAt             time.Time `json:"boundAt,omitzero"`
	MembershipCheckedAt time.Time `json:"membershipCheckedAt,omitzero"`
}

// ClaimsPreview is what a person would get at a client if they logged in now.
type ClaimsPreview struct {
	ClientID string   `json:"client"`
	Subject  string   `json:"subject"`
	Scopes   []string `json:"scopes"`
	// IDToken holds the id_token's claims; nonce and at_hash depend on the
	// request and are left out.
	IDToken  map[string]any `json:"idToken"`
	Userinfo map[string]any `json:"userinfo"`
	// Notes say why the person would get nothing at all (a disabled user) or
	// what differs in a real login.
	Notes []string `json:"notes,omitempty"`
}

// Duration is a time.Duration written as "1h30m0s" in JSON and YAML, so that
// output is readable and input is what people type.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a Go duration string ("90s", "1h").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write it like 90s, 15m or 1h30m", b)
	}
	*d = Duration(v)
	return nil
}
