package admin_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/admin"
)

func TestSocketIsPrivateAndRemovedOnShutdown(t *testing.T) {
	svc, _ := newService(t)
	path := filepath.Join(shortTempDir(t), "dingbridge.db.sock")
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := admin.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- admin.ServeListener(ctx, ln, svc, nil) }()

	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("the socket's directory holds %d entries, want only the socket (no temporary left)", len(entries))
	}
	if err := admin.Dial(path).Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket still there after shutdown: %v", err)
	}
	if err := admin.Dial(path).Ping(context.Background()); err == nil {
		t.Error("ping answered after shutdown")
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "dingbridge.db.sock")
	leaveStaleSocket(t, path)

	svc, _ := newService(t)
	remote := serveOnSocketAt(t, path, svc)
	if err := remote.Ping(context.Background()); err != nil {
		t.Fatalf("ping after replacing a stale socket: %v", err)
	}
}

func TestListenRefusesWhatItMustNotReplace(t *testing.T) {
	dir := shortTempDir(t)

	t.Run("a regular file", func(t *testing.T) {
		path := filepath.Join(dir, "file.sock")
		if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("Listen over a regular file: %v, want a refusal", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "keep me" {
			t.Error("the file was touched")
		}
	})
	t.Run("a socket someone answers on", func(t *testing.T) {
		path := filepath.Join(dir, "live.sock")
		svc, _ := newService(t)
		serveOnSocketAt(t, path, svc)
		if _, err := admin.Listen(path); err == nil || !strings.Contains(err.Error(), "another process") {
			t.Errorf("Listen over a live socket: %v, want a refusal", err)
		}
	})
}

func TestErrorsKeepTheirKindAcrossTheSocket(t *testing.T) {
	svc, _ := newService(t)
	remote := serveOnSocket(t, svc)
	_, err := remote.GetClient(context.Background(), "nope")
	var e *admin.Error
	if !errors.As(err, &e) || !errors.Is(err, admin.ErrNotFound) || !strings.Contains(e.Message, `"nope"`) {
		t.Errorf("err = %#v, want *admin.Error of kind ErrNotFound", err)
	}
}

// leaveStaleSocket leaves a socket file nobody listens on, as a crashed server does.
func leaveStaleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("no stale socket left: %v", err)
	}
}

func serveOnSocketAt(t *testing.T, path string, api admin.API) *admin.Remote {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := admin.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- admin.ServeListener(ctx, ln, api, nil) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return admin.Dial(path)
}
