// Package storage defines what dingbridge keeps: the records and one interface over them.
//
// The interface is deliberately plain — records in, records out, a few atomic
// operations where the protocol needs them (single use, compare-and-swap). Protocol
// decisions (what a token means, who may have one) live in package op. Every
// backend must pass storagetest.Run.
//
// # What a crash may lose
//
// Records come in two durability classes, and a backend may treat them differently:
//
//   - Durable: clients, users, SSO sessions, access and refresh tokens (rotated
//     tokens' tombstones included), consents, keys, grant revocations and leases.
//     A call that returned nil has been committed so that it survives a crash of
//     the process or the machine (kill -9, power loss): bolt commits and fsyncs,
//     PostgreSQL commits with synchronous_commit on.
//   - Ephemeral flow state: auth requests, authorization codes, upstream states
//     and device authorizations. A crash may lose any of them; the person whose
//     login was in flight presses "log in" again. They keep every other promise
//     (atomic single use, expiry, visibility to every process sharing the
//     backend), but no fsync is spent on them.
//
// Between the two, a login's own writes: CompleteLogin (the person's user
// record and new SSO session, when they come back from DingTalk) and
// UpdateSession (an SSO session used again) are visible to every caller at
// once, but a backend may make them durable only with its next durable commit
// — any call that acknowledges a durable write, which on the login's path is
// the IssueTokens of the same login's code exchange — and at the latest
// MaxLoginWriteBack after they returned. So a login costs one durable commit,
// shared with concurrent logins where the backend can: the token response
// acknowledges the tokens, the user and the session together. A crash before
// it may lose the session of a login whose code was never exchanged, and the
// user's login details it recorded; the person logs in again, as for a lost
// auth request. bolt holds them in memory until then; PostgreSQL commits them
// with synchronous_commit off, which the next synchronous commit on the
// server (or its WAL writer, within a second) makes durable.
package storage

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound: no such record, or it has expired.
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists: a record with that ID is already stored.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrAlreadyUsed: a single-use record (an authorization code) was claimed before.
	ErrAlreadyUsed = errors.New("storage: already used")
	// ErrRevoked: the tokens belong to a grant that RevokeGrant revoked.
	ErrRevoked = errors.New("storage: grant revoked")
	// ErrCapacity: the backend holds as many live records of the kind as its
	// Limits allow; the caller should ask again later (temporarily_unavailable).
	ErrCapacity = errors.New("storage: at capacity")
)

// MaxLoginWriteBack is the longest a backend may keep CompleteLogin's and
// UpdateSession's writes from being durable after they returned, when no
// durable commit comes sooner.
const MaxLoginWriteBack = time.Second

// Limits bound the ephemeral records a backend holds, so a flood of /authorize
// or device requests cannot exhaust memory or disk. A zero field takes the
// default from DefaultLimits.
type Limits struct {
	AuthRequests   int // live auth requests
	UpstreamStates int // live upstream states
	Devices        int // live device authorizations
}

// DefaultLimits are far above what a busy server holds (an auth request lives
// 15 minutes: 100,000 of them is 110 logins started every second, none finished).
var DefaultLimits = Limits{AuthRequests: 100_000, UpstreamStates: 100_000, Devices: 10_000}

// WithDefaults fills the zero fields from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	if l.AuthRequests <= 0 {
		l.AuthRequests = DefaultLimits.AuthRequests
	}
	if l.UpstreamStates <= 0 {
		l.UpstreamStates = DefaultLimits.UpstreamStates
	}
	if l.Devices <= 0 {
		l.Devices = DefaultLimits.Devices
	}
	return l
}

