package op

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/dingbridge/dingbridge/storage"
)

// The device authorization grant (RFC 8628) for CLI tools and TVs: zitadel serves
// /device_authorization and the polling at /oauth/token; this file serves the
// person's side. They open /device, type the code their device shows, confirm
// that they meant to, and log in through the ordinary login step (SSO session or
// DingTalk); the login ends by approving the device instead of redirecting.

// userCodeCharset is zitadel's base-20 set: no vowels (no words), no look-alikes.
const userCodeCharset = zop.CharSetBase20

// normalizeUserCode accepts what a person types: any case, dashes and spaces.
func normalizeUserCode(s string) string {
	s = strings.ToUpper(s)
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, s)
}

// formatUserCode shows a stored code as the device does: XXXX-XXXX.
func formatUserCode(code string) string {
	if len(code) == 8 {
		return code[:4] + "-" + code[4:]
	}
	return code
}

// --- zitadel's DeviceAuthorizationStorage ---

var _ zop.DeviceAuthorizationStorage = (*oidcStorage)(nil)

func (s *oidcStorage) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	now := s.p.now().UTC()
	err := s.p.store.CreateDeviceAuthorization(ctx, storage.DeviceAuthorization{
		ID: hashToken(deviceCode), UserCode: normalizeUserCode(userCode), ClientID: clientID, Scopes: scopes,
		State: storage.DevicePending, CreatedAt: now, CodeExpiry: expires.UTC(),
		// Kept a while past its end, so a device polling late hears expired_token.
		Expiry:       expires.UTC().Add(time.Hour),
		PollInterval: s.p.settings().lifetimes.DevicePollInterval,
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return zop.ErrDuplicateUserCode
	}
	if errors.Is(err, storage.ErrCapacity) {
		return temporarilyUnavailable("too many device logins in progress; try again later")
	}
	return err
}

var (
	// errDeviceSpent: the device code already brought its tokens.
	errDeviceSpent = errors.New("device code already used")
	// errDeviceOtherClient: a client polls with a code issued to another.
	errDeviceOtherClient = errors.New("device code belongs to another client")
)

// GetDeviceAuthorizatonState answers one poll. A device polling faster than its
// interval gets slow_down (zitadel's signal for that is context.DeadlineExceeded)
// and its interval grows by 5 seconds (RFC 8628 §3.5). An approved flow answers
// once: it is spent in the same transaction, so two polls cannot both get tokens.
func (s *oidcStorage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*zop.DeviceAuthorizationState, error) {
	var tooFast bool
	now := s.p.now().UTC()
	d, err := s.p.store.UpdateDeviceAuthorization(ctx, hashToken(deviceCode), func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
		tooFast = false
		if d.ClientID != clientID {
			return d, errDeviceOtherClient
		}
		switch d.State {
		case storage.DeviceSpent:
			return d, errDeviceSpent
		case storage.DeviceApproved:
			d.State = storage.DeviceSpent
		case storage.DevicePending:
			if !d.LastPoll.IsZero() && now.Sub(d.LastPoll) < d.PollInterval {
				tooFast = true
				d.PollInterval += 5 * time.Second
			}
			d.LastPoll = now
		}
		return d, nil
	})
	if err != nil {
		// zitadel answers every error here with access_denied; RFC 8628 §3.5 keeps
		// that for a person's refusal. A code that is unknown (never issued, or
		// swept long after it expired), spent or another client's is invalid_grant.
		switch {
		case errors.Is(err, errDeviceSpent):
			s.p.log.WarnContext(ctx, "security: spent device code presented again", "client", clientID)
			clientAuthFrom(ctx).set(func(a *clientAuth) { a.override = oidc.ErrInvalidGrant().WithDescription("device_code already used") })
		case errors.Is(err, storage.ErrNotFound), errors.Is(err, errDeviceOtherClient):
			clientAuthFrom(ctx).set(func(a *clientAuth) { a.override = oidc.ErrInvalidGrant().WithDescription("device_code is unknown") })
		}
		return nil, fmt.Errorf("device authorization: %w", err)
	}
	// Pending, slow_down, denied, expired: answers about a real device flow, not
	// failures the limiter should count.
	clientAuthFrom(ctx).set(func(a *clientAuth) { a.benign = true })
	if tooFast {
		return nil, fmt.Errorf("device polls faster than every %s: %w", d.PollInterval-5*time.Second, context.DeadlineExceeded)
	}
	state := &zop.DeviceAuthorizationState{
		ClientID: d.ClientID, Audience: []string{d.ClientID}, Scopes: d.Scopes, Expires: d.CodeExpiry,
		Done: d.State == storage.DeviceSpent, Denied: d.State == storage.DeviceDenied,
		Subject: d.Subject, AMR: d.AMR, AuthTime: d.AuthTime,
	}
	if state.Done {
		if err := s.userActive(ctx, d.Subject); err != nil {
			return nil, err
		}
		// zitadel hands the state, not our record, to token creation: the grant
		// and session travel in the request's context (see withTokenGrant).
		if g, ok := ctx.Value(deviceGrantKey{}).(*deviceGrant); ok {
			g.id, g.sessionID, g.connectorID = d.ID, d.SessionID, d.ConnectorID
		}
	}
	return state, nil
}

