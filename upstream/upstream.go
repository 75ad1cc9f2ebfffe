// Package upstream defines how dingbridge asks somebody else who a person is.
//
// A Connector sends the person's browser to the upstream login and turns what comes
// back into an Identity. Connectors know nothing of OAuth clients or tokens; the
// server never switches on which connector it holds.
package upstream

import (
	"context"
	"errors"
	"net/http"
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
}

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
)
