package op

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"unicode"

	"github.com/mozillazg/go-pinyin"

	"github.com/dingbridge/dingbridge/storage"
)

// preferred_username is what many apps turn into an account name, and they are
// strict about it: Gitea refuses "李四-Bob" with an HTTP 500 at the first login,
// GitLab wants letters, digits, "_", "-" and "."; Grafana takes anything. So by
// default dingbridge releases an ASCII name made from the person's name in pinyin
// (张三 → zhangsan), chosen once and kept: an app's account must not change name.

// Sources of preferred_username (ClaimsPolicy.PreferredUsername).
const (
	// UsernamePinyin (the default): the name in pinyin, made unique on a clash
	// with a suffix derived from the unionid, chosen at the first login and kept.
	UsernamePinyin = "pinyin"
	// UsernameNick: the DingTalk display name as it is (may be Chinese, may clash).
	UsernameNick = "nick"
	// UsernameUserID: the organisation's staff id (corp apps).
	UsernameUserID = "userid"
	// UsernameEmailLocal: the part before @ of the organisation's address (org_email).
	UsernameEmailLocal = "email-local"
)

// maxUsername keeps names within what Gitea (40) and GitLab (255) accept.
const maxUsername = 40

// preferredUsername is the claim for u. userid and email-local fall back to the
// pinyin name when the person has no staff id or organisation address, so the
// claim is always something apps accept.
func (c ClaimsPolicy) preferredUsername(u storage.User) string {
	switch c.PreferredUsername {
	case UsernameNick:
		return u.Nick
	case UsernameUserID:
		if name := asUsername(u.UserID); name != "" {
			return name
		}
	case UsernameEmailLocal:
		local, _, _ := strings.Cut(u.OrgEmail, "@")
		if name := asUsername(local); name != "" {
			return name
		}
	}
	if u.Username != "" {
		return u.Username
	}
	// Not yet chosen (a person who last logged in before this version): the same
	// name the next login will choose, unless it clashes.
	return pinyinUsername(u.Nick, u.UnionID)
}

// pinyinUsername turns a name into a username: Chinese characters become their
// pinyin without tones, letters and digits stay (lower case), ".", "_" and "-"
// stay as separators, anything else separates too. A name with nothing usable
// gives "user-" and a suffix from the unionid.
func pinyinUsername(name, unionID string) string {
	var b strings.Builder
	args := pinyin.NewArgs()
	for _, r := range name {
		if unicode.Is(unicode.Han, r) {
			if py := pinyin.SinglePinyin(r, args); len(py) > 0 {
				b.WriteString(strings.ReplaceAll(py[0], "ü", "v")) // 吕 → lv, as people type it
				continue
			}
		}
		b.WriteRune(r)
	}
	if s := asUsername(b.String()); s != "" {
		return s
	}
	return "user-" + usernameSuffix(unionID, 6)
}

// asUsername keeps [a-z0-9] and single separators (. _ -) between them, so the
// name starts and ends with a letter or digit, as Gitea and GitLab require.
func asUsername(s string) string {
	var b strings.Builder
	pending := byte(0) // a separator to write before the next letter or digit
	for _, r := range strings.ToLower(s) {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			if pending != 0 && b.Len() > 0 {
				b.WriteByte(pending)
			}
			pending = 0
			b.WriteRune(r)
		case r == '.' || r == '_' || r == '-':
			if pending == 0 {
				pending = byte(r)
			}
		case unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r):
			if pending == 0 {
				pending = '.'
			}
		}
		// Other letters (kana, Cyrillic, accented Latin) have no ASCII form here and are left out.
	}
	out := b.String()
	if len(out) > maxUsername {
		out = strings.TrimRight(out[:maxUsername], "._-")
	}
	return out
}

// usernameSuffix is n characters derived from the unionid: the same person
// always gets the same suffix, so a name chosen again comes out the same.
func usernameSuffix(unionID string, n int) string {
	sum := sha256.Sum256([]byte("dingbridge username " + unionID))
	s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))
	return s[:min(n, len(s))]
}

// chooseUsername picks u's pinyin username once: the plain name if nobody else
// has it, else the name with a suffix from the unionid, longer until it is free.
// Two people with the same name logging in at the same instant may both get the
// plain name; the index shows it (`dingbridge users list`).
func (p *Provider) chooseUsername(ctx context.Context, u storage.User) (string, error) {
	if u.Username != "" || p.settings().claims.PreferredUsername != UsernamePinyin {
		return u.Username, nil
	}
	base := pinyinUsername(u.Nick, u.UnionID)
	candidates := []string{base}
	for _, n := range []int{4, 6, 8, 12, 16} {
		stem := base[:min(len(base), maxUsername-n-1)]
		candidates = append(candidates, stem+"-"+usernameSuffix(u.UnionID, n))
	}
	for _, name := range candidates {
		taken, err := p.store.FindUsers(ctx, storage.UserKey{Username: name})
		if err != nil {
			return "", fmt.Errorf("look up username %s: %w", name, err)
		}
		if len(taken) == 0 || len(taken) == 1 && taken[0].Subject == u.Subject {
			return name, nil
		}
	}
	return "", fmt.Errorf("every username tried for %s is taken (%s…)", u.Subject, base)
}