type deviceGrantKey struct{}

// deviceGrant carries, within one token request, what a device approval adds
// to zitadel's DeviceAuthorizationState.
type deviceGrant struct{ id, sessionID, connectorID string }

// withTokenGrant gives each token request a place for the device grant.
func withTokenGrant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), deviceGrantKey{}, new(deviceGrant))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func deviceGrantFrom(ctx context.Context) (deviceGrant, bool) {
	g, ok := ctx.Value(deviceGrantKey{}).(*deviceGrant)
	if !ok || g.id == "" {
		return deviceGrant{}, false
	}
	return *g, true
}

// --- the person's side ---

const (
	formDeviceLookup  = "device"
	formDeviceConfirm = "device-confirm"
)

// deviceEnter shows the form for the code (prefilled from verification_uri_complete).
func (p *Provider) deviceEnter(w http.ResponseWriter, r *http.Request) {
	p.renderDeviceEnter(w, r, http.StatusOK, pageDeviceEnter, r.URL.Query().Get("user_code"))
}

func (p *Provider) renderDeviceEnter(w http.ResponseWriter, r *http.Request, status int, pg page, code string) {
	p.render(w, r, &pageView{page: pg, status: status, form: &formView{
		action:  p.issuerPath + "/device",
		hidden:  []hiddenField{{"form_token", p.formToken(w, r, formDeviceLookup, "")}},
		input:   &inputView{name: "user_code", label: labelUserCode, value: code},
		buttons: []buttonView{{label: labelContinue}},
	}})
}

// deviceLookup finds the flow for a typed code and asks the person to confirm it.
func (p *Provider) deviceLookup(w http.ResponseWriter, r *http.Request) {
	if !p.validFormToken(r, formDeviceLookup, "", r.PostFormValue("form_token")) {
		p.renderDeviceEnter(w, r, http.StatusBadRequest, pageDeviceEnter, "")
		return
	}
	d, ok := p.pendingDevice(w, r, r.PostFormValue("user_code"))
	if !ok {
		return
	}
	name, err := p.settings().clients.name(r.Context(), d.ClientID)
	if err != nil {
		p.serverError(w, r, "load device client", err)
		return
	}
	p.render(w, r, &pageView{
		page:      pageDeviceConfirm,
		facts:     []factView{{labelApplication, name}, {labelUserCode, formatUserCode(d.UserCode)}},
		listTitle: labelScopes,
		list:      scopeLabels(d.Scopes),
		// Continuing logs the person in: at DingTalk when they have no session.
		formTargets: p.settings().upstreamOrigins,
		form: &formView{
			action: p.issuerPath + "/device/confirm",
			hidden: []hiddenField{
				{"user_code", d.UserCode},
				{"form_token", p.formToken(w, r, formDeviceConfirm, d.UserCode)},
			},
			buttons: []buttonView{{"decision", "allow", labelContinue}, {"decision", "deny", labelCancel}},
		},
	})
}

