package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"

	"github.com/dingbridge/dingbridge/config"
	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/bolt"
	"github.com/dingbridge/dingbridge/storage/postgres"
)

// openTimeout bounds connecting to (and migrating) a PostgreSQL database at start.
const openTimeout = time.Minute

// openStorage opens the configured backend for serving. throwaway (dev) skips
// bolt's fsync.
func openStorage(ctx context.Context, cfg config.Storage, throwaway bool) (storage.Storage, error) {
	switch cfg.Type {
	case "postgres":
		ctx, cancel := context.WithTimeout(ctx, openTimeout)
		defer cancel()
		store, err := postgres.Open(ctx, postgres.Options{DSN: cfg.DSN, MaxConns: int32(cfg.MaxConns)})
		if err != nil {
			return nil, fmt.Errorf("open storage (storage.dsn): %w", err)
		}
		return store, nil
	default:
		store, err := bolt.Open(cfg.Path, bolt.Options{NoSync: throwaway})
		if errors.Is(err, bolt.ErrLocked) {
			return nil, fmt.Errorf("%s is in use by another dingbridge process: stop it first", cfg.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("open storage: %w", err)
		}
		return store, nil
	}
}

// shared reports whether other dingbridge processes may serve from the same
// store at the same time: replicas on one PostgreSQL database.
func shared(cfg config.Storage) bool { return cfg.Type == "postgres" }

// Replicas notice each other's key changes within sharedKeyReload, and a new
// key signs keyPropagation after it was stored: by then every replica has
// reloaded and publishes it.
const (
	sharedKeyReload = 5 * time.Second
	keyPropagation  = 2 * sharedKeyReload
)

// keyOptions are the key manager's options for the configured keys, in a store
// that other processes share or not.
func keyOptions(cfg config.Keys, shared bool) keys.Options {
	opts := keys.Options{
		Algorithm:      jose.SignatureAlgorithm(cfg.Algorithm),
		RotationPeriod: time.Duration(cfg.RotationPeriod),
		PublishAhead:   time.Duration(cfg.PublishAhead),
		RetainFor:      keyRetention,
	}
	if shared {
		opts.ReloadInterval, opts.Propagation = sharedKeyReload, keyPropagation
	}
	return opts
}

// openPostgresForAdmin opens the database for the admin CLI: any number of
// replicas may be serving from it. An existing schema is left alone (a CLI
// newer than the servers must not migrate under them), so it must be current;
// an empty database is created, so clients can be registered before the first
// serve starts.
func openPostgresForAdmin(ctx context.Context, cfg config.Storage) (*postgres.Storage, error) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	store, err := postgres.Open(ctx, postgres.Options{DSN: cfg.DSN, MaxConns: 4, NoMigrate: true})
	if err != nil {
		return nil, fmt.Errorf("open storage (storage.dsn): %w", err)
	}
	return store, nil
}

// dbMigrateCommand is `dingbridge db migrate`.
func dbMigrateCommand(env config.Env) *cobra.Command {
	var path string
	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to this version of dingbridge",
		Long: `Bring the database schema up to this version of dingbridge.

serve migrates at start too, under a lock, so replicas starting together migrate
once; run this first to migrate before a rollout, as the database's owner.
A database migrated by a newer dingbridge is refused, never changed.
` + exitCodesHelp,
		Args: positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, env)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if cfg.Storage.Type != "postgres" {
				// bolt's schema is checked and completed whenever the file opens.
				store, err := openStorage(cmd.Context(), cfg.Storage, false)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s: up to date (bolt migrates the file when it opens it)\n", cfg.Storage.Path)
				return store.Close()
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), openTimeout)
			defer cancel()
			applied, err := postgres.Migrate(ctx, cfg.Storage.DSN)
			if err != nil {
				return fmt.Errorf("migrate (storage.dsn): %w", err)
			}
			if len(applied) == 0 {
				fmt.Fprintf(out, "schema version %d: up to date\n", postgres.SchemaVersion())
				return nil
			}
			fmt.Fprintf(out, "schema version %d: applied %s\n", postgres.SchemaVersion(), versions(applied))
			return nil
		},
	}
	addConfigFlag(migrate, &path, env)
	return migrate
}

func versions(vs []int) string {
	s := ""
	for i, v := range vs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprint(v)
	}
	return s
}
