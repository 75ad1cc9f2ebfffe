package op

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/bolt"
	"github.com/dingbridge/dingbridge/upstream"
)

func TestPinyinUsernames(t *testing.T) {
	for name, want := range map[string]string{
		"张三":         "zhangsan",
		"李四-Bob":     "lisi-bob", // what Gitea refused as preferred_username
		"王五 (市场部)":   "wangwu.shichangbu",
		"Bob Smith":  "bob.smith",
		"吕布":         "lvbu",
		"  欧阳-娜娜__ ": "ouyang-nana",
		"Zoë_Zhang.": "zo_zhang",
		"🙂":          "user-" + usernameSuffix("u1", 6),
		"":           "user-" + usernameSuffix("u1", 6),
		"一二三四五六七八九十一二三四五六七": "yiersansiwuliuqibajiushiyiersansiwuliuqi",
	} {
		got := pinyinUsername(name, "u1")
		if got != want {
			t.Errorf("pinyinUsername(%q) = %q, want %q", name, got, want)
		}
		if len(got) > maxUsername || asUsername(got) != got {
			t.Errorf("pinyinUsername(%q) = %q is not a valid username", name, got)
		}
	}
}

func TestPreferredUsernameSources(t *testing.T) {
	u := storage.User{Nick: "张三", UserID: "Zhang.San01", OrgEmail: "san.zhang@corp.example.com", Email: "me@example.com", UnionID: "u1"}
	for source, want := range map[string]string{
		"":                 "zhangsan",
		UsernamePinyin:     "zhangsan",
		UsernameNick:       "张三",
		UsernameUserID:     "zhang.san01",
		UsernameEmailLocal: "san.zhang", // the organisation's address, never the personal one
	} {
		if got := (ClaimsPolicy{PreferredUsername: source}).preferredUsername(u); got != want {
			t.Errorf("preferredUsername with %q = %q, want %q", source, got, want)
		}
	}
	// Without a staff id or organisation address, the pinyin name.
	bare := storage.User{Nick: "李四", UnionID: "u2"}
	for _, source := range []string{UsernameUserID, UsernameEmailLocal} {
		if got := (ClaimsPolicy{PreferredUsername: source}).preferredUsername(bare); got != "lisi" {
			t.Errorf("preferredUsername with %q and no value = %q, want lisi", source, got)
		}
	}
	// A username chosen at login is kept, whatever the nick becomes.
	u.Username, u.Nick = "zhangsan-abcd", "张三丰"
	if got := (ClaimsPolicy{}).preferredUsername(u); got != "zhangsan-abcd" {
		t.Errorf("stored username: got %q", got)
	}
}

func TestUsernameClashGetsAStableSuffix(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	p := &Provider{store: store}
	p.current.Store(&settings{claims: ClaimsPolicy{PreferredUsername: UsernamePinyin}})
	ctx := t.Context()
	choose := func(subject, unionID string) string {
		t.Helper()
		name, err := p.chooseUsername(ctx, storage.User{Subject: subject, UnionID: unionID, Nick: "张三"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = store.UpsertUser(ctx, subject, func(u storage.User, _ bool) (storage.User, error) {
			u.UnionID, u.Username = unionID, name
			return u, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return name
	}
	if first := choose("s1", "union-1"); first != "zhangsan" {
		t.Errorf("first 张三: %q, want zhangsan", first)
	}
	second := choose("s2", "union-2")
	if want := "zhangsan-" + usernameSuffix("union-2", 4); second != want {
		t.Errorf("second 张三: %q, want %q (a suffix from the unionid)", second, want)
	}
	// Asked again, the same person gets the same name: their own record does not clash.
	if again, _ := p.chooseUsername(ctx, storage.User{Subject: "s1", UnionID: "union-1", Nick: "张三"}); again != "zhangsan" {
		t.Errorf("the first 张三 asked again: %q", again)
	}
}

// A provisioned record is matched only on what DingTalk vouches for: the
// profile's own email address is not among it.
func TestVouchedKeysLeaveOutThePersonalEmail(t *testing.T) {
	keys := vouchedKeys(upstream.Identity{
		UnionID: "u1", UserID: "zhangsan", CorpID: "dingcorp", Phone: "+8613800138000",
		Email: "me@gmail.example", OrgEmail: "zhangsan@corp.example.com", DirectoryEmail: "z.san@corp.example.com",
	})
	want := []storage.UserKey{{UserID: "zhangsan", CorpID: "dingcorp"}, {Phone: "+8613800138000"},
		{Email: "zhangsan@corp.example.com"}, {Email: "z.san@corp.example.com"}}
	if !slices.Equal(keys, want) {
		t.Errorf("vouchedKeys = %v, want %v", keys, want)
	}
	if got := vouchedKeys(upstream.Identity{UnionID: "u2", Email: "me@gmail.example"}); len(got) != 0 {
		t.Errorf("a person with only a personal email: %v, want no key", got)
	}
}
