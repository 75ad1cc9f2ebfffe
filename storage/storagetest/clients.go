package storagetest

import (
	"cmp"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

func clientTests() []test {
	return []test{
		{"created clients read back with every field", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			for _, c := range []storage.Client{client("grafana"), publicClient("cli")} {
				must(t, s.CreateClient(ctx, c))
				got, err := s.GetClient(ctx, c.ID)
				must(t, err)
				equal(t, "client", got, c)
			}
		}},
		{"creating an existing ID is ErrAlreadyExists and keeps the first", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			first := client("grafana")
			must(t, s.CreateClient(ctx, first))
			second := client("grafana")
			second.Name = "impostor"
			wantErr(t, s.CreateClient(ctx, second), storage.ErrAlreadyExists)
			got, err := s.GetClient(ctx, "grafana")
			must(t, err)
			equal(t, "client", got, first)
		}},
		{"unknown client is ErrNotFound", func(t *testing.T, s storage.Storage) {
			_, err := s.GetClient(t.Context(), "nobody")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"list is empty at first and then returns every client", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			got, err := s.ListClients(ctx)
			must(t, err)
			if len(got) != 0 {
				t.Fatalf("empty storage lists %d clients", len(got))
			}
			want := []storage.Client{client("c"), publicClient("a"), client("b")}
			for _, c := range want {
				must(t, s.CreateClient(ctx, c))
			}
			got, err = s.ListClients(ctx)
			must(t, err)
			byID := func(a, b storage.Client) int { return cmp.Compare(a.ID, b.ID) }
			slices.SortFunc(got, byID)
			slices.SortFunc(want, byID)
			equal(t, "clients", got, want)
		}},
		{"update stores what the callback returns", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			c := client("grafana")
			must(t, s.CreateClient(ctx, c))
			want := c
			want.Name = "Grafana prod"
			want.RedirectURIs = []string{"https://grafana.example.org/cb"}
			want.UpdatedAt = now().Add(time.Minute)
			must(t, s.UpdateClient(ctx, "grafana", func(old storage.Client) (storage.Client, error) {
				equal(t, "client given to update", old, c)
				return want, nil
			}))
			got, err := s.GetClient(ctx, "grafana")
			must(t, err)
			equal(t, "client", got, want)
		}},
		{"update callback error is returned and nothing is stored", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			c := client("grafana")
			must(t, s.CreateClient(ctx, c))
			refused := errors.New("refused")
			err := s.UpdateClient(ctx, "grafana", func(old storage.Client) (storage.Client, error) {
				old.Name = "changed"
				return old, refused
			})
			wantErr(t, err, refused)
			got, err := s.GetClient(ctx, "grafana")
			must(t, err)
			equal(t, "client", got, c)
		}},
		{"update may not change the ID", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			c := client("grafana")
			must(t, s.CreateClient(ctx, c))
			err := s.UpdateClient(ctx, "grafana", func(old storage.Client) (storage.Client, error) {
				old.ID = "other"
				return old, nil
			})
			if err == nil {
				t.Fatal("update changing the ID succeeded")
			}
			_, err = s.GetClient(ctx, "other")
			wantErr(t, err, storage.ErrNotFound)
			got, err := s.GetClient(ctx, "grafana")
			must(t, err)
			equal(t, "client", got, c)
		}},
		{"update of an unknown client is ErrNotFound", func(t *testing.T, s storage.Storage) {
			called := false
			err := s.UpdateClient(t.Context(), "nobody", func(c storage.Client) (storage.Client, error) {
				called = true
				return c, nil
			})
			wantErr(t, err, storage.ErrNotFound)
			if called {
				t.Error("update callback called for an unknown client")
			}
		}},
		{"deleted client is gone", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateClient(ctx, client("grafana")))
			must(t, s.CreateClient(ctx, client("other")))
			must(t, s.DeleteClient(ctx, "grafana"))
			_, err := s.GetClient(ctx, "grafana")
			wantErr(t, err, storage.ErrNotFound)
			wantErr(t, s.DeleteClient(ctx, "grafana"), storage.ErrNotFound)
			if _, err := s.GetClient(ctx, "other"); err != nil {
				t.Fatalf("deleting one client touched another: %v", err)
			}
		}},
		{"delete of an unknown client is ErrNotFound", func(t *testing.T, s storage.Storage) {
			wantErr(t, s.DeleteClient(t.Context(), "nobody"), storage.ErrNotFound)
		}},
		{"stored client does not share slices with the caller", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			c := client("grafana")
			want := normalize(c) // a deep copy
			must(t, s.CreateClient(ctx, c))
			c.RedirectURIs[0] = "https://evil.example.com/"
			got, err := s.GetClient(ctx, "grafana")
			must(t, err)
			equal(t, "client", got, want)
			got.RedirectURIs[0] = "https://evil.example.com/"
			again, err := s.GetClient(ctx, "grafana")
			must(t, err)
			equal(t, "client", again, want)
		}},
	}
}
