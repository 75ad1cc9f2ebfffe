package storagetest

import (
	"context"
	"errors"
	"testing"

	"github.com/dingbridge/dingbridge/storage"
)

func storageTests() []test {
	return []test{
		{"ping succeeds", func(t *testing.T, s storage.Storage) {
			must(t, s.Ping(t.Context()))
		}},
		{"a cancelled context changes nothing or completes", func(t *testing.T, s storage.Storage) {
			cancelled, cancel := context.WithCancel(t.Context())
			cancel()
			ctx := t.Context()

			err := s.CreateClient(cancelled, client("grafana"))
			_, getErr := s.GetClient(ctx, "grafana")
			checkCancelled(t, "CreateClient", err, getErr)

			err = s.IssueTokens(cancelled, accessToken("at1", "g1", live()), refreshToken("rt1", "g1", live()), storage.Rotation{})
			_, getErr = s.GetRefreshToken(ctx, "rt1")
			checkCancelled(t, "IssueTokens", err, getErr)

			_, err = s.UpsertUser(cancelled, "union-1", func(storage.User, bool) (storage.User, error) { return user("union-1"), nil })
			_, getErr = s.GetUser(ctx, "union-1")
			checkCancelled(t, "UpsertUser", err, getErr)
		}},
	}
}

// checkCancelled: err is what a write returned under a cancelled context, getErr
// what reading the record back afterwards returned.
func checkCancelled(t *testing.T, call string, err, getErr error) {
	t.Helper()
	switch {
	case err == nil && getErr != nil:
		t.Errorf("%s succeeded but stored nothing: %v", call, getErr)
	case err != nil && !errors.Is(err, context.Canceled):
		t.Errorf("%s: error %v, want one wrapping context.Canceled", call, err)
	case err != nil && !errors.Is(getErr, storage.ErrNotFound):
		t.Errorf("%s failed but stored the record anyway (read back: %v)", call, getErr)
	}
}
