package op

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/dingbridge/dingbridge/upstream"
)

// What the provider counts for telemetry.Metrics. Every label value comes from a
// closed list here or from the configuration (connector IDs), never from a request.

// Results of a login (dingbridge_logins_total).
const (
	loginOK                  = "ok"
	loginDenied              = "denied"               // the person declined at DingTalk
	loginPolicy              = "policy"               // access policy or a disabled user
	loginExpired             = "expired"              // state, auth request or DingTalk code gone
	loginUpstreamUnavailable = "upstream_unavailable" // DingTalk busy or not answering
	loginMisconfigured       = "misconfigured"        // DingTalk refused our settings
	loginError               = "error"                // anything else
)

// Login methods as metrics name them.
const (
	methodOAuth2 = "oauth2"
	methodSNS    = "sns"
	methodInApp  = "inapp"
	methodSSO    = "sso"
)

// methodLabel names an upstream login method (the amr value) for metrics.
func methodLabel(upstreamMethod string) string {
	switch upstreamMethod {
	case upstream.MethodSNS:
		return methodSNS
	case upstream.MethodInApp:
		return methodInApp
	}
	return methodOAuth2
}

// countLogin records a login that ended with result, for a known connector.
func (p *Provider) countLogin(conn Connector, method, result string, start time.Time) {
	if conn.ID == "" { // an unknown connector in the URL: not a login at all
		return
	}
	p.metrics.Login(conn.ID, method, result, time.Since(start))
}

// rateLimit applies the rate limit in force to next; a refused request is
// counted under its route.
func (p *Provider) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		passed := false
		p.settings().limiter.limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			passed = true
			next.ServeHTTP(w, r)
		})).ServeHTTP(w, r)
		if !passed {
			p.metrics.RateLimited(routePattern(r))
		}
	})
}

// Grant types and OAuth error codes a token request is counted under.
var (
	grantLabels = map[string]bool{
		"authorization_code": true, "refresh_token": true, GrantTypeDeviceCode: true,
		"client_credentials": true, "urn:ietf:params:oauth:grant-type:jwt-bearer": true,
		"urn:ietf:params:oauth:grant-type:token-exchange": true,
	}
	tokenErrorLabels = map[string]bool{
		"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
		"unsupported_grant_type": true, "invalid_scope": true, "authorization_pending": true,
		"slow_down": true, "access_denied": true, "expired_token": true, "server_error": true,
		"temporarily_unavailable": true,
	}
)

// countTokenGrants counts token requests by grant type and result, and notes the
// client for the access log.
func (p *Provider) countTokenGrants(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		grant := r.PostFormValue("grant_type")
		if !grantLabels[grant] {
			grant = "other"
		}
		clientID := r.PostFormValue("client_id")
		if user, _, ok := r.BasicAuth(); ok {
			if id, err := url.QueryUnescape(user); err == nil {
				clientID = id
			}
		}
		noteClient(r, clientID)
		rec := &oauthErrorRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		p.metrics.TokenGrant(grant, rec.result())
	})
}

// oauthErrorRecorder keeps the status and, for an error answer, the start of
// its body: the OAuth error code is in it.
type oauthErrorRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (o *oauthErrorRecorder) WriteHeader(code int) {
	if o.status == 0 {
		o.status = code
	}
	o.ResponseWriter.WriteHeader(code)
}

func (o *oauthErrorRecorder) Write(b []byte) (int, error) {
	if o.status == 0 {
		o.status = http.StatusOK
	}
	if o.status >= 400 && o.body.Len() < 1024 {
		o.body.Write(b[:min(len(b), 1024-o.body.Len())])
	}
	return o.ResponseWriter.Write(b)
}

func (o *oauthErrorRecorder) Unwrap() http.ResponseWriter { return o.ResponseWriter }

// result is "ok" or the answer's OAuth error code ("error" when it has none we know).
func (o *oauthErrorRecorder) result() string {
	if o.status < 400 {
		return "ok"
	}
	var answer struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(o.body.Bytes(), &answer) == nil && tokenErrorLabels[answer.Error] {
		return answer.Error
	}
	return "error"
}
