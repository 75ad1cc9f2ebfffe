package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dingbridge/dingbridge/storage/postgres/postgrestest"
)

func TestMigrationFiles(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || SchemaVersion() != len(ms) {
		t.Fatalf("%d migrations, SchemaVersion %d", len(ms), SchemaVersion())
	}
}

// exec runs sql on dsn outside any Storage.
func exec(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// Replicas starting together on an empty database: every one opens, and the
// schema is migrated once.
func TestReplicasStartingTogetherMigrateOnce(t *testing.T) {
	dsn := postgrestest.DSN(t)
	const replicas = 4
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			s, err := Open(t.Context(), Options{DSN: dsn, MaxConns: 2})
			if err == nil {
				_ = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n, v int
	if err := conn.QueryRow(t.Context(), "SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() || v != SchemaVersion() {
		t.Errorf("schema_migrations has %d rows up to version %d, want each of the %d migrations once", n, v, SchemaVersion())
	}
	// And a later start finds nothing to do.
	applied, err := Migrate(t.Context(), dsn)
	if err != nil || len(applied) != 0 {
		t.Errorf("Migrate of a current database applied %v (%v), want nothing", applied, err)
	}
}

func TestMigrateAppliesEveryMigrationToAnEmptyDatabase(t *testing.T) {
	dsn := postgrestest.DSN(t)
	applied, err := Migrate(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != SchemaVersion() || applied[0] != 1 {
		t.Errorf("applied %v, want 1 to %d", applied, SchemaVersion())
	}
	// The flow tables are UNLOGGED, the durable ones are not.
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for table, want := range map[string]string{
		"auth_requests": "u", "auth_codes": "u", "upstream_states": "u", "device_authorizations": "u",
		"users": "p", "sessions": "p", "access_tokens": "p", "refresh_tokens": "p", "key_set": "p", "leases": "p",
		"grant_revocations": "p", "clients": "p", "consents": "p",
	} {
		var persistence string
		if err := conn.QueryRow(t.Context(), "SELECT relpersistence::text FROM pg_class WHERE oid = to_regclass($1)", table).Scan(&persistence); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if persistence != want {
			t.Errorf("table %s has relpersistence %q, want %q", table, persistence, want)
		}
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	dsn := postgrestest.DSN(t)
	openTest(t, dsn, Options{}).Close()
	exec(t, dsn, "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from a newer dingbridge')", SchemaVersion()+1)
	for name, opts := range map[string]Options{"serve": {DSN: dsn}, "admin CLI": {DSN: dsn, NoMigrate: true}} {
		s, err := Open(t.Context(), opts)
		if err == nil {
			s.Close()
			t.Fatalf("%s: Open of a newer schema succeeded", name)
		}
		if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "run a dingbridge at least as new") {
			t.Errorf("%s: %v, want ErrNewerSchema saying what to do", name, err)
		}
	}
	if _, err := Migrate(t.Context(), dsn); !errors.Is(err, ErrNewerSchema) {
		t.Errorf("Migrate of a newer schema: %v, want ErrNewerSchema", err)
	}
}

// NoMigrate (the admin CLI) creates an empty database, as serve would, and
// opens a current one; a database at another version is not its to change.
func TestNoMigrateCreatesOnlyAnEmptyDatabase(t *testing.T) {
	dsn := postgrestest.DSN(t)
	openTest(t, dsn, Options{NoMigrate: true}).Close()
	applied, err := Migrate(t.Context(), dsn)
	if err != nil || len(applied) != 0 {
		t.Fatalf("after NoMigrate opened an empty database, Migrate applied %v (%v): want it created in full", applied, err)
	}
	openTest(t, dsn, Options{NoMigrate: true})
}

// The DSN holds the database password: whatever goes wrong, errors never show it.
func TestErrorsNeverContainThePassword(t *testing.T) {
	const password = "Sup3r-S3CRET-pw"
	base := postgrestest.DSN(t)
	for name, dsn := range map[string]string{
		"malformed URL":    "postgres://dingbridge:" + password + "@db.example.com:notaport/x",
		"malformed pairs":  "host=127.0.0.1 port=x password=" + password,
		"nothing listens":  "postgres://dingbridge:" + password + "@127.0.0.1:1/dingbridge?connect_timeout=2",
		"wrong password":   base + " password=" + password + " user=nobody_here",
		"broken IPv6 host": "postgres://u:" + password + "@[::1:5432/x",
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			s, err := Open(ctx, Options{DSN: dsn})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "S3CRET") {
				t.Errorf("error shows the password: %v", err)
			}
			if _, err := Migrate(ctx, dsn); err == nil || strings.Contains(err.Error(), "S3CRET") {
				t.Errorf("Migrate: %v", err)
			}
		})
	}
}
