package dingtalk

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dingbridge/dingbridge/upstream"
)

// What DingTalk says about a person is untrusted input: a nick is whatever the
// person typed, and it ends up in id_tokens, on pages and in the CLI. Every
// Identity leaves this package through untrustedIdentity, which removes what no
// display needs (control characters, bidirectional overrides, invalid UTF-8) and
// caps lengths, so a 100,000-character nick cannot become a 268 KB token response.
// Identifiers are not repaired but refused: stripping characters from one could
// make it another person's.

// Caps, in characters, generous for every real value.
const (
	maxIDLength      = 128 // unionId, openId, userid, corpId are 20-40 characters
	maxNameLength    = 128 // DingTalk's own limit for a nick is lower
	maxFieldLength   = 256 // title, job number
	maxEmailLength   = 254 // RFC 5321
	maxPhoneLength   = 32
	maxURLLength     = 2048
	maxGroups        = 256
	maxGroupNameSize = 256
)

// untrustedIdentity cleans id for use downstream, or refuses it when an
// identifier is unusable.
func untrustedIdentity(id upstream.Identity) (upstream.Identity, error) {
	for _, f := range []struct{ name, value string }{
		{"unionId", id.UnionID}, {"openId", id.OpenID}, {"userid", id.UserID}, {"corpId", id.CorpID},
	} {
		if len(f.value) > maxIDLength || strings.ContainsFunc(f.value, unsafeRune) || !utf8.ValidString(f.value) {
			return upstream.Identity{}, fmt.Errorf("dingtalk returned an unusable %s (%d bytes, or with control characters)", f.name, len(f.value))
		}
	}
	id.Nick = cleanText(id.Nick, maxNameLength)
	id.Title = cleanText(id.Title, maxFieldLength)
	id.JobNumber = cleanText(id.JobNumber, maxFieldLength)
	id.Email = cleanOrDrop(id.Email, maxEmailLength)
	id.OrgEmail = cleanOrDrop(id.OrgEmail, maxEmailLength)
	id.Phone = cleanOrDrop(id.Phone, maxPhoneLength)
	id.AvatarURL = cleanURL(id.AvatarURL)
	if id.Groups != nil {
		groups := make([]string, 0, min(len(id.Groups), maxGroups))
		for _, g := range id.Groups {
			if g = cleanText(g, maxGroupNameSize); g != "" && len(groups) < maxGroups {
				groups = append(groups, g)
			}
		}
		id.Groups = groups
	}
	return id, nil
}

// cleanText drops unsafe runes, repairs invalid UTF-8, trims and caps at max
// characters.
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unsafeRune(r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > max {
		s = strings.TrimSpace(string([]rune(s)[:max]))
	}
	return s
}

// cleanOrDrop is for values that mean nothing when cut (an address, a number):
// too long or unsafe, they are dropped.
func cleanOrDrop(s string, max int) string {
	if len(s) > max || strings.ContainsFunc(s, unsafeRune) || !utf8.ValidString(s) {
		return ""
	}
	return strings.TrimSpace(s)
}

// cleanURL keeps an avatar URL only if it is an http(s) URL of sane length:
// it becomes the picture claim and an <img> on relying parties' pages.
func cleanURL(s string) string {
	s = cleanOrDrop(s, maxURLLength)
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return s
}

// unsafeRune: control characters (C0, DEL, C1), bidirectional controls, and
// the line and paragraph separators.
func unsafeRune(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
		return true
	case r == 0x2028 || r == 0x2029:
		return true
	}
	return false
}
