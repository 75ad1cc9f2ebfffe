package dingtalk

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dingbridge/dingbridge/upstream"
)

// Login modes (Config.Mode).
const (
	ModeOAuth2 = "oauth2" // login.dingtalk.com, userAccessToken, contact/users/me
	ModeSNS    = "sns"    // legacy scan login: connect/qrconnect, sns/getuserinfo_bycode
)

// How Identity.Groups names the departments (Config.Groups).
const (
	GroupsName = "name" // the department's name: "后端组"
	GroupsID   = "id"   // its id: "1234"
	GroupsPath = "path" // its names from the top, the organisation left out: "研发部/后端组"
)

// DefaultDirectoryCacheTTL is how long department names are kept.
const DefaultDirectoryCacheTTL = 10 * time.Minute

// Config is one DingTalk app logging people in, and optionally an organisation
// whose directory and in-app login it uses.
type Config struct {
	// Mode is the login flow: ModeOAuth2 (default; login.dingtalk.com) or ModeSNS
	// (the legacy scan login of apps made on DingTalk's old platform).
	Mode         string
	ClientID     string    // the app's Client ID (AppKey); in sns mode the legacy app's appid
	ClientSecret string    // the app's Client Secret (AppSecret); in sns mode its appSecret
	Endpoints    Endpoints // empty fields: DingTalk's public hosts and script
	// Scope (oauth2 mode) is sent to DingTalk as is (space-separated) and must contain
	// "openid". "openid corpid" also has the person pick an organisation, which
	// becomes Identity.CorpID; with AllowedCorpIDs, corpid is added if missing.
	// Empty: "openid".
	Scope string
	// CorpID is the organisation. In oauth2 mode it preselects the organisation at
	// login (sent as corpId; Scope needs corpid). With corp credentials it enables the
	// in-app login, the directory (Identity.UserID, Title, Groups, …) and membership.
	CorpID string
	// CorpAppKey and CorpAppSecret are an internal app of CorpID, for the app access
	// token the in-app login and the directory use. In oauth2 mode they default to
	// ClientID and ClientSecret (an internal app's Client ID is its AppKey); in sns
	// mode they must be given for anything that needs CorpID.
	CorpAppKey, CorpAppSecret string
	// AllowedCorpIDs, if any, are the only organisations whose people may log in: in
	// oauth2 mode the one picked at login, in-app CorpID. The legacy sns login says no
	// organisation, so sns mode refuses this; use RequireMembership there.
	AllowedCorpIDs []string
	// RequireMembership refuses people CorpID's directory does not list, or lists as
	// inactive. Needs CorpID (and corp credentials).
	RequireMembership bool
	// Groups is how Identity.Groups names departments: GroupsName (default),
	// GroupsID or GroupsPath.
	Groups string
	// DirectoryCacheTTL is how long department names are kept; 0: DefaultDirectoryCacheTTL.
	DirectoryCacheTTL time.Duration
	// HTTPClient makes the DingTalk calls; share one (NewHTTPClient) across
	// connectors. nil: the connector makes its own with NewHTTPClient.
	HTTPClient *http.Client

	Timeout time.Duration // per DingTalk call; 0: DefaultTimeout
	Metrics Observer      // nil: calls are not observed
	// Now is the clock for SNS signatures, the app token's expiry and the directory
	// cache; nil: time.Now.
	Now func() time.Time
}

// Connector logs people in with DingTalk: an upstream.Connector in the configured
// mode, and an upstream.InAppConnector when it has an organisation's internal app.
// It is safe for concurrent use.
type Connector struct {
	mode    string
	login   *Client // the login app
	authURL string  // oauth2: <Login>/oauth2/auth
	scope   string  // oauth2
	corpID  string
	allowed []string
	// corp is CorpID's internal app (the login client itself when they are the same
	// app, so they share the app token); nil without CorpID.
	corp              *Client
	requireMembership bool
	dir               *directory // nil without corp
	jsapi             string
}

var (
	_ upstream.InAppConnector    = (*Connector)(nil)
	_ upstream.MembershipChecker = (*Connector)(nil)
)

