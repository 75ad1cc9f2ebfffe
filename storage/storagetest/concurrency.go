package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/dingbridge/dingbridge/storage"
)

// racers is how many goroutines compete in each test; run the suite with -race.
const racers = 20

// race runs fn(i) for i in [0, racers) in as many goroutines, released together.
func race(fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// winners returns the indexes of nil errors and fails the test unless every other
// error is lose.
func winners(t *testing.T, errs []error, lose error) []int {
	t.Helper()
	var won []int
	for i, err := range errs {
		switch {
		case err == nil:
			won = append(won, i)
		case !errors.Is(err, lose):
			t.Errorf("racer %d: error %v, want nil or %v", i, err, lose)
		}
	}
	return won
}

func concurrencyTests() []test {
	return []test{
		{"one of many concurrent claims of a code wins", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateAuthCode(ctx, authCode("code1", live())))
			codes := make([]storage.AuthCode, racers)
			errs := make([]error, racers)
			race(func(i int) { codes[i], errs[i] = s.ClaimAuthCode(ctx, "code1") })
			won := winners(t, errs, storage.ErrAlreadyUsed)
			if len(won) != 1 {
				t.Fatalf("%d claims won, want 1", len(won))
			}
			for i, c := range codes {
				// Every loser sees the claim the winner made.
				equal(t, fmt.Sprintf("code seen by racer %d", i), c, codes[won[0]])
			}
		}},
		{"one of many concurrent consumers of an upstream state wins", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateUpstreamState(ctx, upstreamState("st1", live())))
			errs := make([]error, racers)
			race(func(i int) { _, errs[i] = s.ConsumeUpstreamState(ctx, "st1") })
			if won := winners(t, errs, storage.ErrNotFound); len(won) != 1 {
				t.Fatalf("%d consumers won, want 1", len(won))
			}
		}},
		{"one of many concurrent rotations of a refresh token wins", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.IssueTokens(ctx, accessToken("at", "g1", live()), refreshToken("rt", "g1", live()), storage.Rotation{}))
			errs := make([]error, racers)
			race(func(i int) {
				errs[i] = s.IssueTokens(ctx,
					accessToken(fmt.Sprint("at-", i), "g1", live()),
					refreshToken(fmt.Sprint("rt-", i), "g1", live()), storage.Rotation{ID: "rt"})
			})
			won := winners(t, errs, storage.ErrAlreadyUsed)
			if len(won) != 1 {
				t.Fatalf("%d rotations won, want 1", len(won))
			}
			for i := range racers {
				at, rt := []string{fmt.Sprint("at-", i)}, []string{fmt.Sprint("rt-", i)}
				if i == won[0] {
					present(t, s, at, rt)
				} else {
					absent(t, s, at, rt)
				}
			}
		}},
		{"concurrent upserts of one user lose no update", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			seen := make([]int, racers)
			errs := make([]error, racers)
			race(func(i int) {
				var u storage.User
				u, errs[i] = s.UpsertUser(ctx, "union-1", func(old storage.User, _ bool) (storage.User, error) {
					old.Subject = "union-1"
					old.Nick += "x"
					return old, nil
				})
				seen[i] = len(u.Nick)
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("racer %d: %v", i, err)
				}
			}
			u, err := s.GetUser(ctx, "union-1")
			must(t, err)
			if len(u.Nick) != racers {
				t.Errorf("Nick has %d marks after %d upserts", len(u.Nick), racers)
			}
			// Each upsert built on the one before it, so each returned a different length.
			slices.Sort(seen)
			for i, n := range seen {
				if n != i+1 {
					t.Fatalf("upserts returned Nick lengths %v, want 1 to %d once each", seen, racers)
				}
			}
		}},
		{"concurrent key set updates lose no update", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			errs := make([]error, racers)
			race(func(i int) {
				errs[i] = s.UpdateKeySet(ctx, func(ks storage.KeySet) (storage.KeySet, error) {
					ks.Version++
					return ks, nil
				})
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("racer %d: %v", i, err)
				}
			}
			ks, err := s.GetKeySet(ctx)
			must(t, err)
			if ks.Version != racers {
				t.Errorf("Version = %d after %d updates", ks.Version, racers)
			}
		}},
	}
}
