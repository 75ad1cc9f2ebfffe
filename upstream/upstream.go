// Package upstream defines how dingbridge asks somebody else who a person is.
//
// A Connector sends the person's browser to the upstream login and turns what comes
// back into an Identity. Connectors know nothing of OAuth clients or tokens; the
// server never switches on which connector it holds.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Connector is one upstream login (for dingbridge: one DingTalk app in one mode).
type Connector interface {
	// LoginURL returns where to send the browser. The upstream must bring state back
	// unchanged to callbackURL.
	LoginURL(state, callbackURL string) (string, error)
	// HandleCallback reads the upstream's answer from the callback request (the
	// state has already been checked by the caller) and returns who logged in.
	HandleCallback(ctx context.Context, r *http.Request) (Identity, error)
}

// Identity is a person as the upstream knows them. Empty strings mean "not given".
type Identity struct {
	UnionID   string // stable across one developer's apps
	OpenID    string // stable within one app
	UserID    string // the organisation's staff id (corp apps only)
	CorpID    string // the organisation chosen at login
	Nick      string
	AvatarURL string
	Email     string
	// Phone in E.164 (+8613800138000), built from DingTalk's mobile and stateCode.
	Phone string

	// From the organisation's directory, when the connector reads one (corp apps).
	Title     string
	JobNumber string
	OrgEmail  string
	// DirectoryEmail is the address the organisation's directory lists for the
	// person: set by the organisation, unlike Email, which the person typed into
	// their own profile and nobody verified.
	DirectoryEmail string
	// Groups are the person's departments, as the connector is configured to name
	// them (names, ids or paths). Nil when the connector reads no directory.
	Groups []string
	// Method says how the person logged in, for the amr claim: MethodOAuth2 (a
	// DingTalk login page, QR or password), MethodSNS or MethodInApp.
	Method string
}

// Login methods reported in Identity.Method.
const (
	MethodOAuth2 = "dingtalk"       // login.dingtalk.com
	MethodSNS    = "dingtalk-sns"   // legacy scan login
	MethodInApp  = "dingtalk-inapp" // inside the DingTalk client, no login page
)

// InAppConnector is a Connector that can also log a person in from inside the
// upstream's own client without a login page (DingTalk's 免登): a page at the
// server asks the client's JavaScript API for a one-time code and posts it back.
type InAppConnector interface {
	Connector
	// InAppLogin reports whether r comes from inside the upstream's client and the
	// connector can log people in there, and if so what the page needs.
	InAppLogin(r *http.Request) (InAppLogin, bool)
	// HandleInAppCode turns the code the client's JavaScript API gave into an Identity.
	HandleInAppCode(ctx context.Context, code string) (Identity, error)
}

// EmbeddedConnector is a Connector whose login page can run inside a page of the
// server's own (DingTalk's QR code in a frame), so the person stays on it.
type EmbeddedConnector interface {
	Connector
	// EmbeddedLogin is what the page needs to run the login for state, which the
	// upstream brings back to callbackURL as LoginURL's login does.
	EmbeddedLogin(state, callbackURL string) (EmbeddedLogin, error)
}

// Kinds of EmbeddedLogin.
const (
	// EmbedOAuth2: today's login in DingTalk's frame (window.DTFrameLogin); the
	// frame hands the page an authCode and state for callbackURL.
	EmbedOAuth2 = "oauth2"
	// EmbedSNS: the legacy login's frame (DDLogin with goto); it posts a
	// loginTmpCode, and the page goes to Goto with &loginTmpCode= appended.
	EmbedSNS = "sns"
)

// EmbeddedLogin describes one embedded login.
type EmbeddedLogin struct {
	Kind      string // EmbedOAuth2 or EmbedSNS
	ScriptURL string // the upstream's script that draws the frame
	// FrameOrigin is where the frame and its messages come from (scheme://host).
	FrameOrigin string
	// EmbedOAuth2: the login parameters the script takes.
	ClientID, Scope, CorpID, State, CallbackURL string
	// EmbedSNS: the login page the frame continues at.
	Goto string
}

// MembershipChecker is a Connector that admits only members of an organisation
// and can ask again, after the login, whether a person still is one: people who
// leave the organisation lose their sessions and refresh tokens.
type MembershipChecker interface {
	Connector
	// RequiresMembership reports whether the connector admits members only;
	// CheckMembership is asked only then.
	RequiresMembership() bool
	// CheckMembership asks whether the person with unionID is still an active
	// member: nil if so; an error matching ErrNotAllowed (a *PolicyError says
	// why) if not; any other error when the upstream could not tell.
	CheckMembership(ctx context.Context, unionID string) error
}

// InAppLogin is what the in-app page needs to ask the client for a code.
type InAppLogin struct {
	CorpID   string // the organisation the app belongs to
	ClientID string // the app's client id (newer JSAPI form needs it)
	// ScriptURL is the client's JavaScript API to load on the page.
	ScriptURL string
}

// PolicyError is a person whom the upstream knows but the connector's access
// policy refuses. It wraps ErrNotAllowed; the fields are for the person's page.
type PolicyError struct {
	Reason PolicyReason
	// CorpID is the organisation the person logged in with, "" if none.
	CorpID string
	// Allowed are the organisations that would be accepted.
	Allowed []string
}

// PolicyReason says which rule refused a person.
type PolicyReason string

const (
	// WrongOrganisation: the person chose, or belongs to, no allowed organisation.
	WrongOrganisation PolicyReason = "wrong-organisation"
	// NotMember: the organisation's directory does not list the person.
	NotMember PolicyReason = "not-member"
	// Inactive: the directory lists the person as not (or no longer) active.
	Inactive PolicyReason = "inactive"
)

func (e *PolicyError) Error() string {
	switch e.Reason {
	case WrongOrganisation:
		if e.CorpID == "" {
			return fmt.Sprintf("no organisation chosen at login; allowed: %s", strings.Join(e.Allowed, ", "))
		}
		return fmt.Sprintf("organisation %s is not allowed; allowed: %s", e.CorpID, strings.Join(e.Allowed, ", "))
	case NotMember:
		return fmt.Sprintf("not a member of organisation %s", strings.Join(e.Allowed, ", "))
	case Inactive:
		return fmt.Sprintf("not active in organisation %s", strings.Join(e.Allowed, ", "))
	}
	return "refused by policy: " + string(e.Reason)
}

func (e *PolicyError) Unwrap() error { return ErrNotAllowed }

// Errors a connector returns, wrapped with detail; the server maps each to a page
// for the person and an OAuth error for the client, in one place.
var (
	// ErrAccessDenied: the person declined at the upstream, or the upstream refused them.
	ErrAccessDenied = errors.New("upstream denied access")
	// ErrUnavailable: the upstream timed out, failed or is throttling; trying again later may work.
	ErrUnavailable = errors.New("upstream temporarily unavailable")
	// ErrLoginExpired: the upstream no longer knows the code it gave (expired or used);
	// the person should start the login again.
	ErrLoginExpired = errors.New("upstream login expired")
	// ErrMisconfigured: the upstream refused the connector itself (wrong app id or
	// secret, a missing permission, this server's clock or IP address); the person
	// cannot fix it, the operator can, and the wrapped error says how.
	ErrMisconfigured = errors.New("upstream connector misconfigured")
	// ErrNotAllowed: the upstream knows the person but the connector's access policy
	// refuses them; errors.As finds a *PolicyError saying why.
	ErrNotAllowed = errors.New("refused by access policy")
)
