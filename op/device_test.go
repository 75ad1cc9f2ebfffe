package op_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/op"
)

// deviceEnv has a short poll interval so the device tests need not wait 5 s.
func deviceEnv(t *testing.T, lifetimes op.Lifetimes) *env {
	if lifetimes.DevicePollInterval == 0 {
		lifetimes.DevicePollInterval = time.Second
	}
	return newEnv(t, envOptions{lifetimes: lifetimes})
}

func (e *env) startDevice(t *testing.T, scopes ...string) (rp.RelyingParty, *oidc.DeviceAuthorizationResponse) {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"openid", "profile", "offline_access"}
	}
	party := e.relyingParty(deviceClientID, "", "", scopes...)
	resp, err := rp.DeviceAuthorization(context.Background(), scopes, party, nil)
	if err != nil {
		t.Fatal(err)
	}
	return party, resp
}

// pollOnce asks the token endpoint once, as a device does; it returns the OAuth
// error code, or "" and the tokens.
func (e *env) pollOnce(t *testing.T, deviceCode string) (string, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(e.issuer+"/oauth/token", url.Values{
		"grant_type": {string(oidc.GrantTypeDeviceCode)}, "device_code": {deviceCode}, "client_id": {deviceClientID},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if code, _ := body["error"].(string); code != "" {
		return code, body
	}
	return "", body
}

// approveDevice is the person's side: open the link, confirm, log in at DingTalk.
// It returns the last page's status and body.
func (e *env) approveDevice(t *testing.T, b *browser, verificationURIComplete, decision string) (int, string) {
	t.Helper()
	resp, body := b.visit(verificationURIComplete)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("device page: %d\n%s", resp.StatusCode, body)
	}
	action, fields := pageForm(t, e.issuer, body)
	resp, body = b.submit(action, fields)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "kubectl") {
		t.Fatalf("confirmation page: %d\n%s", resp.StatusCode, body)
	}
	action, fields = pageForm(t, e.issuer, body)
	fields.Set("decision", decision)
	resp, body = b.submit(action, fields)
	return resp.StatusCode, body
}

