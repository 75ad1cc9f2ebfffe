package op

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/upstream"
)

// The login step, as DESIGN.md draws it: zitadel sends the browser to /login with a
// pending auth request (loginInline serves that step within /authorize's own
// answer); we send it on to DingTalk with a fresh state bound to that request
// and to this browser; DingTalk sends it back to /callback/<connector>;
// we check the state, ask the connector who logged in, record the person, mark
// the auth request done and hand it back to zitadel, which issues the code.

// login starts (or, with several connectors, offers) the upstream login.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	start := time.Now()
	a, ok := p.pendingAuthRequest(w, r, r.URL.Query().Get("authRequestID"))
	if !ok {
		return
	}
	sess, hasSession := p.currentSession(r)
	hasSession = hasSession && p.satisfies(sess, a) && p.sessionStillMember(w, r, sess)
	if slices.Contains(a.Prompt, oidc.PromptNone) && !hasSession {
		p.redirectError(w, r, a, oidc.ErrLoginRequired().WithDescription("no session at dingbridge; interaction with DingTalk is needed"))
		return
	}
	if hasSession {
		conn, _ := p.connector(sess.ConnectorID)
		if err := p.useSession(ctx, sess.ID, a.ClientID); err != nil {
			p.countLogin(conn, methodSSO, loginError, start)
			p.serverError(w, r, "use session", err)
			return
		}
		p.countLogin(conn, methodSSO, loginOK, start)
		p.finish(w, r, a, sess)
		return
	}
	conn, ok := p.connector(r.URL.Query().Get("connector"))
	if !ok && len(p.settings().connectors) == 1 {
		conn, ok = p.settings().connectors[0], true
	}
	if !ok {
		// Inside the DingTalk client a QR code makes no sense: if exactly one
		// connector can log the person in there, it is the one.
		conn, ok = p.onlyInAppConnector(r)
	}
	if !ok {
		v := &pageView{page: pageChooseConnector, locales: a.UILocales}
		for _, c := range p.settings().connectors {
			v.choices = append(v.choices, link{Label: c.Name, URL: p.loginURL(a.ID, c.ID)})
		}
		p.render(w, r, v)
		return
	}

	state := randomToken(32)
	err := p.store.CreateUpstreamState(ctx, storage.UpstreamState{
		ID:             hashToken(state),
		AuthRequestID:  a.ID,
		ConnectorID:    conn.ID,
		BrowserBinding: hashToken(p.browserBinding(w, r)),
		Expiry:         p.now().UTC().Add(p.settings().lifetimes.UpstreamState),
	})
	if err != nil {
		p.storageFailed(w, r, "store upstream state", err)
		return
	}
	target, err := conn.Connector.LoginURL(state, p.issuer+"/callback/"+conn.ID)
	if err != nil {
		p.serverError(w, r, "build upstream login URL", err)
		return
	}
	if in, ok := conn.Connector.(upstream.InAppConnector); ok {
		if page, ok := in.InAppLogin(r); ok {
			p.renderInApp(w, r, a, conn, state, target, page)
			return
		}
	}
	if em, ok := conn.Connector.(upstream.EmbeddedConnector); ok && conn.Embedded {
		login, err := em.EmbeddedLogin(state, p.issuer+"/callback/"+conn.ID)
		if err != nil {
			p.serverError(w, r, "build embedded login", err)
			return
		}
		p.renderEmbedded(w, r, a, login, target)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// callback receives the person back from DingTalk.
func (p *Provider) callback(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	conn, a, failed := p.returningLogin(w, r, r.URL.Query().Get("state"))
	method := methodLabel(conn.Method)
	if failed != "" {
		p.countLogin(conn, method, failed, start)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.settings().lifetimes.UpstreamLogin)
	id, err := conn.Connector.HandleCallback(ctx, r)
	cancel()
	if err != nil {
		p.countLogin(conn, method, p.upstreamFailed(w, r, a, conn, err), start)
		return
	}
	p.countLogin(conn, methodLabel(id.Method), p.loggedInUpstream(w, r, a, conn, id), start)
}

// returningLogin checks the state a person comes back with from an upstream
// login: known, unused, minted for this connector and in this browser. It
// returns the auth request the login is for, or the login result it ended
// with, having answered the person. An unknown connector comes back as the
// zero Connector.
func (p *Provider) returningLogin(w http.ResponseWriter, r *http.Request, state string) (Connector, storage.AuthRequest, string) {
	ctx := r.Context()
	conn, ok := p.connector(chi.URLParam(r, "connector"))
	if !ok {
		p.render(w, r, &pageView{page: pageNotFound, status: http.StatusNotFound})
		return Connector{}, storage.AuthRequest{}, loginError
	}
	if state == "" {
		p.render(w, r, &pageView{page: pageStateInvalid, status: http.StatusBadRequest, detail: "state is missing"})
		return conn, storage.AuthRequest{}, loginError
	}
	st, err := p.store.ConsumeUpstreamState(ctx, hashToken(state))
	if errors.Is(err, storage.ErrNotFound) {
		p.log.InfoContext(ctx, "callback: unknown, used or expired state", "connector", conn.ID)
		p.render(w, r, &pageView{page: pageStateInvalid, status: http.StatusBadRequest})
		return conn, storage.AuthRequest{}, loginExpired
	}
	if err != nil {
		p.serverError(w, r, "consume upstream state", err)
		return conn, storage.AuthRequest{}, loginError
	}
	if st.ConnectorID != conn.ID || !p.sameBrowser(r, st.BrowserBinding) {
		p.log.WarnContext(ctx, "security: callback state not bound to this browser or connector (possible login CSRF)",
			"connector", conn.ID, "authRequest", st.AuthRequestID)
		p.render(w, r, &pageView{page: pageStateInvalid, status: http.StatusBadRequest})
		return conn, storage.AuthRequest{}, loginError
	}
	a, failed := p.loadAuthRequest(w, r, st.AuthRequestID)
	return conn, a, failed
}

// loggedInUpstream records the person the connector vouched for, starts their
// session and finishes the login.
func (p *Provider) loggedInUpstream(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, conn Connector, id upstream.Identity) (result string) {
	ctx := r.Context()
	acc, err := p.accountFor(ctx, id)
	if err != nil {
		return p.bindingFailed(w, r, a, conn, id, err)
	}
	subject := acc.subject
	amr := id.Method
	if amr == "" {
		amr = upstream.MethodOAuth2
	}
	// The user and the new session are one storage call (CompleteLogin); they
	// become durable with this login's token response, which commits them with
	// the tokens (storage's package comment).
	sess, err := p.startSession(w, r, subject, conn.ID, a.ClientID, []string{amr}, p.loginUpdate(conn, id, acc, p.now().UTC()))
	if errors.Is(err, errUserDisabled) {
		p.log.InfoContext(ctx, "login refused: user disabled", "subject", subject, "client", a.ClientID)
		p.render(w, r, &pageView{page: pageUserDisabled, status: http.StatusForbidden, locales: a.UILocales,
			actions: []action{{actionBackToClient, p.errorRedirectURL(a, oidc.ErrAccessDenied().WithDescription("user is disabled"))}}})
		return loginPolicy
	}
	if errors.Is(err, errNotRegistered) || errors.Is(err, errBindingRace) {
		return p.bindingFailed(w, r, a, conn, id, err)
	}
	if err != nil {
		p.serverError(w, r, "record login", err)
		return loginError
	}
	if acc.bindBy != (storage.UserKey{}) {
		p.log.InfoContext(ctx, "login bound a provisioned user", "subject", subject, "unionid", id.UnionID, "by", acc.bindBy.String())
	}
	p.log.InfoContext(ctx, "login", "subject", subject, "client", a.ClientID, "connector", conn.ID, "method", amr)
	p.finish(w, r, a, sess)
	return loginOK
}

// finish ends the login step for the session's person: after consent where the
// client wants it, the request completes.
func (p *Provider) finish(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, sess storage.Session) {
	ask, err := p.needsConsent(r.Context(), a, sess.Subject)
	if err != nil {
		p.serverError(w, r, "check consent", err)
		return
	}
	if ask {
		p.askConsent(w, r, a, sess)
		return
	}
	p.complete(w, r, a, sess)
}

// complete marks the auth request done and hands it back to zitadel, which
// issues the code; a device flow's request approves the device instead.
func (p *Provider) complete(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, sess storage.Session) {
	if a.DeviceID != "" {
		p.completeDevice(w, r, a, sess)
		return
	}
	var done storage.AuthRequest
	err := p.store.UpdateAuthRequest(r.Context(), a.ID, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.Done, a.Subject, a.AuthTime, a.AMR = true, sess.Subject, sess.AuthTime, sess.AMR
		a.ConnectorID, a.SessionID, a.ConsentPending = sess.ConnectorID, sess.ID, false
		done = a
		return a, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		p.render(w, r, &pageView{page: pageLoginExpired, status: http.StatusBadRequest})
		return
	}
	if err != nil {
		p.serverError(w, r, "complete auth request", err)
		return
	}
	// zitadel issues the code and redirects to the client here, as its
	// /authorize/callback would: the browser is spared that extra hop, and the
	// provider a request that only reloads the auth request just written.
	r = r.WithContext(zop.ContextWithIssuer(r.Context(), p.issuer))
	zop.AuthResponse(&authRequest{AuthRequest: done}, p.oidc, w, r)
}

// pendingAuthRequest loads the auth request a login step works for; when it is
// gone (expired, or finished in another tab) the person is told and false returned.
func (p *Provider) pendingAuthRequest(w http.ResponseWriter, r *http.Request, id string) (storage.AuthRequest, bool) {
	a, failed := p.loadAuthRequest(w, r, id)
	return a, failed == ""
}

// loadAuthRequest is pendingAuthRequest saying how a login ended when the
// request cannot go on: loginExpired or loginError ("" when it can).
func (p *Provider) loadAuthRequest(w http.ResponseWriter, r *http.Request, id string) (storage.AuthRequest, string) {
	a, err := p.store.GetAuthRequest(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		p.render(w, r, &pageView{page: pageLoginExpired, status: http.StatusBadRequest})
		return a, loginExpired
	}
	if err != nil {
		p.serverError(w, r, "load auth request", err)
		return a, loginError
	}
	noteClient(r, a.ClientID)
	return a, ""
}

// upstreamFailed maps a connector error, once, to what the person sees and what
// the client will be told.
// It returns the login's result for metrics.
func (p *Provider) upstreamFailed(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, conn Connector, err error) (result string) {
	ctx := r.Context()
	if errors.Is(err, upstream.ErrAccessDenied) {
		p.log.InfoContext(ctx, "dingtalk denied the login", "connector", conn.ID, "client", a.ClientID, "err", err)
		p.redirectError(w, r, a, oidc.ErrAccessDenied().WithDescription("the login was declined at DingTalk"))
		return loginDenied
	}
	result = loginError
	v := &pageView{page: pageUpstreamError, status: http.StatusBadGateway, detail: err.Error(), locales: a.UILocales}
	clientErr := oidc.ErrServerError().WithDescription("DingTalk login failed")
	switch {
	case errors.Is(err, upstream.ErrUnavailable):
		v.page, v.status = pageUpstreamDown, http.StatusServiceUnavailable
		result = loginUpstreamUnavailable
		clientErr = temporarilyUnavailable("DingTalk is not answering; try again later")
	case errors.Is(err, upstream.ErrLoginExpired):
		v.page, v.status = pageUpstreamExpired, http.StatusBadRequest
		result = loginExpired
		clientErr = oidc.ErrServerError().WithDescription("the DingTalk login expired")
	case errors.Is(err, upstream.ErrNotAllowed):
		v.page, v.status = pageNotAllowed, http.StatusForbidden
		v.detail = policyDetail(pageLanguage(r, a.UILocales), err)
		clientErr = oidc.ErrAccessDenied().WithDescription("the person is not admitted by the access policy")
		p.log.InfoContext(ctx, "login refused by policy", "connector", conn.ID, "client", a.ClientID, "err", err)
		if a.DeviceID != "" {
			p.denyDevice(w, r, a.DeviceID, "refused by policy")
			return loginPolicy
		}
		v.actions = []action{{actionRetry, p.loginURL(a.ID, conn.ID)}, {actionBackToClient, p.errorRedirectURL(a, clientErr)}}
		p.render(w, r, v)
		return loginPolicy
	case errors.Is(err, upstream.ErrMisconfigured):
		v.page = pageUpstreamMisconfigured
		v.detail = "" // the operator's hint is in the log, not on the person's screen
		p.log.ErrorContext(ctx, "dingtalk refused this server's connector settings; fix the configuration",
			"connector", conn.ID, "client", a.ClientID, "err", err)
		v.actions = []action{{actionBackToClient, p.errorRedirectURL(a, clientErr)}}
		p.render(w, r, v)
		return loginMisconfigured
	}
	p.log.WarnContext(ctx, "dingtalk login failed", "connector", conn.ID, "client", a.ClientID, "err", err)
	v.actions = []action{
		{actionRetry, p.loginURL(a.ID, conn.ID)},
		{actionBackToClient, p.errorRedirectURL(a, clientErr)},
	}
	p.render(w, r, v)
	return result
}

// policyDetail says, in the person's language, which organisation would be admitted.
func policyDetail(lang string, err error) string {
	var pe *upstream.PolicyError
	if !errors.As(err, &pe) {
		return ""
	}
	allowed := strings.Join(pe.Allowed, ", ")
	if lang == "zh" {
		d := "需要的组织：" + allowed
		if pe.CorpID != "" && pe.Reason == upstream.WrongOrganisation {
			d += "；您选择的组织：" + pe.CorpID
		}
		return d
	}
	d := "Required organisation: " + allowed
	if pe.CorpID != "" && pe.Reason == upstream.WrongOrganisation {
		d += "; you chose: " + pe.CorpID
	}
	return d
}

// answerOrigins are where the answer to a's login goes: the origin of its
// redirect_uri; none for a device flow, which ends on a page of ours.
func (p *Provider) answerOrigins(a storage.AuthRequest) []string {
	if origin := cspOrigin(a.RedirectURI); origin != "" && a.DeviceID == "" {
		return []string{origin}
	}
	return nil
}

func (p *Provider) loginURL(authRequestID, connectorID string) string {
	return p.issuerPath + "/login?authRequestID=" + url.QueryEscape(authRequestID) + "&connector=" + url.QueryEscape(connectorID)
}

// redirectError sends the browser back to the client with an OAuth error. The
// auth request's redirect_uri was checked against the client at /authorize.
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, e *oidc.Error) {
	_ = p.store.DeleteAuthRequest(r.Context(), a.ID)
	if a.DeviceID != "" {
		p.denyDevice(w, r, a.DeviceID, e.Description)
		return
	}
	http.Redirect(w, r, p.errorRedirectURL(a, e), http.StatusFound)
}

