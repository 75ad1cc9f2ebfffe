package op

import (
	"bytes"
	"net/http"
	"net/url"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/upstream"
)

// Our own login page with DingTalk's QR code inside (a connector's loginPage:
// embedded): the person stays on a page with the company's name and logo,
// DingTalk's script draws its login in a frame, and the frame's answer takes the
// browser to the same callback a redirect login reaches, with the same state.
// The ordinary DingTalk login (QR or password) is a link underneath; whichever
// answer comes back first spends the state.

// Branding is what the embedded login page shows of the company.
type Branding struct {
	Title   string // "示例科技 SSO"; empty: the page's own words
	LogoURL string // an https (or loopback http) image
}

type embeddedData struct {
	Lang, Title, Body, Hint, Fallback, Failed string
	LogoURL                                   string
	upstream.EmbeddedLogin
	FallbackURL, Nonce string
}

var embeddedMessages = map[string]embeddedData{
	"en": {Title: "Log in with DingTalk", Body: "Scan the code with the DingTalk app.",
		Hint: "Or log in on DingTalk's own page, with a password or a code:", Fallback: "Log in on DingTalk's page",
		Failed: "DingTalk's login could not be shown here. Use the link below instead."},
	"zh": {Title: "钉钉登录", Body: "请使用钉钉扫描二维码登录。",
		Hint: "也可以在钉钉的登录页面用密码或验证码登录：", Fallback: "前往钉钉登录页面",
		Failed: "无法在此显示钉钉登录，请使用下方链接登录。"},
}

func (p *Provider) renderEmbedded(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, login upstream.EmbeddedLogin, fallbackURL string) {
	lang := pageLanguage(r, a.UILocales)
	data := embeddedMessages[lang]
	data.Lang = map[string]string{"en": "en", "zh": "zh-CN"}[lang]
	branding := p.settings().branding
	if branding.Title != "" {
		data.Title = branding.Title
	}
	data.LogoURL, data.EmbeddedLogin = branding.LogoURL, login
	data.FallbackURL, data.Nonce = fallbackURL, randomToken(16)

	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "embedded.html", data); err != nil {
		p.serverError(w, r, "render embedded login page", err)
		return
	}
	// Exactly DingTalk's script and frame origins run here, and our one script by
	// nonce; the logo's origin is the only other image source.
	img := "'self' data:"
	if origin := originOf(branding.LogoURL); origin != "" {
		img += " " + origin
	}
	scriptSrc := "'nonce-" + data.Nonce + "'"
	if origin := originOf(login.ScriptURL); origin != "" {
		scriptSrc += " " + origin
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src "+scriptSrc+"; frame-src "+login.FrameOrigin+
		"; style-src 'unsafe-inline'; img-src "+img+"; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", data.Lang)
	_, _ = w.Write(buf.Bytes())
}

// originOf is scheme://host of an absolute URL, or "".
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