func TestDeviceFlowToCompletion(t *testing.T) {
	e := deviceEnv(t, op.Lifetimes{})
	party, dev := e.startDevice(t)
	if dev.Interval != 1 || dev.ExpiresIn != 600 || !strings.HasPrefix(dev.VerificationURI, e.issuer+"/device") {
		t.Fatalf("device authorization response: %+v", dev)
	}
	if code, _ := e.pollOnce(t, dev.DeviceCode); code != "authorization_pending" {
		t.Fatalf("before approval: %q, want authorization_pending", code)
	}

	status, body := e.approveDevice(t, newBrowser(t), dev.VerificationURIComplete, "allow")
	if status != http.StatusOK || !strings.Contains(body, "Device connected") {
		t.Fatalf("after login: %d\n%s", status, body)
	}
	if n := e.dingtalkLogins(); n != 1 {
		t.Errorf("DingTalk saw %d logins, want 1", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tokens, err := rp.DeviceAccessToken(ctx, dev.DeviceCode, time.Second, party)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := rp.VerifyIDToken[*oidc.IDTokenClaims](ctx, tokens.IDToken, party.IDTokenVerifier())
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	if claims.Subject != e.user.UnionID || claims.Claims["unionid"] != e.user.UnionID {
		t.Errorf("id_token subject %q, unionid %v; want %s", claims.Subject, claims.Claims["unionid"], e.user.UnionID)
	}
	if claims.Claims["sid"] == nil || claims.AuthTime == 0 {
		t.Errorf("id_token lacks sid or auth_time: %v", claims.Claims)
	}
	info, err := rp.Userinfo[*oidc.UserInfo](ctx, tokens.AccessToken, oidc.BearerToken, claims.Subject, party)
	if err != nil || info.Name != e.user.Nick {
		t.Errorf("userinfo with the device's access token: %+v, %v", info, err)
	}
	if tokens.RefreshToken == "" {
		t.Fatal("no refresh token for offline_access")
	}
	refreshed, err := refreshWith(party, tokens.RefreshToken)
	if err != nil || refreshed.AccessToken == "" {
		t.Fatalf("refresh: %v", err)
	}

	// The device code is spent: polling again gets nothing more. RFC 8628 §3.5
	// keeps access_denied for a person's refusal; a spent code is invalid_grant.
	if code, _ := e.pollOnce(t, dev.DeviceCode); code != "invalid_grant" {
		t.Errorf("spent device code: %q, want invalid_grant", code)
	}
}

func TestDevicePollingTooFastIsSlowedDown(t *testing.T) {
	e := deviceEnv(t, op.Lifetimes{DevicePollInterval: 2 * time.Second})
	_, dev := e.startDevice(t)
	if code, _ := e.pollOnce(t, dev.DeviceCode); code != "authorization_pending" {
		t.Fatalf("first poll: %q", code)
	}
	if code, _ := e.pollOnce(t, dev.DeviceCode); code != "slow_down" {
		t.Fatalf("second poll at once: %q, want slow_down", code)
	}
	// The interval grew by 5 s (RFC 8628 §3.5): waiting the old interval is still too fast.
	time.Sleep(2100 * time.Millisecond)
	if code, _ := e.pollOnce(t, dev.DeviceCode); code != "slow_down" {
		t.Fatalf("poll after the old interval: %q, want slow_down", code)
	}
}

func TestDeviceCodeExpires(t *testing.T) {
	e := deviceEnv(t, op.Lifetimes{DeviceCode: time.Second, DevicePollInterval: time.Second})
	_, dev := e.startDevice(t)
	time.Sleep(1100 * time.Millisecond)
	if code, _ := e.pollOnce(t, dev.DeviceCode); code != "expired_token" {
		t.Fatalf("poll after expiry: %q, want expired_token", code)
	}
	// The person is too late as well.
	b := newBrowser(t)
	_, body := b.visit(dev.VerificationURIComplete)
	action, fields := pageForm(t, e.issuer, body)
	resp, body := b.submit(action, fields)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Code not accepted") {
		t.Errorf("expired code at the page: %d\n%s", resp.StatusCode, body)
	}
}

func TestDeviceCancelledByThePerson(t *testing.T) {
	e := deviceEnv(t, op.Lifetimes{})
	_, dev := e.startDevice(t)
	status, body := e.approveDevice(t, newBrowser(t), dev.VerificationURIComplete, "deny")
	if status != http.StatusForbidden || !strings.Contains(body, "Device not connected") {
		t.Fatalf("cancel: %d\n%s", status, body)
	}
	if code, _ := e.pollOnce(t, dev.DeviceCode); code != "access_denied" {
		t.Errorf("poll after cancel: %q, want access_denied", code)
	}
	if n := e.dingtalkLogins(); n != 0 {
		t.Errorf("DingTalk saw %d logins after a cancel, want 0", n)
	}
}

func TestDeviceDeniedAtDingTalk(t *testing.T) {
	e := deviceEnv(t, op.Lifetimes{})
	e.dingtalk.Fake.AutoDeny(true)
	_, dev := e.startDevice(t)
	status, body := e.approveDevice(t, newBrowser(t), dev.VerificationURIComplete, "allow")
	if status != http.StatusForbidden || !strings.Contains(body, "Device not connected") {
		t.Fatalf("denied at DingTalk: %d\n%s", status, body)
	}
	if code, _ := e.pollOnce(t, dev.DeviceCode); code != "access_denied" {
		t.Errorf("poll: %q, want access_denied", code)
	}
}

func TestDeviceCodeMustBeRight(t *testing.T) {
	e := deviceEnv(t, op.Lifetimes{})
	_, dev := e.startDevice(t)
	b := newBrowser(t)
	_, body := b.visit(e.issuer + "/device")
	action, fields := pageForm(t, e.issuer, body)
	for _, typed := range []string{"", "BCDF-GHJK", "not a code", strings.Repeat("B", 200)} {
		fields.Set("user_code", typed)
		resp, body := b.submit(action, fields)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Code not accepted") {
			t.Errorf("user_code %q: %d", typed, resp.StatusCode)
		}
	}
	// Lower case and without the dash is the same code.
	fields.Set("user_code", strings.ToLower(strings.ReplaceAll(dev.UserCode, "-", "")))
	resp, body := b.submit(action, fields)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, dev.UserCode) {
		t.Errorf("code typed loosely: %d\n%s", resp.StatusCode, body)
	}
}

