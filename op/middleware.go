package op

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/dingbridge/dingbridge/storage"
)

// securityHeaders protects every response: pages may not be framed, sniffed, or
// leak the URL (which carries states and codes) to another site.
func securityHeaders(https bool) func(http.Handler) http.Handler {
	// Built once and shared by every response, rather than one slice per header
	// per response as Header.Set makes: a login is about ten responses. Each
	// value has len == cap, so a handler that Adds to one gets its own copy.
	headers := http.Header{
		"Content-Security-Policy": {contentSecurityPolicy("", nil)},
		"X-Frame-Options":         {"DENY"},
		"X-Content-Type-Options":  {"nosniff"},
		"Referrer-Policy":         {"no-referrer"},
	}
	if https {
		headers["Strict-Transport-Security"] = []string{"max-age=31536000"}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			for name, values := range headers {
				h[name] = values
			}
			next.ServeHTTP(w, r)
		})
	}
}

// contentSecurityPolicy is a page's policy: nothing loads but inline styles and
// images, no page may frame it, and script runs only where scriptSrc names it
// (the in-app page: DingTalk's JSAPI, and its own script by nonce). Forms post
// to this server; Chromium applies form-action to every redirect that follows a
// form submission too, so a page whose form leads on elsewhere — consent to the
// app's redirect_uri, the device confirmation to DingTalk's login page — lists
// those origins in formTargets.
func contentSecurityPolicy(scriptSrc string, formTargets []string) string {
	var b strings.Builder
	b.WriteString("default-src 'none'; ")
	if scriptSrc != "" {
		b.WriteString("script-src " + scriptSrc + "; ")
	}
	b.WriteString("style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'")
	for _, t := range formTargets {
		b.WriteString(" " + t)
	}
	b.WriteString("; frame-ancestors 'none'; base-uri 'none'")
	return b.String()
}

// cspOrigin is the source expression for where rawURL points: its origin for
// http(s), its scheme for an app's custom scheme; "" when it cannot be written
// safely into a policy.
func cspOrigin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return ""
	}
	source := u.Scheme + ":"
	if u.Scheme == "http" || u.Scheme == "https" {
		if u.Host == "" {
			return ""
		}
		source = u.Scheme + "://" + u.Host
	}
	if strings.ContainsAny(source, " ;,'\"\\\t\r\n") {
		return ""
	}
	return source
}

