package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema is a list of numbered SQL files in migrations/, built into the
// binary. schema_migrations records which have been applied. A file, once
// released, never changes: a change to the schema is a new file.

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order. The file names are
// checked by TestMigrationFiles, so a malformed one cannot ship.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 || path.Ext(name) != ".sql" {
			return nil, fmt.Errorf("migration file %s is not named NNNN_what.sql", name)
		}
		data, err := migrationFiles.ReadFile("migrations/" + name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(data)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d next (versions run 1, 2, 3, … without gaps)", m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the newest schema this binary knows.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrationLock is the pg_advisory_lock key that serialises migrations of one
// database: replicas starting together wait for the first, which migrates, and
// then find nothing left to do. ("dingbrdg" in ASCII.)
const migrationLock int64 = 0x64696e6762726467

// migrate brings the schema to SchemaVersion. With readOnly it changes only an
// empty database and otherwise checks that the schema is there already. It
// returns the versions it applied.
func migrate(ctx context.Context, pool *pgxpool.Pool, readOnly bool) ([]int, error) {
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	latest := ms[len(ms)-1].version
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Release()

	if readOnly {
		current, err := schemaVersion(ctx, conn.Conn())
		if err != nil {
			return nil, err
		}
		switch {
		case current > latest:
			return nil, newerSchema(current, latest)
		case current == latest:
			return nil, nil
		case current > 0:
			return nil, fmt.Errorf("%w: the database has schema version %d, this dingbridge needs %d: run `dingbridge db migrate` (or start `dingbridge serve`, which migrates)", ErrOlderSchema, current, latest)
		}
		// An empty database: no server can be using it, so it is created.
	}

	// A session-level lock: each migration commits on its own, under it.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return nil, fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		// The connection goes back to the pool: the lock must not go with it.
		// Should the unlock fail, the connection is closed, which releases it.
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock); err != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	current, err := schemaVersion(ctx, conn.Conn())
	if err != nil {
		return nil, err
	}
	if current > latest {
		return nil, newerSchema(current, latest)
	}
	var applied []int
	for _, m := range ms[current:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}

// schemaVersion is the newest migration applied, 0 for an empty database.
func schemaVersion(ctx context.Context, conn *pgx.Conn) (int, error) {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func newerSchema(current, latest int) error {
	return fmt.Errorf("%w: the database has schema version %d, this dingbridge knows up to %d: run a dingbridge at least as new as the one that migrated it", ErrNewerSchema, current, latest)
}

var (
	// ErrNewerSchema: the database was migrated by a newer dingbridge than this one.
	ErrNewerSchema = errors.New("database schema is newer than this dingbridge understands")
	// ErrOlderSchema: the database needs migrating before this dingbridge can use it.
	ErrOlderSchema = errors.New("database schema is older than this dingbridge needs")
)
