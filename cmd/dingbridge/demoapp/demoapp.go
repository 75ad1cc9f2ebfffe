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
	"strings"
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

// App serves /demo/, /demo/login, /demo/callback and /demo/logged-out under
// BaseURL's path.
type App struct {
	cfg  Config
	path string

	mu      sync.Mutex
	party   rp.RelyingParty   // built on first use: discovery needs the provider to be up
	results map[string]result // what a browser's last login brought, by its resultCookie
}

// resultCookie names the browser's last login, so the page showing it can be
// reloaded (the callback's code and state work once).
const resultCookie = "demo_result"

// New returns the demo app.
func New(cfg Config) (*App, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("demo app base URL: %w", err)
	}
	return &App{cfg: cfg, path: u.Path, results: map[string]result{}}, nil
}

// ClientSecret is the secret the app authenticates with.
func (a *App) ClientSecret() string { return a.cfg.ClientSecret }

// RedirectURI is where the provider sends the browser back to.
func (a *App) RedirectURI() string { return a.cfg.BaseURL + "/callback" }

// PostLogoutRedirectURI is where the provider sends the browser after logout.
func (a *App) PostLogoutRedirectURI() string { return a.cfg.BaseURL + "/logged-out" }

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
			if strings.HasPrefix(description, "failed to get state") {
				// The callback again (a reload, the back button): its code was spent.
				errorType, description = "login_already_used", "this login's answer was already used, or belongs to another browser: log in again"
			}
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
		render(w, http.StatusOK, a.lastResult(r))
	case a.path + "/logged-out":
		a.forget(w, r)
		render(w, http.StatusOK, result{Base: a.path, LoggedOut: true})
	case a.path + "/login":
		rp.AuthURLHandler(func() string { return rand.Text() }, party)(w, r)
	case a.path + "/callback":
		rp.CodeExchangeHandler(rp.UserinfoCallback(a.loggedIn), party)(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (a *App) loggedIn(w http.ResponseWriter, r *http.Request, tokens *oidc.Tokens[*oidc.IDTokenClaims], _ string, party rp.RelyingParty, info *oidc.UserInfo) {
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
	id := rand.Text()
	a.mu.Lock()
	if len(a.results) >= maxResults {
		clear(a.results) // a demo: forgetting old logins is fine
	}
	a.results[id] = res
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: resultCookie, Value: id, Path: a.path + "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, a.path+"/", http.StatusSeeOther)
}

// maxResults bounds the logins the demo app remembers.
const maxResults = 1000

// lastResult is what this browser's last login brought, or the start page.
func (a *App) lastResult(r *http.Request) result {
	if c, err := r.Cookie(resultCookie); err == nil {
		a.mu.Lock()
		res, ok := a.results[c.Value]
		a.mu.Unlock()
		if ok {
			return res
		}
	}
	return result{Base: a.path}
}

func (a *App) forget(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(resultCookie); err == nil {
		a.mu.Lock()
		delete(a.results, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: resultCookie, Path: a.path + "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

type result struct {
	Base                    string
	Error, Description      string
	IDTokenClaims, Userinfo string
	RefreshToken            bool
	LogoutURL               string
	LoggedOut               bool
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
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>dingbridge demo app</title>
<style>
body{margin:0;font:16px/1.6 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#f3f5f8;color:#1f2329}
main{max-width:48rem;margin:6vh auto;padding:2rem;background:#fff;border-radius:12px}
a.button{display:inline-block;padding:.6rem 1.2rem;border-radius:8px;background:#3370ff;color:#fff;text-decoration:none;margin-right:.5rem}
a.plain{color:#3370ff;margin-right:1rem}
pre{background:#f5f6f7;padding:1rem;border-radius:8px;overflow:auto;font-size:.85rem}
.error{color:#d83931}
@media (max-width:34rem){main{margin:1rem;padding:1.25rem}}
</style></head><body><main>
<h1>dingbridge demo app</h1>
{{if .Error}}
<p class="error">The provider answered with an error: <b>{{.Error}}</b> {{.Description}}</p>
<p><a class="button" href="{{.Base}}/login"><span lang="zh-CN">用钉钉登录</span> · Log in with DingTalk</a></p>
{{else if .IDTokenClaims}}
<p>Logged in. The id_token's signature was verified against the provider's JWKS.{{if .RefreshToken}} A refresh token was issued too.{{end}}</p>
<h2>id_token claims</h2><pre>{{.IDTokenClaims}}</pre>
<h2>userinfo</h2><pre>{{.Userinfo}}</pre>
<p><a class="plain" href="{{.Base}}/login">Log in again</a>{{if .LogoutURL}}<a class="plain" href="{{.LogoutURL}}">Log out</a>{{end}}</p>
{{else if .LoggedOut}}
<p>You have logged out of the demo app and of dingbridge.</p>
<p><a class="button" href="{{.Base}}/login"><span lang="zh-CN">用钉钉登录</span> · Log in with DingTalk</a></p>
{{else}}
<p>An ordinary OpenID Connect web app. It knows nothing about DingTalk: it only knows the issuer, its client id and secret.</p>
<p><a class="button" href="{{.Base}}/login"><span lang="zh-CN">用钉钉登录</span> · Log in with DingTalk</a></p>
{{end}}
</main></body></html>`))

func render(w http.ResponseWriter, status int, res result) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = page.Execute(w, res)
}
