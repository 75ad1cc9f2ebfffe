package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/storage/bolt"
)

// What an operator changes with the CLI while dingbridge serves takes effect at
// once, for relying parties logging in with a real OIDC library.

const appRedirect = "http://127.0.0.1:1/app/callback" // never contacted, like rpRedirect

func TestClientFromCLILogsInAtOnceAndLosesAccessWhenChanged(t *testing.T) {
	e := newAdminEnv(t)
	srv := e.serve(t)

	var added admin.ClientWithSecret
	e.cliJSON(t, &added, "client", "add", "--name", "Wiki", "--redirect-uri", appRedirect)
	party := e.relyingParty(t, added.ID, added.Secret, appRedirect)
	tokens := e.logIn(t, party)
	if tokens.RefreshToken == "" || tokens.IDTokenClaims.Subject != e.user.UnionID {
		t.Fatalf("login at the new client: sub %q, refresh token %t", tokens.IDTokenClaims.Subject, tokens.RefreshToken != "")
	}

	var rotated admin.ClientWithSecret
	e.cliJSON(t, &rotated, "client", "rotate-secret", added.ID)
	if _, err := refresh(party, tokens.RefreshToken); oauthError(err) != "invalid_client" {
		t.Errorf("refresh with the old secret after rotate-secret: %v, want invalid_client", err)
	}
	renewed := e.relyingParty(t, added.ID, rotated.Secret, appRedirect)
	fresh, err := refresh(renewed, tokens.RefreshToken)
	if err != nil {
		t.Fatalf("refresh with the new secret: %v", err)
	}

	if code, _, stderr := e.cli(t, "client", "delete", added.ID); code != 0 {
		t.Fatalf("client delete: exit %d\n%s", code, stderr)
	}
	if _, err := refresh(renewed, fresh.RefreshToken); oauthError(err) != "invalid_client" {
		t.Errorf("refresh at the deleted client: %v, want invalid_client", err)
	}
	if _, err := rp.Userinfo[*oidc.UserInfo](context.Background(), fresh.AccessToken, oidc.BearerToken, e.user.UnionID, renewed); err == nil {
		t.Error("the deleted client's access token still gets userinfo")
	}
	assertNoSecrets(t, srv.stderr.String(), added.Secret, rotated.Secret, tokens.RefreshToken, fresh.RefreshToken)
}

func TestDisabledUserLosesRefreshAndSeesTheDisabledPage(t *testing.T) {
	e := newAdminEnv(t)
	e.serve(t)
	party := e.relyingParty(t, rpClientID, rpSecret, rpRedirect)
	tokens := e.logIn(t, party)

	if code, _, stderr := e.cli(t, "users", "disable", e.user.UnionID); code != 0 {
		t.Fatalf("users disable: exit %d\n%s", code, stderr)
	}
	if _, err := refresh(party, tokens.RefreshToken); oauthError(err) != "invalid_grant" {
		t.Errorf("refresh of a disabled user: %v, want invalid_grant", err)
	}
	if _, err := rp.Userinfo[*oidc.UserInfo](context.Background(), tokens.AccessToken, oidc.BearerToken, e.user.UnionID, party); err == nil {
		t.Error("userinfo still answers for a disabled user")
	}
	resp, body := newBrowser(t, "http://127.0.0.1:1/").visit(e.authorizeURL(party, "n-"+rand.Text()))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Account disabled") {
		t.Errorf("new login of a disabled user: status %d, want 403 with \"Account disabled\":\n%s", resp.StatusCode, body)
	}

	if code, _, stderr := e.cli(t, "users", "enable", e.user.UnionID); code != 0 {
		t.Fatalf("users enable: exit %d\n%s", code, stderr)
	}
	// Disabling revoked; enabling does not bring the old tokens back.
	if _, err := refresh(party, tokens.RefreshToken); oauthError(err) != "invalid_grant" {
		t.Errorf("refresh token from before the disable, after enable: %v, want invalid_grant", err)
	}
	e.logIn(t, party)
}

