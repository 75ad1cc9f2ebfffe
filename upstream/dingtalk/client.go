// Package dingtalk logs people in with DingTalk (钉钉).
//
// Client is a small typed client for the DingTalk HTTP APIs of one app, on net/http:
// the login APIs (client.go, sns.go), and the corp APIs behind a cached app access
// token (apptoken.go, corp.go). Connector (connector.go) is the upstream.Connector and
// upstream.InAppConnector built on it: today's OAuth2 login at login.dingtalk.com
// (oauth2.go), the legacy SNS scan login (sns.go), the in-app login inside the
// DingTalk client (inapp.go), the organisation's directory (directory.go) and the
// access policy. The wire facts are in shared/dingtalk-api.md; package dingtalktest
// is a fake DingTalk.
//
// Every call has a timeout; an answer saying DingTalk is busy or throttling is retried
// with backoff (retry.go); Metrics counts the calls.
//
// Errors never contain the app secret, authorization codes or tokens; they do contain
// DingTalk's request id, which DingTalk support asks for.
package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dingbridge/dingbridge/upstream"
)

// DingTalk's public hosts, and the defaults of a Client.
const (
	DefaultLoginURL = "https://login.dingtalk.com"
	DefaultAPIURL   = "https://api.dingtalk.com"
	DefaultOAPIURL  = "https://oapi.dingtalk.com"
	// DefaultJSAPIURL is DingTalk's JavaScript API, which the in-app login page loads.
	DefaultJSAPIURL = "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js"
	// DefaultFrameLoginURL is DingTalk's script that embeds today's QR login in a
	// page (window.DTFrameLogin); DefaultSNSFrameLoginURL the legacy one (DDLogin).
	DefaultFrameLoginURL    = "https://g.alicdn.com/dingding/h5-dingtalk-login/0.21.0/ddlogin.js"
	DefaultSNSFrameLoginURL = "https://g.alicdn.com/dingding/dinglogin/0.0.5/ddLogin.js"
	// DefaultTimeout bounds each DingTalk call, from sending the request to reading the answer.
	DefaultTimeout = 10 * time.Second
)

// maxResponseBytes caps what we read of any answer; real ones are a few hundred bytes.
const maxResponseBytes = 1 << 20

// Endpoints are the base URLs of DingTalk's three hosts, configurable so that tests and
// `dingbridge dev` can point at the fake. An empty field means DingTalk's public host.
type Endpoints struct {
	Login string // browser pages (authorize, consent): login.dingtalk.com
	API   string // the new JSON API (/v1.0/...): api.dingtalk.com
	OAPI  string // the old API (errcode style; legacy and in-app flows): oapi.dingtalk.com
	// JSAPI is the URL of DingTalk's JavaScript API script for the in-app login page
	// (a file, not a base URL): DefaultJSAPIURL.
	JSAPI string
	// FrameLogin and SNSFrameLogin are the scripts that embed the QR login in a
	// page of ours (files): DefaultFrameLoginURL, DefaultSNSFrameLoginURL.
	FrameLogin, SNSFrameLogin string
}

func (e Endpoints) withDefaults() (Endpoints, error) {
	var err error
	fields := []struct {
		name string
		val  *string
		def  string
	}{{"Login", &e.Login, DefaultLoginURL}, {"API", &e.API, DefaultAPIURL}, {"OAPI", &e.OAPI, DefaultOAPIURL}}
	for _, f := range fields {
		if *f.val == "" {
			*f.val = f.def
			continue
		}
		if *f.val, err = baseURL(*f.val); err != nil {
			return Endpoints{}, fmt.Errorf("dingtalk config: Endpoints.%s: %w", f.name, err)
		}
	}
	for _, f := range []struct {
		name string
		val  *string
		def  string
	}{{"JSAPI", &e.JSAPI, DefaultJSAPIURL}, {"FrameLogin", &e.FrameLogin, DefaultFrameLoginURL}, {"SNSFrameLogin", &e.SNSFrameLogin, DefaultSNSFrameLoginURL}} {
		if *f.val == "" {
			*f.val = f.def
		} else if u, err := url.Parse(*f.val); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Endpoints{}, fmt.Errorf("dingtalk config: Endpoints.%s: %q is not an absolute http(s) URL", f.name, *f.val)
		}
	}
	return e, nil
}

// baseURL checks an absolute http(s) URL without query and drops a trailing slash.
func baseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an absolute http(s) URL without query", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

