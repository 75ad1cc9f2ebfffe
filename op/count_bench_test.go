package op_test

import (
	"context"
	"testing"
)

// storedAuthRequests counts the pending auth requests the storage holds.
func storedAuthRequests(t testing.TB, e *env) int {
	c, err := e.store.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c.AuthRequests
}
