package dingtalk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/dingbridge/dingbridge/upstream"
)

// The legacy SNS scan login (flow B, shared/dingtalk-api.md §3): oapi's
// connect/qrconnect page, then sns/getuserinfo_bycode signed with the app secret.
// For apps created on DingTalk's old platform; ClientID and ClientSecret are the
// app's appid and appSecret.

// Signature signs a request to sns/getuserinfo_bycode made at timestamp: ts is the
// Unix time in milliseconds, as sent in the timestamp parameter, and sig is
// Base64(HMAC-SHA256(key secret, message ts)), the signature parameter before URL
// encoding (url.Values encodes it as DingTalk wants). DingTalk refuses a timestamp
// more than a minute off its own clock.
func Signature(secret string, timestamp time.Time) (ts, sig string) {
	ts = strconv.FormatInt(timestamp.UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	return ts, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SNSUser is the person from sns/getuserinfo_bycode (user_info, lower-case keys).
type SNSUser struct {
	Nick    string `json:"nick"`
	UnionID string `json:"unionid"`
	OpenID  string `json:"openid"`
}

// SNSUserInfo exchanges the code of the legacy login's redirect for the person.
// A used or unknown code gives an error matching upstream.ErrLoginExpired; DingTalk
// refusing the appid, the signature or this server's clock (853001–853004) one
// matching upstream.ErrMisconfigured.
func (c *Client) SNSUserInfo(ctx context.Context, code string) (SNSUser, error) {
	const path = "/sns/getuserinfo_bycode"
	if code == "" {
		return SNSUser{}, fmt.Errorf("POST %s: empty code", path)
	}
	var answer struct {
		UserInfo SNSUser `json:"user_info"`
	}
	err := c.callOAPI(ctx, oapiRequest{
		api:    apiSNSUserInfo,
		method: http.MethodPost,
		path:   path,
		query: func() url.Values { // signed anew for each attempt
			ts, sig := Signature(c.clientSecret, c.now())
			return url.Values{"accessKey": {c.clientID}, "timestamp": {ts}, "signature": {sig}}
		},
		body:      map[string]string{"tmp_auth_code": code},
		sensitive: []string{code},
	}, &answer)
	if err != nil {
		return SNSUser{}, err
	}
	if answer.UserInfo.UnionID == "" {
		return SNSUser{}, fmt.Errorf("POST %s: answer has no user_info.unionid", path)
	}
	return answer.UserInfo, nil
}

// snsLoginURL is oapi's QR login page; DingTalk comes back with code and state.
func (c *Connector) snsLoginURL(state, callbackURL string) string {
	q := url.Values{
		"appid":         {c.login.clientID},
		"response_type": {"code"},
		"scope":         {"snsapi_login"},
		"state":         {state},
		"redirect_uri":  {callbackURL},
	}
	return c.login.endpoints.OAPI + "/connect/qrconnect?" + q.Encode()
}

// snsCallback turns the legacy login's redirect into an Identity: code → person →
// the directory, if the connector reads one.
func (c *Connector) snsCallback(ctx context.Context, r *http.Request) (upstream.Identity, error) {
	q := r.URL.Query()
	if reason := q.Get("error"); reason != "" {
		return upstream.Identity{}, fmt.Errorf("dingtalk login: %w: DingTalk says %q", upstream.ErrAccessDenied, safeText(reason, 100))
	}
	code := q.Get("code")
	if code == "" {
		return upstream.Identity{}, errors.New("dingtalk callback has neither code nor error parameter")
	}
	user, err := c.login.SNSUserInfo(ctx, code)
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("exchange dingtalk code: %w", err)
	}
	return c.withDirectory(ctx, upstream.Identity{
		UnionID: user.UnionID,
		OpenID:  user.OpenID,
		Nick:    user.Nick,
		Method:  upstream.MethodSNS,
	})
}
