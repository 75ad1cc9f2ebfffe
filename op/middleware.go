package op

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
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
		// The redirect_uri is the client's: what it cannot ask for is told to it there.
		// Only the code flow is served, and its answer only as a redirect: the
		// form_post page would need script and a cross-origin form post, which
		// the pages' policy refuses, so form_post is not offered (discovery
		// does not list it) and is refused here rather than half-served.
		if rt := r.Form.Get("response_type"); rt != string(oidc.ResponseTypeCode) {
			p.refuseAuthorize(w, r, redirectURI, &oidc.Error{ErrorType: "unsupported_response_type",
				Description: "only response_type=code is supported"})
			return
		}
		if rm := r.Form.Get("response_mode"); rm != "" && rm != string(oidc.ResponseModeQuery) {
			p.refuseAuthorize(w, r, redirectURI, oidc.ErrInvalidRequest().WithDescription("response_mode %s is not supported: use query (the default)", rm))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuseAuthorize sends the browser back to the client's registered
// redirectURI with e and the request's state.
func (p *Provider) refuseAuthorize(w http.ResponseWriter, r *http.Request, redirectURI string, e *oidc.Error) {
	p.log.InfoContext(r.Context(), "authorize refused", "client", r.Form.Get("client_id"), "error", e.ErrorType, "description", e.Description)
	e.State = r.Form.Get("state")
	target, err := zop.AuthResponseURL(redirectURI, oidc.ResponseTypeCode, oidc.ResponseModeQuery, e, p.oidc.Encoder())
	if err != nil {
		p.render(w, r, &pageView{page: pageRedirectURI, status: http.StatusBadRequest, detail: "redirect_uri: " + redirectURI})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
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