// Storage is everything dingbridge persists. Implementations are safe for concurrent
// use. The package comment says which records are durable and which ephemeral. Get*, Update*, Claim*/Consume* and the token IssueTokens replaces treat a
// record whose Expiry has passed as absent (ErrNotFound) even before the sweeper
// removed it. Create* of a taken ID stores nothing and returns ErrAlreadyExists.
//
// Update callbacks (UpdateClient, UpdateAuthRequest, UpsertUser, UpdateKeySet) may
// run more than once and on another goroutine: they must be pure functions of their
// argument, and may not change the record's ID or subject.
// storagetest.Run states the rest of the contract as tests.
type Storage interface {
	// Clients registered by the admin CLI (static clients from config never reach storage).
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient applies update atomically to the stored client.
	UpdateClient(ctx context.Context, id string, update func(Client) (Client, error)) error
	DeleteClient(ctx context.Context, id string) error

	// Authorization requests, from /authorize until the code is exchanged.
	// Ephemeral. CreateAuthRequest may fail with ErrCapacity (see Limits).
	CreateAuthRequest(ctx context.Context, a AuthRequest) error
	GetAuthRequest(ctx context.Context, id string) (AuthRequest, error)
	UpdateAuthRequest(ctx context.Context, id string, update func(AuthRequest) (AuthRequest, error)) error
	DeleteAuthRequest(ctx context.Context, id string) error

	// Authorization codes. GetAuthCode reads without claiming. ClaimAuthCode marks
	// the code used and returns it; a second claim returns the record together with
	// ErrAlreadyUsed, so the caller can revoke what the first use issued (the grant
	// of a code's tokens is its AuthRequestID). Ephemeral.
	CreateAuthCode(ctx context.Context, c AuthCode) error
	GetAuthCode(ctx context.Context, id string) (AuthCode, error)
	ClaimAuthCode(ctx context.Context, id string) (AuthCode, error)

	// Tokens, durable. IssueTokens stores an access token and, if refresh is not
	// nil, a refresh token, in one durable transaction (group-committed across
	// concurrent callers where the backend can). A non-zero rotate names the
	// refresh token being rotated, see Rotation; when the rotation is refused
	// nothing is stored. When the access token's grant is revoked (RevokeGrant,
	// until its end) nothing is stored and the error is ErrRevoked.
	IssueTokens(ctx context.Context, access AccessToken, refresh *RefreshToken, rotate Rotation) error
	GetAccessToken(ctx context.Context, id string) (AccessToken, error)
	// GetRefreshToken returns rotated tokens too (RotatedAt set): presenting one
	// again is how a stolen token is recognised. A rotated token may come back as
	// a tombstone: ID, GrantID, ClientID, Subject, RotatedAt, Successor and Expiry
	// are set, the other fields may be zero.
	GetRefreshToken(ctx context.Context, id string) (RefreshToken, error)
	DeleteAccessToken(ctx context.Context, id string) error
	DeleteRefreshToken(ctx context.Context, id string) error
	// RevokeGrant deletes every access and refresh token whose GrantID is grantID
	// and records the grant as revoked until until: IssueTokens for it then stores
	// nothing and returns ErrRevoked, whatever the interleaving (a RevokeGrant
	// that returned before IssueTokens began makes it fail; tokens an IssueTokens
	// stored before RevokeGrant began are deleted by it). until should be the end
	// of the longest lifetime any token of the grant could still be issued in.
	// Revoking again keeps the later until. GarbageCollect forgets the revocation
	// after until.
	RevokeGrant(ctx context.Context, grantID string, until time.Time) error
	// RevokeSubject deletes every access token, refresh token and session of a
	// person (disabling them must not be undone by enabling them again).
	RevokeSubject(ctx context.Context, subject string) error
	// RevokeClient deletes every auth request, code, access and refresh token,
	// device authorization and consent of a client (a client registered later under the same ID starts with nothing).
	RevokeClient(ctx context.Context, clientID string) error

	// Users, one per upstream identity, keyed by subject. Durable.
	// UpsertUser calls update with the stored user (found=false and a zero User if
	// there is none) and stores what it returns, atomically.
	UpsertUser(ctx context.Context, subject string, update func(u User, found bool) (User, error)) (User, error)
	GetUser(ctx context.Context, subject string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// FindUsers returns the users key identifies, ordered by subject (none: an
	// empty slice, no error). It reads an index that every write of a user keeps
	// in the same transaction, never a scan of the users, so a login may call it.
	// A key that sets none, or more than one, of its values is an error.
	FindUsers(ctx context.Context, key UserKey) ([]User, error)

	// CompleteLogin records a person who just logged in upstream, in one
	// transaction that may be made durable later (the package comment says
	// when): it applies l.Update to the user l.Subject exactly as UpsertUser does,
	// deletes the session l.ReplaceSessionID if it is set (an absent one is
	// fine), and creates l.Session if l.Session.ID is set. If Update returns an
	// error nothing is stored and that error is returned (errors.Is works). A
	// taken session ID stores nothing and is ErrAlreadyExists. It returns the
	// user as stored.
	CompleteLogin(ctx context.Context, l Login) (User, error)

	// SSO sessions at dingbridge, keyed by a hash of the session cookie. Durable.
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	// UpdateSession may be made durable later, as CompleteLogin (the package
	// comment says when); CreateSession and DeleteSession are durable on return.
	UpdateSession(ctx context.Context, id string, update func(Session) (Session, error)) error
	DeleteSession(ctx context.Context, id string) error
	// SessionsOf returns the person's live sessions, in no particular order, so
	// that the clients logged in through them can be told when the person is
	// logged out everywhere. Rare (offboarding): a backend may scan.
	SessionsOf(ctx context.Context, subject string) ([]Session, error)

	// Upstream login states: created when a person is sent to DingTalk, consumed
	// (deleted and returned, once) when DingTalk sends them back. Ephemeral;
	// CreateUpstreamState may fail with ErrCapacity.
	CreateUpstreamState(ctx context.Context, s UpstreamState) error
	ConsumeUpstreamState(ctx context.Context, id string) (UpstreamState, error)

	// Device authorizations (RFC 8628), keyed by a hash of the device code; the
	// person finds theirs by user code. Create fails with ErrAlreadyExists when the
	// ID or the user code is taken by a stored record, so the caller draws again.
	// Ephemeral; CreateDeviceAuthorization may fail with ErrCapacity.
	CreateDeviceAuthorization(ctx context.Context, d DeviceAuthorization) error
	GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (DeviceAuthorization, error)
	// UpdateDeviceAuthorization applies update atomically and returns what was
	// stored. An error from update stores nothing and is returned wrapped.
	UpdateDeviceAuthorization(ctx context.Context, id string, update func(DeviceAuthorization) (DeviceAuthorization, error)) (DeviceAuthorization, error)

	// Consents: the scopes a person allowed a client, one record per person and
	// client. RevokeClient deletes a client's consents too. Durable.
	GetConsent(ctx context.Context, subject, clientID string) (Consent, error)
	PutConsent(ctx context.Context, c Consent) error

	// Keys: the whole set is read and replaced atomically, so two processes
	// rotating at once cannot both win. Durable.
	GetKeySet(ctx context.Context) (KeySet, error)
	// UpdateKeySet calls update with the stored set (zero KeySet if none) and stores
	// the result atomically; if update returns an error nothing is stored. The
	// callback increments Version when it changes anything.
	UpdateKeySet(ctx context.Context, update func(KeySet) (KeySet, error)) error

	// AcquireLease reports whether holder holds the lease name after the call:
	// newly, or renewed for another ttl because it held it already. It is false
	// while another holder's lease has not expired. Durable. Replicas use it so
	// that one of them at a time sweeps or rotates keys.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)

	// GarbageCollect removes every record whose Expiry is before now, and every
	// grant revocation whose until is before now. Its cost follows what expired,
	// not what is stored (an expiry index, not a scan).
	GarbageCollect(ctx context.Context, now time.Time) (GCResult, error)
	// Count returns how many live records of each kind are stored, cheaply (no
	// record decoded), for metrics.
	Count(ctx context.Context) (RecordCounts, error)
	// Ping reports whether the storage can serve requests.
	Ping(ctx context.Context) error
	Close() error
}

// Client is an OAuth client registered at runtime.
type Client struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	SecretHash  string `json:"secretHash,omitempty"` // see op.HashClientSecret (older: bcrypt); empty for public clients
	Public      bool   `json:"public,omitempty"`
	RequirePKCE bool   `json:"requirePKCE,omitempty"` // public clients always need PKCE
	// RequireConsent: people are asked once which scopes this client may have.
	RequireConsent         bool          `json:"requireConsent,omitempty"`
	RedirectURIs           []string      `json:"redirectURIs"`
	PostLogoutRedirectURIs []string      `json:"postLogoutRedirectURIs,omitempty"`
	BackchannelLogoutURI   string        `json:"backchannelLogoutURI,omitempty"`
	GrantTypes             []string      `json:"grantTypes,omitempty"` // empty: authorization_code and refresh_token
	Scopes                 []string      `json:"scopes,omitempty"`     // extra scopes beyond the standard ones
	IDTokenLifetime        time.Duration `json:"idTokenLifetime,omitempty"`
	AccessTokenLifetime    time.Duration `json:"accessTokenLifetime,omitempty"`
	CreatedAt              time.Time     `json:"createdAt"`
	UpdatedAt              time.Time     `json:"updatedAt"`
}

