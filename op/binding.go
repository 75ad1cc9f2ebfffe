package op

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/upstream"
)

// Account binding: which user record a DingTalk login is. A record already bound
// to the person's unionid wins; otherwise a record an administrator provisioned
// (users add / import) is bound if exactly one matches on something DingTalk
// vouches for — the staff id or an address from the organisation's directory, or
// the mobile number (DingTalk confirms it by SMS) — never the personal email of
// the profile, which nobody verified. With registration open, anyone else gets a
// new record; closed, they are refused.

// Registration says who may log in without a user record.
type Registration struct {
	// Closed: only people who already have a user record (provisioned by an
	// administrator, or from an earlier login) log in.
	Closed bool
	// Contact tells a refused person whom to ask ("IT 服务台, it@example.com"),
	// on the page in both languages.
	Contact string
}

var (
	// errNotRegistered: registration is closed and no record matches the person.
	errNotRegistered = errors.New("not bound to a user record and registration is closed")
	// errBindingRace: the record was bound to another DingTalk account meanwhile.
	errBindingRace = errors.New("the record was bound to another DingTalk account meanwhile")
)

// ambiguousError: more than one record matches the person; binding would have to
// guess, so the login is refused until an administrator links the right one.
type ambiguousError struct {
	key      storage.UserKey
	subjects []string
}

func (e *ambiguousError) Error() string {
	return fmt.Sprintf("%d user records match %s (%s): link the right one with `dingbridge users link SUBJECT --unionid …`",
		len(e.subjects), e.key, strings.Join(e.subjects, ", "))
}

// account is the record a login is for.
type account struct {
	subject string
	// bindBy is the key a provisioned record was found by; zero when the record
	// is bound already (or new).
	bindBy storage.UserKey
	// username is the stored username, or the one to store now.
	username string
}

// accountFor finds the record the person id logs in as. It reads the user index
// only: a few lookups, never a scan.
func (p *Provider) accountFor(ctx context.Context, id upstream.Identity) (account, error) {
	bound, err := p.store.FindUsers(ctx, storage.UserKey{UnionID: id.UnionID})
	if err != nil {
		return account{}, err
	}
	var acc account
	switch len(bound) {
	case 0:
	case 1:
		acc.subject = bound[0].Subject
		return p.withUsername(ctx, acc, bound[0], id)
	default:
		return account{}, &ambiguousError{key: storage.UserKey{UnionID: id.UnionID}, subjects: subjectsOf(bound)}
	}

	var candidates []storage.User
	var matchedBy storage.UserKey
	for _, key := range vouchedKeys(id) {
		found, err := p.store.FindUsers(ctx, key)
		if err != nil {
			return account{}, err
		}
		for _, u := range found {
			if u.UnionID == "" && !slices.ContainsFunc(candidates, func(c storage.User) bool { return c.Subject == u.Subject }) {
				candidates = append(candidates, u)
				matchedBy = key
			}
		}
	}
	switch len(candidates) {
	case 0:
	case 1:
		acc.subject, acc.bindBy = candidates[0].Subject, matchedBy
		return p.withUsername(ctx, acc, candidates[0], id)
	default:
		return account{}, &ambiguousError{key: matchedBy, subjects: subjectsOf(candidates)}
	}

	// Nobody bound or provisioned: the subject the claims policy gives. A record
	// under it without a unionid was provisioned with that subject alone.
	acc.subject = p.settings().claims.subjectOf(id)
	if acc.subject == "" || strings.Contains(acc.subject, ":") {
		// zitadel's opaque tokens separate token id and subject with ':'.
		return account{}, errors.New("DingTalk gave no usable " + p.settings().claims.Subject + " for this person; check claims.subject")
	}
	u, err := p.store.GetUser(ctx, acc.subject)
	switch {
	case err == nil && u.UnionID == id.UnionID:
		// Created by a login of the same person a moment ago.
		return p.withUsername(ctx, acc, u, id)
	case err == nil && u.UnionID == "":
		acc.bindBy = storage.UserKey{UnionID: id.UnionID}
		return p.withUsername(ctx, acc, u, id)
	case err == nil:
		// Bound to another unionid under the subject this one would get: only
		// possible with openid or userid subjects reused across organisations.
		return account{}, &ambiguousError{key: storage.UserKey{UnionID: id.UnionID}, subjects: []string{u.Subject}}
	case !errors.Is(err, storage.ErrNotFound):
		return account{}, err
	case p.settings().register.Closed:
		return account{}, errNotRegistered
	}
	return p.withUsername(ctx, acc, storage.User{Subject: acc.subject}, id)
}

// withUsername fills in the username the record keeps, choosing one if it has none.
func (p *Provider) withUsername(ctx context.Context, acc account, u storage.User, id upstream.Identity) (account, error) {
	if u.Username == "" {
		u.Nick, u.UnionID = id.Nick, id.UnionID
	}
	name, err := p.chooseUsername(ctx, u)
	acc.username = name
	return acc, err
}

