// Package postgres keeps dingbridge's records in PostgreSQL, so that several
// dingbridge replicas can share them and act as one provider.
//
// Every record is the JSON of its storage struct in a jsonb column, beside the
// columns that queries look up, lock and sweep by (migrations/ has the schema).
// Every atomic operation holds across processes, never by a lock in this one:
//
//   - read-modify-write (Update*, UpsertUser, CompleteLogin, UpdateKeySet) reads
//     the record with its revision and stores the result only WHERE the revision
//     is unchanged, calling the update again when another writer came first;
//   - single use (ClaimAuthCode, ConsumeUpstreamState) is one UPDATE or DELETE
//     … RETURNING, which PostgreSQL serialises on the row;
//   - refresh rotation locks the rotated token's row (SELECT … FOR UPDATE);
//   - a grant's issue and revocation take a transaction-scoped advisory lock on
//     the grant (shared to issue, exclusive to revoke), so no token of a revoked
//     grant survives, whatever the interleaving;
//   - leases are one conditional upsert, timed by the database's clock.
//
// Statements that must happen together are sent as one pgx batch, which
// PostgreSQL runs as one implicit transaction: one round trip, all or nothing.
// Durable records are in ordinary tables (a commit waits for the WAL flush when
// synchronous_commit is on, and PostgreSQL shares that flush among concurrent
// commits); login flow state is in UNLOGGED tables, off the fsync path.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/storage"
)

// Defaults of Options.
const (
	DefaultMaxConns       = 20
	defaultConnectTimeout = 10 * time.Second
)

// Options configure Open. DSN is required; the zero value of the rest is right
// for a server.
type Options struct {
	// DSN is a PostgreSQL connection string, URL (postgres://user:pw@host/db) or
	// key=value. It is a secret: Open never logs it or puts it in an error.
	DSN string
	// MaxConns caps the connection pool. Zero means DefaultMaxConns.
	MaxConns int32
	// NoMigrate leaves an existing schema alone: Open fails unless the database
	// is at this binary's schema version, or empty (then it is created, as no
	// server can be using it). For the admin CLI, which must not migrate a
	// database under running servers of an older version.
	NoMigrate bool
	// Limits cap the live flow records, past which Create* return
	// storage.ErrCapacity. The count is approximate: read at most once a second,
	// plus what this process created since. Zero fields take storage.DefaultLimits.
	Limits storage.Limits
}

// Storage is a storage.Storage on a PostgreSQL database. Safe for concurrent
// use, and by any number of processes on the same database.
type Storage struct {
	pool *pgxpool.Pool

	authRequests, upstreamStates, devices *capacity
}

var _ storage.Storage = (*Storage)(nil)

// Open connects to the database, migrates its schema unless opts.NoMigrate, and
// returns the storage. ctx bounds connecting and migrating.
func Open(ctx context.Context, opts Options) (*Storage, error) {
	cfg, err := poolConfig(opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if _, err := migrate(ctx, pool, opts.NoMigrate); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: schema: %w", err)
	}
	limits := opts.Limits.WithDefaults()
	return &Storage{
		pool:           pool,
		authRequests:   newCapacity("auth_requests", limits.AuthRequests),
		upstreamStates: newCapacity("upstream_states", limits.UpstreamStates),
		devices:        newCapacity("device_authorizations", limits.Devices),
	}, nil
}

// Migrate brings the database's schema to this binary's version and returns the
// versions it applied (none if it was current). Open does the same; this is
// `dingbridge db migrate`, for operators who migrate before they roll out.
func Migrate(ctx context.Context, dsn string) ([]int, error) {
	cfg, err := poolConfig(Options{DSN: dsn, MaxConns: 1})
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	applied, err := migrate(ctx, pool, false)
	if err != nil {
		return applied, fmt.Errorf("postgres: schema: %w", err)
	}
	return applied, nil
}

// ErrBadDSN: the connection string does not parse. The message never repeats it.
var ErrBadDSN = errors.New("not a PostgreSQL connection string: write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=… or as key=value pairs (host=… user=… dbname=…)")

func poolConfig(opts Options) (*pgxpool.Config, error) {
	if opts.DSN == "" {
		return nil, errors.New("postgres: no connection string (DSN)")
	}
	cfg, err := pgxpool.ParseConfig(opts.DSN)
	if err != nil {
		// pgx's message quotes the string with the password masked "best
		// effort"; none of it is repeated here.
		return nil, fmt.Errorf("postgres: %w", ErrBadDSN)
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	return cfg, nil
}

// Close closes every connection of the pool.
func (s *Storage) Close() error {
	s.pool.Close()
	return nil
}

// Ping reports whether the database answers.
func (s *Storage) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// --- helpers shared by the record files ---

// wrap gives an error its operation. Messages name no record ID: IDs of codes,
// states, sessions and tokens are, or lead to, secrets, and errors reach logs.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// isUniqueViolation reports whether err is a taken primary key or unique column.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// isRetryable reports whether the database gave up on a transaction that may
// simply be run again: a deadlock or a serialization failure.
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// retry runs fn until it returns something other than a retryable error.
func retry(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if !isRetryable(err) || attempt == 10 {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func encode(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return data, nil
}

func decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// notFound turns pgx's "no rows" into storage.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}

// batchSender is what both the pool and a transaction offer for batches.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// sendBatch runs b on the pool as one implicit transaction and hands each
// result, in order, to the matching read (nil: the result is only checked for
// an error).
func (s *Storage) sendBatch(ctx context.Context, b *pgx.Batch, reads ...func(pgx.BatchResults) error) error {
	return sendBatchOn(ctx, s.pool, b, reads...)
}

// sendBatchOn is sendBatch on a given sender: the pool, or a transaction that
// the batch must be part of.
func sendBatchOn(ctx context.Context, on batchSender, b *pgx.Batch, reads ...func(pgx.BatchResults) error) error {
	br := on.SendBatch(ctx, b)
	var first error
	for i := range b.Len() {
		var err error
		if i < len(reads) && reads[i] != nil {
			err = reads[i](br)
		} else {
			_, err = br.Exec()
		}
		if err != nil && first == nil {
			first = err
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	return first
}
