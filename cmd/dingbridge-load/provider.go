package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// fakeDingTalk is the fake of package dingtalktest on a loopback port, approving
// one demo user's logins at once, as `dingbridge dev --auto-approve` does.
type fakeDingTalk struct {
	url, host string
	user      string // the nick of the person every login is
	server    *http.Server
	fake      *dingtalktest.Fake
	conns     *atomic.Int64 // connections accepted: a provider without keep-alive dials per call
}

// startFakeDingTalk serves a fake DingTalk on addr (a loopback address) knowing
// one app, clientID with secret, whose redirect URI is callback.
func startFakeDingTalk(addr, clientID, secret, callback string) (*fakeDingTalk, error) {
	ln, err := listenLoopback(addr)
	if err != nil {
		return nil, fmt.Errorf("fake DingTalk: %w", err)
	}
	user := dingtalktest.DemoUsers()[0]
	fake := dingtalktest.New(dingtalktest.Config{
		Apps:  []dingtalktest.App{{ClientID: clientID, ClientSecret: secret, RedirectURIs: []string{callback}}},
		Users: dingtalktest.DemoUsers(),
	})
	fake.AutoApprove(user.UnionID)
	conns := new(atomic.Int64)
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}}
	go func() { _ = srv.Serve(ln) }()
	host := ln.Addr().String()
	return &fakeDingTalk{url: "http://" + host, host: host, user: user.Nick, server: srv, fake: fake, conns: conns}, nil
}

func (f *fakeDingTalk) close() {
	f.fake.Close()
	_ = f.server.Close()
}

// listenLoopback listens on addr, which must be a loopback IP and port: the
// fake is for this machine only.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%s is not a loopback address (use 127.0.0.1:PORT)", addr)
	}
	return net.Listen("tcp", addr)
}

// providerOptions say how to start a dingbridge for a run.
type providerOptions struct {
	binary       string
	redirectURI  string
	clients      int // static clients to declare, named as clientIDs names them
	keyAlgorithm string
	keepDir      bool
	stderr       io.Writer // where the provider's log goes if it fails to start
}

// startedProvider is a `dingbridge serve` child process and its fake DingTalk.
type startedProvider struct {
	target
	dingtalkURL string
	dir         string
	cmd         *exec.Cmd
	exited      chan struct{}
	fake        *fakeDingTalk
	keepDir     bool
}

// loadClientID is the confidential client the generated configuration declares.
const loadClientID = "dingbridge-load"

// startProvider starts a fake DingTalk, writes a configuration for a provider
// on a free loopback port using it (bbolt in a new directory, fsync on as in
// production, rate limits off: all load comes from one IP), starts
// `binary serve` and waits until it is ready.
func startProvider(ctx context.Context, o providerOptions) (_ *startedProvider, err error) {
	dir, err := os.MkdirTemp("", "dingbridge-load-")
	if err != nil {
		return nil, err
	}
	p := &startedProvider{dir: dir, keepDir: o.keepDir, exited: make(chan struct{})}
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	p.issuer = "http://" + addr
	p.clientID = loadClientID
	p.secret = rand.Text()
	dtClientID, dtSecret := "dingbridge-load-app", rand.Text()
	p.fake, err = startFakeDingTalk("127.0.0.1:0", dtClientID, dtSecret, p.issuer+"/callback/dingtalk")
	if err != nil {
		return nil, err
	}
	p.dingtalkURL = p.fake.url
	p.extraHosts = []string{p.fake.host}
	p.upstreamConns = p.fake.conns

	cfg := providerConfig{
		Issuer:  p.issuer,
		Listen:  addr,
		Storage: storageConfig{Type: "bolt", Path: filepath.Join(dir, "dingbridge.db")},
		Connectors: []connectorConfig{{
			ID: "dingtalk", Type: "dingtalk", ClientID: dtClientID, ClientSecret: dtSecret,
			Endpoints: endpointsConfig{Login: p.fake.url, API: p.fake.url, OAPI: p.fake.url},
		}},
		RateLimit: rateLimitConfig{PerSecond: 0, Burst: 1},
		Keys:      keysConfig{Algorithm: o.keyAlgorithm},
		Logging:   loggingConfig{Level: "warn"},
	}
	for _, id := range clientIDs(loadClientID, o.clients) {
		cfg.StaticClients = append(cfg.StaticClients, clientConfig{ID: id, Secret: p.secret, RedirectURIs: []string{o.redirectURI}})
	}
	configPath := filepath.Join(dir, "config.yaml")
	if err := writeConfig(configPath, cfg); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	p.cmd = exec.Command(o.binary, "serve", "--config", configPath)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start provider: %w", err)
	}
	p.pid = p.cmd.Process.Pid
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	if err := p.waitReady(ctx, 60*time.Second); err != nil {
		if log, rerr := os.ReadFile(logFile.Name()); rerr == nil && len(log) > 0 {
			fmt.Fprintf(o.stderr, "provider log:\n%s", tail(string(log), 40))
		}
		return nil, err
	}
	return p, nil
}

