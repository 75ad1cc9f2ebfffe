package op

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// The SSO session: after one DingTalk login, the browser carries a session cookie
// and later logins — at the same app or another — finish at once, until the
// session is idle too long, reaches its absolute end, or is logged out.

// currentSession returns the browser's session if it is alive and its person may
// still log in.
func (p *Provider) currentSession(r *http.Request) (storage.Session, bool) {
	c, err := r.Cookie(p.sessionCookieName())
	if err != nil {
		return storage.Session{}, false
	}
	sess, err := p.store.GetSession(r.Context(), hashToken(c.Value))
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			p.log.ErrorContext(r.Context(), "load session", "err", err)
		}
		return storage.Session{}, false
	}
	if u, err := p.store.GetUser(r.Context(), sess.Subject); err != nil || u.Disabled {
		return storage.Session{}, false
	}
	return sess, true
}

// sessionStillMember re-checks, when due, that the session's person is still a
// member of the organisation their connector admits. A leaver has been logged
// out everywhere by now, so the cookie goes too; when DingTalk cannot confirm,
// the person logs in at DingTalk again rather than ride the session.
func (p *Provider) sessionStillMember(w http.ResponseWriter, r *http.Request, sess storage.Session) bool {
	u, err := p.store.GetUser(r.Context(), sess.Subject)
	if err != nil {
		return false
	}
	switch err := p.stillMember(r.Context(), u); {
	case errors.Is(err, errOffboarded):
		p.clearSessionCookie(w)
		return false
	case err != nil:
		return false
	}
	return true
}

// satisfies reports whether sess may answer a without a trip to DingTalk:
// max_age (prompt=login arrives as max_age=0) and id_token_hint are honoured.
func (p *Provider) satisfies(sess storage.Session, a storage.AuthRequest) bool {
	if a.MaxAge != nil && p.now().Sub(sess.AuthTime) >= time.Duration(*a.MaxAge)*time.Second {
		return false
	}
	return a.HintSubject == "" || a.HintSubject == sess.Subject
}

// startSession records a DingTalk login — updateUser applied to the person's
// record, the browser's previous session replaced by a new one — in one storage
// call (CompleteLogin), then sets the cookie. Always a new ID: a cookie planted
// before login (session fixation) never becomes a logged-in session. An error
// from updateUser is returned and nothing is stored.
func (p *Provider) startSession(w http.ResponseWriter, r *http.Request, subject, connectorID, clientID string, amr []string,
	updateUser func(u storage.User, found bool) (storage.User, error)) (storage.Session, error) {
	var replace string
	if c, err := r.Cookie(p.sessionCookieName()); err == nil {
		replace = hashToken(c.Value)
	}
	raw := randomToken(32)
	now := p.now().UTC()
	sess := storage.Session{
		ID: hashToken(raw), Subject: subject, ConnectorID: connectorID, AuthTime: now,
		AMR: amr, Clients: []string{clientID}, CreatedAt: now, LastUsed: now,
		Expiry: p.sessionExpiry(now, now),
	}
	_, err := p.store.CompleteLogin(r.Context(), storage.Login{
		Subject: subject, Update: updateUser, Session: sess, ReplaceSessionID: replace,
	})
	if err != nil {
		return storage.Session{}, err
	}
	http.SetCookie(w, &http.Cookie{
		Name: p.sessionCookieName(), Value: raw, Path: p.issuerPath + "/",
		MaxAge: int(p.settings().lifetimes.SessionAbsolute.Seconds()), HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	})
	return sess, nil
}

// useSession records that clientID was logged in through the session and moves
// its idle end.
func (p *Provider) useSession(ctx context.Context, id, clientID string) error {
	now := p.now().UTC()
	return p.store.UpdateSession(ctx, id, func(s storage.Session) (storage.Session, error) {
		s.LastUsed, s.Expiry = now, p.sessionExpiry(s.CreatedAt, now)
		if !slices.Contains(s.Clients, clientID) {
			s.Clients = append(slices.Clone(s.Clients), clientID)
		}
		return s, nil
	})
}

