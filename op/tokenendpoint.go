package op

import (
	"errors"
	"net/http"
	"strings"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// tokenEndpoint refuses the grants dingbridge does not serve before zitadel
// reads them: zitadel would try the JWT bearer grant, for one, and answer with
// whatever our storage callbacks say rather than unsupported_grant_type.
func (p *Provider) tokenEndpoint(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// failureLimiter.guard parsed the form.
		switch grant := r.Form.Get("grant_type"); {
		case grant == "":
			oauthError(w, oidc.ErrInvalidRequest().WithDescription("grant_type is missing"))
			return
		case !grantTypeSupported(grant):
			oauthError(w, oidc.ErrUnsupportedGrantType().WithDescription("grant_type %q is not supported: use authorization_code, refresh_token or %s", grant, oidc.GrantTypeDeviceCode))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// introspect serves token introspection (RFC 7662) in place of zitadel's, which
// answers a refused client in text/plain with Go's description of the error.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(zop.ContextWithIssuer(r.Context(), p.issuer))
	token, clientID, err := zop.ParseTokenIntrospectionRequest(r, p.oidc)
	if err != nil {
		var e *oidc.Error
		if !errors.As(err, &e) {
			e = oidc.ErrInvalidRequest().WithDescription("unable to parse the request")
		}
		oauthError(w, e) // a failed client authentication becomes invalid_client in failureLimiter.guard
		return
	}
	resp := new(oidc.IntrospectionResponse)
	if sealed, err := p.oidc.Crypto().Decrypt(token); err == nil {
		tokenID, subject, ok := strings.Cut(sealed, ":")
		if ok && (&oidcStorage{p: p}).SetIntrospectionFromToken(r.Context(), resp, tokenID, subject, clientID) == nil {
			resp.Active = true
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	httphelper.MarshalJSON(w, resp)
}

// oauthError answers an OAuth error as JSON (RFC 6749 §5.2), with the status
// its type calls for.
func oauthError(w http.ResponseWriter, e *oidc.Error) {
	status := http.StatusBadRequest
	switch e.ErrorType {
	case oidc.InvalidClient:
		status = http.StatusUnauthorized
	case oidc.ServerError:
		status = http.StatusInternalServerError
	case "temporarily_unavailable":
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	httphelper.MarshalJSONWithStatus(w, e, status)
}
