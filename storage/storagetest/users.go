package storagetest

import (
	"cmp"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

func userTests() []test {
	return []test{
		{"first upsert sees no user and creates one", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			u := user("union-1")
			got, err := s.UpsertUser(ctx, "union-1", func(old storage.User, found bool) (storage.User, error) {
				if found {
					t.Error("found = true for a new user")
				}
				equal(t, "user given to update", old, storage.User{})
				return u, nil
			})
			must(t, err)
			equal(t, "upserted user", got, u)
			stored, err := s.GetUser(ctx, "union-1")
			must(t, err)
			equal(t, "stored user", stored, u)
		}},
		{"upsert sees the stored user and keeps what the callback keeps", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			u := user("union-1")
			_, err := s.UpsertUser(ctx, "union-1", func(storage.User, bool) (storage.User, error) { return u, nil })
			must(t, err)
			later := now().Add(time.Hour)
			got, err := s.UpsertUser(ctx, "union-1", func(old storage.User, found bool) (storage.User, error) {
				if !found {
					t.Error("found = false for a stored user")
				}
				equal(t, "user given to update", old, u)
				old.Nick, old.LastLogin = "李四", later
				return old, nil
			})
			must(t, err)
			want := u
			want.Nick, want.LastLogin = "李四", later
			equal(t, "upserted user", got, want)
			stored, err := s.GetUser(ctx, "union-1")
			must(t, err)
			equal(t, "stored user", stored, want)
		}},
		{"user is stored under the subject argument", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			got, err := s.UpsertUser(ctx, "union-1", func(storage.User, bool) (storage.User, error) {
				return storage.User{Nick: "no subject set"}, nil
			})
			must(t, err)
			if got.Subject != "union-1" {
				t.Errorf("returned Subject = %q, want union-1", got.Subject)
			}
			stored, err := s.GetUser(ctx, "union-1")
			must(t, err)
			if stored.Subject != "union-1" || stored.Nick != "no subject set" {
				t.Errorf("stored user = %+v", stored)
			}
		}},
		{"upsert may not change the subject", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			_, err := s.UpsertUser(ctx, "union-1", func(storage.User, bool) (storage.User, error) {
				return user("union-2"), nil
			})
			if err == nil {
				t.Fatal("upsert storing another subject succeeded")
			}
			for _, sub := range []string{"union-1", "union-2"} {
				_, err := s.GetUser(ctx, sub)
				wantErr(t, err, storage.ErrNotFound)
			}
		}},
		{"upsert callback error is returned and nothing is stored", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			refused := errors.New("refused")
			_, err := s.UpsertUser(ctx, "union-1", func(storage.User, bool) (storage.User, error) {
				return user("union-1"), refused
			})
			wantErr(t, err, refused)
			_, err = s.GetUser(ctx, "union-1")
			wantErr(t, err, storage.ErrNotFound)

			u := user("union-1")
			_, err = s.UpsertUser(ctx, "union-1", func(storage.User, bool) (storage.User, error) { return u, nil })
			must(t, err)
			_, err = s.UpsertUser(ctx, "union-1", func(old storage.User, _ bool) (storage.User, error) {
				old.Disabled = false
				return old, refused
			})
			wantErr(t, err, refused)
			stored, err := s.GetUser(ctx, "union-1")
			must(t, err)
			equal(t, "stored user", stored, u)
		}},
		{"unknown user is ErrNotFound", func(t *testing.T, s storage.Storage) {
			_, err := s.GetUser(t.Context(), "nobody")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"list is empty at first and then returns every user", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			got, err := s.ListUsers(ctx)
			must(t, err)
			if len(got) != 0 {
				t.Fatalf("empty storage lists %d users", len(got))
			}
			want := []storage.User{user("union-b"), user("union-a"), user("union-c")}
			for _, u := range want {
				_, err := s.UpsertUser(ctx, u.Subject, func(storage.User, bool) (storage.User, error) { return u, nil })
				must(t, err)
			}
			got, err = s.ListUsers(ctx)
			must(t, err)
			bySubject := func(a, b storage.User) int { return cmp.Compare(a.Subject, b.Subject) }
			slices.SortFunc(got, bySubject)
			slices.SortFunc(want, bySubject)
			equal(t, "users", got, want)
		}},
	}
}

func keySetTests() []test {
	return []test{
		{"empty storage has a zero key set", func(t *testing.T, s storage.Storage) {
			ks, err := s.GetKeySet(t.Context())
			must(t, err)
			equal(t, "key set", ks, storage.KeySet{})
		}},
		{"update stores the set with every field", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			want := keySet()
			must(t, s.UpdateKeySet(ctx, func(old storage.KeySet) (storage.KeySet, error) {
				equal(t, "key set given to update", old, storage.KeySet{})
				return want, nil
			}))
			got, err := s.GetKeySet(ctx)
			must(t, err)
			equal(t, "key set", got, want)
		}},
		{"update sees the stored set", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			first := keySet()
			must(t, s.UpdateKeySet(ctx, func(storage.KeySet) (storage.KeySet, error) { return first, nil }))
			must(t, s.UpdateKeySet(ctx, func(old storage.KeySet) (storage.KeySet, error) {
				equal(t, "key set given to update", old, first)
				old.SigningKeys = old.SigningKeys[1:]
				old.Version++
				return old, nil
			}))
			got, err := s.GetKeySet(ctx)
			must(t, err)
			want := first
			want.SigningKeys, want.Version = first.SigningKeys[1:], first.Version+1
			equal(t, "key set", got, want)
		}},
		{"update error is returned and nothing is stored", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			first := keySet()
			must(t, s.UpdateKeySet(ctx, func(storage.KeySet) (storage.KeySet, error) { return first, nil }))
			refused := errors.New("refused")
			err := s.UpdateKeySet(ctx, func(old storage.KeySet) (storage.KeySet, error) {
				return storage.KeySet{Version: 99}, refused
			})
			wantErr(t, err, refused)
			got, err := s.GetKeySet(ctx)
			must(t, err)
			equal(t, "key set", got, first)
		}},
	}
}
