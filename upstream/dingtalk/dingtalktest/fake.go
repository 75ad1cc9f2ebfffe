// Package dingtalktest is a fake DingTalk for tests and for `dingbridge dev`.
//
// One http.Handler serves the paths of all three DingTalk hosts (login, api, oapi), so
// one server can stand in for all of them: point every dingtalk.Endpoints field at it.
// It implements the three logins of shared/dingtalk-api.md, with DingTalk's error
// bodies, and switches to inject failures:
//
//   - the OAuth2 login (flow A): the authorize page a person clicks through,
//     POST /v1.0/oauth2/userAccessToken and GET /v1.0/contact/users/me (authorize.go, api.go);
//   - the legacy SNS login (flow B): the same page at /connect/qrconnect and
//     /connect/oauth2/sns_authorize, and the signed POST /sns/getuserinfo_bycode (sns.go);
//   - the in-app 免登 (flow C): InAppCode, or the script at JSAPIPath for a browser
//     (SetJSAPI), stands in for the DingTalk client, an app token
//     from GET /gettoken reads one organisation's directory through topapi (oapi.go).
//
// It follows shared/dingtalk-api.md §6; it deliberately shares no code with package
// dingtalk, so a wire-format mistake in one is caught by the other.
package dingtalktest

import (
	"crypto/rand"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// The APIs the fake serves, for Fail and Calls.
const (
	APIAuthorize       = "oauth2/auth"            // login host: GET/POST /oauth2/auth
	APIUserAccessToken = "oauth2/userAccessToken" // api host: POST /v1.0/oauth2/userAccessToken
	APIUsersMe         = "contact/users/me"       // api host: GET /v1.0/contact/users/me

	APIGetToken      = "gettoken"                   // oapi GET /gettoken?appkey=&appsecret=
	APIGetUserInfo   = "topapi/v2/user/getuserinfo" // oapi POST ?access_token=  body {"code"}
	APIGetByUnionID  = "topapi/user/getbyunionid"   // oapi POST ?access_token=  body {"unionid"}
	APIUserGet       = "topapi/v2/user/get"         // oapi POST ?access_token=  body {"userid","language"}
	APIDepartmentGet = "topapi/v2/department/get"   // oapi POST ?access_token=  body {"dept_id","language"}
	// APIQRConnect is both SNS authorize pages, GET/POST /connect/qrconnect and
	// /connect/oauth2/sns_authorize: one login, reached from a QR code or from an account form.
	APIQRConnect   = "connect/qrconnect"
	APISNSUserInfo = "sns/getuserinfo_bycode" // oapi POST ?accessKey=&timestamp=&signature= body {"tmp_auth_code"}
)

// apis are the names Fail accepts.
var apis = []string{APIAuthorize, APIUserAccessToken, APIUsersMe, APIGetToken, APIGetUserInfo,
	APIGetByUnionID, APIUserGet, APIDepartmentGet, APIQRConnect, APISNSUserInfo, APIJSAPI}

// Lifetimes the fake uses; DingTalk documents 7200 s for user and app tokens, and
// 5 minutes for the in-app code (the other codes' lifetime is undocumented).
const (
	DefaultCodeLifetime = 5 * time.Minute
	accessTokenLifetime = 7200 * time.Second
	appTokenLifetime    = 7200 * time.Second
)

// Config is what the fake knows: the registered apps, the people who can log in and
// the organisations whose directory the in-app flow reads.
type Config struct {
	Apps  []App
	Users []User // shown on the authorize pages in this order
	Corps []Corp // organisations with a directory
	// CodeLifetime is how long any code (authCode, SNS code, in-app code) can be
	// exchanged; 0: DefaultCodeLifetime.
	CodeLifetime     time.Duration
	AppTokenLifetime time.Duration // of /gettoken's app tokens; 0: 7200s
	Now              func() time.Time
	Logger           *slog.Logger // nil: no logs
}

// App is a DingTalk app registered with the fake.
type App struct {
	ClientID     string
	ClientSecret string
	RedirectURIs []string // exact matches, as DingTalk's 回调域名 setting
	// NoContactUserRead: the app was not granted Contact.User.Read, so users/me
	// answers 403 Forbidden.AccessDenied.AccessTokenPermissionDenied.
	NoContactUserRead bool
	// CorpID is the organisation an internal app belongs to: its app token reads that
	// organisation's directory and its in-app codes are issued there. "" (a legacy SNS
	// app or a third-party app): /gettoken refuses its credentials with 40089.
	CorpID string
}

// User is a person who can log in. Empty fields are left out of users/me, as
// DingTalk does for an unset email or a mobile the app may not read.
type User struct {
	UnionID   string
	OpenID    string // per app at DingTalk; one value is enough for a fake
	Nick      string
	AvatarURL string
	Email     string
	Mobile    string
	StateCode string
	// CorpID is the organisation the person "picks" when the scope has corpid. With
	// UserID set, the person is also a member of it: in its directory and able to use
	// its in-app apps. One organisation per person is enough for a fake.
	CorpID    string
	UserID    string  // staff id in CorpID's directory; "": not a member
	DeptIDs   []int64 // departments in CorpID (dept_id_list)
	Title     string
	JobNumber string
	OrgEmail  string
	Inactive  bool // has not activated DingTalk: topapi/v2/user/get says "active": false
}

// member reports whether u is in corpID's directory.
func (u User) member(corpID string) bool {
	return corpID != "" && u.CorpID == corpID && u.UserID != ""
}

// Corp is an organisation with a directory, read by topapi with an app token.
type Corp struct {
	CorpID string
	Name   string
	// Departments of the organisation. The root department (ID 1, named after the
	// corp) is implicit if not listed; a department's ParentID 0 means its parent is
	// the root (1).
	Departments []Department
}

// Department is one department of a Corp.
type Department struct {
	ID       int64
	Name     string
	ParentID int64
}

// Failure is an injected fault for one API. Body wins over ErrCode, which wins over Code.
type Failure struct {
	Status  int    // HTTP status; 0: 200 with Body or ErrCode, else 500
	Code    string // DingTalk error code for the api host's {"code","message","requestid"} body
	Message string
	Body    string // sent raw instead of an error body (malformed JSON, an HTML page, the IP-ban body)
	// ErrCode, when not 0, makes the answer an oapi error body with HTTP 200 (or
	// Status, if set): {"errcode":ErrCode,"errmsg":ErrMsg,"request_id":…} plus
	// "sub_code"/"sub_msg" when SubCode is set (the gateway-wrapped form: use ErrCode
	// 88 with SubCode "40014"). The oapi answers busy (-1) and rate limited (90002,
	// 90018) this way. An empty ErrMsg or SubMsg gets DingTalk's text where the fake
	// knows it.
	ErrCode int
	ErrMsg  string
	SubCode string
	SubMsg  string
	// Hang blocks the request until the client goes away or the fake is closed.
	Hang bool
	// Times is how many requests fail; 0 means until ClearFailures.
	Times int
	// For makes the failure last this long from the first request it fails, as
	// DingTalk's limits do: a QPS limit (90018, 90002, Forbidden.AccessDenied.Qps…)
	// lasts a second, the gateway's per-IP ban five minutes. Every request in
	// that time fails, whatever Times says; afterwards the failure is gone.
	For   time.Duration
	until time.Time // set by the first failed request when For is
}

// Fake is the fake DingTalk. It is safe for concurrent use.
type Fake struct {
	apps         map[string]App
	users        []User
	codeLifetime time.Duration
	now          func() time.Time
	log          *slog.Logger
	pages        *template.Template
	closed       chan struct{} // closed by Close: releases hanging requests
	closeOnce    sync.Once
	appLifetime  time.Duration // of app tokens

	mu       sync.Mutex
	codes    map[string]grant // authCode → grant
	tokens   map[string]grant // access token → grant
	refresh  map[string]grant // refresh token → grant
	snsCodes map[string]grant // SNS login code (tmp_auth_code) → grant
	// loginTmpCodes: the legacy frame's loginTmpCode → grant, spent at sns_authorize.
	loginTmpCodes map[string]grant
	inAppCodes    map[string]grant // in-app code → grant (corpID, unionID)
	appTokens     map[string]grant // app token → grant (clientID, corpID)
	corps         map[string]*corp // renamed departments change here
	autoApprove   string
	autoDeny      bool
	failures      map[string]*Failure
	calls         map[string]int
	left          map[string]bool // unionID → removed from their organisation's directory
	jsapi         JSAPI           // the DingTalk client the served script stands for
}

// grant is what a code or token stands for. An app token has no unionID; an in-app
// code has no clientID (any app of corpID may exchange it).
type grant struct {
	clientID string
	unionID  string
	corpID   string
	expires  time.Time
}

// New returns a fake knowing cfg's apps and users.
func New(cfg Config) *Fake {
	f := &Fake{
		apps:          make(map[string]App, len(cfg.Apps)),
		users:         cfg.Users,
		codeLifetime:  cfg.CodeLifetime,
		now:           cfg.Now,
		log:           cfg.Logger,
		pages:         parsePages(),
		closed:        make(chan struct{}),
		codes:         map[string]grant{},
		tokens:        map[string]grant{},
		refresh:       map[string]grant{},
		snsCodes:      map[string]grant{},
		loginTmpCodes: map[string]grant{},
		inAppCodes:    map[string]grant{},
		appTokens:     map[string]grant{},
		corps:         make(map[string]*corp, len(cfg.Corps)),
		appLifetime:   cfg.AppTokenLifetime,
		failures:      map[string]*Failure{},
		calls:         map[string]int{},
		left:          map[string]bool{},
	}
	for _, app := range cfg.Apps {
		f.apps[app.ClientID] = app
	}
	for _, c := range cfg.Corps {
		f.corps[c.CorpID] = newCorp(c)
	}
	if f.codeLifetime == 0 {
		f.codeLifetime = DefaultCodeLifetime
	}
	if f.appLifetime == 0 {
		f.appLifetime = appTokenLifetime
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

// ServeHTTP serves the paths of all three DingTalk hosts.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var api string
	var handle http.HandlerFunc
	switch {
	case r.URL.Path == "/oauth2/auth" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		api, handle = APIAuthorize, f.authorize
	case r.URL.Path == "/v1.0/oauth2/userAccessToken" && r.Method == http.MethodPost:
		api, handle = APIUserAccessToken, f.userAccessToken
	case r.URL.Path == "/v1.0/contact/users/me" && r.Method == http.MethodGet:
		api, handle = APIUsersMe, f.usersMe
	case strings.HasPrefix(r.URL.Path, "/v1.0/"):
		writeAPIError(w, http.StatusNotFound, "InvalidAction.NotFound",
			"Specified api is not found, please check your url and method.", nil)
		return

	case (r.URL.Path == "/connect/qrconnect" || r.URL.Path == "/connect/oauth2/sns_authorize") &&
		(r.Method == http.MethodGet || r.Method == http.MethodPost):
		api, handle = APIQRConnect, f.snsAuthorize
	case r.URL.Path == "/login/qrcode.htm" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		api, handle = APIQRConnect, f.qrConnectFrame
	case (r.URL.Path == FrameLoginPath || r.URL.Path == SNSFrameLoginPath) && r.Method == http.MethodGet:
		f.frameScript(w, r)
		return
	case r.URL.Path == "/sns/getuserinfo_bycode" && r.Method == http.MethodPost:
		api, handle = APISNSUserInfo, f.snsUserInfo
	case r.URL.Path == "/gettoken" && r.Method == http.MethodGet:
		api, handle = APIGetToken, f.getToken
	case r.URL.Path == "/"+APIGetUserInfo && r.Method == http.MethodPost:
		api, handle = APIGetUserInfo, f.topapi(f.getUserInfo)
	case r.URL.Path == "/"+APIGetByUnionID && r.Method == http.MethodPost:
		api, handle = APIGetByUnionID, f.topapi(f.getByUnionID)
	case r.URL.Path == "/"+APIUserGet && r.Method == http.MethodPost:
		api, handle = APIUserGet, f.topapi(f.userGet)
	case r.URL.Path == "/"+APIDepartmentGet && r.Method == http.MethodPost:
		api, handle = APIDepartmentGet, f.topapi(f.departmentGet)
	case r.URL.Path == JSAPIPath && r.Method == http.MethodGet:
		api, handle = APIJSAPI, f.jsapiScript
	case strings.HasPrefix(r.URL.Path, "/topapi/"):
		// The TOP gateway answers an unknown method in its own envelope, with HTTP 200 (doc §1.2).
		writeTopAPIError(w, 22, "Invalid method[submsg=不合法ApiName]")
		return
	default:
		http.NotFound(w, r)
		return
	}
	if failure, ok := f.countCall(api); ok {
		f.fail(w, r, failure)
		return
	}
	handle(w, r)
}

// countCall counts a request and returns the failure it must suffer, if any.
func (f *Fake) countCall(api string) (Failure, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[api]++
	failure, ok := f.failures[api]
	if !ok {
		return Failure{}, false
	}
	if failure.For > 0 {
		now := f.now()
		if failure.until.IsZero() {
			failure.until = now.Add(failure.For)
		}
		if !now.Before(failure.until) {
			delete(f.failures, api)
			return Failure{}, false
		}
		return *failure, true
	}
	if failure.Times > 0 {
		failure.Times--
		if failure.Times == 0 {
			delete(f.failures, api)
		}
	}
	return *failure, true
}

func (f *Fake) fail(w http.ResponseWriter, r *http.Request, failure Failure) {
	if failure.Hang {
		select {
		case <-r.Context().Done():
		case <-f.closed:
		}
		writeAPIError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "fake DingTalk released a hanging request", nil)
		return
	}
	status := failure.Status
	if failure.Body != "" {
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.Header().Set("x-acs-request-id", newRequestID())
		w.WriteHeader(status)
		fmt.Fprint(w, failure.Body)
		return
	}
	if failure.ErrCode != 0 {
		if status == 0 {
			status = http.StatusOK
		}
		writeOAPIFailure(w, status, failure)
		return
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeAPIError(w, status, failure.Code, failure.Message, nil)
}

// AutoApprove makes GET /oauth2/auth and the SNS authorize pages log unionID in at
// once, without the page (after the same checks of the request). "" shows the page again.
func (f *Fake) AutoApprove(unionID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.autoApprove = unionID
}

// AutoDeny makes GET /oauth2/auth and the SNS authorize pages answer as if the
// person pressed "deny". It wins over AutoApprove.
func (f *Fake) AutoDeny(deny bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.autoDeny = deny
}

// Fail makes the next requests to api (one of the API constants) fail as described,
// replacing an earlier Fail for that api. It panics on an unknown api.
func (f *Fake) Fail(api string, failure Failure) {
	if !slices.Contains(apis, api) {
		panic(fmt.Sprintf("dingtalktest: Fail: unknown api %q", api))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[api] = &failure
}

// ClearFailures removes every injected failure.
func (f *Fake) ClearFailures() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.failures)
}

// Calls counts the requests api received, failed ones included.
func (f *Fake) Calls(api string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[api]
}

// Close releases every hanging request; later Hang failures return at once.
// Server.Close calls it. The fake keeps serving otherwise.
func (f *Fake) Close() {
	f.closeOnce.Do(func() { close(f.closed) })
}

// user returns the person as DingTalk knows them now: after RemoveMember, no
// longer in their organisation's directory.
func (f *Fake) user(unionID string) (User, bool) {
	for _, u := range f.users {
		if u.UnionID == unionID {
			return f.current(u), true
		}
	}
	return User{}, false
}

func (f *Fake) current(u User) User {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.left[u.UnionID] {
		u.UserID, u.DeptIDs, u.Title, u.JobNumber, u.OrgEmail = "", nil, "", "", ""
	}
	return u
}

// RemoveMember takes the person out of their organisation's directory, as when
// they leave the company: their DingTalk account stays and still logs in, but
// topapi no longer finds them (60121) and no in-app code is issued for them.
// It panics on an unknown unionID: a test asking for one has a bug.
func (f *Fake) RemoveMember(unionID string) {
	if _, ok := f.user(unionID); !ok {
		panic(fmt.Sprintf("dingtalktest: RemoveMember: no user with unionId %q", unionID))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.left[unionID] = true
}

// RestoreMember undoes RemoveMember: the person is back in their organisation's directory.
func (f *Fake) RestoreMember(unionID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.left, unionID)
}

// newSecret makes codes and tokens: 26 random base32 characters.
func newSecret() string { return rand.Text() }

// newRequestID looks like DingTalk's UUID-like request ids.
func newRequestID() string {
	t := rand.Text()
	return strings.ToUpper(t[:8] + "-" + t[8:12] + "-" + t[12:16] + "-" + t[16:20] + "-" + t[20:])
}
