package dingtalk

import (
	"errors"
	"net/url"

	"github.com/dingbridge/dingbridge/upstream"
)

// The QR login inside a page of ours (DingTalk's "扫码登录第三方网站" guide; the
// parameters as DingTalk's samples pass them): in oauth2 mode DingTalk's ddlogin.js
// (window.DTFrameLogin) draws login.dingtalk.com's login in a frame with the same
// parameters as the redirect login, and hands the page the authCode and state; in
// sns mode ddLogin.js (DDLogin) draws login.dingtalk.com/login/qrcode.htm?goto=
// the sns_authorize URL, whose frame posts a loginTmpCode the page appends to goto.
// Either way DingTalk comes back to the same callback as the redirect login.

var _ upstream.EmbeddedConnector = (*Connector)(nil)

// EmbeddedLogin describes the embedded login for state and callbackURL.
func (c *Connector) EmbeddedLogin(state, callbackURL string) (upstream.EmbeddedLogin, error) {
	if state == "" || callbackURL == "" {
		return upstream.EmbeddedLogin{}, errors.New("dingtalk embedded login: empty state or callback URL")
	}
	ep := c.login.Endpoints()
	login, err := url.Parse(ep.Login)
	if err != nil {
		return upstream.EmbeddedLogin{}, err
	}
	e := upstream.EmbeddedLogin{FrameOrigin: login.Scheme + "://" + login.Host, State: state, CallbackURL: callbackURL}
	if c.mode == ModeSNS {
		q := url.Values{
			"appid":         {c.login.clientID},
			"response_type": {"code"},
			"scope":         {"snsapi_login"},
			"state":         {state},
			"redirect_uri":  {callbackURL},
		}
		e.Kind, e.ScriptURL = upstream.EmbedSNS, ep.SNSFrameLogin
		e.Goto = ep.OAPI + "/connect/oauth2/sns_authorize?" + q.Encode()
		return e, nil
	}
	e.Kind, e.ScriptURL = upstream.EmbedOAuth2, ep.FrameLogin
	e.ClientID, e.Scope, e.CorpID = c.login.clientID, c.scope, c.corpID
	return e, nil
}
