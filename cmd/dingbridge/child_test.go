package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// Some tests run dingbridge as a child process, so that it can be killed with
// SIGKILL as a crashed machine would be: the test binary, started again with
// childEnv set, is the dingbridge binary (TestMain hands its arguments to run,
// as main does). No `go build` is needed.

const childEnv = "DINGBRIDGE_TEST_AS_DINGBRIDGE"

// childReadyTimeout allows for a cold start of the -race test binary on a busy machine.
const childReadyTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	runAsDingbridgeIfChild()
	os.Exit(m.Run())
}

// runAsDingbridgeIfChild is called first thing in TestMain: in a child started
// by startChild it runs the CLI and exits; in the test process it returns.
func runAsDingbridgeIfChild() {
	if os.Getenv(childEnv) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// child is dingbridge running as a separate OS process.
type child struct {
	name   string
	cmd    *exec.Cmd
	logs   *syncBuffer // stdout and stderr
	exited chan struct{}
}

// startChild runs dingbridge with args in a child process whose environment is
// exactly env (and childEnv). When the test ends it is stopped as by SIGTERM,
// and its output is logged if the test failed.
func startChild(t *testing.T, name string, env []string, args ...string) *child {
	t.Helper()
	c := &child{name: name, logs: newSyncBuffer(), exited: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], args...)
	c.cmd.Env = append([]string{childEnv + "=1"}, env...)
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, c.logs)
		}
	})
	return c
}

// waitReady polls url until it answers 200, failing if the child exits first.
func (c *child) waitReady(t *testing.T, url string) {
	t.Helper()
	switch err := pollReady(url, childReadyTimeout, c.exited); {
	case errors.Is(err, errExitedBeforeReady):
		t.Fatalf("%s exited (%v) before it was ready:\n%s", c.name, c.cmd.ProcessState, c.logs)
	case err != nil:
		t.Fatalf("%s: %v:\n%s", c.name, err, c.logs)
	}
}

// kill ends the child with SIGKILL: no shutdown, no drain, no deferred Close,
// no flush, as a crash or the OOM killer.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", c.name, err)
	}
	<-c.exited
}

// terminate sends SIGTERM and returns the exit code.
func (c *child) terminate(t *testing.T) int {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("terminate %s: %v", c.name, err)
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still running 30s after SIGTERM", c.name)
	}
	return c.cmd.ProcessState.ExitCode()
}

// stop ends the child as SIGTERM does, if it is still running.
func (c *child) stop(t *testing.T) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("%s still running 30s after SIGTERM", c.name)
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

var errExitedBeforeReady = errors.New("exited before it was ready")

// pollReady polls url until it answers 200. It returns errExitedBeforeReady
// if exited is closed first, and an error if timeout passes.
func pollReady(url string, timeout time.Duration, exited <-chan struct{}) error {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return errExitedBeforeReady
		default:
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 within %s", url, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
