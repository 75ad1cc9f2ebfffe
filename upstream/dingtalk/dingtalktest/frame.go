package dingtalktest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/template"
)

// DingTalk's QR login embedded in a site's own page (shared/dingtalk-api.md; DingTalk's
// "扫码登录第三方网站" guide): the site loads one of DingTalk's scripts, which draws an
// iframe from login.dingtalk.com showing the QR code; when the person has logged in,
// the frame tells its parent by postMessage.
//
//   - Today's OAuth2 login: ddlogin.js defines window.DTFrameLogin(frameParams,
//     loginParams, successCbk, errorCbk); loginParams are the /oauth2/auth parameters
//     (redirect_uri URL-encoded). The frame's message gives successCbk
//     {redirectUrl, authCode, state}; the page then goes to redirectUrl.
//   - The legacy SNS login: ddLogin.js defines DDLogin({id, goto, style, width,
//     height}), goto being the URL-encoded sns_authorize URL. The frame at
//     /login/qrcode.htm posts the string loginTmpCode; the page then goes to goto
//     with &loginTmpCode= appended, which redirects to redirect_uri with code and state.
//
// The fake serves both scripts (at DingTalk's CDN paths, FrameLoginPath and
// SNSFrameLoginPath) and both frames. The scripts are the fake's own: they draw the
// fake's frames and accept messages from the fake's origin only.

// Paths of the fake's copies of DingTalk's embedding scripts, as on g.alicdn.com.
const (
	FrameLoginPath    = "/dingding/h5-dingtalk-login/0.21.0/ddlogin.js"
	SNSFrameLoginPath = "/dingding/dinglogin/0.0.5/ddLogin.js"
)

var frameScripts = template.Must(template.New("").Parse(`
{{define "oauth2"}}(function () {
  var origin = "{{js .Origin}}";
  // window.DTFrameLogin(frameParams, loginParams, successCbk, errorCbk)
  window.DTFrameLogin = function (frame, login, onSuccess, onError) {
    var q = new URLSearchParams();
    Object.keys(login).forEach(function (k) {
      q.set(k, k === "redirect_uri" ? decodeURIComponent(login[k]) : login[k]);
    });
    q.set("embed", "1");
    var f = document.createElement("iframe");
    f.src = origin + "/oauth2/auth?" + q.toString();
    f.width = frame.width || 300;
    f.height = frame.height || 300;
    f.style.border = "0";
    var box = document.getElementById(frame.id);
    box.innerHTML = "";
    box.appendChild(f);
    window.addEventListener("message", function (e) {
      if (e.origin !== origin || e.source !== f.contentWindow) { return; }
      var d = e.data || {};
      if (d.authCode) { onSuccess({redirectUrl: d.redirectUrl, authCode: d.authCode, state: d.state}); }
      else if (onError) { onError(d.errorMsg || "login failed"); }
    });
  };
})();
{{end}}
{{define "sns"}}(function () {
  var origin = "{{js .Origin}}";
  // DDLogin({id, goto, style, width, height}): goto is the URL-encoded sns_authorize URL.
  window.DDLogin = function (a) {
    var f = document.createElement("iframe");
    f.src = origin + "/login/qrcode.htm?goto=" + a.goto + (a.style ? "&style=" + encodeURIComponent(a.style) : "");
    f.width = (a.width || 365) + "px";
    f.height = (a.height || 400) + "px";
    f.frameBorder = "0";
    var box = document.getElementById(a.id);
    box.innerHTML = "";
    box.appendChild(f);
  };
})();
{{end}}`))

// frameScript serves the fake's ddlogin.js or ddLogin.js.
func (f *Fake) frameScript(w http.ResponseWriter, r *http.Request) {
	name := "oauth2"
	if r.URL.Path == SNSFrameLoginPath {
		name = "sns"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// Names its own origin (as the real scripts name login.dingtalk.com): the frame
	// comes from there, and only messages from there count.
	_ = frameScripts.ExecuteTemplate(w, name, struct{ Origin string }{scheme + "://" + r.Host})
}

// qrConnectFrame is the legacy login's frame, /login/qrcode.htm?goto=…: the same
// person-picking page; choosing a person posts a loginTmpCode to the parent.
func (f *Fake) qrConnectFrame(w http.ResponseWriter, r *http.Request) {
	f.login(w, r, func(path string, params url.Values) (authRequest, []problem) {
		gotoURL, err := url.Parse(params.Get("goto"))
		if err != nil || !strings.HasSuffix(gotoURL.Path, "/connect/oauth2/sns_authorize") {
			return authRequest{}, []problem{{"goto 必须是 sns_authorize 地址", "goto must be the sns_authorize URL, got " + quote(params.Get("goto"))}}
		}
		req, problems := f.checkSNSRequest("/connect/oauth2/sns_authorize", gotoURL.Query())
		req.path, req.params, req.tmpCode = path, url.Values{"goto": {params.Get("goto")}}, true
		return req, problems
	})
}

// frameAnswer posts message to the page that embeds the frame, whose origin is
// the redirect_uri's, as DingTalk's frames do.
func (f *Fake) frameAnswer(w http.ResponseWriter, req authRequest, message any) {
	target, err := url.Parse(req.redirectURI)
	if err != nil || target.Host == "" {
		http.Error(w, "registered redirect_uri is not a URL", http.StatusInternalServerError)
		return
	}
	nonce := newSecret()
	var b strings.Builder
	if err := f.pages.ExecuteTemplate(&b, "frame_answer.html", struct {
		Nonce, TargetOrigin string
		Message             any
	}{nonce, target.Scheme + "://" + target.Host, message}); err != nil {
		http.Error(w, fmt.Sprintf("fake dingtalk: render frame answer: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'")
	_, _ = w.Write([]byte(b.String()))
}