// vouchedKeys are what a provisioned record may be found by: values DingTalk
// vouches for. id.Email is the person's own profile address, unverified, so it
// is not among them.
func vouchedKeys(id upstream.Identity) []storage.UserKey {
	var keys []storage.UserKey
	if id.UserID != "" && id.CorpID != "" {
		keys = append(keys, storage.UserKey{UserID: id.UserID, CorpID: id.CorpID})
	}
	if id.Phone != "" {
		keys = append(keys, storage.UserKey{Phone: id.Phone})
	}
	for _, email := range []string{id.OrgEmail, id.DirectoryEmail} {
		if email != "" {
			keys = append(keys, storage.UserKey{Email: email})
		}
	}
	return keys
}

func subjectsOf(users []storage.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Subject
	}
	return out
}

// loginUpdate is how a login changes the person's record: what DingTalk says now,
// the binding of a provisioned record, the username chosen once. A disabled
// record is left as it is (errUserDisabled: the login is refused), unless only the directory had
// disabled it and this login's connector just found the person a member again.
func (p *Provider) loginUpdate(conn Connector, id upstream.Identity, acc account, now time.Time) func(storage.User, bool) (storage.User, error) {
	checked := requiresMembership(conn)
	return func(u storage.User, found bool) (storage.User, error) {
		switch {
		case !found && acc.bindBy != (storage.UserKey{}):
			return u, errBindingRace // the provisioned record is gone
		case found && u.UnionID != "" && u.UnionID != id.UnionID:
			return u, errBindingRace
		case !found && p.settings().register.Closed:
			return u, errNotRegistered
		}
		if found && u.Disabled {
			if !checked || !disabledByDirectory(u) || u.ConnectorID != conn.ID {
				return u, errUserDisabled
			}
			u.Disabled, u.DisabledAt, u.DisabledReason = false, time.Time{}, ""
		}
		if !found {
			u = storage.User{Subject: acc.subject}
		}
		if u.FirstLogin.IsZero() {
			u.FirstLogin = now
		}
		if u.UnionID == "" && found {
			u.BoundAt = now
		}
		u.ConnectorID, u.UnionID, u.OpenID, u.UserID, u.CorpID = conn.ID, id.UnionID, id.OpenID, id.UserID, id.CorpID
		u.Nick, u.AvatarURL, u.Email, u.Phone = id.Nick, id.AvatarURL, id.Email, id.Phone
		u.Title, u.JobNumber, u.OrgEmail, u.Groups = id.Title, id.JobNumber, id.OrgEmail, id.Groups
		if u.Username == "" {
			u.Username = acc.username
		}
		if checked {
			u.MembershipCheckedAt = now
		}
		u.LastLogin = now
		return u, nil
	}
}

// bindingFailed answers a login whose record could not be found or bound: the
// person sees why and whom to ask, the app is told access_denied.
// It returns the login's result for metrics.
func (p *Provider) bindingFailed(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, conn Connector, id upstream.Identity, err error) (result string) {
	ctx := r.Context()
	var amb *ambiguousError
	v := &pageView{status: http.StatusForbidden}
	switch {
	case errors.Is(err, errNotRegistered):
		v.page = pageNotRegistered
		p.log.InfoContext(ctx, "login refused: no user record and registration is closed",
			"unionid", id.UnionID, "client", a.ClientID, "connector", conn.ID)
	case errors.As(err, &amb):
		v.page = pageAccountAmbiguous
		p.log.WarnContext(ctx, "login refused: the DingTalk account matches more than one user record",
			"unionid", id.UnionID, "client", a.ClientID, "connector", conn.ID, "err", err)
	case errors.Is(err, errBindingRace):
		v.page = pageAccountAmbiguous
		p.log.WarnContext(ctx, "login refused: the user record was bound to another DingTalk account meanwhile",
			"unionid", id.UnionID, "client", a.ClientID, "connector", conn.ID)
	default:
		p.serverError(w, r, "record user", err)
		return loginError
	}
	v.facts = []factView{{labelDingTalkID, id.UnionID}}
	if contact := p.settings().register.Contact; contact != "" {
		v.facts = append(v.facts, factView{labelContact, contact})
	}
	clientErr := oidc.ErrAccessDenied().WithDescription("the DingTalk account is not bound to a user here")
	if a.DeviceID != "" {
		p.denyDevice(w, r, a.DeviceID, "DingTalk account not bound")
		return loginPolicy
	}
	_ = p.store.DeleteAuthRequest(ctx, a.ID)
	v.actions = []action{{actionBackToClient, p.errorRedirectURL(a, clientErr)}}
	p.render(w, r, v)
	return loginPolicy
}
