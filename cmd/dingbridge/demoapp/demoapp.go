// Package demoapp is the relying party `dingbridge dev` serves at /demo: an
// ordinary OIDC web app, built on zitadel's RP library, that logs in through
// dingbridge and shows what it received — so a newcomer sees the whole flow work.
package demoapp

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sync"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Config is the demo app's registration at the provider.
type Config struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// BaseURL is where the app is served, e.g. http://127.0.0.1:5556/demo.
	// Its redirect URI is BaseURL+"/callback"; after logout it returns to BaseURL+"/".
	BaseURL string
}

// App serves /demo/, /demo/login and /demo/callback under BaseURL's path.
type App struct {
	cfg  Config
	path string

	mu    sync.Mutex
	party rp.RelyingParty // built on first use: discovery needs the provider to be up
}

// New returns the demo app.
func New(cfg Config) (*App, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("demo app base URL: %w", err)
	}
	return &App{cfg: cfg, path: u.Path}, nil
}

// ClientSecret is the secret the app authenticates with.
func (a *App) ClientSecret() string { return a.cfg.ClientSecret }

// RedirectURI is where the provider sends the browser back to.
func (a *App) RedirectURI() string { return a.cfg.BaseURL + "/callback" }

// PostLogoutRedirectURI is where the provider sends the browser after logout.
func (a *App) PostLogoutRedirectURI() string { return a.cfg.BaseURL + "/" }

func (a *App) relyingParty(ctx context.Context) (rp.RelyingParty, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.party != nil {
		return a.party, nil
	}
	cookies := httphelper.NewCookieHandler(randomKey(), randomKey(), httphelper.WithUnsecure(), httphelper.WithPath(a.path+"/"))
	party, err := rp.NewRelyingPartyOIDC(ctx, a.cfg.Issuer, a.cfg.ClientID, a.cfg.ClientSecret, a.RedirectURI(),
		[]string{"openid", "profile", "email", "phone", "offline_access", "groups"},
		rp.WithPKCE(cookies),
		rp.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, errorType, description, _ string) {
			render(w, http.StatusBadRequest, result{Error: errorType, Description: description, Base: a.path})
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", a.cfg.Issuer, err)
	}
	a.party = party
	return party, nil
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	party, err := a.relyingParty(r.Context())
	if err != nil {
		render(w, http.StatusBadGateway, result{Error: "provider_unreachable", Description: err.Error(), Base: a.path})
		return
	}
	switch r.URL.Path {
	case a.path, a.path + "/":
		render(w, http.StatusOK, result{Base: a.path})
	case a.path + "/login":
		rp.AuthURLHandler(func() string { return rand.Text() }, party)(w, r)
	case a.path + "/callback":
		rp.CodeExchangeHandler(rp.UserinfoCallback(a.loggedIn), party)(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (a *App) loggedIn(w http.ResponseWriter, _ *http.Request, tokens *oidc.Tokens[*oidc.IDTokenClaims], _ string, party rp.RelyingParty, info *oidc.UserInfo) {
	res := result{
		Base:          a.path,
		IDTokenClaims: pretty(tokens.IDTokenClaims),
		Userinfo:      pretty(info),
		RefreshToken:  tokens.RefreshToken != "",
	}
	if endpoint := party.GetEndSessionEndpoint(); endpoint != "" {
		q := url.Values{"id_token_hint": {tokens.IDToken}, "post_logout_redirect_uri": {a.PostLogoutRedirectURI()}}
		res.LogoutURL = endpoint + "?" + q.Encode()
	}
	render(w, http.StatusOK, res)
}

type result struct {
	Base                    string
	Error, Description      string
	IDTokenClaims, Userinfo string
	RefreshToken            bool
	LogoutURL               string
}

func pretty(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func randomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

var page = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>dingbridge demo app</title>
<style>
body{margin:0;font:16px/1.6 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#f3f5f8;color:#1f2329}
main{max-width:48rem;margin:6vh auto;padding:2rem;background:#fff;border-radius:12px}
a.button{display:inline-block;padding:.6rem 1.2rem;border-radius:8px;background:#3370ff;color:#fff;text-decoration:none;margin-right:.5rem}
a.plain{color:#3370ff;margin-right:1rem}
pre{background:#f5f6f7;padding:1rem;border-radius:8px;overflow:auto;font-size:.85rem}
.error{color:#d83931}
</style></head><body><main>
<h1>dingbridge demo app</h1>
{{if .Error}}
<p class="error">The provider answered with an error: <b>{{.Error}}</b> {{.Description}}</p>
<p><a class="button" href="{{.Base}}/login">用钉钉登录 · Log in with DingTalk</a></p>
{{else if .IDTokenClaims}}
<p>Logged in. The id_token's signature was verified against the provider's JWKS.{{if .RefreshToken}} A refresh token was issued too.{{end}}</p>
<h2>id_token claims</h2><pre>{{.IDTokenClaims}}</pre>
<h2>userinfo</h2><pre>{{.Userinfo}}</pre>
<p><a class="plain" href="{{.Base}}/login">Log in again</a>{{if .LogoutURL}}<a class="plain" href="{{.LogoutURL}}">Log out</a>{{end}}</p>
{{else}}
<p>An ordinary OpenID Connect web app. It knows nothing about DingTalk: it only knows the issuer, its client id and secret.</p>
<p><a class="button" href="{{.Base}}/login">用钉钉登录 · Log in with DingTalk</a></p>
{{end}}
</main></body></html>`))

func render(w http.ResponseWriter, status int, res result) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = page.Execute(w, res)
}
