package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/dingbridge/dingbridge/upstream"
)

// Today's OAuth2 login (flow A, shared/dingtalk-api.md §2): login.dingtalk.com →
// userAccessToken → contact/users/me, then the organisation's directory if the
// connector reads one.

// oauth2LoginURL is DingTalk's authorize page.
func (c *Connector) oauth2LoginURL(state, callbackURL string) string {
	q := url.Values{
		"redirect_uri":  {callbackURL},
		"response_type": {"code"},
		"client_id":     {c.login.clientID},
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
	return c.authURL + "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
}

// oauth2Callback turns DingTalk's redirect into an Identity: code → user token →
// organisation allowed? → profile → directory.
func (c *Connector) oauth2Callback(ctx context.Context, r *http.Request) (upstream.Identity, error) {
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

	token, err := c.login.UserAccessToken(ctx, code)
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("exchange dingtalk code: %w", err)
	}
	if err := c.checkOrganisation(token.CorpID); err != nil {
		return upstream.Identity{}, err
	}
	me, err := c.login.Me(ctx, token.AccessToken) // Me guarantees a unionId
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("read dingtalk profile: %w", err)
	}
	return c.withDirectory(ctx, upstream.Identity{
		UnionID:   me.UnionID,
		OpenID:    me.OpenID,
		CorpID:    token.CorpID,
		Nick:      me.Nick,
		AvatarURL: me.AvatarURL,
		Email:     me.Email,
		Phone:     phoneE164(me.Mobile, me.StateCode),
		Method:    upstream.MethodOAuth2,
	})
}

// phoneSeparators are what people type inside a phone number. Built once: a
// Replacer builds its tables on first use, which cost more than a login's
// other string work.
var phoneSeparators = strings.NewReplacer(" ", "", "-", "")

// phoneE164 joins DingTalk's mobile and stateCode ("13800138000", "86") into
// "+8613800138000". DingTalk may leave stateCode out for mainland numbers, so it
// defaults to 86. Anything that is not digits gives "" rather than a wrong claim.
func phoneE164(mobile, stateCode string) string {
	mobile = phoneSeparators.Replace(mobile)
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
