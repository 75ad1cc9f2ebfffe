package dingtalktest

import (
	"embed"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

func parsePages() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		// DingTalk's default avatar shows the last two characters of the name.
		"initials": func(nick string) string {
			r := []rune(nick)
			return string(r[max(0, len(r)-2):])
		},
	}).ParseFS(templateFS, "templates/*.html"))
}

// authRequest is a checked GET or POST to /oauth2/auth or to an SNS authorize page.
type authRequest struct {
	app         App
	redirectURI string
	state       string
	scope       string
	wantsCorpID bool // scope has corpid: bind the person's organisation to the code
	params      url.Values
	sns         bool   // the legacy SNS login: the code is for sns/getuserinfo_bycode
	path        string // where the page posts its buttons back to: the path it was shown at
	// frame: shown inside a site's page (DTFrameLogin's embed=1): the answer is a
	// message to the parent, not a redirect. tmpCode: the legacy frame, whose
	// message is a loginTmpCode for sns_authorize.
	frame, tmpCode bool
}

// problem is why an authorize request is refused, for the person reading the page.
type problem struct{ ZH, EN string }

// authorize is login.dingtalk.com/oauth2/auth: GET shows the page (or answers at
// once under AutoApprove/AutoDeny), POST is a button pressed on it. Both check the
// whole request; a bad one gets an error page, never a redirect (doc §2.1, §6.1).
func (f *Fake) authorize(w http.ResponseWriter, r *http.Request) {
	f.login(w, r, f.checkAuthRequest)
}

// login runs an authorize page, whose request check is given.
func (f *Fake) login(w http.ResponseWriter, r *http.Request, check func(path string, params url.Values) (authRequest, []problem)) {
	if err := r.ParseForm(); err != nil {
		f.showProblems(w, []problem{{"请求无法解析", "the request cannot be parsed"}})
		return
	}
	req, problems := check(r.URL.Path, r.Form)
	if len(problems) > 0 {
		f.showProblems(w, problems)
		return
	}
	if r.Method == http.MethodGet {
		f.mu.Lock()
		autoApprove, autoDeny := f.autoApprove, f.autoDeny
		f.mu.Unlock()
		switch {
		case autoDeny:
			f.deny(w, r, req)
		case autoApprove != "":
			f.approve(w, r, req, autoApprove)
		default:
			f.showLoginPage(w, req)
		}
		return
	}
	if r.PostForm.Get("deny") != "" {
		f.deny(w, r, req)
		return
	}
	f.approve(w, r, req, r.PostForm.Get("unionId"))
}

func (f *Fake) checkAuthRequest(path string, params url.Values) (authRequest, []problem) {
	req := authRequest{
		redirectURI: params.Get("redirect_uri"),
		state:       params.Get("state"),
		scope:       params.Get("scope"),
		params:      params,
		path:        path,
	}
	var problems []problem
	req.app, problems = f.checkAppAndRedirect("client_id", params)
	scopes := strings.Fields(req.scope)
	if !slices.Contains(scopes, "openid") {
		problems = append(problems, problem{"scope 必须包含 openid（收到 " + quote(req.scope) + "）",
			"scope must contain openid, got " + quote(req.scope)})
	}
	req.wantsCorpID = slices.Contains(scopes, "corpid")
	req.frame = params.Get("embed") == "1"
	if params.Get("prompt") != "consent" {
		problems = append(problems, problem{"缺少 prompt=consent", "prompt=consent is required"})
	}
	return req, problems
}

// checkAppAndRedirect checks what both login pages check alike: the app (named
// by idParam: client_id, or appid on the legacy pages), its registered
// redirect_uri and response_type=code.
func (f *Fake) checkAppAndRedirect(idParam string, params url.Values) (App, []problem) {
	var problems []problem
	id, redirectURI := params.Get(idParam), params.Get("redirect_uri")
	app, known := f.apps[id]
	if !known {
		problems = append(problems, problem{"应用不存在：" + idParam + " " + quote(id), "unknown " + idParam + " " + quote(id)})
	} else if !slices.Contains(app.RedirectURIs, redirectURI) {
		problems = append(problems, problem{"redirect_uri " + quote(redirectURI) + " 未在应用的回调地址中登记",
			"redirect_uri " + quote(redirectURI) + " is not registered for this app"})
	}
	if rt := params.Get("response_type"); rt != "code" {
		problems = append(problems, problem{"response_type 必须是 code（收到 " + quote(rt) + "）",
			"response_type must be code, got " + quote(rt)})
	}
	return app, problems
}