func TestKeysRotateWhileATokenIsOutstanding(t *testing.T) {
	e := newAdminEnv(t)
	e.serve(t)
	party := e.relyingParty(t, rpClientID, rpSecret, rpRedirect)
	before := e.logIn(t, party)

	var rotated struct {
		ID string `json:"kid"`
	}
	e.cliJSON(t, &rotated, "keys", "rotate")
	if oldKid := kidOf(t, before.IDToken); rotated.ID == "" || rotated.ID == oldKid {
		t.Fatalf("rotated to kid %q, the old token has %q", rotated.ID, oldKid)
	}

	// A relying party that has never seen a key fetches the JWKS now.
	newcomer := e.relyingParty(t, rpClientID, rpSecret, rpRedirect)
	ctx := context.WithValue(context.Background(), nonceKey{}, before.IDTokenClaims.Nonce)
	if _, err := rp.VerifyIDToken[*oidc.IDTokenClaims](ctx, before.IDToken, newcomer.IDTokenVerifier()); err != nil {
		t.Errorf("the id_token signed before the rotation no longer verifies: %v", err)
	}
	if after := e.logIn(t, newcomer); kidOf(t, after.IDToken) != rotated.ID {
		t.Errorf("a new id_token is signed by %q, want the new key %q", kidOf(t, after.IDToken), rotated.ID)
	}
}

func TestServeReplacesStaleSocketAndKeepsItPrivate(t *testing.T) {
	e := newAdminEnv(t)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: e.socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // what a crashed server leaves behind

	srv := e.serve(t)
	fi, err := os.Lstat(e.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode %v, want a socket with 0600", fi.Mode())
	}
	if code, stdout, stderr := e.cli(t, "client", "list"); code != 0 || !strings.Contains(stdout, "grafana") {
		t.Errorf("client list through the socket: exit %d\n%s%s", code, stdout, stderr)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	if _, err := os.Lstat(e.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket left behind after shutdown: %v", err)
	}
}

func TestAdminCommandWhenDatabaseIsLockedAndNoSocketAnswers(t *testing.T) {
	e := newAdminEnv(t)
	holder, err := bolt.Open(e.dbPath, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Close() })

	code, stdout, stderr := e.cli(t, "client", "list")
	want := "the database " + e.dbPath + " is in use by a running dingbridge but its admin socket " + e.socket + " does not answer"
	if code != exitError || stdout != "" || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 1 and %q", code, stdout, stderr, want)
	}
}

// cliJSON runs a command with -o json, which must succeed, and decodes its output.
func (e *adminEnv) cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	code, stdout, stderr := e.cli(t, append(args, "-o", "json")...)
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stdout)
	}
}

type nonceKey struct{}

// relyingParty is an OIDC client of the running server; the nonce it expects
// comes from the context, as each login has its own.
func (e *adminEnv) relyingParty(t *testing.T, clientID, secret, redirect string) rp.RelyingParty {
	t.Helper()
	httpClient := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	t.Cleanup(httpClient.CloseIdleConnections)
	party, err := rp.NewRelyingPartyOIDC(context.Background(), e.issuer, clientID, secret, redirect,
		[]string{"openid", "profile", "email", "offline_access"}, rp.WithHTTPClient(httpClient),
		rp.WithVerifierOpts(rp.WithNonce(func(ctx context.Context) string {
			n, _ := ctx.Value(nonceKey{}).(string)
			return n
		})))
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return party
}

func (e *adminEnv) authorizeURL(party rp.RelyingParty, nonce string) string {
	return rp.AuthURL("st-"+rand.Text(), party, rp.AuthURLOpt(rp.WithURLParam("nonce", nonce)))
}

// logIn runs the whole redirect dance with PKCE in a new browser and
// exchanges the code.
func (e *adminEnv) logIn(t *testing.T, party rp.RelyingParty) *oidc.Tokens[*oidc.IDTokenClaims] {
	t.Helper()
	return e.logInWith(t, newBrowser(t, "http://127.0.0.1:1/"), party)
}

func refresh(party rp.RelyingParty, token string) (*oidc.Tokens[*oidc.IDTokenClaims], error) {
	return rp.RefreshTokens[*oidc.IDTokenClaims](context.Background(), party, token, "", "")
}

// oauthError is the OAuth error code in err, or "".
func oauthError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	var oe *oidc.Error
	if errors.As(err, &oe) {
		return string(oe.ErrorType)
	}
	return ""
}

// kidOf reads the key id from a JWT's header.
func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var header struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &header); err != nil {
		t.Fatal(err)
	}
	return header.Kid
}