// AuthRequest is one /authorize request, as validated by the provider.
type AuthRequest struct {
	ID                  string   `json:"id"`
	ClientID            string   `json:"clientID"`
	RedirectURI         string   `json:"redirectURI"`
	Scopes              []string `json:"scopes"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	ResponseType        string   `json:"responseType"`
	ResponseMode        string   `json:"responseMode,omitempty"`
	CodeChallenge       string   `json:"codeChallenge,omitempty"`
	CodeChallengeMethod string   `json:"codeChallengeMethod,omitempty"`
	Prompt              []string `json:"prompt,omitempty"`
	MaxAge              *uint    `json:"maxAge,omitempty"`
	UILocales           []string `json:"uiLocales,omitempty"`
	LoginHint           string   `json:"loginHint,omitempty"`
	HintSubject         string   `json:"hintSubject,omitempty"` // subject of a valid id_token_hint
	// DeviceID is set when the request logs a person in for a device flow (the ID
	// of the DeviceAuthorization) rather than for a redirect back to the client.
	DeviceID  string    `json:"deviceID,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	Expiry    time.Time `json:"expiry"`

	// Set when the person has logged in upstream.
	Done        bool      `json:"done,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	AuthTime    time.Time `json:"authTime,omitzero"`
	AMR         []string  `json:"amr,omitempty"`
	ConnectorID string    `json:"connectorID,omitempty"`
	SessionID   string    `json:"sessionID,omitempty"` // the SSO session that logged the person in
	// ConsentPending: the person is logged in and is being asked for consent;
	// Subject and the fields above are set, Done is not yet.
	ConsentPending bool `json:"consentPending,omitempty"`
}

// AuthCode is an issued authorization code. ID is a hash of the code, never the code.
type AuthCode struct {
	ID            string `json:"id"`
	AuthRequestID string `json:"authRequestID"`
	ClientID      string `json:"clientID"`
	// What authenticating a replay of the code takes once its auth request is
	// gone: the client presenting it again must still show the redirect URI
	// and, for a public client, the PKCE verifier.
	RedirectURI         string    `json:"redirectURI,omitempty"`
	CodeChallenge       string    `json:"codeChallenge,omitempty"`
	CodeChallengeMethod string    `json:"codeChallengeMethod,omitempty"`
	ClaimedAt           time.Time `json:"claimedAt,omitzero"`
	Expiry              time.Time `json:"expiry"`
}

// Rotation names the refresh token a refresh replaces. The replaced token is kept,
// marked RotatedAt and naming its Successor (the new refresh token's ID), until it
// expires, so a later presentation of it is recognised as reuse; it may be kept
// as a tombstone only (see GetRefreshToken).
//
// Rotating an already rotated token again succeeds only within Grace of its
// rotation and while its Successor has not been rotated itself (a client that
// retried the same request and never saw the answer): the successor is then
// deleted and the new token stored in its place, so a chain has exactly one
// live refresh token. Otherwise IssueTokens returns ErrAlreadyUsed and stores
// nothing. A missing or expired token is ErrNotFound. Concurrent refreshes with
// one token and Grace 0: exactly one succeeds.
type Rotation struct {
	ID    string
	Grace time.Duration
}

// Login is what CompleteLogin records.
type Login struct {
	Subject string
	// Update is applied to the stored user as in UpsertUser.
	Update func(u User, found bool) (User, error)
	// Session, when its ID is set, is created.
	Session Session
	// ReplaceSessionID, when set, names a session to delete (the browser's
	// previous one: a new login always gets a new session ID).
	ReplaceSessionID string
}

// AccessToken is the server side of an opaque access token.
type AccessToken struct {
	ID        string    `json:"id"`
	GrantID   string    `json:"grantID"` // ties together every token one login produced
	ClientID  string    `json:"clientID"`
	Subject   string    `json:"subject"`
	Scopes    []string  `json:"scopes"`
	Audience  []string  `json:"audience"`
	CreatedAt time.Time `json:"createdAt"`
	Expiry    time.Time `json:"expiry"`
}

// RefreshToken is the server side of a refresh token. ID is a hash of the token.
type RefreshToken struct {
	ID          string    `json:"id"`
	GrantID     string    `json:"grantID"`
	ClientID    string    `json:"clientID"`
	Subject     string    `json:"subject"`
	Scopes      []string  `json:"scopes"`
	Audience    []string  `json:"audience"`
	AMR         []string  `json:"amr,omitempty"`
	AuthTime    time.Time `json:"authTime"`
	ConnectorID string    `json:"connectorID,omitempty"`
	SessionID   string    `json:"sessionID,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	Expiry      time.Time `json:"expiry"`
	// GrantExpiry is the absolute end of the login's refresh chain: rotation
	// slides Expiry forward but never past it.
	GrantExpiry time.Time `json:"grantExpiry,omitzero"`
	// RotatedAt is set once the token has been exchanged for a new one, and
	// Successor then names the refresh token that replaced it ("" if none did).
	RotatedAt time.Time `json:"rotatedAt,omitzero"`
	Successor string    `json:"successor,omitempty"`
}

