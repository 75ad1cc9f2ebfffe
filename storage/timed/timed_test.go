package timed_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/bolt"
	"github.com/dingbridge/dingbridge/storage/storagetest"
	"github.com/dingbridge/dingbridge/storage/timed"
)

// recorder remembers every call it is told about.
type recorder struct {
	mu    sync.Mutex
	calls map[string]int
	errs  map[string][]error
}

func (r *recorder) StorageOperation(op string, took time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if took < 0 {
		panic("negative duration")
	}
	r.calls[op]++
	if err != nil {
		r.errs[op] = append(r.errs[op], err)
	}
}

func newRecorder() *recorder {
	return &recorder{calls: map[string]int{}, errs: map[string][]error{}}
}

func openBolt(t *testing.T) storage.Storage {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The wrapper changes no behaviour: it passes the whole conformance suite, and
// it saw the suite's calls.
func TestConformance(t *testing.T) {
	rec := newRecorder()
	storagetest.Run(t, func(t *testing.T) storage.Storage { return timed.New(openBolt(t), rec) })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, op := range []string{"CreateClient", "GetAuthRequest", "IssueTokens", "ClaimAuthCode", "GarbageCollect"} {
		if rec.calls[op] == 0 {
			t.Errorf("no %s call observed; observed %v", op, rec.calls)
		}
	}
}

// Each call is reported once under its method's name, with its error.
func TestReportsEachCallWithItsError(t *testing.T) {
	rec := newRecorder()
	s := timed.New(openBolt(t), rec)
	ctx := context.Background()
	if _, err := s.GetClient(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetClient of a missing client: %v, want ErrNotFound", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if rec.calls["GetClient"] != 1 || rec.calls["Ping"] != 1 || len(rec.calls) != 2 {
		t.Errorf("calls %v, want GetClient and Ping once each", rec.calls)
	}
	if errs := rec.errs["GetClient"]; len(errs) != 1 || !errors.Is(errs[0], storage.ErrNotFound) {
		t.Errorf("GetClient errors %v, want one ErrNotFound", errs)
	}
	if len(rec.errs["Ping"]) != 0 {
		t.Errorf("Ping reported errors %v", rec.errs["Ping"])
	}
}
