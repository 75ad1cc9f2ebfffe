package op_test

import (
	"context"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// BenchmarkLogin measures whole logins over loopback HTTP: authorize → login →
// fake DingTalk (approving at once) → callback (which issues the code) →
// token endpoint (client_secret_basic, PKCE, RS256 id_token) with the RP library
// verifying the id_token. Each login is a new person, so no SSO session helps.
// Client, provider and fake share the machine, so the figure is a floor.
// go test -run x -bench Login -benchtime 5s ./op
func BenchmarkLogin(b *testing.B) { benchmarkLogins(b, true, jose.RS256) }

// BenchmarkLoginES256 is BenchmarkLogin with ES256 id_tokens: the difference is
// what the RS256 signature costs.
func BenchmarkLoginES256(b *testing.B) { benchmarkLogins(b, true, jose.ES256) }

// BenchmarkSSOLogin measures logins that ride an existing SSO session: authorize →
// login (session found, issues the code) → token. No DingTalk.
func BenchmarkSSOLogin(b *testing.B) { benchmarkLogins(b, false, jose.RS256) }

func benchmarkLogins(b *testing.B, newPersonEachTime bool, alg jose.SignatureAlgorithm) {
	e := newEnv(b, envOptions{keyAlgorithm: alg})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI, "openid", "profile", "email", "offline_access")
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		br := newBrowser(b)
		for pb.Next() {
			if newPersonEachTime {
				br = newBrowser(b)
			}
			a := &loginAttempt{}
			q := br.loginAt(e.authorizeURL(party, a))
			ctx := context.WithValue(context.Background(), nonceKey{}, a.nonce)
			if _, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, q.Get("code"), party, rp.WithCodeVerifier(a.verifier)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}
