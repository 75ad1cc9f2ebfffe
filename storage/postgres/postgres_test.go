package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/postgres/postgrestest"
	"github.com/dingbridge/dingbridge/storage/storagetest"
)

// openTest opens a storage on a fresh schema and closes it when t ends.
func openTest(t *testing.T, dsn string) *Storage {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := Open(ctx, Options{DSN: dsn, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type oldContract struct{ *Storage }

func (o oldContract) RevokeGrant(ctx context.Context, g string) error {
	return o.Storage.RevokeGrant(ctx, g, time.Time{})
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return oldContract{openTest(t, postgrestest.DSN(t))}
	})
}
