package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dingbridge/dingbridge/cmd/dingbridge/demoapp"
	"github.com/dingbridge/dingbridge/config"
	"github.com/dingbridge/dingbridge/upstream/dingtalk/dingtalktest"
)

// devOptions are the flags of `dingbridge dev`.
type devOptions struct {
	listen         string
	dingtalkListen string
	autoApprove    string
	dbPath         string
	logLevel       string
}

func devCommand() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the provider with a fake DingTalk, demo users and a demo app (no credentials needed)",
		Long: `dev runs everything a newcomer needs to click through a login: the provider,
a fake DingTalk beside it, three demo users, a demo client and a demo app at /demo.
Nothing is real: the database is thrown away on exit unless --db is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:5556", "address of the provider (and the demo app)")
	f.StringVar(&o.dingtalkListen, "dingtalk-listen", "127.0.0.1:5557", "address of the fake DingTalk")
	f.StringVar(&o.autoApprove, "auto-approve", "", "log in as this demo user (nick or unionId) without showing the fake DingTalk page")
	f.StringVar(&o.dbPath, "db", "", "keep the database in this file, fsynced like serve's (default: a temporary file, not synced, removed on exit)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func runDev(ctx context.Context, o devOptions, stdout, stderr io.Writer) error {
	logger := newLogger(stderr, config.Logging{Level: o.logLevel})
	defer useDefaultLogger(logger)()
	users := dingtalktest.DemoUsers()
	var approve dingtalktest.User
	if o.autoApprove != "" {
		var ok bool
		if approve, ok = findDemoUser(users, o.autoApprove); !ok {
			return fmt.Errorf("--auto-approve %q: no demo user has that nick or unionId", o.autoApprove)
		}
	}

	dbPath := o.dbPath
	if dbPath == "" {
		dir, err := os.MkdirTemp("", "dingbridge-dev-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dbPath = filepath.Join(dir, "dingbridge.db")
	}
	for _, a := range []struct{ flag, addr string }{{"--listen", o.listen}, {"--dingtalk-listen", o.dingtalkListen}} {
		if err := loopbackAddr(a.addr); err != nil {
			return usageError{fmt.Errorf("%s %s: %w", a.flag, a.addr, err)}
		}
	}
	dtListener, err := net.Listen("tcp", o.dingtalkListen)
	if err != nil {
		return fmt.Errorf("fake DingTalk: listen on %s: %w: choose another address with --dingtalk-listen", o.dingtalkListen, err)
	}
	defer dtListener.Close()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w: choose another address with --listen, e.g. --listen 127.0.0.1:5558", o.listen, err)
	}
	defer ln.Close() // on early errors; serveHTTP closes it otherwise
	issuer := "http://" + ln.Addr().String()
	dingtalkURL := "http://" + dtListener.Addr().String()

	// The demo app is an internal app of the demo organisation, so the directory
	// (corp claims, departments as groups) works in dev as it would in a company.
	dtApp := dingtalktest.App{ClientID: "dingbridge-dev", ClientSecret: rand.Text(), RedirectURIs: []string{issuer + "/callback/dingtalk"}, CorpID: dingtalktest.DemoCorpID}
	fake := dingtalktest.New(dingtalktest.Config{
		Apps: []dingtalktest.App{dtApp}, Users: users, Corps: []dingtalktest.Corp{dingtalktest.DemoCorp()}, Logger: logger,
	})
	defer fake.Close()
	if approve.UnionID != "" {
		fake.AutoApprove(approve.UnionID)
	}
	dtServer := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = dtServer.Serve(dtListener) }()
	defer dtServer.Close()

	demo, err := demoapp.New(demoapp.Config{Issuer: issuer, ClientID: "demo", ClientSecret: rand.Text(), BaseURL: issuer + "/demo"})
	if err != nil {
		return err
	}
	cfg := &config.Config{
		Issuer: issuer,
		Connectors: []config.Connector{{
			ID: "dingtalk", Name: "钉钉 (fake)", ClientID: dtApp.ClientID, ClientSecret: dtApp.ClientSecret,
			Scope: "openid corpid", CorpID: dingtalktest.DemoCorpID,
			Endpoints: config.Endpoints{Login: dingtalkURL, API: dingtalkURL, OAPI: dingtalkURL},
		}},
		StaticClients: []config.StaticClient{{
			ID: "demo", Name: "Demo app", Secret: demo.ClientSecret(),
			RedirectURIs: []string{demo.RedirectURI()}, PostLogoutRedirectURIs: []string{demo.PostLogoutRedirectURI()},
		}, {
			// For trying the device flow from a terminal (README shows the curl commands).
			ID: "demo-cli", Name: "Demo CLI", Public: true, GrantTypes: []string{"device_code", "refresh_token"},
		}},
	}
	// A temporary database skips fsync (it is deleted on exit anyway); one kept
	// with --db is synced like serve's, so a crash cannot corrupt it.
	store, err := openStorage(ctx, config.Storage{Type: "bolt", Path: dbPath}, o.dbPath == "")
	if err != nil {
		return err
	}
	defer store.Close()
	km, err := newKeyManager(ctx, store, cfg.Keys, false)
	if err != nil {
		return err
	}
	provider, err := newProvider(ctx, cfg, store, km, nil, logger)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/demo/", demo)
	mux.Handle("/demo", demo)
	mux.Handle("/", provider)
	// The issuer's root is the demo app's front door in dev.
	mux.Handle("GET /{$}", http.RedirectHandler("/demo/", http.StatusFound))

	printDevBanner(stdout, issuer, dingtalkURL, cfg.StaticClients[0], users, o.autoApprove)
	return serveHTTP(ctx, ln, mux, provider, logger)
}

// loopbackAddr refuses what dev cannot serve: its issuer is the address
// itself, plain http, which only a loopback host may be (and a wildcard such
// as 0.0.0.0 is no address a browser can be sent back to).
func loopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not host:port: %w", err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return errors.New("dev serves plain http under its own address, so it listens on loopback only: use 127.0.0.1:PORT (to try it from another machine, run serve with an https issuer)")
	}
	return nil
}

func findDemoUser(users []dingtalktest.User, who string) (dingtalktest.User, bool) {
	for _, u := range users {
		if u.Nick == who || u.UnionID == who {
			return u, true
		}
	}
	return dingtalktest.User{}, false
}

func printDevBanner(w io.Writer, issuer, dingtalkURL string, client config.StaticClient, users []dingtalktest.User, autoApprove string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\ndingbridge dev — a provider with a fake DingTalk. Nothing here is real.\n\n")
	fmt.Fprintf(&b, "  Demo app:       %s/demo/   ← open this and press “log in”\n", issuer)
	fmt.Fprintf(&b, "  Issuer:         %s\n", issuer)
	fmt.Fprintf(&b, "  Discovery:      %s/.well-known/openid-configuration\n", issuer)
	fmt.Fprintf(&b, "  Fake DingTalk:  %s\n\n", dingtalkURL)
	fmt.Fprintf(&b, "  Demo client:    id %s\n", client.ID)
	fmt.Fprintf(&b, "                  secret %s\n", client.Secret)
	fmt.Fprintf(&b, "                  redirect URI %s\n", client.RedirectURIs[0])
	fmt.Fprintf(&b, "  Device flow:    public client demo-cli; people approve at %s/device\n\n", issuer)
	fmt.Fprintf(&b, "  Demo users:\n")
	for _, u := range users {
		fmt.Fprintf(&b, "    %s  unionId %s\n", u.Nick, u.UnionID)
	}
	if autoApprove != "" {
		fmt.Fprintf(&b, "\n  The fake DingTalk approves %s at once (--auto-approve).\n", autoApprove)
	}
	fmt.Fprintln(&b)
	_, _ = io.WriteString(w, b.String())
}
