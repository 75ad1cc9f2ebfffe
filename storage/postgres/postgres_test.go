package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/postgres/postgrestest"
	"github.com/dingbridge/dingbridge/storage/storagetest"
)

// openTest opens a storage on dsn and closes it when t ends.
func openTest(t *testing.T, dsn string, opts Options) *Storage {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	opts.DSN = dsn
	if opts.MaxConns == 0 {
		opts.MaxConns = 8
	}
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return openTest(t, postgrestest.DSN(t), Options{})
	})
}

func TestLimits(t *testing.T) {
	storagetest.RunLimits(t, func(t *testing.T, limits storage.Limits) storage.Storage {
		return openTest(t, postgrestest.DSN(t), Options{Limits: limits})
	})
}

// Two Storage instances on one schema are two replicas: separate pools,
// separate server connections, nothing shared in this process.
func TestReplicas(t *testing.T) {
	storagetest.RunReplicas(t, func(t *testing.T) (storage.Storage, storage.Storage) {
		dsn := postgrestest.DSN(t)
		return openTest(t, dsn, Options{}), openTest(t, dsn, Options{})
	})
}
