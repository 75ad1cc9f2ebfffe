package op

import (
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/upstream"
)

// subjectOf picks the `sub` for an identity. It must never change for a person,
// which is why it comes from an id DingTalk keeps stable, never from a name.
func (c ClaimsPolicy) subjectOf(id upstream.Identity) string {
	switch c.Subject {
	case "openid":
		return id.OpenID
	case "userid":
		return id.UserID
	default:
		return id.UnionID
	}
}

// Userinfo returns the claims userinfo answers (and the id_token carries) for u
// with scopes: what the admin CLI shows an operator who asks "what will this
// person get?".
func (c ClaimsPolicy) Userinfo(u storage.User, scopes []string) *oidc.UserInfo {
	info := new(oidc.UserInfo)
	c.setUserinfo(info, u, scopes)
	return info
}

// setUserinfo fills the claims a person's scopes release. The same function serves
// the id_token and userinfo, so the two never disagree.
func (c ClaimsPolicy) setUserinfo(info *oidc.UserInfo, u storage.User, scopes []string) {
	info.Subject = u.Subject
	if u.UnionID != "" {
		info.AppendClaims("unionid", u.UnionID)
	}
	if u.OpenID != "" {
		info.AppendClaims("openid", u.OpenID)
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = u.Nick
		info.PreferredUsername = c.preferredUsername(u)
		info.Picture = u.AvatarURL
	}
	if slices.Contains(scopes, oidc.ScopeEmail) {
		switch {
		case c.OrgEmailAsEmail && u.OrgEmail != "":
			// The organisation gave this address to its member: it is theirs.
			info.Email = u.OrgEmail
			info.EmailVerified = oidc.Bool(true)
		case u.Email != "":
			info.Email = u.Email
			info.EmailVerified = oidc.Bool(c.EmailVerified)
			// zitadel omits a false email_verified; say it, so an RP never assumes.
			info.AppendClaims("email_verified", c.EmailVerified)
		}
	}
	if slices.Contains(scopes, oidc.ScopePhone) && u.Phone != "" {
		info.PhoneNumber = u.Phone
		// DingTalk accounts are registered with a mobile number confirmed by SMS.
		info.PhoneNumberVerified = true
	}
	if slices.Contains(scopes, ScopeGroups) {
		// What the organisation's directory says; absent when the connector reads none.
		for _, claim := range []struct{ name, value string }{
			{"corp_id", u.CorpID}, {"userid", u.UserID}, {"title", u.Title},
			{"job_number", u.JobNumber}, {"org_email", u.OrgEmail},
		} {
			if claim.value != "" {
				info.AppendClaims(claim.name, claim.value)
			}
		}
		if u.Groups != nil {
			info.AppendClaims("groups", u.Groups)
		}
	}
}

// ScopeGroups releases the organisation claims: corp_id, userid, title,
// job_number, org_email and groups (the person's departments).
const ScopeGroups = "groups"