// errorRedirectURL is "" for a device flow: there is no page to return to.
func (p *Provider) errorRedirectURL(a storage.AuthRequest, e *oidc.Error) string {
	if a.DeviceID != "" {
		return ""
	}
	e.State = a.State
	u, err := zop.AuthResponseURL(a.RedirectURI, oidc.ResponseType(a.ResponseType), oidc.ResponseMode(a.ResponseMode), e, p.oidc.Encoder())
	if err != nil {
		return a.RedirectURI
	}
	return u
}

func (p *Provider) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	p.log.ErrorContext(r.Context(), what, "err", err)
	p.render(w, r, &pageView{page: pageServerError, status: http.StatusInternalServerError})
}

// storageFailed answers a failed write of flow state: a storage at its limit of
// logins in progress (storage.ErrCapacity) is a 503 asking the person to wait,
// anything else a server error.
func (p *Provider) storageFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, storage.ErrCapacity) {
		p.log.WarnContext(r.Context(), what+": too many logins in progress", "err", err)
		w.Header().Set("Retry-After", "10")
		p.render(w, r, &pageView{page: pageBusy, status: http.StatusServiceUnavailable})
		return
	}
	p.serverError(w, r, what, err)
}

// temporarilyUnavailable is the OAuth error for "ask again later" (RFC 6749 §4.1.2.1).
func temporarilyUnavailable(description string) *oidc.Error {
	return &oidc.Error{ErrorType: "temporarily_unavailable", Description: description}
}

