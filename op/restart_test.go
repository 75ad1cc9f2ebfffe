package op_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// A restart keeps keys and tokens: an id_token issued before still verifies, and a
// refresh token issued before still works.
func TestRestartKeepsKeysAndTokens(t *testing.T) {
	db := filepath.Join(t.TempDir(), "dingbridge.db")
	before := newEnv(t, envOptions{dbPath: db})
	party := before.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	a := &loginAttempt{}
	tokens, err := exchange(t, party, newBrowser(t).loginAt(before.authorizeURL(party, a)), a)
	if err != nil {
		t.Fatal(err)
	}
	addr := before.server.Listener.Addr().String()
	before.stop()

	after := newEnv(t, envOptions{dbPath: db, fake: before.dingtalk, addr: addr})
	party = after.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	ctx := context.WithValue(context.Background(), nonceKey{}, a.nonce)
	if _, err := rp.VerifyIDToken[*oidc.IDTokenClaims](ctx, tokens.IDToken, party.IDTokenVerifier()); err != nil {
		t.Errorf("id_token from before the restart does not verify against the JWKS after it: %v", err)
	}
	if _, err := rp.Userinfo[*oidc.UserInfo](context.Background(), tokens.AccessToken, oidc.BearerToken, tokens.IDTokenClaims.Subject, party); err != nil {
		t.Errorf("access token from before the restart: %v", err)
	}
	refreshed, err := rp.RefreshTokens[*oidc.IDTokenClaims](context.Background(), party, tokens.RefreshToken, "", "")
	if err != nil {
		t.Fatalf("refresh token from before the restart: %v", err)
	}
	if refreshed.IDTokenClaims.Subject != tokens.IDTokenClaims.Subject {
		t.Errorf("sub changed across the restart: %q → %q", tokens.IDTokenClaims.Subject, refreshed.IDTokenClaims.Subject)
	}
}
