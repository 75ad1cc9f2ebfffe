package op

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/upstream"
)

// The in-app login (DingTalk's 免登): inside the DingTalk client, /login serves a
// page that asks the client's JavaScript API for a one-time code and posts it to
// /callback/<connector>/inapp with the same state a redirect would carry. The
// page needs nothing of ours to work: the DingTalk login link is always on it,
// so if the JSAPI is missing or refuses, the person logs in the ordinary way,
// and whichever answer comes back first spends the state.

type inAppData struct {
	Lang, Title, Body, Hint, Fallback, Failed string
	Action, State, CorpID, ClientID           string
	ScriptURL, FallbackURL, Nonce             string
}

var inAppMessages = map[string]inAppData{
	"en": {Title: "Logging in with DingTalk…", Body: "DingTalk is confirming who you are.",
		Hint: "If nothing happens in a few seconds:", Fallback: "Log in with DingTalk",
		Failed: "DingTalk could not log you in here. Use the button below instead."},
	"zh": {Title: "正在通过钉钉登录…", Body: "钉钉正在确认您的身份。",
		Hint: "如果几秒后仍无反应：", Fallback: "使用钉钉登录",
		Failed: "无法在此处通过钉钉免登，请点击下方按钮登录。"},
}

// onlyInAppConnector returns the connector that can log r's person in inside the
// DingTalk client, if exactly one can.
func (p *Provider) onlyInAppConnector(r *http.Request) (Connector, bool) {
	var found []Connector
	for _, c := range p.settings().connectors {
		if in, ok := c.Connector.(upstream.InAppConnector); ok {
			if _, ok := in.InAppLogin(r); ok {
				found = append(found, c)
			}
		}
	}
	if len(found) != 1 {
		return Connector{}, false
	}
	return found[0], true
}

func (p *Provider) renderInApp(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, conn Connector, state, fallbackURL string, login upstream.InAppLogin) {
	lang := pageLanguage(r, a.UILocales)
	data := inAppMessages[lang]
	data.Lang = map[string]string{"en": "en", "zh": "zh-CN"}[lang]
	data.Action = p.issuerPath + "/callback/" + conn.ID + "/inapp"
	data.State, data.CorpID, data.ClientID = state, login.CorpID, login.ClientID
	data.ScriptURL, data.FallbackURL, data.Nonce = login.ScriptURL, fallbackURL, randomToken(16)

	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "inapp.html", data); err != nil {
		p.serverError(w, r, "render in-app page", err)
		return
	}
	// This one page runs script: DingTalk's JSAPI from its origin, and ours by
	// nonce. Its form's answer leads on to the app.
	scriptSrc := "'nonce-" + data.Nonce + "'"
	if origin := cspOrigin(login.ScriptURL); strings.Contains(origin, "://") {
		scriptSrc += " " + origin
	}
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy(scriptSrc, p.answerOrigins(a)))
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", data.Lang)
	_, _ = w.Write(buf.Bytes())
}

// inAppCallback receives the code the page got from the DingTalk client.
func (p *Provider) inAppCallback(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	conn, a, failed := p.returningLogin(w, r, r.PostFormValue("state"))
	if failed != "" {
		p.countLogin(conn, methodInApp, failed, start)
		return
	}
	in, isInApp := conn.Connector.(upstream.InAppConnector)
	code := r.PostFormValue("code")
	if !isInApp || code == "" || len(code) > 512 {
		p.render(w, r, &pageView{page: pageBadRequest, status: http.StatusBadRequest, locales: a.UILocales,
			actions: []action{{actionRetry, p.loginURL(a.ID, conn.ID)}}})
		p.countLogin(conn, methodInApp, loginError, start)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.settings().lifetimes.UpstreamLogin)
	id, err := in.HandleInAppCode(ctx, code)
	cancel()
	if err != nil {
		p.countLogin(conn, methodInApp, p.upstreamFailed(w, r, a, conn, err), start)
		return
	}
	p.countLogin(conn, methodInApp, p.loggedInUpstream(w, r, a, conn, id), start)
}