// ClientConfig is what a Client needs: one DingTalk app and where DingTalk is.
type ClientConfig struct {
	ClientID     string // the app's Client ID (AppKey)
	ClientSecret string // the app's Client Secret (AppSecret)
	Endpoints    Endpoints
	HTTPClient   *http.Client // nil: NewHTTPClient(); share one across Clients
	// Timeout bounds each request; a throttled call is retried for at most Timeout in
	// all, and never past the caller's deadline. 0: DefaultTimeout.
	Timeout time.Duration
	Metrics Observer         // nil: calls are not observed
	Now     func() time.Time // nil: time.Now; for SNS signatures and the app token's expiry
}

// Client calls DingTalk for one app. It is safe for concurrent use.
type Client struct {
	clientID     string
	clientSecret string
	endpoints    Endpoints
	http         *http.Client
	timeout      time.Duration
	metrics      Observer // never nil: noObserver when unset
	now          func() time.Time
	appToken     appTokenCache // gettoken's answer, for the corp APIs
}

// NewClient checks cfg; its errors name the field at fault.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("dingtalk config: ClientID is empty")
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("dingtalk config: ClientSecret is empty")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("dingtalk config: Timeout %s is negative", cfg.Timeout)
	}
	endpoints, err := cfg.Endpoints.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		endpoints:    endpoints,
		http:         cfg.HTTPClient,
		timeout:      cfg.Timeout,
		metrics:      cfg.Metrics,
		now:          cfg.Now,
	}
	if c.http == nil {
		c.http = NewHTTPClient()
	}
	if c.metrics == nil {
		c.metrics = noObserver{}
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Endpoints returns the base URLs the client uses, defaults filled in.
func (c *Client) Endpoints() Endpoints { return c.endpoints }

// UserToken is a user's access token from POST /v1.0/oauth2/userAccessToken.
// Its String method hides the tokens, so printing one cannot leak them.
type UserToken struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration // "expireIn" on the wire; 7200 s in practice
	CorpID       string        // the organisation picked at login; only with scope "corpid"
}

func (t UserToken) String() string {
	return fmt.Sprintf("UserToken{AccessToken:[redacted] RefreshToken:[redacted] ExpiresIn:%s CorpID:%s}", t.ExpiresIn, t.CorpID)
}

// GoString keeps %#v from printing the tokens too.
func (t UserToken) GoString() string { return t.String() }

// UserAccessToken exchanges the authCode from the login redirect for a user access
// token. A used, expired or unknown code gives an error matching upstream.ErrLoginExpired.
// Only a throttled attempt is retried: DingTalk uses the code up on the first answer.
func (c *Client) UserAccessToken(ctx context.Context, code string) (UserToken, error) {
	const path = "/v1.0/oauth2/userAccessToken"
	if code == "" {
		return UserToken{}, fmt.Errorf("POST %s: empty code", path)
	}
	request := struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
		Code         string `json:"code"`
		GrantType    string `json:"grantType"`
	}{c.clientID, c.clientSecret, code, "authorization_code"}
	var answer struct {
		AccessToken  string `json:"accessToken"`
		RefreshToken string `json:"refreshToken"`
		ExpireIn     int64  `json:"expireIn"`
		CorpID       string `json:"corpId"`
	}
	requestID, err := c.callAPI(ctx, apiUserAccessToken, http.MethodPost, path, nil, request, &answer, code)
	if err != nil {
		return UserToken{}, err
	}
	if answer.AccessToken == "" {
		return UserToken{}, fmt.Errorf("POST %s: answer has no accessToken%s", path, requestIDSuffix("requestid", requestID))
	}
	return UserToken{
		AccessToken:  answer.AccessToken,
		RefreshToken: answer.RefreshToken,
		ExpiresIn:    time.Duration(answer.ExpireIn) * time.Second,
		CorpID:       answer.CorpID,
	}, nil
}

// Me is the person owning a user access token, from GET /v1.0/contact/users/me.
// Mobile and StateCode come only if the app has the Contact.User.mobile permission.
type Me struct {
	Nick      string `json:"nick"`
	AvatarURL string `json:"avatarUrl"`
	Mobile    string `json:"mobile"`
	StateCode string `json:"stateCode"` // country calling code, e.g. "86"
	OpenID    string `json:"openId"`    // stable within one app
	UnionID   string `json:"unionId"`   // stable across one developer's apps
	Email     string `json:"email"`
	Visitor   bool   `json:"visitor"`
}

// Me reads the profile of the person owning accessToken. The app needs the
// Contact.User.Read permission. An answer without unionId is an error: it is the key
// every dingbridge user record hangs on.
func (c *Client) Me(ctx context.Context, accessToken string) (Me, error) {
	const path = "/v1.0/contact/users/me"
	header := http.Header{"x-acs-dingtalk-access-token": {accessToken}}
	var me Me
	requestID, err := c.callAPI(ctx, apiUsersMe, http.MethodGet, path, header, nil, &me, accessToken)
	if err != nil {
		return Me{}, err
	}
	if me.UnionID == "" {
		return Me{}, fmt.Errorf("GET %s: answer has no unionId%s", path, requestIDSuffix("requestid", requestID))
	}
	return me, nil
}

