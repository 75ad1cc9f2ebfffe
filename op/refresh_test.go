package op_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/op"
)

func refreshWith(party rp.RelyingParty, token string) (*oidc.Tokens[*oidc.IDTokenClaims], error) {
	return rp.RefreshTokens[*oidc.IDTokenClaims](context.Background(), party, token, "", "")
}

func (e *env) loginTokens(t *testing.T, party rp.RelyingParty) *oidc.Tokens[*oidc.IDTokenClaims] {
	t.Helper()
	a := &loginAttempt{}
	tokens, err := exchange(t, party, newBrowser(t).loginAt(e.authorizeURL(party, a)), a)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// A rotated refresh token presented after the grace window means a copy exists
// somewhere: every token of that login dies, including the newest.
func TestReusedRefreshTokenRevokesTheWholeLogin(t *testing.T) {
	e := newEnv(t, envOptions{lifetimes: op.Lifetimes{RefreshTokenReuseGrace: time.Nanosecond}})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	first := e.loginTokens(t, party)
	second, err := refreshWith(party, first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	third, err := refreshWith(party, second.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := refreshWith(party, first.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("reuse of a rotated token: err %v, want invalid_grant", err)
	}
	if _, err := refreshWith(party, third.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("the newest refresh token survived the reuse: err %v", err)
	}
	for name, at := range map[string]string{"first": first.AccessToken, "third": third.AccessToken} {
		if _, err := rp.Userinfo[*oidc.UserInfo](context.Background(), at, oidc.BearerToken, first.IDTokenClaims.Subject, party); err == nil {
			t.Errorf("the %s access token still works after the reuse", name)
		}
	}
	// Another login of the same person is untouched.
	other := e.loginTokens(t, party)
	if _, err := refreshWith(party, other.RefreshToken); err != nil {
		t.Errorf("an unrelated login was revoked too: %v", err)
	}
}

// A client that retried a refresh (its first answer lost) within the grace window
// gets tokens, and the login stays alive; the lost answer's refresh token dies, so
// the chain still has one live refresh token.
func TestRefreshRetryWithinGraceIsNotReuse(t *testing.T) {
	e := newEnv(t, envOptions{lifetimes: op.Lifetimes{RefreshTokenReuseGrace: time.Minute}})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	first := e.loginTokens(t, party)
	lost, err := refreshWith(party, first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	retried, err := refreshWith(party, first.RefreshToken)
	if err != nil {
		t.Fatalf("retry within grace: %v", err)
	}
	if _, err := refreshWith(party, lost.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("the lost answer's refresh token: err %v, want invalid_grant", err)
	}
	if _, err := refreshWith(party, retried.RefreshToken); err != nil {
		t.Errorf("the retried answer's refresh token: %v", err)
	}
}

// Refreshes racing with one token, with no grace: exactly one wins; the rest are
// reuse and get invalid_grant.
func TestConcurrentRefreshesWithOneTokenOneWins(t *testing.T) {
	e := newEnv(t, envOptions{lifetimes: op.Lifetimes{RefreshTokenReuseGrace: time.Nanosecond}})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	first := e.loginTokens(t, party)
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Go(func() { _, results[i] = refreshWith(party, first.RefreshToken) })
	}
	wg.Wait()
	wins := 0
	for _, err := range results {
		if err == nil {
			wins++
		} else if oauthErrorCode(err) != "invalid_grant" {
			t.Errorf("a losing refresh got %v, want invalid_grant", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent refreshes with one token succeeded, want exactly 1", wins)
	}
}

func TestRefreshChainEndsAtItsAbsoluteLifetime(t *testing.T) {
	e := newEnv(t, envOptions{lifetimes: op.Lifetimes{RefreshTokenAbsolute: time.Second}})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	tokens := e.loginTokens(t, party)
	next, err := refreshWith(party, tokens.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	// No timed assertion: the chain's end is stored with the token; wait past it.
	time.Sleep(1100 * time.Millisecond)
	if _, err := refreshWith(party, next.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("refresh past the absolute lifetime: err %v, want invalid_grant", err)
	}
}