// limitBodies caps request bodies: every form and JSON body the provider accepts
// is small, so anything larger is an attack or a mistake.
func limitBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		}
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// checkAuthorize answers the two authorize errors that must not redirect — an
// unknown client and an unregistered redirect_uri — with a page a person can act
// on, before zitadel answers them with plain text. Everything else is zitadel's.
func (p *Provider) checkAuthorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			p.render(w, r, &pageView{page: pageBadRequest, status: http.StatusBadRequest})
			return
		}
		clientID, redirectURI := r.Form.Get("client_id"), r.Form.Get("redirect_uri")
		noteClient(r, clientID)
		if clientID == "" || redirectURI == "" {
			p.render(w, r, &pageView{page: pageBadRequest, status: http.StatusBadRequest,
				detail: "client_id and redirect_uri are required"})
			return
		}
		c, err := p.settings().clients.get(r.Context(), clientID)
		if err != nil && !errors.Is(err, errUnknownClient) {
			p.serverError(w, r, "authorize: load client", err)
			return
		}
		if err != nil {
			p.log.InfoContext(r.Context(), "authorize: unknown client", "client", clientID, "err", err)
			p.render(w, r, &pageView{page: pageUnknownClient, status: http.StatusBadRequest, detail: "client_id: " + clientID})
			return
		}
		if !c.redirectURIRegistered(redirectURI) {
			p.log.InfoContext(r.Context(), "authorize: redirect_uri not registered", "client", clientID, "redirect_uri", redirectURI)
			p.render(w, r, &pageView{page: pageRedirectURI, status: http.StatusBadRequest, detail: "redirect_uri: " + redirectURI})
			return
		}
		// From here on errors go back to the client (RFC 6749 §4.1.2.1).
		back := storage.AuthRequest{RedirectURI: redirectURI, ResponseType: string(oidc.ResponseTypeCode), State: r.Form.Get("state")}
		if name, problem, ok := oversizedAuthorizeParameter(r.Form); ok {
			if name == "state" {
				back.State = "" // not echoed: the client's state is what was wrong
			}
			p.log.InfoContext(r.Context(), "authorize: refused parameter", "client", clientID, "problem", problem)
			http.Redirect(w, r, p.errorRedirectURL(back, oidc.ErrInvalidRequest().WithDescription("%s", problem)), http.StatusFound)
			return
		}
		if rt := r.Form.Get("response_type"); !slices.Contains(supportedResponseTypes, rt) {
			e := &oidc.Error{ErrorType: "unsupported_response_type", Description: "only response_type=code is supported"}
			if rt == "" {
				e = oidc.ErrInvalidRequest().WithDescription("response_type is missing")
			}
			http.Redirect(w, r, p.errorRedirectURL(back, e), http.StatusFound)
			return
		}
		// The answer goes back as a redirect (query), the only mode served: the
		// form_post page would need script and a cross-origin form post, which
		// the pages' policy refuses, so form_post is not offered (discovery does
		// not list it) and is refused here rather than half-served.
		if rm := r.Form.Get("response_mode"); rm != "" && rm != string(oidc.ResponseModeQuery) {
			p.log.InfoContext(r.Context(), "authorize: unsupported response_mode", "client", clientID, "response_mode", rm)
			http.Redirect(w, r, p.errorRedirectURL(back, oidc.ErrInvalidRequest().WithDescription("response_mode %s is not supported: use query (the default)", rm)), http.StatusFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorizeParameterLimits bound what /authorize stores for a pending login:
// generous for every client seen in practice (a state carrying a return URL, an
// id_token_hint with many claims), small enough that abandoned logins cost
// little. Other parameters are bounded by defaultParameterLimit.
var authorizeParameterLimits = map[string]int{
	"client_id":             128,
	"redirect_uri":          2048,
	"response_type":         64,
	"response_mode":         32,
	"scope":                 1024,
	"state":                 2048,
	"nonce":                 512,
	"code_challenge":        128, // RFC 7636 §4.2: 43 to 128 characters
	"code_challenge_method": 16,
	"prompt":                64,
	"max_age":               16,
	"display":               16,
	"login_hint":            256,
	"ui_locales":            128,
	"claims_locales":        128,
	"acr_values":            256,
	"id_token_hint":         8192,
}

const (
	defaultParameterLimit = 1024
	// maxAuthorizeParameters: a real request has about ten.
	maxAuthorizeParameters = 32
)

// oversizedAuthorizeParameter names the first parameter over its limit, or
// repeated, and says what is wrong with it.
func oversizedAuthorizeParameter(form url.Values) (name, problem string, found bool) {
	if len(form) > maxAuthorizeParameters {
		return "", fmt.Sprintf("the request has more than %d parameters", maxAuthorizeParameters), true
	}
	for name, values := range form {
		limit, ok := authorizeParameterLimits[name]
		if !ok {
			limit = defaultParameterLimit
		}
		if len(values) > 1 {
			return name, name + " is repeated", true // RFC 6749 §3.1
		}
		if len(values[0]) > limit {
			return name, fmt.Sprintf("%s is longer than %d bytes", name, limit), true
		}
	}
	return "", "", false
}

// revokeIgnoresHint drops token_type_hint before zitadel reads it. Told
// "access_token", zitadel never looks the token up as a refresh token and answers
// 200 having revoked nothing; RFC 7009 §2.1 says a wrong hint must not matter.
// Without a hint zitadel tries a refresh token first, then an access token.
func revokeIgnoresHint(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			zop.RevocationRequestError(w, r, oidc.ErrInvalidRequest().WithDescription("unable to parse request").WithParent(err))
			return
		}
		r.Form.Del("token_type_hint")
		r.PostForm.Del("token_type_hint")
		next.ServeHTTP(w, r)
	})
}

// heldAnswer keeps a whole answer (a token response, a logout's redirect: a
// few kilobytes) until its handler's caller decides what goes out.
type heldAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldAnswer) Header() http.Header { return h.header }

func (h *heldAnswer) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldAnswer) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}

// sendTo writes the held answer to w; its header fields replace w's.
func (h *heldAnswer) sendTo(w http.ResponseWriter) {
	for k, v := range h.header {
		w.Header()[k] = v
	}
	if h.status == 0 {
		h.status = http.StatusOK
	}
	w.WriteHeader(h.status)
	_, _ = w.Write(h.body.Bytes())
}