// waitReady polls /readyz until the provider answers 200 or it exits.
func (p *startedProvider) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.issuer+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			drain(resp)
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("provider exited before it was ready: %v", p.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("provider not ready at %s/readyz within %s", p.issuer, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends the provider (SIGTERM, then SIGKILL after 20 s), the fake and,
// unless kept, the directory.
func (p *startedProvider) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if p.fake != nil {
		p.fake.close()
	}
	if !p.keepDir {
		_ = os.RemoveAll(p.dir)
	}
}

// freeLoopbackAddr finds a free port on 127.0.0.1 for the provider to listen on.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func tail(s string, lines int) string {
	parts := strings.SplitAfter(s, "\n")
	return strings.Join(parts[max(0, len(parts)-lines):], "")
}

// The subset of dingbridge's configuration file the load needs. Written by
// yaml.Marshal, so no value needs quoting by hand.
type providerConfig struct {
	Issuer        string            `yaml:"issuer"`
	Listen        string            `yaml:"listen"`
	Storage       storageConfig     `yaml:"storage"`
	Connectors    []connectorConfig `yaml:"connectors"`
	StaticClients []clientConfig    `yaml:"staticClients"`
	RateLimit     rateLimitConfig   `yaml:"rateLimit"`
	Keys          keysConfig        `yaml:"keys"`
	Logging       loggingConfig     `yaml:"logging"`
}

type storageConfig struct {
	Type string `yaml:"type"`
	Path string `yaml:"path"`
}

type connectorConfig struct {
	ID           string          `yaml:"id"`
	Type         string          `yaml:"type"`
	ClientID     string          `yaml:"clientID"`
	ClientSecret string          `yaml:"clientSecret"`
	Endpoints    endpointsConfig `yaml:"endpoints"`
}

type endpointsConfig struct {
	Login string `yaml:"login"`
	API   string `yaml:"api"`
	OAPI  string `yaml:"oapi"`
}

type clientConfig struct {
	ID           string   `yaml:"id"`
	Secret       string   `yaml:"secret"`
	RedirectURIs []string `yaml:"redirectURIs"`
}

type rateLimitConfig struct {
	PerSecond float64 `yaml:"perSecond"`
	Burst     int     `yaml:"burst"`
}

type keysConfig struct {
	Algorithm string `yaml:"algorithm"`
}

type loggingConfig struct {
	Level string `yaml:"level"`
}

// writeConfig writes cfg 0600: it holds the client and DingTalk app secrets.
func writeConfig(path string, cfg providerConfig) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	// $ would be expanded by the provider; the generated values never hold one.
	if strings.Contains(string(b), "$") {
		return errors.New("generated configuration contains a $")
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write provider config: %w", err)
	}
	return nil
}