// User is one person as DingTalk identified them, keyed by Subject.
type User struct {
	Subject     string `json:"subject"`
	ConnectorID string `json:"connectorID"`
	UnionID     string `json:"unionID,omitempty"`
	OpenID      string `json:"openID,omitempty"`
	UserID      string `json:"userID,omitempty"` // the organisation's staff id
	CorpID      string `json:"corpID,omitempty"`
	Nick        string `json:"nick,omitempty"`
	AvatarURL   string `json:"avatarURL,omitempty"`
	Email       string `json:"email,omitempty"`
	Phone       string `json:"phone,omitempty"` // E.164
	// From the organisation's directory, when the connector reads one.
	Title      string    `json:"title,omitempty"`
	JobNumber  string    `json:"jobNumber,omitempty"`
	OrgEmail   string    `json:"orgEmail,omitempty"`
	Groups     []string  `json:"groups,omitempty"`
	FirstLogin time.Time `json:"firstLogin"` // zero until the first login
	LastLogin  time.Time `json:"lastLogin"`
	Disabled   bool      `json:"disabled,omitempty"`
	// DisabledAt and DisabledReason say when and why Disabled was set (an
	// administrator, or the organisation's directory no longer listing the person).
	DisabledAt     time.Time `json:"disabledAt,omitzero"`
	DisabledReason string    `json:"disabledReason,omitempty"`

	// Username is the preferred_username chosen once for the person (claims
	// preferredUsername pinyin), kept so that it never changes under the apps.
	Username string `json:"username,omitempty"`
	// ProvisionedAt is set when an administrator added the person before their
	// first login; until the record is bound to a DingTalk account (UnionID) it is
	// found by what the administrator knew: UserID with CorpID, Phone or Email.
	ProvisionedAt time.Time `json:"provisionedAt,omitzero"`
	// BoundAt is when UnionID was bound to a provisioned record: at the first
	// login that matched it, or by an administrator.
	BoundAt time.Time `json:"boundAt,omitzero"`
	// MembershipCheckedAt is when the organisation's directory last confirmed the
	// person as an active member (at login, or when a session or refresh token was
	// used again).
	MembershipCheckedAt time.Time `json:"membershipCheckedAt,omitzero"`
}

