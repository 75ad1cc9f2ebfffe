package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/config"
	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/storage"
)

// The admin commands (client, keys, users, claims) run the same code whether
// dingbridge is serving or not: they get an admin.API from connectAdmin, which is
// the running server's admin socket when it answers and the database file
// otherwise.

// Exit codes of every command, for scripts.
const (
	exitOK       = 0
	exitError    = 1 // anything operational: the database, the socket, the config file
	exitUsage    = 2 // a bad flag or argument, or a request refused as invalid
	exitNotFound = 3 // no such client or user
)

const exitCodesHelp = `
Exit codes: 0 done; 1 error (database, admin socket, configuration file);
2 usage or refused as invalid (bad flag or argument, a redirect URI rule, a static
client, an ID that exists); 3 not found (no such client or user).

While dingbridge serves, the command goes through its admin socket (adminSocket,
default <storage.path>.sock); when it is stopped, it opens the database itself.
With storage type postgres it always works on the database directly.`

// usageError is a mistake on the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode maps an error from a command to the process's exit status.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var usage usageError
	msg := err.Error()
	switch {
	case errors.Is(err, admin.ErrNotFound):
		return exitNotFound
	case errors.As(err, &usage), errors.Is(err, admin.ErrInvalid),
		errors.Is(err, admin.ErrStaticClient), errors.Is(err, admin.ErrConflict):
		return exitUsage
	// cobra reports these as plain errors.
	case strings.HasPrefix(msg, "unknown command "), strings.HasPrefix(msg, "required flag(s) "):
		return exitUsage
	}
	return exitError
}

// positional checks a command's positional arguments, naming what is missing.
func positional(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, got []string) error {
		if len(got) != len(names) {
			want := strings.ToUpper(strings.Join(names, " "))
			if len(names) == 0 {
				return usagef("%s takes no arguments, got %q", cmd.CommandPath(), got)
			}
			return usagef("%s needs %s (usage: %s)", cmd.CommandPath(), want, cmd.UseLine())
		}
		return nil
	}
}

