package op

import (
	"net/http"
	"slices"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// What dingbridge serves, said once: discovery lists exactly this, and /authorize
// and /oauth/token refuse the rest with the error the specs name for it.
var (
	// supportedResponseTypes: the authorization code flow only. Implicit and
	// hybrid responses put tokens in URLs (RFC 9700 §2.1.2 says not to).
	supportedResponseTypes = []string{string(oidc.ResponseTypeCode)}
	// supportedGrantTypes: no implicit, client credentials, token exchange or
	// JWT bearer grant; zitadel would list some of them.
	supportedGrantTypes = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode}
)

// discovery serves /.well-known/openid-configuration: zitadel's document, with
// what zitadel lists but dingbridge does not serve taken out.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	ctx := zop.ContextWithIssuer(r.Context(), p.issuer)
	d := zop.CreateDiscoveryConfig(ctx, p.oidc, p.oidc.Storage())
	d.ResponseTypesSupported = supportedResponseTypes
	d.GrantTypesSupported = supportedGrantTypes
	// Clients authenticate with a secret (basic or post) or not at all (public
	// clients with PKCE); no private_key_jwt anywhere, so no signing algorithms.
	d.TokenEndpointAuthSigningAlgValuesSupported = nil
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	d.RevocationEndpointAuthSigningAlgValuesSupported = nil
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	d.RequestObjectSigningAlgValuesSupported = nil
	d.CheckSessionIframe = ""
	w.Header().Set("Cache-Control", "public, max-age=3600")
	httphelper.MarshalJSON(w, d)
}

// grantTypeSupported reports whether the token endpoint serves grant.
func grantTypeSupported(grant string) bool {
	return slices.Contains(supportedGrantTypes, oidc.GrantType(grant))
}