// The confirmation is a form another site cannot submit for the person.
func TestDeviceConfirmationNeedsTheFormToken(t *testing.T) {
	e := deviceEnv(t, op.Lifetimes{})
	_, dev := e.startDevice(t)
	code := strings.ReplaceAll(dev.UserCode, "-", "")
	for name, fields := range map[string]url.Values{
		"no token":        {"user_code": {code}, "decision": {"allow"}},
		"forged token":    {"user_code": {code}, "decision": {"allow"}, "form_token": {"AAAA"}},
		"another browser": nil,
	} {
		b := newBrowser(t)
		if fields == nil {
			// A token minted in the attacker's browser is worthless in the victim's.
			attacker := newBrowser(t)
			_, body := attacker.visit(dev.VerificationURIComplete)
			action, f := pageForm(t, e.issuer, body)
			_, body = attacker.submit(action, f)
			_, fields = pageForm(t, e.issuer, body)
			fields.Set("decision", "allow")
		}
		resp, _ := b.submit(e.issuer+"/device/confirm", fields)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, resp.StatusCode)
		}
	}
	if code, _ := e.pollOnce(t, dev.DeviceCode); code != "authorization_pending" {
		t.Errorf("after forged confirmations: %q, want still authorization_pending", code)
	}
	if n := e.dingtalkLogins(); n != 0 {
		t.Errorf("DingTalk saw %d logins, want 0", n)
	}
}

func TestDeviceGrantOnlyForClientsAllowedIt(t *testing.T) {
	e := deviceEnv(t, op.Lifetimes{})
	party := e.relyingParty(publicClientID, "", publicRedirect, "openid")
	_, err := rp.DeviceAuthorization(context.Background(), []string{"openid"}, party, nil)
	if code := oauthErrorCode(err); code != "unauthorized_client" {
		t.Errorf("device authorization by a client without the grant: %v (%q), want unauthorized_client", err, code)
	}
	disc, err := http.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer disc.Body.Close()
	var d oidc.DiscoveryConfiguration
	if err := json.NewDecoder(disc.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.DeviceAuthorizationEndpoint != e.issuer+"/device_authorization" {
		t.Errorf("device_authorization_endpoint = %q", d.DeviceAuthorizationEndpoint)
	}
	found := false
	for _, g := range d.GrantTypesSupported {
		found = found || g == oidc.GrantTypeDeviceCode
	}
	if !found {
		t.Errorf("grant_types_supported %v lacks the device code grant", d.GrantTypesSupported)
	}
}

// A person who is already logged in at dingbridge approves a device without
// another DingTalk login, after confirming.
func TestDeviceApprovedFromAnSSOSession(t *testing.T) {
	e := deviceEnv(t, op.Lifetimes{})
	b := newBrowser(t)
	grafana := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	e.loginWith(t, b, grafana, &loginAttempt{})
	_, dev := e.startDevice(t)
	status, body := e.approveDevice(t, b, dev.VerificationURIComplete, "allow")
	if status != http.StatusOK || !strings.Contains(body, "Device connected") {
		t.Fatalf("%d\n%s", status, body)
	}
	if n := e.dingtalkLogins(); n != 1 {
		t.Errorf("DingTalk saw %d logins, want 1 (the SSO session approved the device)", n)
	}
	time.Sleep(time.Second)
	if code, tokens := e.pollOnce(t, dev.DeviceCode); code != "" || tokens["access_token"] == nil {
		t.Errorf("poll: %q %v", code, tokens)
	}
}
