package op

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/storage"
)

// Consent is off for first-party apps (the default) and on for clients that
// require it: the person is shown the scopes once, and their decision is kept
// per person and client until a request asks for more, or prompt=consent.

const formConsent = "consent"

// needsConsent reports whether a must ask its person before it completes.
func (p *Provider) needsConsent(ctx context.Context, a storage.AuthRequest, subject string) (bool, error) {
	c, err := p.settings().clients.get(ctx, a.ClientID)
	if err != nil {
		return false, err
	}
	if !c.RequireConsent {
		return false, nil
	}
	if slices.Contains(a.Prompt, oidc.PromptConsent) {
		return true, nil
	}
	given, err := p.store.GetConsent(ctx, subject, a.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, s := range a.Scopes {
		if !slices.Contains(given.Scopes, s) {
			return true, nil
		}
	}
	return false, nil
}

// askConsent parks the logged-in request and shows the scopes.
func (p *Provider) askConsent(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, sess storage.Session) {
	if slices.Contains(a.Prompt, oidc.PromptNone) {
		p.redirectError(w, r, a, &oidc.Error{ErrorType: "consent_required", Description: "the person has not consented to these scopes"})
		return
	}
	err := p.store.UpdateAuthRequest(r.Context(), a.ID, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.ConsentPending, a.Subject, a.AuthTime, a.AMR = true, sess.Subject, sess.AuthTime, sess.AMR
		a.ConnectorID, a.SessionID = sess.ConnectorID, sess.ID
		return a, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		p.render(w, r, &pageView{page: pageLoginExpired, status: http.StatusBadRequest})
		return
	}
	if err != nil {
		p.serverError(w, r, "park auth request for consent", err)
		return
	}
	// The page gets its own address, so that reloading it shows it again
	// rather than replaying the one-time callback it was reached from.
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, p.issuerPath+"/consent?authRequestID="+url.QueryEscape(a.ID), http.StatusSeeOther)
}

// consentPage shows the scopes of a login waiting for its person's answer, in
// the browser that logged in.
func (p *Provider) consentPage(w http.ResponseWriter, r *http.Request) {
	a, ok := p.pendingConsent(w, r, r.URL.Query().Get("authRequestID"))
	if !ok {
		return
	}
	name, err := p.settings().clients.name(r.Context(), a.ClientID)
	if err != nil {
		p.serverError(w, r, "load client for consent", err)
		return
	}
	p.render(w, r, &pageView{
		page:        pageConsent,
		locales:     a.UILocales,
		formTargets: p.answerOrigins(a),
		facts:       []factView{{labelApplication, name}},
		list:        scopeLabels(a.Scopes),
		form: &formView{
			action: p.issuerPath + "/consent",
			hidden: []hiddenField{
				{"authRequestID", a.ID},
				{"form_token", p.formToken(w, r, formConsent, a.ID)},
			},
			buttons: []buttonView{{"decision", "allow", labelAllow}, {"decision", "deny", labelDeny}},
		},
	})
}

// pendingConsent loads the login a consent page or answer is about: one that
// waits for consent, logged in by this browser's session.
func (p *Provider) pendingConsent(w http.ResponseWriter, r *http.Request, id string) (storage.AuthRequest, bool) {
	a, ok := p.pendingAuthRequest(w, r, id)
	if !ok {
		return a, false
	}
	if sess, ok := p.currentSession(r); !ok || sess.ID != a.SessionID {
		p.log.WarnContext(r.Context(), "security: consent for a login of another browser's session")
		p.render(w, r, &pageView{page: pageStateInvalid, status: http.StatusBadRequest, locales: a.UILocales})
		return a, false
	}
	if !a.ConsentPending || a.Done {
		p.render(w, r, &pageView{page: pageLoginExpired, status: http.StatusBadRequest, locales: a.UILocales})
		return a, false
	}
	return a, true
}

// consent takes the person's answer to the consent page.
func (p *Provider) consent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PostFormValue("authRequestID")
	if !p.validFormToken(r, formConsent, id, r.PostFormValue("form_token")) {
		p.log.WarnContext(ctx, "security: consent without a valid form token (possible CSRF)")
		p.render(w, r, &pageView{page: pageStateInvalid, status: http.StatusBadRequest})
		return
	}
	a, ok := p.pendingConsent(w, r, id)
	if !ok {
		return
	}
	if r.PostFormValue("decision") != "allow" {
		p.log.InfoContext(ctx, "consent refused", "subject", a.Subject, "client", a.ClientID)
		p.redirectError(w, r, a, oidc.ErrAccessDenied().WithDescription("the person did not consent"))
		return
	}
	given, err := p.store.GetConsent(ctx, a.Subject, a.ClientID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		p.serverError(w, r, "load consent", err)
		return
	}
	scopes := slices.Clone(given.Scopes)
	for _, s := range a.Scopes {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	err = p.store.PutConsent(ctx, storage.Consent{Subject: a.Subject, ClientID: a.ClientID, Scopes: scopes, GrantedAt: p.now().UTC()})
	if err != nil {
		p.serverError(w, r, "store consent", err)
		return
	}
	p.log.InfoContext(ctx, "consent given", "subject", a.Subject, "client", a.ClientID)
	p.complete(w, r, a, storage.Session{
		ID: a.SessionID, Subject: a.Subject, AuthTime: a.AuthTime, AMR: a.AMR, ConnectorID: a.ConnectorID,
	})
}
