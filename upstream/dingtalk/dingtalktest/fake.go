// Package dingtalktest is a fake DingTalk for tests and for `dingbridge dev`.
//
// One http.Handler serves the paths of all three DingTalk hosts (login, api, oapi), so
// one server can stand in for all of them: point every dingtalk.Endpoints field at it.
// It implements the OAuth2 login (flow A): the authorize page a person clicks through,
// POST /v1.0/oauth2/userAccessToken and GET /v1.0/contact/users/me, with DingTalk's
// error bodies, and switches to inject failures. It follows shared/dingtalk-api.md §6;
// it deliberately shares no code with package dingtalk, so a wire-format mistake in
// one is caught by the other.
package dingtalktest

import (
	"crypto/rand"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The APIs the fake serves, for Fail and Calls.
const (
	APIAuthorize       = "oauth2/auth"            // login host: GET/POST /oauth2/auth
	APIUserAccessToken = "oauth2/userAccessToken" // api host: POST /v1.0/oauth2/userAccessToken
	APIUsersMe         = "contact/users/me"       // api host: GET /v1.0/contact/users/me
)

// Lifetimes the fake uses; DingTalk documents 7200 s for user tokens.
const (
	DefaultCodeLifetime = 5 * time.Minute
	accessTokenLifetime = 7200 * time.Second
)

// Config is what the fake knows: the registered apps and the people who can log in.
type Config struct {
	Apps         []App
	Users        []User        // shown on the authorize page in this order
	CodeLifetime time.Duration // how long an authCode can be exchanged; 0: DefaultCodeLifetime
	Now          func() time.Time
	Logger       *slog.Logger // nil: no logs
}

// App is a DingTalk app registered with the fake.
type App struct {
	ClientID     string
	ClientSecret string
	RedirectURIs []string // exact matches, as DingTalk's 回调域名 setting
	// NoContactUserRead: the app was not granted Contact.User.Read, so users/me
	// answers 403 Forbidden.AccessDenied.AccessTokenPermissionDenied.
	NoContactUserRead bool
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
	// CorpID is the organisation the person "picks" when the scope has corpid.
	CorpID string
}

// Failure is an injected fault for one API.
type Failure struct {
	Status  int    // HTTP status; 0: 200 with Body, else 500
	Code    string // DingTalk error code for the {"code","message","requestid"} body
	Message string
	Body    string // sent raw instead of an error body (malformed JSON, an HTML page)
	// Hang blocks the request until the client goes away or the fake is closed.
	Hang bool
	// Times is how many requests fail; 0 means until ClearFailures.
	Times int
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

	mu          sync.Mutex
	codes       map[string]grant // authCode → grant
	tokens      map[string]grant // access token → grant
	refresh     map[string]grant // refresh token → grant
	autoApprove string
	autoDeny    bool
	failures    map[string]*Failure
	calls       map[string]int
}

// grant is what a code or token stands for.
type grant struct {
	clientID string
	unionID  string
	corpID   string
	expires  time.Time
}

// New returns a fake knowing cfg's apps and users.
func New(cfg Config) *Fake {
	f := &Fake{
		apps:         make(map[string]App, len(cfg.Apps)),
		users:        cfg.Users,
		codeLifetime: cfg.CodeLifetime,
		now:          cfg.Now,
		log:          cfg.Logger,
		pages:        parsePages(),
		closed:       make(chan struct{}),
		codes:        map[string]grant{},
		tokens:       map[string]grant{},
		refresh:      map[string]grant{},
		failures:     map[string]*Failure{},
		calls:        map[string]int{},
	}
	for _, app := range cfg.Apps {
		f.apps[app.ClientID] = app
	}
	if f.codeLifetime == 0 {
		f.codeLifetime = DefaultCodeLifetime
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
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeAPIError(w, status, failure.Code, failure.Message, nil)
}

// AutoApprove makes GET /oauth2/auth log unionID in at once, without the page
// (after the same checks of the request). "" shows the page again.
func (f *Fake) AutoApprove(unionID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.autoApprove = unionID
}

// AutoDeny makes GET /oauth2/auth answer as if the person pressed "deny".
// It wins over AutoApprove.
func (f *Fake) AutoDeny(deny bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.autoDeny = deny
}

// Fail makes the next requests to api (APIAuthorize, APIUserAccessToken,
// APIUsersMe) fail as described, replacing an earlier Fail for that api.
func (f *Fake) Fail(api string, failure Failure) {
	switch api {
	case APIAuthorize, APIUserAccessToken, APIUsersMe:
	default:
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

func (f *Fake) user(unionID string) (User, bool) {
	for _, u := range f.users {
		if u.UnionID == unionID {
			return u, true
		}
	}
	return User{}, false
}

// newSecret makes codes and tokens: 26 random base32 characters.
func newSecret() string { return rand.Text() }

// newRequestID looks like DingTalk's UUID-like request ids.
func newRequestID() string {
	t := rand.Text()
	return strings.ToUpper(t[:8] + "-" + t[8:12] + "-" + t[12:16] + "-" + t[16:20] + "-" + t[20:])
}
