package op

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
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
