// Package bolt keeps dingbridge's records in one bbolt file: no server, ACID, one
// writer process at a time (bbolt takes an exclusive lock on the file).
//
// Durable records (clients, users, sessions, tokens, consents, keys, grant
// revocations, leases) are JSON under their ID in a bucket of their own kind,
// times in UTC; every commit is fsynced. Ephemeral flow state (auth requests,
// codes, upstream states, device authorizations) lives in this process's memory
// only: bbolt lets one process open the file, so no other could see it anyway,
// and a crash losing it costs the people logging in at that moment one more
// click (see storage's package comment). Spent codes, kept until they expire
// so that a replay is recognised, go to the file with the commit of their
// token response instead: memory holds the logins in flight, not the last
// minute of them. A login's user and session wait in
// memory (writeback.go) for its IssueTokens, so a login is one commit, and the
// writes on a login's path share commits across concurrent logins without
// waiting for each other (commit.go); the rest use plain transactions.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

var (
	// ErrLocked: another process has the database open. bbolt allows one.
	ErrLocked = errors.New("database is in use by another process")
	// ErrNewerSchema: the file was written by a newer dingbridge than this one.
	ErrNewerSchema = errors.New("database schema is newer than this dingbridge understands")
)

// schemaVersion is what this binary writes and the newest it reads. Raise it (and
// teach Open to migrate) whenever a stored record changes incompatibly.
//
//  1. every record in the file, ephemeral ones included.
//  2. ephemeral kinds moved to memory (their buckets are dropped), an expiry
//     index for the sweeper, rotated refresh tokens as tombstones in a bucket of
//     their own, grant revocations and leases.
const schemaVersion = 2

const (
	bucketClients       = "clients"
	bucketAccessTokens  = "access_tokens"
	bucketRefreshTokens = "refresh_tokens" // not yet rotated
	// bucketRotated holds rotated refresh tokens as tombstones; see tombstone.
	bucketRotated  = "refresh_rotated"
	bucketUsers    = "users"
	bucketKeys     = "keys"
	bucketSessions = "sessions"
	bucketMeta     = "meta"
	// bucketGrants indexes tokens by grant so RevokeGrant need not scan; see grantKey.
	bucketGrants   = "grants"
	bucketConsents = "consents"
	// bucketRevoked maps a revoked grant to the end of its revocation.
	bucketRevoked = "revoked_grants"
	bucketLeases  = "leases"
	// bucketExpiry orders every expiring record by expiry for the sweeper; see expiryKey.
	bucketExpiry = "expiry"
	// bucketUserIndex (userindex.go) finds users by unionid, userid, mobile, email, username.
	bucketUserIndex = "user_index"
	// bucketSpentCodes keeps exchanged authorization codes until they expire,
	// so that a replay is recognised (flow.go's ClaimAuthCode).
	bucketSpentCodes = "spent_codes"

	metaSchemaKey = "schema"
)

func bucketNames() []string {
	return []string{
		bucketClients, bucketAccessTokens, bucketRefreshTokens, bucketRotated,
		bucketUsers, bucketKeys, bucketMeta, bucketGrants, bucketSessions,
		bucketConsents, bucketRevoked, bucketLeases, bucketExpiry, bucketUserIndex, bucketSpentCodes,
	}
}

// schema1Ephemeral are the buckets of schema 1 whose records now live in memory.
// Opening such a file drops them: they were flow state of logins in progress
// when the old binary stopped, which the person simply starts again.
var schema1Ephemeral = []string{"auth_requests", "codes", "upstream_states", "device_authorizations", "device_user_codes"}

// Options tune Open. The zero value is right for a server.
type Options struct {
	// Timeout is how long Open waits for another process to release the file
	// before failing with ErrLocked. Zero means one second.
	Timeout time.Duration
	// NoSync skips fsync after each commit. Only for throwaway databases (tests,
	// a temporary `dingbridge dev` database): a crash can lose recent writes or
	// corrupt the file.
	NoSync bool
	// Limits bound the ephemeral records held in memory (ErrCapacity beyond).
	Limits storage.Limits
}

