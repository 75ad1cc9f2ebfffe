package storagetest

import (
	"errors"
	"testing"

	"github.com/dingbridge/dingbridge/storage"
)

func findUserTests() []test {
	store := func(t *testing.T, s storage.Storage, u storage.User) {
		t.Helper()
		_, err := s.UpsertUser(t.Context(), u.Subject, func(storage.User, bool) (storage.User, error) { return u, nil })
		must(t, err)
	}
	find := func(t *testing.T, s storage.Storage, k storage.UserKey) []string {
		t.Helper()
		users, err := s.FindUsers(t.Context(), k)
		must(t, err)
		subjects := []string{}
		for _, u := range users {
			subjects = append(subjects, u.Subject)
		}
		return subjects
	}
	return []test{
		{"finds a user by each key it has", func(t *testing.T, s storage.Storage) {
			u := user("union-1")
			u.Username = "zhangsan"
			store(t, s, u)
			for _, k := range []storage.UserKey{
				{UnionID: u.UnionID},
				{UserID: u.UserID, CorpID: u.CorpID},
				{Phone: u.Phone},
				{Email: u.Email},
				{Email: "ZhangSan@Corp.Example.com"}, // the org email, in another case
				{Username: "zhangsan"},
			} {
				users, err := s.FindUsers(t.Context(), k)
				must(t, err)
				if len(users) != 1 {
					t.Fatalf("%v finds %d users, want 1", k, len(users))
				}
				equal(t, "user found by "+k.String(), users[0], u)
			}
		}},
		{"unknown values find nobody", func(t *testing.T, s storage.Storage) {
			store(t, s, user("union-1"))
			for _, k := range []storage.UserKey{
				{UnionID: "union-2"},
				{UserID: "staff-42", CorpID: "another-corp"}, // a staff id is unique within its organisation only
				{Phone: "+8613900139000"},
				{Email: "nobody@example.com"},
				{Username: "lisi"},
			} {
				if got := find(t, s, k); len(got) != 0 {
					t.Errorf("%v finds %v, want nobody", k, got)
				}
			}
		}},
		{"several users sharing a value are all found, by subject", func(t *testing.T, s storage.Storage) {
			for _, sub := range []string{"union-c", "union-a", "union-b"} {
				store(t, s, user(sub)) // the same phone, email and staff id
			}
			if got := find(t, s, storage.UserKey{Phone: "+8613800138000"}); !equalStrings(got, []string{"union-a", "union-b", "union-c"}) {
				t.Errorf("phone finds %v, want union-a, union-b, union-c", got)
			}
		}},
		{"a changed value is found by its new value only", func(t *testing.T, s storage.Storage) {
			u := user("union-1")
			store(t, s, u)
			_, err := s.UpsertUser(t.Context(), u.Subject, func(old storage.User, _ bool) (storage.User, error) {
				old.Phone, old.Email, old.OrgEmail, old.UserID = "+8613900139000", "new@example.com", "", ""
				return old, nil
			})
			must(t, err)
			for k, want := range map[storage.UserKey]int{
				{Phone: u.Phone}:                     0,
				{Phone: "+8613900139000"}:            1,
				{Email: u.Email}:                     0,
				{Email: u.OrgEmail}:                  0,
				{Email: "new@example.com"}:           1,
				{UserID: u.UserID, CorpID: u.CorpID}: 0,
				{UnionID: u.UnionID}:                 1,
			} {
				if got := find(t, s, k); len(got) != want {
					t.Errorf("%v finds %v, want %d user(s)", k, got, want)
				}
			}
		}},
		{"a refused update leaves the index as it was", func(t *testing.T, s storage.Storage) {
			u := user("union-1")
			store(t, s, u)
			refused := errors.New("refused")
			_, err := s.UpsertUser(t.Context(), u.Subject, func(old storage.User, _ bool) (storage.User, error) {
				old.Phone = "+8613900139000"
				return old, refused
			})
			wantErr(t, err, refused)
			if got := find(t, s, storage.UserKey{Phone: u.Phone}); len(got) != 1 {
				t.Errorf("the old phone finds %v after a refused update, want the user", got)
			}
			if got := find(t, s, storage.UserKey{Phone: "+8613900139000"}); len(got) != 0 {
				t.Errorf("the refused phone finds %v", got)
			}
		}},
		{"a provisioned user without unionid is found by what was given", func(t *testing.T, s storage.Storage) {
			u := storage.User{Subject: "zhang.san", Phone: "+8613800138000", ProvisionedAt: now()}
			store(t, s, u)
			users, err := s.FindUsers(t.Context(), storage.UserKey{Phone: "+8613800138000"})
			must(t, err)
			if len(users) != 1 {
				t.Fatalf("found %d users, want 1", len(users))
			}
			equal(t, "provisioned user", users[0], u)
		}},
		{"sessions of a person are their live sessions only", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			mine, other, gone := session("s1", live()), session("s2", live()), session("s3", past())
			other.Subject = "union-456"
			for _, sess := range []storage.Session{mine, other, gone} {
				must(t, s.CreateSession(ctx, sess))
			}
			got, err := s.SessionsOf(ctx, "union-123")
			must(t, err)
			if len(got) != 1 {
				t.Fatalf("SessionsOf found %d sessions, want the one live session of union-123", len(got))
			}
			equal(t, "session", got[0], mine)
			if got, err := s.SessionsOf(ctx, "nobody"); err != nil || len(got) != 0 {
				t.Errorf("SessionsOf(nobody) = %v, %v; want none", got, err)
			}
		}},
		{"a key with no value, or with two, is refused", func(t *testing.T, s storage.Storage) {
			for _, k := range []storage.UserKey{
				{},
				{UnionID: "union-1", Phone: "+8613800138000"},
				{UserID: "staff-42"}, // without its organisation
				{CorpID: "ding0123456789"},
			} {
				_, err := s.FindUsers(t.Context(), k)
				if !errors.Is(err, storage.ErrInvalidKey) {
					t.Errorf("FindUsers(%+v) = %v, want ErrInvalidKey", k, err)
				}
			}
		}},
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
