package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The serve harness: `dingbridge serve` running inside the test, from a YAML
// file, through serveFile (what the serve command runs), on a 127.0.0.1 port the
// test reserved, so the issuer in the file can name it. Use it for any test that
// needs a real server behind a real client:
//
//	fake := dingtalktest.NewServer(...)            // DingTalk, on 127.0.0.1
//	srv := startServe(t, env, func(issuer string) string {
//		return "issuer: " + issuer + "\n..."       // the whole config file
//	})
//	// srv.Issuer answers; t.Cleanup stops it; srv.Stop() to stop it earlier.
//
// Several instances sharing one backend (replicas) each get their own
// listener: ln := listenLoopback(t); startServeOn(t, ln, yaml, env).

// servedInstance is one running serve.
type servedInstance struct {
	Issuer     string      // http://127.0.0.1:<port> for startServe; whatever the file says for startServeOn
	Addr       string      // where it listens
	ConfigPath string      // the file it was started from
	Logs       *syncBuffer // its log output (secrets must never appear in it)
	cancel     context.CancelFunc
	done       chan struct{}
	err        error
}

// listenLoopback reserves a free port on 127.0.0.1; http://<its Addr> can be
// written into a config file as the issuer before serve starts.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// startServe serves the config file yaml(issuer) writes, with issuer the
// address of a fresh loopback port; env is the process environment the file's
// $VARs come from. It returns once /readyz answers 200.
func startServe(t *testing.T, env map[string]string, yaml func(issuer string) string) *servedInstance {
	t.Helper()
	ln := listenLoopback(t)
	return startServeOn(t, ln, yaml("http://"+ln.Addr().String()), env)
}

// startServeOn serves the config file text yaml on ln (its listen key is not
// used), and returns once /readyz answers 200 there. ln is closed when it stops.
func startServeOn(t *testing.T, ln net.Listener, yaml string, env map[string]string) *servedInstance {
	t.Helper()
	path := writeFile(t, "dingbridge.yaml", yaml)
	ctx, cancel := context.WithCancel(context.Background())
	s := &servedInstance{Addr: ln.Addr().String(), ConfigPath: path, Logs: newSyncBuffer(), cancel: cancel, done: make(chan struct{})}
	s.Issuer = issuerOf(yaml)
	go func() {
		defer close(s.done)
		s.err = serveFile(ctx, path, mapEnv(env), s.Logs, ln)
	}()
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("serve logs:\n%s", s.Logs)
		}
	})
	s.waitReady(t)
	return s
}

// Stop ends serve as SIGTERM does and returns what it returned. Calling it
// again returns the same.
func (s *servedInstance) Stop() error {
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		return errors.New("still running 30s after the context was cancelled")
	}
	return s.err
}

func (s *servedInstance) waitReady(t *testing.T) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-s.done:
			t.Fatalf("serve ended before it was ready: %v\nlogs:\n%s", s.err, s.Logs)
		default:
		}
		if resp, err := client.Get("http://" + s.Addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve at %s not ready within %s; logs:\n%s", s.Addr, readyTimeout, s.Logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tempDBPath is a database path for a config file, in a directory short enough
// for the admin socket beside it (<path>.sock) to fit a unix socket address.
func tempDBPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(shortTempDir(t), "dingbridge.db")
}

// issuerOf reads the issuer line of a config file, quoted or not.
func issuerOf(yaml string) string {
	for _, line := range strings.Split(yaml, "\n") {
		if v, ok := strings.CutPrefix(line, "issuer:"); ok {
			return strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return ""
}
