package op_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/op"
)

// A code presented twice at once: whichever exchange wins, the loser's
// invalid_grant revokes what the winner got — in every interleaving, including
// the one where the revocation runs between the winner's claim of the code and
// its token issue (storage refuses to issue tokens of a revoked grant).
func TestConcurrentCodeReplayRevokesTheWinnersTokens(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	const trials = 25
	for trial := range trials {
		a := &loginAttempt{}
		q := newBrowser(t).loginAt(e.authorizeURL(party, a))
		var wg sync.WaitGroup
		var results [2]*oidc.Tokens[*oidc.IDTokenClaims]
		var errs [2]error
		start := make(chan struct{})
		for i := range 2 {
			wg.Go(func() {
				<-start
				results[i], errs[i] = exchange(t, party, q, a)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i := range 2 {
			if errs[i] == nil {
				won++
				if err := userinfoWorks(party, results[i].AccessToken, results[i].IDTokenClaims.Subject); err == nil {
					t.Errorf("trial %d: the winner's access token still works after the replay", trial)
				}
				if _, err := refresh(party, results[i].RefreshToken); oauthErrorCode(err) != "invalid_grant" {
					t.Errorf("trial %d: the winner's refresh token: %v, want invalid_grant", trial, err)
				}
			} else if oauthErrorCode(errs[i]) != "invalid_grant" {
				t.Errorf("trial %d: exchange %d: %v, want invalid_grant", trial, i, errs[i])
			}
		}
		if won > 1 {
			t.Fatalf("trial %d: both exchanges of one code got tokens", trial)
		}
	}
}

// A used code in the hands of someone who cannot authenticate as its client —
// no secret, a wrong one, another client, a public client without the PKCE
// verifier — is refused and revokes nothing: otherwise anyone who saw a code in
// a log could log its person out of the app.
func TestUsedCodeFromSomeoneElseRevokesNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	a := &loginAttempt{}
	q := newBrowser(t).loginAt(e.authorizeURL(party, a))
	tokens, err := exchange(t, party, q, a)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := e.discovery(t).TokenEndpoint
	base := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {rpRedirectURI}, "code_verifier": {a.verifier}}
	with := func(extra url.Values) url.Values {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		for k, vs := range extra {
			v[k] = vs
		}
		return v
	}
	for name, req := range map[string]*http.Request{
		"no client authentication":  postForm(t, endpoint, with(url.Values{"client_id": {rpClientID}}), "", ""),
		"a wrong secret":            postForm(t, endpoint, base, rpClientID, "not-the-secret"),
		"another confidential app":  postForm(t, endpoint, base, consentClientID, rpSecret),
		"a public client":           postForm(t, endpoint, with(url.Values{"client_id": {publicClientID}}), "", ""),
		"the client without PKCE":   postForm(t, endpoint, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {rpRedirectURI}, "client_id": {rpClientID}}, "", ""),
		"unknown client, no secret": postForm(t, endpoint, with(url.Values{"client_id": {"nobody"}}), "", ""),
	} {
		resp, body := getJSON(t, req)
		if resp.StatusCode < 400 {
			t.Errorf("%s: status %d %v, want a refusal", name, resp.StatusCode, body)
		}
	}
	if err := userinfoWorks(party, tokens.AccessToken, tokens.IDTokenClaims.Subject); err != nil {
		t.Errorf("the app's access token was revoked by someone else's replay: %v", err)
	}
	if _, err := refresh(party, tokens.RefreshToken); err != nil {
		t.Errorf("the app's refresh token was revoked by someone else's replay: %v", err)
	}
	// The code's own client replaying it still revokes (TestReplayedCodeIsRefusedAndRevokesItsTokens).
}

// Refresh reuse within the grace never forks the chain: a rotated token
// presented again and again within the grace gets a new token each time, and
// each new one ends the one before, so once the grace is over exactly one
// refresh token of the login works.
func TestRefreshRetriesWithinGraceLeaveOneLiveToken(t *testing.T) {
	grace := 2 * time.Second
	e := newEnv(t, envOptions{lifetimes: op.Lifetimes{RefreshTokenReuseGrace: grace}})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	first := e.loginTokens(t, party)
	rotated := first.RefreshToken
	var issued []string
	for i := range 6 { // the rotation, then 5 replays of the rotated token
		next, err := refreshWith(party, rotated)
		if err != nil {
			t.Fatalf("refresh %d within the grace: %v", i+1, err)
		}
		issued = append(issued, next.RefreshToken)
	}
	time.Sleep(grace + 200*time.Millisecond) // past the grace (not a timed assertion)
	live := 0
	for _, rt := range issued {
		if _, err := refreshWith(party, rt); err == nil {
			live++
		} else if oauthErrorCode(err) != "invalid_grant" {
			t.Errorf("refresh after the grace: %v, want success or invalid_grant", err)
		}
	}
	if live != 1 {
		t.Fatalf("%d of the %d refresh tokens issued from one rotated token still refresh after the grace, want 1", live, len(issued))
	}
}

// A public client's code replayed after its exchange: the code itself keeps
// the PKCE challenge and redirect URI once its auth request is gone, so the
// replay by that client (same verifier) is recognised and revokes, while a
// replay without the verifier is refused and revokes nothing.
func TestPublicClientsReplayedCodeRevokesOnlyWithItsVerifier(t *testing.T) {
	e := newEnv(t, envOptions{})
	party := e.relyingParty(publicClientID, "", publicRedirect)
	endpoint := e.discovery(t).TokenEndpoint
	for _, withVerifier := range []bool{false, true} {
		a := &loginAttempt{}
		q := newBrowser(t).loginAt(e.authorizeURL(party, a))
		tokens, err := exchange(t, party, q, a)
		if err != nil {
			t.Fatal(err)
		}
		replay := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {publicRedirect}, "client_id": {publicClientID}}
		if withVerifier {
			replay.Set("code_verifier", a.verifier)
		}
		resp, body := getJSON(t, postForm(t, endpoint, replay, "", ""))
		if resp.StatusCode != http.StatusBadRequest || withVerifier && body["error"] != "invalid_grant" {
			t.Errorf("replay (verifier %v): %d %v, want 400 (invalid_grant with the verifier)", withVerifier, resp.StatusCode, body)
		}
		err = userinfoWorks(party, tokens.AccessToken, tokens.IDTokenClaims.Subject)
		if withVerifier && err == nil {
			t.Error("the client's own replay of its code left the code's access token working")
		}
		if !withVerifier && err != nil {
			t.Errorf("a replay without the PKCE verifier revoked the code's tokens: %v", err)
		}
	}
}