// New checks cfg; its errors name the field at fault.
func New(cfg Config) (*Connector, error) {
	mode := cfg.Mode
	if mode == "" {
		mode = ModeOAuth2
	}
	if mode != ModeOAuth2 && mode != ModeSNS {
		return nil, fmt.Errorf("dingtalk config: Mode %q is neither %q nor %q", cfg.Mode, ModeOAuth2, ModeSNS)
	}
	for _, id := range cfg.AllowedCorpIDs {
		if strings.TrimSpace(id) == "" {
			return nil, errors.New("dingtalk config: AllowedCorpIDs has an empty entry")
		}
	}
	scope, err := checkScope(cfg, mode)
	if err != nil {
		return nil, err
	}

	corpKey, corpSecret := cfg.CorpAppKey, cfg.CorpAppSecret
	switch {
	case corpKey == "" && corpSecret != "":
		return nil, errors.New("dingtalk config: CorpAppSecret is set but CorpAppKey is empty")
	case corpKey != "" && corpSecret == "":
		return nil, errors.New("dingtalk config: CorpAppKey is set but CorpAppSecret is empty")
	case corpKey != "" && cfg.CorpID == "":
		return nil, errors.New("dingtalk config: CorpAppKey is set but CorpID is empty; name the organisation the app belongs to")
	case corpKey == "" && mode == ModeOAuth2:
		corpKey, corpSecret = cfg.ClientID, cfg.ClientSecret
	case corpKey == "" && cfg.CorpID != "":
		return nil, errors.New("dingtalk config: CorpID needs CorpAppKey and CorpAppSecret in sns mode (an internal app of the organisation)")
	}
	if cfg.RequireMembership && cfg.CorpID == "" {
		return nil, errors.New("dingtalk config: RequireMembership needs CorpID, the organisation whose directory to ask")
	}
	if cfg.CorpID != "" && len(cfg.AllowedCorpIDs) > 0 && !slices.Contains(cfg.AllowedCorpIDs, cfg.CorpID) {
		return nil, fmt.Errorf("dingtalk config: CorpID %s is not in AllowedCorpIDs, yet its people log in in-app; add it or drop CorpID", cfg.CorpID)
	}
	switch cfg.Groups {
	case "", GroupsName, GroupsID, GroupsPath:
	default:
		return nil, fmt.Errorf("dingtalk config: Groups %q is none of %q, %q, %q", cfg.Groups, GroupsName, GroupsID, GroupsPath)
	}
	if cfg.DirectoryCacheTTL < 0 {
		return nil, fmt.Errorf("dingtalk config: DirectoryCacheTTL %s is negative", cfg.DirectoryCacheTTL)
	}

	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = NewHTTPClient() // one pool for the login and the corp app
	}
	clientConfig := ClientConfig{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoints:    cfg.Endpoints,
		HTTPClient:   httpClient,
		Timeout:      cfg.Timeout,
		Metrics:      cfg.Metrics,
		Now:          cfg.Now,
	}
	login, err := NewClient(clientConfig)
	if err != nil {
		return nil, err
	}
	c := &Connector{
		mode:              mode,
		login:             login,
		authURL:           login.Endpoints().Login + "/oauth2/auth",
		scope:             scope,
		corpID:            cfg.CorpID,
		allowed:           slices.Clone(cfg.AllowedCorpIDs),
		requireMembership: cfg.RequireMembership,
		jsapi:             login.Endpoints().JSAPI,
	}
	if cfg.CorpID == "" {
		return c, nil
	}
	c.corp = login
	if corpKey != cfg.ClientID || corpSecret != cfg.ClientSecret {
		clientConfig.ClientID, clientConfig.ClientSecret = corpKey, corpSecret
		if c.corp, err = NewClient(clientConfig); err != nil {
			return nil, err
		}
	}
	c.dir = newDirectory(c.corp, cfg.Groups, cfg.DirectoryCacheTTL)
	return c, nil
}

// checkScope returns the oauth2 scope to send, or "" in sns mode.
func checkScope(cfg Config, mode string) (string, error) {
	if mode == ModeSNS {
		if cfg.Scope != "" {
			return "", fmt.Errorf("dingtalk config: Scope %q applies to oauth2 mode only; the sns login always asks for snsapi_login", cfg.Scope)
		}
		if len(cfg.AllowedCorpIDs) > 0 {
			return "", errors.New("dingtalk config: AllowedCorpIDs cannot be checked in sns mode: the legacy login says no organisation; use CorpID with RequireMembership, or mode oauth2")
		}
		return "", nil
	}
	scopes := strings.Fields(cfg.Scope)
	if len(scopes) == 0 {
		scopes = []string{"openid"}
	}
	if !slices.Contains(scopes, "openid") {
		return "", fmt.Errorf("dingtalk config: Scope %q must contain openid", cfg.Scope)
	}
	if len(cfg.AllowedCorpIDs) > 0 && !slices.Contains(scopes, "corpid") {
		scopes = append(scopes, "corpid") // the organisation picked is what the policy checks
	}
	if cfg.CorpID != "" && !slices.Contains(scopes, "corpid") {
		return "", fmt.Errorf("dingtalk config: CorpID is set but Scope %q lacks corpid; add it (\"openid corpid\") or drop CorpID", strings.Join(scopes, " "))
	}
	return strings.Join(scopes, " "), nil
}

// LoginURL is DingTalk's login page for the configured mode. DingTalk comes back to
// callbackURL, which must be registered as a redirect URL of the app, with state and
// a code (oauth2: authCode and code; sns: code).
func (c *Connector) LoginURL(state, callbackURL string) (string, error) {
	if callbackURL == "" {
		return "", errors.New("dingtalk login URL: empty callback URL")
	}
	if state == "" {
		return "", errors.New("dingtalk login URL: empty state")
	}
	if c.mode == ModeSNS {
		return c.snsLoginURL(state, callbackURL), nil
	}
	return c.oauth2LoginURL(state, callbackURL), nil
}

