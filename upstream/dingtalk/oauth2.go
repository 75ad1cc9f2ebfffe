package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dingbridge/dingbridge/upstream"
)

// Config is one DingTalk app logging people in with DingTalk's OAuth2 login
// (flow A: login.dingtalk.com → userAccessToken → contact/users/me).
type Config struct {
	ClientID     string    // the app's Client ID (AppKey)
	ClientSecret string    // the app's Client Secret (AppSecret)
	Endpoints    Endpoints // empty fields: DingTalk's public hosts
	// Scope is sent to DingTalk as is (space-separated) and must contain "openid".
	// "openid corpid" also has the person pick an organisation, which becomes
	// Identity.CorpID. Empty: "openid".
	Scope string
	// CorpID, with "corpid" in Scope, preselects that organisation at login (sent as corpId).
	CorpID     string
	HTTPClient *http.Client  // nil: a client using http.DefaultTransport
	Timeout    time.Duration // per DingTalk call; 0: DefaultTimeout
}

// Connector is the upstream.Connector for DingTalk's OAuth2 login.
type Connector struct {
	client  *Client
	authURL string // <Login>/oauth2/auth
	scope   string
	corpID  string
}

var _ upstream.Connector = (*Connector)(nil)

// New checks cfg; its errors name the field at fault.
func New(cfg Config) (*Connector, error) {
	scope := strings.Join(strings.Fields(cfg.Scope), " ")
	if scope == "" {
		scope = "openid"
	}
	scopes := strings.Fields(scope)
	if !slices.Contains(scopes, "openid") {
		return nil, fmt.Errorf("dingtalk config: Scope %q must contain openid", cfg.Scope)
	}
	if cfg.CorpID != "" && !slices.Contains(scopes, "corpid") {
		return nil, fmt.Errorf("dingtalk config: CorpID is set but Scope %q lacks corpid; add it (\"openid corpid\") or drop CorpID", scope)
	}
	client, err := NewClient(ClientConfig{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoints:    cfg.Endpoints,
		HTTPClient:   cfg.HTTPClient,
		Timeout:      cfg.Timeout,
	})
	if err != nil {
		return nil, err
	}
	return &Connector{
		client:  client,
		authURL: client.Endpoints().Login + "/oauth2/auth",
		scope:   scope,
		corpID:  cfg.CorpID,
	}, nil
}

// LoginURL is DingTalk's authorize page. DingTalk comes back to callbackURL, which
// must be registered as a redirect URL of the app, with authCode and state.
func (c *Connector) LoginURL(state, callbackURL string) (string, error) {
	if callbackURL == "" {
		return "", errors.New("dingtalk login URL: empty callback URL")
	}
	if state == "" {
		return "", errors.New("dingtalk login URL: empty state")
	}
	q := url.Values{
		"redirect_uri":  {callbackURL},
		"response_type": {"code"},
		"client_id":     {c.client.clientID},
		"scope":         {c.scope},
		"state":         {state},
		// Required by the docs; without it users/me has been seen to answer 403.
		"prompt": {"consent"},
	}
	if c.corpID != "" {
		q.Set("corpId", c.corpID)
	}
	// Encode writes a space as "+"; DingTalk documents the scope as "openid%20corpid".
	// A literal "+" was already escaped to %2B, so this touches only spaces.
	return c.authURL + "?" + strings.ReplaceAll(q.Encode(), "+", "%20"), nil
}

// HandleCallback turns DingTalk's redirect into an Identity: code → user token → profile.
// The caller has checked state.
func (c *Connector) HandleCallback(ctx context.Context, r *http.Request) (upstream.Identity, error) {
	q := r.URL.Query()
	if reason := q.Get("error"); reason != "" {
		return upstream.Identity{}, fmt.Errorf("dingtalk login: %w: DingTalk says %q", upstream.ErrAccessDenied, safeText(reason, 100))
	}
	// DingTalk documents authCode; its redirects also carry the same value as code.
	code := q.Get("authCode")
	if code == "" {
		code = q.Get("code")
	}
	if code == "" {
		return upstream.Identity{}, errors.New("dingtalk callback has neither authCode nor code nor error parameter")
	}

	token, err := c.client.UserAccessToken(ctx, code)
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("exchange dingtalk code: %w", err)
	}
	me, err := c.client.Me(ctx, token.AccessToken) // Me guarantees a unionId
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("read dingtalk profile: %w", err)
	}
	return upstream.Identity{
		UnionID:   me.UnionID,
		OpenID:    me.OpenID,
		CorpID:    token.CorpID,
		Nick:      me.Nick,
		AvatarURL: me.AvatarURL,
		Email:     me.Email,
		Phone:     phoneE164(me.Mobile, me.StateCode),
	}, nil
}

// phoneE164 joins DingTalk's mobile and stateCode ("13800138000", "86") into
// "+8613800138000". DingTalk may leave stateCode out for mainland numbers, so it
// defaults to 86. Anything that is not digits gives "" rather than a wrong claim.
func phoneE164(mobile, stateCode string) string {
	mobile = strings.NewReplacer(" ", "", "-", "").Replace(mobile)
	stateCode = strings.TrimPrefix(strings.TrimSpace(stateCode), "+")
	if mobile == "" {
		return ""
	}
	if stateCode == "" {
		stateCode = "86"
	}
	phone := stateCode + mobile
	if strings.Trim(phone, "0123456789") != "" || len(phone) > 15 {
		return ""
	}
	return "+" + phone
}