func (f *Fake) approve(w http.ResponseWriter, r *http.Request, req authRequest, unionID string) {
	user, ok := f.user(unionID)
	if !ok {
		f.showProblems(w, []problem{{"用户不存在：" + quote(unionID), "unknown user " + quote(unionID)}})
		return
	}
	g := grant{clientID: req.app.ClientID, unionID: user.UnionID, expires: f.now().Add(f.codeLifetime)}
	if req.wantsCorpID {
		g.corpID = user.CorpID
	}
	code := newSecret()
	f.mu.Lock()
	if req.tmpCode {
		f.loginTmpCodes[code] = g
		f.mu.Unlock()
		f.log.Info("fake dingtalk: legacy frame login", "client_id", g.clientID, "union_id", g.unionID)
		f.frameAnswer(w, req, code)
		return
	}
	if req.sns {
		f.snsCodes[code] = g
	} else {
		f.codes[code] = g
	}
	f.mu.Unlock()
	f.log.Info("fake dingtalk: login approved", "client_id", g.clientID, "union_id", g.unionID, "nick", user.Nick, "sns", req.sns)
	if req.sns {
		// The SNS login's callback has the code as code only (doc §3.2).
		redirectBack(w, r, req, url.Values{"code": {code}})
		return
	}
	if req.frame {
		back, _ := url.Parse(req.redirectURI)
		q := back.Query()
		q.Set("authCode", code)
		q.Set("state", req.state)
		back.RawQuery = q.Encode()
		f.frameAnswer(w, req, map[string]string{"redirectUrl": back.String(), "authCode": code, "state": req.state})
		return
	}
	// The documented name is authCode; real redirects also carry code (doc §2.2).
	redirectBack(w, r, req, url.Values{"authCode": {code}, "code": {code}})
}

func (f *Fake) deny(w http.ResponseWriter, r *http.Request, req authRequest) {
	f.log.Info("fake dingtalk: login denied", "client_id", req.app.ClientID)
	if req.frame || req.tmpCode {
		f.frameAnswer(w, req, map[string]string{"errorMsg": "用户拒绝授权 / the person declined"})
		return
	}
	// DingTalk documents only that an error parameter comes back, not its text.
	redirectBack(w, r, req, url.Values{"error": {"access_denied"}})
}

// redirectBack sends the browser to the app's registered redirect_uri with params and state.
func redirectBack(w http.ResponseWriter, r *http.Request, req authRequest, params url.Values) {
	target, err := url.Parse(req.redirectURI)
	if err != nil {
		http.Error(w, "registered redirect_uri is not a URL", http.StatusInternalServerError)
		return
	}
	q := target.Query()
	for k, v := range params {
		q[k] = v
	}
	if req.state != "" {
		q.Set("state", req.state)
	}
	target.RawQuery = q.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

type loginPage struct {
	Flow        string // which DingTalk login this page stands for
	Action      string // the path the buttons post to
	ClientID    string
	Scope       string
	RedirectURI string
	Hidden      []hiddenField // the original request, posted back with the button pressed
	Users       []User
}

type hiddenField struct{ Name, Value string }

func (f *Fake) showLoginPage(w http.ResponseWriter, req authRequest) {
	page := loginPage{Flow: "OAuth2 · login.dingtalk.com", Action: req.path,
		ClientID: req.app.ClientID, Scope: req.scope, RedirectURI: req.redirectURI, Users: f.users}
	if req.sns {
		page.Flow = "旧版扫码登录 / legacy SNS login · " + strings.TrimPrefix(req.path, "/")
	}
	for _, name := range slices.Sorted(maps.Keys(req.params)) {
		if name == "unionId" || name == "deny" {
			continue
		}
		for _, value := range req.params[name] {
			page.Hidden = append(page.Hidden, hiddenField{name, value})
		}
	}
	f.render(w, http.StatusOK, "authorize.html", page)
}

func (f *Fake) showProblems(w http.ResponseWriter, problems []problem) {
	f.render(w, http.StatusBadRequest, "error.html", problems)
}

func (f *Fake) render(w http.ResponseWriter, status int, name string, data any) {
	var b strings.Builder
	if err := f.pages.ExecuteTemplate(&b, name, data); err != nil {
		http.Error(w, "fake dingtalk: render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// Self-contained on purpose: the page must work with no network.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func quote(s string) string { return "“" + s + "”" }