// HandleCallback turns DingTalk's redirect into an Identity and applies the access
// policy. The caller has checked state.
func (c *Connector) HandleCallback(ctx context.Context, r *http.Request) (upstream.Identity, error) {
	callback := c.oauth2Callback
	if c.mode == ModeSNS {
		callback = c.snsCallback
	}
	id, err := callback(ctx, r)
	if err != nil {
		return upstream.Identity{}, err
	}
	return untrustedIdentity(id)
}

// checkOrganisation applies AllowedCorpIDs to the organisation picked at login.
func (c *Connector) checkOrganisation(corpID string) error {
	if len(c.allowed) == 0 || slices.Contains(c.allowed, corpID) {
		return nil
	}
	return &upstream.PolicyError{Reason: upstream.WrongOrganisation, CorpID: corpID, Allowed: slices.Clone(c.allowed)}
}

// withDirectory adds what CorpID's directory says about the person logged in with
// oauth2 or sns, and applies RequireMembership. Without a directory, id is unchanged.
func (c *Connector) withDirectory(ctx context.Context, id upstream.Identity) (upstream.Identity, error) {
	if c.dir == nil {
		return id, nil
	}
	userID, err := c.corp.UserIDByUnionID(ctx, id.UnionID)
	if errors.Is(err, ErrNotInDirectory) {
		return c.notMember(id)
	}
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("read dingtalk directory: %w", err)
	}
	user, err := c.corp.DirectoryUser(ctx, userID)
	if errors.Is(err, ErrNotInDirectory) {
		return c.notMember(id)
	}
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("read dingtalk directory: %w", err)
	}
	return c.member(ctx, id, user)
}

// notMember is the answer for a person CorpID's directory does not list: refused
// under RequireMembership, else id without directory fields.
func (c *Connector) notMember(id upstream.Identity) (upstream.Identity, error) {
	if c.requireMembership {
		return upstream.Identity{}, &upstream.PolicyError{Reason: upstream.NotMember, CorpID: id.CorpID, Allowed: []string{c.corpID}}
	}
	return id, nil
}

// member fills id from the directory's entry for the person. The directory's
// organisation becomes Identity.CorpID, the one UserID and Groups belong to; its
// avatar, mobile and email fill what the login left empty.
func (c *Connector) member(ctx context.Context, id upstream.Identity, user DirectoryUser) (upstream.Identity, error) {
	if !user.Active && c.requireMembership {
		return upstream.Identity{}, &upstream.PolicyError{Reason: upstream.Inactive, CorpID: c.corpID, Allowed: []string{c.corpID}}
	}
	groups, err := c.dir.groups(ctx, user.DeptIDs)
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("read dingtalk departments: %w", err)
	}
	id.UserID = user.UserID
	id.CorpID = c.corpID
	id.Title = user.Title
	id.JobNumber = user.JobNumber
	id.OrgEmail = user.OrgEmail
	id.DirectoryEmail = user.Email
	id.Groups = groups
	id.Nick = cmp.Or(id.Nick, user.Name)
	id.AvatarURL = cmp.Or(id.AvatarURL, user.AvatarURL)
	id.Email = cmp.Or(id.Email, user.Email)
	id.Phone = cmp.Or(id.Phone, phoneE164(user.Mobile, user.StateCode))
	return id, nil
}

// RequiresMembership reports whether the connector admits only CorpID's members.
func (c *Connector) RequiresMembership() bool { return c.requireMembership }

// CheckMembership asks CorpID's directory again whether the person is an active
// member (topapi/user/getbyunionid, then topapi/v2/user/get): the same rule as
// at login. A person it no longer lists, or lists as inactive, gives a
// *upstream.PolicyError; DingTalk failing gives its error (upstream.ErrUnavailable
// when busy).
func (c *Connector) CheckMembership(ctx context.Context, unionID string) error {
	if c.dir == nil {
		return errors.New("dingtalk membership check: the connector has no CorpID")
	}
	if unionID == "" {
		return errors.New("dingtalk membership check: empty unionid")
	}
	userID, err := c.corp.UserIDByUnionID(ctx, unionID)
	if errors.Is(err, ErrNotInDirectory) {
		return &upstream.PolicyError{Reason: upstream.NotMember, Allowed: []string{c.corpID}}
	}
	if err != nil {
		return fmt.Errorf("read dingtalk directory: %w", err)
	}
	user, err := c.corp.DirectoryUser(ctx, userID)
	if errors.Is(err, ErrNotInDirectory) {
		return &upstream.PolicyError{Reason: upstream.NotMember, Allowed: []string{c.corpID}}
	}
	if err != nil {
		return fmt.Errorf("read dingtalk directory: %w", err)
	}
	if !user.Active {
		return &upstream.PolicyError{Reason: upstream.Inactive, CorpID: c.corpID, Allowed: []string{c.corpID}}
	}
	return nil
}
