package storagetest

import (
	"errors"
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

// concurrencyTests are the races of one instance: every race of RunReplicas
// with both replicas the same instance (so a backend that one process at a
// time can open runs them too), and the ones only one instance has.
func concurrencyTests() []test {
	var tests []test
	for _, rt := range replicaTests() {
		tests = append(tests, test{"one instance: " + rt.name, func(t *testing.T, s storage.Storage) { rt.run(t, s, s) }})
	}
	return append(tests, []test{
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
	}...)
}