// pendingDevice loads the flow a code names if the person may still approve it;
// otherwise they are shown the code form again.
func (p *Provider) pendingDevice(w http.ResponseWriter, r *http.Request, typed string) (storage.DeviceAuthorization, bool) {
	code := normalizeUserCode(typed)
	valid := len(code) == 8 && strings.Trim(code, userCodeCharset) == ""
	var d storage.DeviceAuthorization
	var err error
	if valid {
		d, err = p.store.GetDeviceAuthorizationByUserCode(r.Context(), code)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			p.serverError(w, r, "load device authorization", err)
			return d, false
		}
	}
	if !valid || err != nil || d.State != storage.DevicePending || !p.now().Before(d.CodeExpiry) {
		p.log.InfoContext(r.Context(), "device: code not accepted")
		p.renderDeviceEnter(w, r, http.StatusBadRequest, pageDeviceInvalid, "")
		return d, false
	}
	return d, true
}

// deviceConfirm takes the person's decision: cancel ends the flow (the device is
// told access_denied); continue starts the login for it.
func (p *Provider) deviceConfirm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	code := normalizeUserCode(r.PostFormValue("user_code"))
	if !p.validFormToken(r, formDeviceConfirm, code, r.PostFormValue("form_token")) {
		p.log.WarnContext(ctx, "security: device confirmation without a valid form token (possible CSRF)")
		p.renderDeviceEnter(w, r, http.StatusBadRequest, pageDeviceEnter, "")
		return
	}
	d, ok := p.pendingDevice(w, r, code)
	if !ok {
		return
	}
	if r.PostFormValue("decision") != "allow" {
		p.denyDevice(w, r, d.ID, "cancelled by the person")
		return
	}
	now := p.now().UTC()
	a := storage.AuthRequest{
		ID: randomToken(16), ClientID: d.ClientID, Scopes: d.Scopes, ResponseType: string(oidc.ResponseTypeCode),
		DeviceID: d.ID, CreatedAt: now, Expiry: now.Add(p.settings().lifetimes.AuthRequest),
	}
	if d.CodeExpiry.Before(a.Expiry) {
		a.Expiry = d.CodeExpiry
	}
	if err := p.store.CreateAuthRequest(ctx, a); err != nil {
		p.storageFailed(w, r, "store device login", err)
		return
	}
	http.Redirect(w, r, p.issuerPath+"/login?authRequestID="+url.QueryEscape(a.ID), http.StatusSeeOther)
}

// denyDevice ends a pending flow with access_denied for the device.
func (p *Provider) denyDevice(w http.ResponseWriter, r *http.Request, id, why string) {
	_, err := p.store.UpdateDeviceAuthorization(r.Context(), id, func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
		if d.State == storage.DevicePending {
			d.State = storage.DeviceDenied
		}
		return d, nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		p.serverError(w, r, "deny device", err)
		return
	}
	p.log.InfoContext(r.Context(), "device login refused", "reason", why)
	p.render(w, r, &pageView{page: pageDeviceDenied, status: http.StatusForbidden})
}

// completeDevice approves the device once its person has logged in.
func (p *Provider) completeDevice(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, sess storage.Session) {
	ctx := r.Context()
	now := p.now()
	errGone := errors.New("device flow no longer pending")
	_, err := p.store.UpdateDeviceAuthorization(ctx, a.DeviceID, func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
		if d.State != storage.DevicePending || !now.Before(d.CodeExpiry) {
			return d, errGone
		}
		d.State, d.Subject, d.AuthTime, d.AMR = storage.DeviceApproved, sess.Subject, sess.AuthTime, sess.AMR
		d.ConnectorID, d.SessionID = sess.ConnectorID, sess.ID
		return d, nil
	})
	_ = p.store.DeleteAuthRequest(ctx, a.ID)
	if errors.Is(err, errGone) || errors.Is(err, storage.ErrNotFound) {
		p.renderDeviceEnter(w, r, http.StatusBadRequest, pageDeviceInvalid, "")
		return
	}
	if err != nil {
		p.serverError(w, r, "approve device", err)
		return
	}
	p.log.InfoContext(ctx, "device approved", "subject", sess.Subject, "client", a.ClientID)
	p.render(w, r, &pageView{page: pageDeviceDone})
}

// scopeLabels describes scopes for a person; unknown ones are shown as they are.
func scopeLabels(scopes []string) []page {
	labels := make([]page, 0, len(scopes))
	for _, s := range scopes {
		labels = append(labels, scopeLabel(s))
	}
	return labels
}
