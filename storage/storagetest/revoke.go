package storagetest

import (
	"testing"

	"github.com/dingbridge/dingbridge/storage"
)

func revokeTests() []test {
	return []test{
		{"revoking a subject deletes their tokens and sessions and no one else's", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			mine, theirs := accessToken("at1", "g1", live()), accessToken("at2", "g2", live())
			theirs.Subject = "someone-else"
			rtMine, rtTheirs := refreshToken("rt1", "g1", live()), refreshToken("rt2", "g2", live())
			rtTheirs.Subject = "someone-else"
			must(t, s.IssueTokens(ctx, mine, rtMine, storage.Rotation{}))
			must(t, s.IssueTokens(ctx, theirs, rtTheirs, storage.Rotation{}))
			sessMine, sessTheirs := session("s1", live()), session("s2", live())
			sessTheirs.Subject = "someone-else"
			must(t, s.CreateSession(ctx, sessMine))
			must(t, s.CreateSession(ctx, sessTheirs))

			must(t, s.RevokeSubject(ctx, mine.Subject))
			absent(t, s, []string{"at1"}, []string{"rt1"})
			present(t, s, []string{"at2"}, []string{"rt2"})
			if _, err := s.GetSession(ctx, "s1"); err == nil {
				t.Error("the subject's session survived")
			}
			if _, err := s.GetSession(ctx, "s2"); err != nil {
				t.Errorf("another person's session was deleted: %v", err)
			}
			// Revoking a grant afterwards must not trip over index entries left behind.
			must(t, s.RevokeGrant(ctx, "g1", live()))
		}},
		{"revoking a client deletes its requests, codes and tokens and no one else's", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			mine, theirs := accessToken("at1", "g1", live()), accessToken("at2", "g2", live())
			theirs.ClientID = "gitlab"
			rtMine, rtTheirs := refreshToken("rt1", "g1", live()), refreshToken("rt2", "g2", live())
			rtTheirs.ClientID = "gitlab"
			must(t, s.IssueTokens(ctx, mine, rtMine, storage.Rotation{}))
			must(t, s.IssueTokens(ctx, theirs, rtTheirs, storage.Rotation{}))
			codeMine, codeTheirs := authCode("c1", live()), authCode("c2", live())
			codeTheirs.ClientID = "gitlab"
			must(t, s.CreateAuthCode(ctx, codeMine))
			must(t, s.CreateAuthCode(ctx, codeTheirs))
			reqMine, reqTheirs := authRequest("r1", live()), authRequest("r2", live())
			reqTheirs.ClientID = "gitlab"
			must(t, s.CreateAuthRequest(ctx, reqMine))
			must(t, s.CreateAuthRequest(ctx, reqTheirs))

			must(t, s.RevokeClient(ctx, mine.ClientID))
			absent(t, s, []string{"at1"}, []string{"rt1"})
			present(t, s, []string{"at2"}, []string{"rt2"})
			if _, err := s.GetAuthCode(ctx, "c1"); err == nil {
				t.Error("the client's code survived")
			}
			if _, err := s.GetAuthRequest(ctx, "r1"); err == nil {
				t.Error("the client's auth request survived")
			}
			if _, err := s.GetAuthCode(ctx, "c2"); err != nil {
				t.Errorf("another client's code was deleted: %v", err)
			}
			if _, err := s.GetAuthRequest(ctx, "r2"); err != nil {
				t.Errorf("another client's auth request was deleted: %v", err)
			}
		}},
		{"revoking someone with nothing stored succeeds", func(t *testing.T, s storage.Storage) {
			must(t, s.RevokeSubject(t.Context(), "nobody"))
			must(t, s.RevokeClient(t.Context(), "nothing"))
		}},
	}
}
