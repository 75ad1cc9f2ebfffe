package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/storage"
)

// ListKeys describes every stored signing key, oldest first.
func (s *Service) ListKeys(ctx context.Context) ([]keys.SigningKeyInfo, error) {
	return s.conf().Keys.List(ctx)
}

// RotateKeys makes a new signing key active at once.
func (s *Service) RotateKeys(ctx context.Context) (keys.SigningKeyInfo, error) {
	return s.conf().Keys.Rotate(ctx)
}

// ListUsers returns every user, by subject.
func (s *Service) ListUsers(ctx context.Context) ([]User, error) {
	stored, err := s.conf().Storage.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]User, len(stored))
	for i, u := range stored {
		out[i] = viewUser(u)
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Subject, b.Subject) })
	return out, nil
}

// GetUser returns one user.
func (s *Service) GetUser(ctx context.Context, subject string) (User, error) {
	u, err := s.conf().Storage.GetUser(ctx, subject)
	if errors.Is(err, storage.ErrNotFound) {
		return User{}, userNotFound(subject)
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %q: %w", subject, err)
	}
	return viewUser(u), nil
}

func userNotFound(subject string) error {
	return refuse(ErrNotFound, "user %q not found: `dingbridge users list` shows everyone who has logged in", subject)
}

// DisableUser marks the user disabled. The provider checks the flag at every
// login, refresh, userinfo and introspection, so this takes effect at once.
func (s *Service) DisableUser(ctx context.Context, subject string) (User, error) {
	u, err := s.setDisabled(ctx, subject, true)
	if err != nil {
		return u, err
	}
	// Deleted, not just refused while disabled: enabling the person later must
	// not bring old tokens or sessions back.
	if err := s.conf().Storage.RevokeSubject(ctx, subject); err != nil {
		return u, fmt.Errorf("revoke tokens and sessions of %q: %w", subject, err)
	}
	return u, nil
}

// EnableUser lets the user log in again.
func (s *Service) EnableUser(ctx context.Context, subject string) (User, error) {
	return s.setDisabled(ctx, subject, false)
}

// errNoSuchUser stops UpsertUser from creating a user nobody has seen.
var errNoSuchUser = errors.New("no such user")

func (s *Service) setDisabled(ctx context.Context, subject string, disabled bool) (User, error) {
	now := s.conf().Now().UTC()
	u, err := s.conf().Storage.UpsertUser(ctx, subject, func(u storage.User, found bool) (storage.User, error) {
		if !found {
			return u, errNoSuchUser
		}
		switch {
		case disabled && !u.Disabled:
			u.DisabledAt, u.DisabledReason = now, "disabled by an administrator"
		case !disabled:
			u.DisabledAt, u.DisabledReason = time.Time{}, ""
		}
		u.Disabled = disabled
		return u, nil
	})
	if errors.Is(err, errNoSuchUser) {
		return User{}, userNotFound(subject)
	}
	if err != nil {
		return User{}, fmt.Errorf("update user %q: %w", subject, err)
	}
	return viewUser(u), nil
}

func viewUser(u storage.User) User {
	return User{
		Subject: u.Subject, ConnectorID: u.ConnectorID, UnionID: u.UnionID, OpenID: u.OpenID,
		UserID: u.UserID, CorpID: u.CorpID, Nick: u.Nick, AvatarURL: u.AvatarURL,
		Email: u.Email, Phone: u.Phone, Title: u.Title, JobNumber: u.JobNumber, OrgEmail: u.OrgEmail,
		Groups: u.Groups, FirstLogin: u.FirstLogin, LastLogin: u.LastLogin,
		Disabled: u.Disabled, DisabledAt: u.DisabledAt, DisabledReason: u.DisabledReason,
		Username: u.Username, ProvisionedAt: u.ProvisionedAt, BoundAt: u.BoundAt,
		MembershipCheckedAt: u.MembershipCheckedAt,
	}
}

// previewScopes are the scopes the provider offers, for a preview that asks for none.
var previewScopes = []string{"openid", "profile", "email", "phone", "groups"}

// Claims previews subject's claims at clientID with the provider's own claims
// policy (op.ClaimsPolicy.Userinfo), so the preview and a real login never disagree.
func (s *Service) Claims(ctx context.Context, clientID, subject string, scopes []string) (ClaimsPreview, error) {
	c, err := s.GetClient(ctx, clientID)
	if err != nil {
		return ClaimsPreview{}, err
	}
	stored, err := s.conf().Storage.GetUser(ctx, subject)
	if errors.Is(err, storage.ErrNotFound) {
		return ClaimsPreview{}, userNotFound(subject)
	}
	if err != nil {
		return ClaimsPreview{}, fmt.Errorf("get user %q: %w", subject, err)
	}
	if len(scopes) == 0 {
		scopes = previewScopes
	}
	userinfo, err := claimsMap(s.conf().Claims.Userinfo(stored, scopes))
	if err != nil {
		return ClaimsPreview{}, err
	}
	// The id_token carries the userinfo claims too (op's clients assert them).
	idToken := maps.Clone(userinfo)
	lifetime := s.conf().IDTokenLifetime
	if c.IDTokenLifetime > 0 {
		lifetime = time.Duration(c.IDTokenLifetime)
	}
	now := s.conf().Now().UTC().Truncate(time.Second)
	idToken["iss"] = s.conf().Issuer
	idToken["aud"] = []string{clientID}
	idToken["azp"] = clientID
	idToken["iat"] = now.Unix()
	idToken["exp"] = now.Add(lifetime).Unix()
	idToken["auth_time"] = stored.LastLogin.Unix()
	idToken["amr"] = []string{"dingtalk"} // what op's login step records
	p := ClaimsPreview{ClientID: clientID, Subject: subject, Scopes: scopes, IDToken: idToken, Userinfo: userinfo}
	if stored.Disabled {
		p.Notes = append(p.Notes, "the user is disabled: login, refresh and userinfo are refused, so nothing is issued")
	}
	p.Notes = append(p.Notes, "iat, exp and auth_time are as if the person logged in now (auth_time: their last login); nonce and at_hash depend on the request")
	return p, nil
}

// claimsMap turns zitadel's UserInfo into plain JSON values, the way the wire shows them.
func claimsMap(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode claims: %w", err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode claims: %w", err)
	}
	return m, nil
}