// Storage is a storage.Storage over one bbolt file. Safe for concurrent use.
//
// Lock order: bbolt's writer lock (a write transaction), then pending.mu, then
// a read transaction. So a read transaction never takes pending.mu: what reads
// both look at the write-back first and open the read transaction after.
type Storage struct {
	db      *bbolt.DB
	flow    *flowState
	pending *writeBack

	// The group commit (commit.go): calls waiting for the next commit, and
	// whether one is being written.
	commitMu   sync.Mutex
	queue      []*commitCall
	committing bool
	// commits counts write transactions committed, for tests and benchmarks.
	commits atomic.Uint64
}

var _ storage.Storage = (*Storage)(nil)

// Open opens the database at path, creating it (mode 0600, parent directory 0700)
// if it does not exist. An existing file readable or writable by anyone but its
// owner is tightened to 0600 rather than refused: the file holds private keys, and
// failing to start would not make it any less exposed than it already was.
func Open(path string, opts Options) (*Storage, error) {
	if err := prepareFile(path); err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	var file *os.File // the file bbolt opened, to see that it is still at path
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: timeout,
		NoSync:  opts.NoSync,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
		// The hashmap freelist keeps commits cheap as the file grows and frees pages.
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: %w (gave up after %s: %w)", path, ErrLocked, timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	if !stillAt(file, path) {
		// Compact renamed a new file over path while we waited for the old one's lock.
		_ = db.Close()
		return Open(path, opts)
	}
	if err := db.Update(initSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s := &Storage{db: db, flow: newFlowState(opts.Limits.WithDefaults())}
	s.pending = newWriteBack(func() { _ = s.sync(context.Background()) })
	return s, nil
}

func prepareFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("tighten permissions to 0600: %w", err)
		}
	}
	return nil
}

// initSchema checks the version before touching anything, so a newer file is left
// exactly as it was; an older one is migrated in the same transaction, so a
// crash during the migration leaves the old file.
func initSchema(tx *bbolt.Tx) error {
	version := 0 // a new file
	if meta := tx.Bucket([]byte(bucketMeta)); meta != nil {
		if v := meta.Get([]byte(metaSchemaKey)); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return fmt.Errorf("unreadable schema version %q: %w", v, err)
			}
			if n > schemaVersion {
				return fmt.Errorf("%w: file has version %d, this binary knows up to %d", ErrNewerSchema, n, schemaVersion)
			}
			version = n
		}
	}
	for _, name := range bucketNames() {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if version == 1 {
		if err := migrateFrom1(tx); err != nil {
			return fmt.Errorf("migrate schema 1 to %d: %w", schemaVersion, err)
		}
	}
	if err := ensureUserIndex(tx); err != nil {
		return err
	}
	if version == schemaVersion {
		return nil
	}
	return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchemaKey), []byte(strconv.Itoa(schemaVersion)))
}

// Close commits what waits in the write-back, closes the file and releases the lock.
func (s *Storage) Close() error {
	s.pending.close()
	if !s.pending.empty() {
		if err := s.sync(context.Background()); err != nil {
			_ = s.db.Close()
			return fmt.Errorf("bolt: close: commit the last logins: %w", err)
		}
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}

// Ping fails once the database is closed.
func (s *Storage) Ping(ctx context.Context) error {
	if err := s.view(ctx, func(*bbolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("bolt: ping: %w", err)
	}
	return nil
}

// A cancelled context is honoured before a transaction starts and not during it:
// every transaction here is short, and stopping one halfway is what bbolt's
// rollback already prevents. So a call either fails with ctx.Err() having changed
// nothing, or runs to the end. Writes are in commit.go.

func (s *Storage) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// wrap gives a batched call's outcome its context: err from the transaction, or
// else the answer the transaction decided on.
func wrap(op string, err, answer error) error {
	if err == nil {
		err = answer
	}
	if err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	return nil
}