// groupCommand is a command that only holds others (client, keys, users).
func groupCommand(use, short string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Long: short + "\n" + exitCodesHelp,
		RunE: func(cmd *cobra.Command, got []string) error {
			if len(got) > 0 {
				return usagef("unknown command %q for %q: see %s --help", got[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
}

// adminRun is the body of an admin command.
type adminRun func(cmd *cobra.Command, api admin.API, out *printer, args []string) error

// adminCommand completes c with --config and --output and a RunE that connects
// to the admin API and hands it to run.
func adminCommand(env config.Env, c *cobra.Command, run adminRun) *cobra.Command {
	var path, format string
	addConfigFlag(c, &path, env)
	c.Flags().StringVarP(&format, "output", "o", "table", "output format: table, json or yaml")
	if c.Long == "" {
		c.Long = c.Short + "\n" + exitCodesHelp
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		out, err := newPrinter(cmd.OutOrStdout(), format)
		if err != nil {
			return err
		}
		cfg, err := config.Load(path, env)
		if err != nil {
			return err
		}
		api, closeAPI, err := connectAdmin(cmd.Context(), cfg, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer closeAPI()
		return run(cmd, api, out, args)
	}
	return c
}

// connectAdmin returns the running server's admin API if it answers on its
// socket, or else a Service over the database file, opened directly. Before
// the first start there is no file: it is created as serve would (0600, the
// schema, signing keys), so provisioning can register clients before the
// service is enabled.
func connectAdmin(ctx context.Context, cfg *config.Config, logs io.Writer) (admin.API, func(), error) {
	if cfg.Storage.Type == "postgres" {
		return connectPostgres(ctx, cfg, logs)
	}
	remote := admin.Dial(cfg.AdminSocket)
	pingErr := pingRemote(ctx, remote)
	if pingErr == nil {
		return remote, func() {}, nil
	}
	path := cfg.Storage.Path
	_, statErr := os.Stat(path)
	creating := errors.Is(statErr, fs.ErrNotExist)
	if creating {
		if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
			return nil, nil, fmt.Errorf("the database %s does not exist yet and its folder %s does not either: create the folder (owned by the user serve runs as), or check storage.path", path, filepath.Dir(path))
		}
	}
	store, err := openOffline(path, cfg.AdminSocket, pingErr)
	if err != nil {
		return nil, nil, err
	}
	var km *keys.Manager
	if creating {
		// The keys serve would make at its first start, from the same settings.
		km, err = newKeyManager(ctx, store, cfg.Keys, false)
		if err == nil {
			err = giveToFolderOwner(path)
		}
	} else {
		km, err = keys.New(store, keyOptions(cfg.Keys, false))
	}
	if err == nil {
		var svc *admin.Service
		offline := &offlineMembership{cfg: cfg, store: store, keys: km, logger: newLogger(logs, config.Logging{Level: "warn"})}
		if svc, err = admin.NewService(adminServiceConfig(cfg, store, km, offline)); err == nil {
			return svc, func() { _ = store.Close() }, nil
		}
	}
	_ = store.Close()
	if creating {
		_ = os.Remove(path)
	}
	return nil, nil, err
}

// connectPostgres returns a Service over the PostgreSQL database: the
// replicas serving from it see what it changes at once (keys within seconds),
// so no socket is needed.
func connectPostgres(ctx context.Context, cfg *config.Config, logs io.Writer) (admin.API, func(), error) {
	store, err := openPostgresForAdmin(ctx, cfg.Storage)
	if err != nil {
		return nil, nil, err
	}
	var km *keys.Manager
	ks, err := store.GetKeySet(ctx)
	switch {
	case err != nil:
	case len(ks.SigningKeys) == 0:
		// A database no serve has started on yet: the keys serve would make.
		km, err = newKeyManager(ctx, store, cfg.Keys, true)
	default:
		km, err = keys.New(store, keyOptions(cfg.Keys, true))
	}
	if err == nil {
		var svc *admin.Service
		offline := &offlineMembership{cfg: cfg, store: store, keys: km, logger: newLogger(logs, config.Logging{Level: "warn"})}
		if svc, err = admin.NewService(adminServiceConfig(cfg, store, km, offline)); err == nil {
			return svc, func() { _ = store.Close() }, nil
		}
	}
	_ = store.Close()
	return nil, nil, err
}

// adminServiceConfig is the admin service's view of the configuration, the same
// for the server's socket and for the CLI working on the file.
func adminServiceConfig(cfg *config.Config, store storage.Storage, km *keys.Manager, membership admin.MembershipSyncer) admin.Config {
	return admin.Config{
		DefaultCorpID:    defaultCorpID(cfg),
		Membership:       membership,
		Storage:          store,
		Keys:             km,
		StaticClients:    staticClients(cfg),
		Claims:           claimsPolicy(cfg),
		Issuer:           cfg.Issuer,
		IDTokenLifetime:  time.Duration(cfg.Expiry.IDToken),
		MaxTokenLifetime: keyRetention,
	}
}

// defaultCorpID is the organisation a provisioned userid belongs to when the
// administrator names none: the corpID of the one connector that has one.
func defaultCorpID(cfg *config.Config) string {
	var corps []string
	for _, c := range cfg.Connectors {
		if c.CorpID != "" && !slices.Contains(corps, c.CorpID) {
			corps = append(corps, c.CorpID)
		}
	}
	if len(corps) == 1 {
		return corps[0]
	}
	return ""
}

// offlineMembership answers users sync without a running server: it builds the
// provider over the opened database when asked (the connectors reach DingTalk
// from this machine), and waits for the back-channel logouts it sends.
type offlineMembership struct {
	cfg    *config.Config
	store  storage.Storage
	keys   *keys.Manager
	logger *slog.Logger
}

func (o *offlineMembership) SyncMembership(ctx context.Context, apply bool) (op.SyncReport, error) {
	provider, err := newProvider(ctx, o.cfg, o.store, o.keys, nil, o.logger)
	if err != nil {
		return op.SyncReport{}, err
	}
	defer provider.Wait()
	return provider.SyncMembership(ctx, apply)
}
