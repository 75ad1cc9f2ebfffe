package op

import (
	"errors"
	"net/http"

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
		"Content-Security-Policy": {"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
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
		next.ServeHTTP(w, r)
	})
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
