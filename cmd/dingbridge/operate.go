package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/config"
	"github.com/dingbridge/dingbridge/storage/bolt"
)

// The operator's commands beside the admin ones: backup, db compact, reload
// and health.

func backupCommand(env config.Env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the database to FILE (0600), while serve runs or not",
		Long: `Write a consistent copy of the database to FILE (mode 0600), replacing FILE
atomically. While dingbridge serves, the copy is taken through its admin socket
from one read transaction, so logins carry on; when it is stopped, from the file.
The copy is checked before it replaces FILE. To restore: stop dingbridge, put
the copy at storage.path (mode 0600, owned by the user serve runs as), start it.
` + exitCodesHelp,
		Args: positional("file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(path, env)
			if err != nil {
				return err
			}
			return backup(cmd, cfg, args[0])
		},
	}
	addConfigFlag(cmd, &path, env)
	return cmd
}

func backup(cmd *cobra.Command, cfg *config.Config, dest string) error {
	if err := needBolt(cfg, "backup", "back it up with pg_dump"); err != nil {
		return err
	}
	ctx := cmd.Context()
	dbPath := cfg.Storage.Path
	if sameFile(dest, dbPath) {
		return usagef("%s is the database itself: name another file", dest)
	}
	if fi, err := os.Stat(filepath.Dir(dest)); err != nil || !fi.IsDir() {
		return usagef("the folder of %s does not exist: create it first", dest)
	}
	var copyFrom func(f *os.File) (int64, error)
	how := "through the running server"
	remote := admin.Dial(cfg.AdminSocket)
	if pingErr := pingRemote(ctx, remote); pingErr == nil {
		copyFrom = func(f *os.File) (int64, error) { return remote.Backup(ctx, f) }
	} else {
		if _, err := os.Stat(dbPath); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("the database %s does not exist and no dingbridge answers on %s: nothing to back up", dbPath, cfg.AdminSocket)
		}
		copyFrom = func(f *os.File) (int64, error) {
			n, err := bolt.BackupFile(dbPath, 300*time.Millisecond, f)
			if errors.Is(err, bolt.ErrLocked) {
				return n, fmt.Errorf("the database %s is in use by a running dingbridge but its admin socket %s does not answer: %w", dbPath, cfg.AdminSocket, pingErr)
			}
			return n, err
		}
		how = "from the stopped database's file"
	}
	var n int64
	err := bolt.WriteFile(dest, func(f *os.File) error {
		var err error
		if n, err = copyFrom(f); err != nil {
			return err
		}
		return bolt.Check(f.Name())
	})
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "backed up %s to %s (%s, %s); checked\n", dbPath, dest, byteSize(n), how)
	return nil
}

func dbCommand(env config.Env) *cobra.Command {
	cmd := groupCommand("db", "Maintain the database")
	cmd.AddCommand(dbMigrateCommand(env)) // storage.go
	var path string
	compact := &cobra.Command{
		Use:   "compact",
		Short: "Rewrite the stopped database without its free pages, and say how much smaller it is",
		Long: `Rewrite the database without the pages bbolt keeps after a burst of
short-lived records (a bbolt file never shrinks by itself). dingbridge must be
stopped: the command holds the file's lock while it works and refuses while a
server has it open.
` + exitCodesHelp,
		Args: positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, env)
			if err != nil {
				return err
			}
			if err := needBolt(cfg, "db compact", "PostgreSQL reclaims space with VACUUM"); err != nil {
				return err
			}
			before, after, err := bolt.Compact(cfg.Storage.Path, 300*time.Millisecond)
			if errors.Is(err, bolt.ErrLocked) {
				return fmt.Errorf("the database %s is in use by a running dingbridge: stop it first (systemctl stop dingbridge), compact, then start it again", cfg.Storage.Path)
			}
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("the database %s does not exist: check storage.path", cfg.Storage.Path)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "compacted %s: %s before, %s after (%d → %d bytes)\n",
				cfg.Storage.Path, byteSize(before), byteSize(after), before, after)
			return nil
		},
	}
	addConfigFlag(compact, &path, env)
	cmd.AddCommand(compact)
	return cmd
}

func reloadCommand(env config.Env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make the running server re-read its configuration file (as SIGHUP does)",
		Long: `Make the running server re-read its configuration file, as SIGHUP does:
connectors, static clients, claims, lifetimes and rate limits change; logins in
flight, sessions and tokens carry on. A file that ` + "`config check`" + ` refuses is
refused with the same messages and the running configuration stays. Listen
addresses, storage, keys and logging take effect at the next start.
` + exitCodesHelp,
		Args: positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, env)
			if err != nil {
				return err
			}
			remote := admin.Dial(cfg.AdminSocket)
			if err := pingRemote(cmd.Context(), remote); err != nil {
				return fmt.Errorf("no dingbridge answers on %s: %w", cfg.AdminSocket, err)
			}
			if err := remote.Reload(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "reloaded %s\n", path)
			return nil
		},
	}
	addConfigFlag(cmd, &path, env)
	return cmd
}

func healthCommand() *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 when the server's /healthz answers 200 (for container health checks)",
		Args:  positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, target, nil)
			if err != nil {
				return usagef("--url %q: %v", target, err)
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("health: %w", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("health: %s answered HTTP %d", target, resp.StatusCode)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "url", "http://127.0.0.1:9464/healthz", "the health endpoint (the telemetry listener's, or the public one's)")
	return cmd
}

// needBolt refuses a command that works on the bolt file when storage is another type.
func needBolt(cfg *config.Config, command, instead string) error {
	if cfg.Storage.Type != "" && cfg.Storage.Type != "bolt" {
		return usagef("%s works on a bolt database; storage.type is %s: %s", command, cfg.Storage.Type, instead)
	}
	return nil
}

// pingRemote says whether a server answers on the admin socket.
func pingRemote(ctx context.Context, remote *admin.Remote) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return remote.Ping(ctx)
}

// openOffline opens the database file of a server that did not answer on its
// socket; a held lock means it runs but its socket is broken.
func openOffline(path, socket string, pingErr error) (*bolt.Storage, error) {
	// A running server holds the file's lock: give up quickly rather than wait.
	db, err := bolt.Open(path, bolt.Options{Timeout: 300 * time.Millisecond})
	if errors.Is(err, bolt.ErrLocked) {
		return nil, fmt.Errorf("the database %s is in use by a running dingbridge but its admin socket %s does not answer: %w", path, socket, pingErr)
	}
	if err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}
	return db, nil
}

// sameFile reports whether a and b name one file (or the same path).
func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// byteSize writes n for a person: 512 B, 3.4 KiB, 12.0 MiB.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
