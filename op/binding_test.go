package op_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/upstream/dingtalk"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// Closed registration holds in every way DingTalk logs people in: the legacy
// scan login and the in-app login refuse an unbound person with the same page,
// and admit one provisioned by staff id.
func TestClosedRegistrationInEveryLoginMode(t *testing.T) {
	closed := op.Registration{Closed: true, Contact: "IT 服务台"}
	lisi := dingtalktest.DemoUsers()[1]
	provision := func(t *testing.T, e *env) {
		t.Helper()
		_, err := e.store.UpsertUser(t.Context(), "li.si", func(storage.User, bool) (storage.User, error) {
			return storage.User{Subject: "li.si", UserID: "lisi", CorpID: dingtalktest.DemoCorpID, ProvisionedAt: time.Now()}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	refused := func(t *testing.T, resp *http.Response, body string) {
		t.Helper()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not bound here") || !strings.Contains(body, "IT 服务台") {
			t.Fatalf("unbound person: status %d, want 403 with the not-bound page\n%s", resp.StatusCode, body)
		}
		if q := backToClientError(t, body, rpRedirectURI); q.Get("error") != "access_denied" {
			t.Errorf("client is told %q, want access_denied", q.Get("error"))
		}
	}

	t.Run("sns", func(t *testing.T) {
		e := newEnv(t, envOptions{registration: closed, connector: func(c *dingtalk.Config) {
			c.Mode, c.CorpID, c.CorpAppKey, c.CorpAppSecret = dingtalk.ModeSNS, dingtalktest.DemoCorpID, dtClientID, dtSecret
		}})
		party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
		e.dingtalk.Fake.AutoApprove(lisi.UnionID)
		resp, body := newBrowser(t).visit(e.authorizeURL(party, &loginAttempt{}))
		refused(t, resp, body)
		provision(t, e)
		if tokens := e.loginTokens(t, party); tokens.IDTokenClaims.Subject != "li.si" {
			t.Errorf("provisioned by staff id: sub %q, want li.si", tokens.IDTokenClaims.Subject)
		}
	})
	t.Run("in-app", func(t *testing.T) {
		e := newEnv(t, envOptions{registration: closed, connector: corpConnector(nil)})
		party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
		resp, body := e.inAppLogin(t, newBrowser(t), e.authorizeURL(party, &loginAttempt{}), lisi.UnionID)
		refused(t, resp, body)
		provision(t, e)
		a := &loginAttempt{}
		resp, _ = e.inAppLogin(t, newBrowser(t), e.authorizeURL(party, a), lisi.UnionID)
		tokens, err := exchange(t, party, mustQuery(t, resp.Header.Get("Location")), a)
		if err != nil {
			t.Fatal(err)
		}
		if tokens.IDTokenClaims.Subject != "li.si" {
			t.Errorf("provisioned by staff id, in-app: sub %q, want li.si", tokens.IDTokenClaims.Subject)
		}
	})
}

// A person the directory no longer lists is disabled by the re-check, and a
// later DingTalk login that finds them a member again (they rejoined) enables
// them; an administrator's disable is not undone that way.
func TestDirectoryDisableIsLiftedByALoginAsAMember(t *testing.T) {
	e := newEnv(t, envOptions{connector: corpConnector(func(c *dingtalk.Config) { c.RequireMembership = true }),
		membership: op.Membership{Recheck: time.Millisecond}})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI, groupsScopes...)
	zhang := dingtalktest.DemoUsers()[0]
	e.dingtalk.Fake.AutoApprove(zhang.UnionID)
	tokens := e.loginTokens(t, party)

	e.dingtalk.Fake.RemoveMember(zhang.UnionID)
	time.Sleep(5 * time.Millisecond)
	if _, err := refreshWith(party, tokens.RefreshToken); err == nil {
		t.Fatal("a leaver's refresh succeeded")
	}
	u, err := e.store.GetUser(t.Context(), zhang.UnionID)
	if err != nil || !u.Disabled || !strings.HasPrefix(u.DisabledReason, "directory: ") || u.DisabledAt.IsZero() {
		t.Fatalf("after the re-check: %+v, %v", u, err)
	}

	e.dingtalk.Fake.RestoreMember(zhang.UnionID)
	if again := e.loginTokens(t, party); again.IDTokenClaims.Subject != zhang.UnionID {
		t.Errorf("rejoined: sub %q", again.IDTokenClaims.Subject)
	}
	if u, _ := e.store.GetUser(t.Context(), zhang.UnionID); u.Disabled || u.DisabledReason != "" {
		t.Errorf("after rejoining: disabled %t (%q)", u.Disabled, u.DisabledReason)
	}

	// Disabled by an administrator: a login does not lift it.
	if _, err := e.store.UpsertUser(t.Context(), zhang.UnionID, func(u storage.User, _ bool) (storage.User, error) {
		u.Disabled, u.DisabledReason = true, "disabled by an administrator"
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	resp, body := newBrowser(t).visit(e.authorizeURL(party, &loginAttempt{}))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Account disabled") {
		t.Errorf("administrator's disable: status %d\n%s", resp.StatusCode, body)
	}
}
