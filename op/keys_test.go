package op_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

func TestJWKSCacheFitsTheRotation(t *testing.T) {
	e := newEnv(t, envOptions{})
	resp, err := http.Get(e.issuer + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Default PublishAhead is 24h: a quarter of it, capped at an hour.
	if got := resp.Header.Get("Cache-Control"); got != "public, max-age=3600" {
		t.Errorf("JWKS Cache-Control = %q", got)
	}
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

// A token signed before a rotation still verifies after it; new tokens carry the new kid.
func TestKeyRotationAcrossATokensLife(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	a := &loginAttempt{}
	before, err := exchange(t, party, newBrowser(t).loginAt(e.authorizeURL(party, a)), a)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := e.keys.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fresh := e.relyingParty(rpClientID, rpSecret, rpRedirectURI) // fetches the JWKS anew
	ctx := context.WithValue(context.Background(), nonceKey{}, a.nonce)
	if _, err := rp.VerifyIDToken[*oidc.IDTokenClaims](ctx, before.IDToken, fresh.IDTokenVerifier()); err != nil {
		t.Errorf("id_token signed before the rotation: %v", err)
	}
	after, err := rp.RefreshTokens[*oidc.IDTokenClaims](context.Background(), fresh, before.RefreshToken, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if kid := kidOf(t, after.IDToken); kid != rotated.ID || kid == kidOf(t, before.IDToken) {
		t.Errorf("new id_token kid %s, want the rotated key %s", kid, rotated.ID)
	}
}
