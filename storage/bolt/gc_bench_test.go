package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// BenchmarkGarbageCollectIdle is the sweeper's minute on a server at rest: 100,000
// live tokens (50,000 logins' access and refresh tokens) and nothing expired.
// What a sweep costs then is overhead, paid every minute forever.
func BenchmarkGarbageCollectIdle(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	seedTokens(b, s, 50_000, time.Now().Add(time.Hour))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := s.GarbageCollect(ctx, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if !r.IsZero() {
			b.Fatalf("removed %+v from live records", r)
		}
	}
}

// BenchmarkGarbageCollectExpired sweeps 1,000 expired logins' tokens out of
// 100,000 stored: the cost of a sweep that has work to do.
func BenchmarkGarbageCollectExpired(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	seedTokens(b, s, 49_000, time.Now().Add(time.Hour))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		soon := time.Now().Add(time.Millisecond)
		seedTokens(b, s, 1_000, soon)
		time.Sleep(time.Until(soon))
		b.StartTimer()
		r, err := s.GarbageCollect(ctx, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if r.AccessTokens != 1000 || r.RefreshTokens != 1000 {
			b.Fatalf("removed %+v, want 1000 of each token", r)
		}
	}
}

// seedTokens issues logins' access and refresh tokens expiring at expiry, from
// a few goroutines so batches fill.
func seedTokens(b *testing.B, s *Storage, logins int, expiry time.Time) {
	b.Helper()
	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < logins; i += workers {
				a, r := benchTokens(fmt.Sprintf("grant-%d-%d", expiry.UnixNano(), i))
				a.Expiry, r.Expiry = expiry, expiry
				if err := s.IssueTokens(context.Background(), a, r, storage.Rotation{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