func (p *Provider) sessionExpiry(created, now time.Time) time.Time {
	idle, absolute := now.Add(p.settings().lifetimes.SessionIdle), created.Add(p.settings().lifetimes.SessionAbsolute)
	if absolute.Before(idle) {
		return absolute
	}
	return idle
}

func (p *Provider) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: p.sessionCookieName(), Value: "", Path: p.issuerPath + "/", MaxAge: -1,
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	})
}

func (p *Provider) sessionCookieName() string {
	if p.secure && p.issuerPath == "" {
		return "__Host-dingbridge_session"
	}
	return "dingbridge_session"
}

// sessionIDKey carries the browser's session (hashed cookie) from the end_session
// handler to TerminateSessionFromRequest, which zitadel calls without the request.
type sessionIDKey struct{}

// endSession wraps zitadel's end_session endpoint: it hands over the browser's
// session, clears the cookie when the logout succeeds, and shows a page instead
// of zitadel's JSON when the request is refused (e.g. a post_logout_redirect_uri
// the client never registered: never a redirect there).
//
// A request without an id_token_hint does not show that an app the person uses
// sent it — any page can embed /end_session — so the person is asked first
// (RP-Initiated Logout 1.0 §2); the confirmation posts back here with a form
// token and the request's own parameters.
func (p *Provider) endSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			p.render(w, r, &pageView{page: pageLogoutRefused, status: http.StatusBadRequest})
			return
		}
		var sessionID string
		if c, err := r.Cookie(p.sessionCookieName()); err == nil {
			sessionID = hashToken(c.Value)
			r = r.WithContext(context.WithValue(r.Context(), sessionIDKey{}, sessionID))
		}
		if sessionID != "" && r.Form.Get("id_token_hint") == "" &&
			!(r.Method == http.MethodPost && p.validFormToken(r, formLogout, sessionID, r.PostForm.Get("form_token"))) {
			p.confirmLogout(w, r, sessionID)
			return
		}
		// zitadel's answer is held until we know whether it refused.
		rec := &heldAnswer{header: http.Header{}}
		next.ServeHTTP(rec, r)
		if rec.status >= 400 {
			p.log.InfoContext(r.Context(), "logout refused", "status", rec.status, "answer", rec.body.String())
			p.render(w, r, &pageView{page: pageLogoutRefused, status: http.StatusBadRequest, detail: oauthDescription(rec.body.Bytes())})
			return
		}
		if rec.status == http.StatusFound {
			p.clearSessionCookie(rec)
		}
		rec.sendTo(w)
	})
}

const formLogout = "logout"

// confirmLogout asks the person whether to log out, carrying the request's
// parameters through the form so the logout continues as it was asked for.
func (p *Provider) confirmLogout(w http.ResponseWriter, r *http.Request, sessionID string) {
	hidden := []hiddenField{{Name: "form_token", Value: p.formToken(w, r, formLogout, sessionID)}}
	for _, name := range []string{"client_id", "post_logout_redirect_uri", "state", "ui_locales", "logout_hint"} {
		if v := r.Form.Get(name); v != "" {
			hidden = append(hidden, hiddenField{Name: name, Value: v})
		}
	}
	p.render(w, r, &pageView{page: pageLogoutConfirm, formTargets: p.postLogoutOrigins(r), form: &formView{
		action:  p.issuerPath + p.oidc.EndSessionEndpoint().Relative(),
		hidden:  hidden,
		buttons: []buttonView{{label: labelLogOut}},
	}})
}

// postLogoutOrigins is where the confirmed logout's answer leads: the origin
// of its post_logout_redirect_uri when the client registered it (zitadel
// refuses any other), for the confirmation form's policy.
func (p *Provider) postLogoutOrigins(r *http.Request) []string {
	target := r.Form.Get("post_logout_redirect_uri")
	if target == "" {
		return nil
	}
	c, err := p.settings().clients.get(r.Context(), r.Form.Get("client_id"))
	if err != nil || !slices.Contains(c.PostLogoutRedirectURIs(), target) {
		return nil
	}
	if origin := cspOrigin(target); origin != "" {
		return []string{origin}
	}
	return nil
}

// oauthDescription pulls error_description out of an OAuth error body.
func oauthDescription(body []byte) string {
	var e struct {
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Description
}
