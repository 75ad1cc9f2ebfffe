package op

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage/bolt"
)

// Two replicas on one store: only the lease holder does the work, and the other
// takes over once the holder stops renewing.
func TestHousekeepingRunsOnOneReplicaAtATime(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	var mu sync.Mutex
	runs := map[string]int{}
	replica := func(ctx context.Context, name string) *sync.WaitGroup {
		p := &Provider{store: store, replicaID: name, log: slog.New(slog.DiscardHandler)}
		var wg sync.WaitGroup
		wg.Go(func() {
			p.underLease(ctx, leaseSweeper, 20*time.Millisecond, true, func(context.Context) {
				mu.Lock()
				runs[name]++
				mu.Unlock()
			})
		})
		return &wg
	}
	count := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return runs[name]
	}

	ctxA, stopA := context.WithCancel(t.Context())
	doneA := replica(ctxA, "a")
	waitFor(t, "a to run", func() bool { return count("a") > 0 })
	ctxB, stopB := context.WithCancel(t.Context())
	defer stopB()
	doneB := replica(ctxB, "b")
	waitFor(t, "a to run 5 times", func() bool { return count("a") >= 5 })
	if n := count("b"); n != 0 {
		t.Fatalf("b ran %d times while a held the lease", n)
	}
	stopA()
	doneA.Wait()
	// a's lease lapses leaseTerms intervals after its last renewal.
	waitFor(t, "b to take over", func() bool { return count("b") > 0 })
	stopB()
	doneB.Wait()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
