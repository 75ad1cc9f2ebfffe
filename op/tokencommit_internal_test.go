package op

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// zitadel cancels the context it hands to storage when its handler returns
// (the device grant's is a context.WithTimeout); the tokens' commit, still
// running then, must not be cancelled with it.
func TestTheTokenCommitOutlivesZitadelsContext(t *testing.T) {
	release := make(chan struct{})
	var commitErr error
	zitadel := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		err := commitTokens(ctx, func(ctx context.Context) error {
			<-release
			commitErr = ctx.Err()
			return commitErr
		})
		if err != nil {
			t.Errorf("commitTokens: %v", err)
		}
		cancel()
		close(release) // the commit goes on only after zitadel's context is gone
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"a"}`))
	})
	rec := httptest.NewRecorder()
	answerAfterCommit(slog.New(slog.DiscardHandler), zitadel).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/oauth/token", nil))
	if commitErr != nil {
		t.Fatalf("the commit ran under a cancelled context: %v", commitErr)
	}
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "access_token") {
		t.Fatalf("answer %d %q, want zitadel's 200", rec.Code, rec.Body)
	}
}

// A commit that fails turns zitadel's success into the commit's error; a
// second commit in one request runs at once, before commitTokens returns.
func TestAFailedTokenCommitIsTheAnswer(t *testing.T) {
	second := false
	zitadel := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = commitTokens(r.Context(), func(context.Context) error { return errors.New("disk full") })
		if err := commitTokens(r.Context(), func(context.Context) error { second = true; return nil }); err != nil || !second {
			t.Errorf("second commit: ran %v, err %v; want it run before commitTokens returns", second, err)
		}
		_, _ = w.Write([]byte(`{"access_token":"a"}`))
	})
	rec := httptest.NewRecorder()
	answerAfterCommit(slog.New(slog.DiscardHandler), zitadel).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/oauth/token", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"server_error"`) || strings.Contains(rec.Body.String(), "access_token") {
		t.Fatalf("answer %d %q, want a server_error without the tokens", rec.Code, rec.Body)
	}
}

// With as many token requests in flight as there are CPUs, the next one's
// commit runs in line: no CPU is left for the overlap to use.
func TestABusyTokenEndpointCommitsInLine(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	release := make(chan struct{})
	started := make(chan struct{}, procs)
	var inLine []bool
	var mu sync.Mutex
	zitadel := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var finished atomic.Bool
		_ = commitTokens(r.Context(), func(context.Context) error {
			if r.Header.Get("X-Hold") != "" {
				started <- struct{}{}
				<-release
			}
			finished.Store(true)
			return nil
		})
		mu.Lock()
		inLine = append(inLine, finished.Load()) // a held commit cannot have finished yet
		mu.Unlock()
		_, _ = w.Write([]byte(`{}`))
	})
	h := answerAfterCommit(slog.New(slog.DiscardHandler), zitadel)
	var wg sync.WaitGroup
	for range procs {
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", nil)
		req.Header.Set("X-Hold", "1")
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), req) })
	}
	for range procs {
		<-started // every one of them is in flight, its commit running
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/oauth/token", nil))
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	// The held requests answered commitTokens first (their commits went on
	// in the background), the one beyond them last.
	if len(inLine) != procs+1 || !inLine[procs] {
		t.Fatalf("commits in line %v: want the request beyond %d in flight to commit in line", inLine, procs)
	}
	for i, ran := range inLine[:procs] {
		if ran {
			t.Errorf("request %d of those in flight committed in line; want it overlapped while the endpoint had CPUs to spare", i)
		}
	}
}