// UserKey is one thing a person is known by, for FindUsers. Exactly one of
// UnionID, UserID (with CorpID), Phone, Email and Username is set. The index
// holds every user's UnionID, CorpID+UserID, Phone, Email and OrgEmail (both
// under Email, compared without regard to case) and Username.
type UserKey struct {
	UnionID  string
	UserID   string // the organisation's staff id, unique within CorpID
	CorpID   string // required with UserID
	Phone    string // E.164, as User.Phone
	Email    string
	Username string
}

// Session is a person's single sign-on session at dingbridge: while it lives,
// another login needs no trip to DingTalk. ID is a hash of the cookie value.
type Session struct {
	ID          string    `json:"id"`
	Subject     string    `json:"subject"`
	ConnectorID string    `json:"connectorID"`
	AuthTime    time.Time `json:"authTime"` // when the person last logged in at DingTalk
	AMR         []string  `json:"amr,omitempty"`
	// Clients that were issued tokens in this session: back-channel logout tells them.
	Clients   []string  `json:"clients,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	LastUsed  time.Time `json:"lastUsed"`
	// Expiry is the earlier of the idle and the absolute end; each use moves it.
	Expiry time.Time `json:"expiry"`
}

// UpstreamState binds a DingTalk round trip to the pending auth request and to the
// browser that started it. ID and BrowserBinding are hashes, never the raw values.
type UpstreamState struct {
	ID             string    `json:"id"`
	AuthRequestID  string    `json:"authRequestID"`
	ConnectorID    string    `json:"connectorID"`
	BrowserBinding string    `json:"browserBinding"`
	Expiry         time.Time `json:"expiry"`
}

// DeviceAuthorization is one device flow (RFC 8628), from the device's request
// until its tokens are issued. ID is a hash of the device code.
type DeviceAuthorization struct {
	ID       string   `json:"id"`
	UserCode string   `json:"userCode"` // normalised: upper case, no dashes
	ClientID string   `json:"clientID"`
	Scopes   []string `json:"scopes"`
	// State: DevicePending until the person decides, then DeviceApproved or
	// DeviceDenied; DeviceSpent once tokens were issued.
	State     string    `json:"state"`
	CreatedAt time.Time `json:"createdAt"`
	// CodeExpiry ends the flow; the record itself lives until Expiry (later), so a
	// device polling late is told expired_token rather than "unknown".
	CodeExpiry time.Time `json:"codeExpiry"`
	Expiry     time.Time `json:"expiry"`
	// Polling: when the device last asked, and how often it may (slow_down raises it).
	LastPoll     time.Time     `json:"lastPoll,omitzero"`
	PollInterval time.Duration `json:"pollInterval"`

	// Set when the person approved.
	Subject     string    `json:"subject,omitempty"`
	AuthTime    time.Time `json:"authTime,omitzero"`
	AMR         []string  `json:"amr,omitempty"`
	ConnectorID string    `json:"connectorID,omitempty"`
	SessionID   string    `json:"sessionID,omitempty"`
}

// States of a DeviceAuthorization.
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
	DeviceSpent    = "spent"
)

// Consent is what a person allowed a client to receive, remembered so they are
// asked once.
type Consent struct {
	Subject   string    `json:"subject"`
	ClientID  string    `json:"clientID"`
	Scopes    []string  `json:"scopes"`
	GrantedAt time.Time `json:"grantedAt"`
}

// KeySet is the provider's key material.
type KeySet struct {
	// SigningKeys, any order; package keys decides which one signs.
	SigningKeys []SigningKey `json:"signingKeys"`
	// TokenKey encrypts opaque access tokens and codes (32 bytes).
	TokenKey []byte `json:"tokenKey,omitempty"`
	// Version increases on every update; useful to see whether anything changed.
	Version uint64 `json:"version"`
}

// SigningKey is one asymmetric key pair, the private half as a JWK (JSON).
type SigningKey struct {
	ID         string    `json:"id"` // kid
	Algorithm  string    `json:"alg"`
	PrivateJWK []byte    `json:"privateJWK"`
	CreatedAt  time.Time `json:"createdAt"`
	// NotBefore: the key is published from CreatedAt but signs only from NotBefore.
	NotBefore time.Time `json:"notBefore"`
	// RetiredAt: zero while the key may sign; once set, the key only verifies.
	RetiredAt time.Time `json:"retiredAt,omitzero"`
	// Expiry: after it the key is no longer published (every token it signed has expired).
	Expiry time.Time `json:"expiry,omitzero"`
}

// GCResult counts what GarbageCollect removed.
type GCResult struct {
	AuthRequests   int
	AuthCodes      int
	AccessTokens   int
	RefreshTokens  int
	UpstreamStates int
	Sessions       int
	Devices        int
}

// IsZero reports whether nothing was removed.
func (r GCResult) IsZero() bool { return r == GCResult{} }

// RecordCounts is how many live records of each kind a storage holds.
// RefreshTokens counts tokens not yet rotated where the backend can tell cheaply,
// else every stored refresh token.
type RecordCounts struct {
	AuthRequests   int
	AuthCodes      int
	AccessTokens   int
	RefreshTokens  int
	Sessions       int
	Users          int
	Clients        int
	UpstreamStates int
	Devices        int
	Consents       int
}