// errUserDisabled stops CompleteLogin for a disabled person: nothing is stored.
var errUserDisabled = errors.New("user is disabled")

func (p *Provider) loggedOut(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, &pageView{page: pageLoggedOut})
}

// browserBinding returns this browser's login nonce, setting it if absent. The
// upstream state is bound to its hash, so a state minted in an attacker's browser
// is worthless in a victim's (login CSRF). One value per browser, not per login,
// so two tabs logging in at once do not overwrite each other.
func (p *Provider) browserBinding(w http.ResponseWriter, r *http.Request) string {
	name := p.bindingCookieName()
	if c, err := r.Cookie(name); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	value := randomToken(32)
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: p.issuerPath + "/", MaxAge: int(p.settings().lifetimes.UpstreamState.Seconds()),
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	})
	return value
}

func (p *Provider) sameBrowser(r *http.Request, bindingHash string) bool {
	c, err := r.Cookie(p.bindingCookieName())
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hashToken(c.Value)), []byte(bindingHash)) == 1
}

// bindingCookieName uses the __Host- prefix where the browser allows it, so no
// sibling subdomain can plant the cookie.
func (p *Provider) bindingCookieName() string {
	if p.secure && p.issuerPath == "" {
		return "__Host-dingbridge_login"
	}
	return "dingbridge_login"
}
