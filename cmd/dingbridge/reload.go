package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"sync"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/config"
	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/op/telemetry"
	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/bolt"
	"github.com/dingbridge/dingbridge/upstream/dingtalk"
)

// running is a serving dingbridge, as far as reload and backup need it.
type running struct {
	load     func() (*config.Config, error) // reads the file again
	db       *bolt.Storage                  // the file itself, for backups; nil for other storage
	store    storage.Storage                // what provider and admin use (db, timed)
	keys     *keys.Manager
	provider *op.Provider
	admin    *admin.Service
	metrics  *telemetry.Metrics
	log      *slog.Logger

	mu  sync.Mutex     // one reload at a time
	cfg *config.Config // in force
}

// reloadOn reloads for every value on hup until ctx is done.
func (s *running) reloadOn(ctx context.Context, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.log.InfoContext(ctx, "SIGHUP: reloading the configuration")
			_ = s.reload(ctx) // logged there
		}
	}
}

// reload reads the configuration file again and applies what can change while
// serving: connectors, static clients, claims, lifetimes, registration and
// rate limits.
// Logins in flight, sessions and tokens are in storage and carry on. A file
// `config check` would refuse is refused with the same messages, and the running
// configuration stays.
func (s *running) reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.load()
	var connectors []op.Connector
	if err == nil {
		connectors, err = newConnectors(cfg, observerOf(s.metrics))
	}
	if err == nil {
		err = s.provider.Reconfigure(providerConfig(cfg, connectors, s.store, s.keys, s.metrics, s.log))
	}
	if err != nil {
		s.metrics.Reload(err)
		s.log.ErrorContext(ctx, "configuration not reloaded: the running one stays", "err", err)
		return &admin.Error{Kind: admin.ErrInvalid, Message: "configuration not reloaded, the running one stays: " + err.Error()}
	}
	// The admin service's view is built from the same file, and cannot fail
	// where the provider did not.
	if err := s.admin.Reconfigure(adminServiceConfig(cfg, s.store, s.keys, s.provider)); err != nil {
		return fmt.Errorf("reload the admin service: %w", err)
	}
	for _, key := range restartOnly(s.cfg, cfg) {
		s.log.WarnContext(ctx, "reload: this setting changed but takes effect only at the next start", "key", key)
	}
	s.cfg = cfg
	s.metrics.Reload(nil)
	s.log.InfoContext(ctx, "configuration reloaded", "connectors", len(cfg.Connectors), "staticClients", len(cfg.StaticClients))
	return nil
}

// restartOnly names the settings that differ between old and new but are
// fixed for the life of the process.
func restartOnly(old, new *config.Config) []string {
	var changed []string
	for _, f := range []struct {
		key      string
		old, new any
	}{
		{"issuer", old.Issuer, new.Issuer},
		{"listen", old.Listen, new.Listen},
		{"storage", old.Storage, new.Storage},
		{"adminSocket", old.AdminSocket, new.AdminSocket},
		{"telemetry", old.Telemetry, new.Telemetry},
		{"keys", old.Keys, new.Keys},
		{"logging", old.Logging, new.Logging},
		{"expiry.deviceCode", old.Expiry.DeviceCode, new.Expiry.DeviceCode},
		{"expiry.devicePollInterval", old.Expiry.DevicePollInterval, new.Expiry.DevicePollInterval},
		{"membershipRecheck", old.MembershipRecheck, new.MembershipRecheck},
		{"membershipGrace", old.MembershipGrace, new.MembershipGrace},
	} {
		if !reflect.DeepEqual(f.old, f.new) {
			changed = append(changed, f.key)
		}
	}
	return changed
}

// serverAdmin is the admin API a running server offers on its socket: the
// service, plus what only the server can do (admin.Backuper, admin.Reloader).
type serverAdmin struct {
	*admin.Service
	srv *running
}

// Backup streams a consistent snapshot of the database.
func (a serverAdmin) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if a.srv.db == nil { // another storage type: its own tools back it up
		return 0, &admin.Error{Kind: admin.ErrInvalid, Message: "this server's storage is not a bolt file: back it up with its own tools (pg_dump)"}
	}
	return a.srv.db.Backup(ctx, w)
}

// Reload re-reads the configuration file.
func (a serverAdmin) Reload(ctx context.Context) error { return a.srv.reload(ctx) }

// observerOf is metrics as a DingTalk observer: nil (no observer) when off.
func observerOf(metrics *telemetry.Metrics) dingtalk.Observer {
	if metrics == nil {
		return nil
	}
	return metrics
}
