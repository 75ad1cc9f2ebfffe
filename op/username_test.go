package op

import (
	"testing"

	"github.com/dingbridge/dingbridge/storage"
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