// callAPI sends one request to api.dingtalk.com and decodes a 2xx answer into out;
// api names the call for Metrics. sensitive lists values besides the client secret
// that must not reach an error. Errors start with the method and path; requestID is
// DingTalk's, if it sent one.
func (c *Client) callAPI(ctx context.Context, api, method, path string, header http.Header, in, out any, sensitive ...string) (requestID string, err error) {
	var body []byte
	if in != nil {
		if body, err = json.Marshal(in); err != nil {
			return "", fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
	}
	sensitive = append(sensitive, c.clientSecret)
	err = c.call(ctx, api, func() error {
		raw, err := c.roundTrip(ctx, method, c.endpoints.API+path, header, body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		requestID = raw.Header.Get("x-acs-request-id")
		if err := decodeAPI(raw, out, sensitive); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		return nil
	})
	return requestID, err
}

// oapiRequest is one call to oapi.dingtalk.com.
type oapiRequest struct {
	api    string // the call's name for Metrics
	method string
	path   string
	// query is built for each attempt (the SNS signature is timed). The values of
	// access_token, appsecret and signature are kept out of errors.
	query func() url.Values
	body  any // sent as JSON; nil: no body
	// permission is what the API needs, named in the hint of a permission error.
	permission string
	sensitive  []string // besides the client secret and the query's secrets
}

// secretParams are the query parameters whose values must never reach an error.
var secretParams = []string{"access_token", "appsecret", "signature"}

// callOAPI sends req to oapi.dingtalk.com and decodes an errcode-0 answer into out.
// Errors start with the method and path.
func (c *Client) callOAPI(ctx context.Context, req oapiRequest, out any) error {
	var body []byte
	if req.body != nil {
		var err error
		if body, err = json.Marshal(req.body); err != nil {
			return fmt.Errorf("%s %s: encode request: %w", req.method, req.path, err)
		}
	}
	return c.call(ctx, req.api, func() error {
		rawURL := c.endpoints.OAPI + req.path
		sensitive := append(req.sensitive[:len(req.sensitive):len(req.sensitive)], c.clientSecret)
		if req.query != nil {
			q := req.query()
			for _, name := range secretParams {
				sensitive = append(sensitive, q.Get(name))
			}
			rawURL += "?" + q.Encode()
		}
		raw, err := c.roundTrip(ctx, req.method, rawURL, nil, body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", req.method, req.path, err)
		}
		if err := decodeOAPI(raw, out, sensitive); err != nil {
			var oapiErr *OAPIError
			if errors.As(err, &oapiErr) {
				oapiErr.Permission = req.permission
			}
			return fmt.Errorf("%s %s: %w", req.method, req.path, err)
		}
		return nil
	})
}

// roundTrip sends one request under the per-call timeout and reads the whole answer.
func (c *Client) roundTrip(ctx context.Context, method, rawURL string, header http.Header, body []byte) (rawResponse, error) {
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, method, rawURL, bytes.NewReader(body))
	if err != nil {
		return rawResponse{}, fmt.Errorf("build request: %w", withoutURL(err))
	}
	for name, values := range header {
		req.Header[name] = values // DingTalk documents lower-case names; keep them as given
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")

	resp, err := c.http.Do(req)
	if err != nil {
		return rawResponse{}, c.transportError(ctx, callCtx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return rawResponse{}, c.transportError(ctx, callCtx, err)
	}
	if len(data) > maxResponseBytes {
		return rawResponse{}, fmt.Errorf("HTTP %d answer is larger than %d bytes%s",
			resp.StatusCode, maxResponseBytes, requestIDSuffix("requestid", resp.Header.Get("x-acs-request-id")))
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// transportError classifies a failure to get an answer at all. Timeouts (ours or the
// caller's deadline) and network errors are upstream.ErrUnavailable; a caller that gave
// up (ctx cancelled: the browser went away) is not DingTalk's fault and stays a plain
// context.Canceled.
func (c *Client) transportError(ctx, callCtx context.Context, err error) error {
	err = withoutURL(err)
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("caller gave up: %w", ctx.Err())
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: no answer before the caller's deadline: %w", upstream.ErrUnavailable, context.DeadlineExceeded)
	case errors.Is(callCtx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: no answer in time (timeout %s): %w", upstream.ErrUnavailable, c.timeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("%w: %w", upstream.ErrUnavailable, err)
}

// withoutURL drops the URL a *url.Error repeats: the oapi calls carry the app token,
// the app secret or a signature in the query.
func withoutURL(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}
