package op_test

import (
	"context"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// What DingTalk says about a person is what the person typed: a nick that would
// rewrite a terminal, or one of 100,000 characters, reaches neither the stored
// user, nor the id_token, nor userinfo as it came.
func TestUpstreamStringsAreCleanedWhereTheyEnter(t *testing.T) {
	for name, nick := range map[string]string{
		"escape sequences and a forged row": "Mallory\x1b[2J\x1b[H\nadmin-user\t2026-01-01\r\u202eevil",
		"100,000 characters":                strings.Repeat("长", 100_000),
	} {
		t.Run(name, func(t *testing.T) {
			hostile := dingtalktest.DemoUsers()[0]
			hostile.Nick = nick
			hostile.AvatarURL = "javascript:alert(1)"
			e := newEnv(t, envOptions{users: []dingtalktest.User{hostile}})
			party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
			tokens, _ := e.login(t, party)

			info, err := rp.Userinfo[*oidc.UserInfo](context.Background(), tokens.AccessToken, oidc.BearerToken, tokens.IDTokenClaims.Subject, party)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := e.store.GetUser(context.Background(), tokens.IDTokenClaims.Subject)
			if err != nil {
				t.Fatal(err)
			}
			for where, got := range map[string]string{
				"id_token name": tokens.IDTokenClaims.Name, "userinfo name": info.Name, "stored nick": stored.Nick,
			} {
				if got == "" {
					t.Errorf("%s is empty: the readable part should survive", where)
				}
				if strings.ContainsFunc(got, func(r rune) bool { return unicode.IsControl(r) || r == '\u202e' }) {
					t.Errorf("%s keeps control characters: %q", where, got)
				}
				if n := utf8.RuneCountInString(got); n > 128 {
					t.Errorf("%s has %d characters, want at most 128", where, n)
				}
			}
			if stored.AvatarURL != "" || info.Picture != "" {
				t.Errorf("a javascript: avatar URL was kept: stored %q, userinfo %q", stored.AvatarURL, info.Picture)
			}
			if len(tokens.IDToken) > 8<<10 {
				t.Errorf("id_token is %d bytes", len(tokens.IDToken))
			}
		})
	}
}
