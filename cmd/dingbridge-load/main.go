// Command dingbridge-load drives an OpenID Provider the way its relying parties
// do and prints what it sustained: whole logins (authorization code + PKCE,
// every id_token verified), refresh-token rotations, or userinfo calls, from many
// concurrent workers for a fixed time.
//
// It runs outside the provider's process against any issuer (dingbridge, Dex, …)
// whose login completes without a person: dingbridge with an auto-approving fake
// DingTalk, which this command can start (-dingtalk-listen), or Dex with its mock
// connector. With -provider it also starts dingbridge itself, as a child
// `dingbridge serve` on 127.0.0.1 with a generated configuration (bbolt, fsync
// on), and reports the provider's CPU per operation and its anonymous memory.
//
// It sends requests only to the issuer (and the endpoints its discovery document
// names on the issuer's host), to the fake it started, and never further: a
// redirect anywhere else ends that operation as an error. It stops after
// -duration. The last line of its output is
//
//	RESULT mode=login ok=1234 ops_per_s=205.3 p50_ms=3.9 p99_ms=12.1 errors=0
//
// with cpu_ms_per_op and rss_anon_mb appended when it measured the provider's
// process (-provider or -provider-pid), and load_cpu_ms_per_op, its own CPU
// per operation, with them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, "dingbridge-load:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errUsage marks a bad command line.
var errUsage = errors.New("usage")

// Modes of operation: what one operation is.
const (
	modeLogin    = "login"    // a whole code flow + PKCE, id_token verified
	modeRefresh  = "refresh"  // one refresh_token grant, rotating the worker's token
	modeUserinfo = "userinfo" // one userinfo GET with a bearer access token
)

// options are the command line, parsed.
type options struct {
	mode        string
	issuer      string
	clientID    string
	secret      string // the client secret (from a file or the environment, never a flag)
	redirectURI string
	scopes      string
	concurrency int
	// clients is how many OAuth clients the load spreads over: clientID itself
	// when 1, else clientID-1 … clientID-N sharing one secret. Refresh and
	// userinfo log each in once and use its tokens: one chain per client, as a
	// provider may keep one refresh token per person and client (Dex does).
	clients  int
	duration time.Duration
	warmup   time.Duration
	timeout  time.Duration

	providerBin  string // start `providerBin serve` with the fake DingTalk
	providerPID  int    // measure this already running provider
	keyAlgorithm string // of the provider we start: RS256 or ES256
	keepDir      bool   // keep the started provider's directory (database, config, log)

	dingtalkListen   string // start only the fake DingTalk here, for a provider started elsewhere
	dingtalkClientID string
	dingtalkSecret   string
	connectorID      string

	verbose bool
}

// Env looks up an environment variable; os.LookupEnv fits.
type Env func(string) (string, bool)

const secretEnv = "DINGBRIDGE_LOAD_CLIENT_SECRET"
const dingtalkSecretEnv = "DINGBRIDGE_LOAD_DINGTALK_SECRET"

func parseOptions(args []string, stderr io.Writer, env Env) (options, error) {
	var o options
	var secretFile, dingtalkSecretFile string
	fs := flag.NewFlagSet("dingbridge-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.mode, "mode", modeLogin, "what one operation is: login, refresh or userinfo")
	fs.StringVar(&o.issuer, "issuer", "", "the provider's issuer URL (not with -provider, which starts one)")
	fs.StringVar(&o.clientID, "client-id", "", "a confidential client registered at the issuer (with -provider: generated)")
	fs.StringVar(&secretFile, "client-secret-file", "", "file holding the client secret (or set $"+secretEnv+")")
	fs.StringVar(&o.redirectURI, "redirect-uri", "http://127.0.0.1:1/callback", "the client's registered redirect URI; it is never contacted")
	fs.StringVar(&o.scopes, "scopes", "openid profile email offline_access", "scopes to ask for (refresh needs offline_access)")
	fs.IntVar(&o.concurrency, "concurrency", 8, "workers running operations at once")
	fs.IntVar(&o.clients, "clients", 1, "OAuth clients to spread over: -client-id itself when 1, else <client-id>-1 … <client-id>-N with one secret; refresh and userinfo use one token chain per client")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to measure")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "run this long first without counting")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "each HTTP request's timeout")
	fs.StringVar(&o.providerBin, "provider", "", "path to a dingbridge binary: start it (and a fake DingTalk) on 127.0.0.1 and measure its CPU and memory")
	fs.IntVar(&o.providerPID, "provider-pid", 0, "measure the CPU and memory of this already running provider process")
	fs.StringVar(&o.keyAlgorithm, "key-algorithm", "RS256", "with -provider: the signing algorithm, RS256 or ES256")
	fs.BoolVar(&o.keepDir, "keep", false, "with -provider: keep its directory (config, database, log) and print where it is")
	fs.StringVar(&o.dingtalkListen, "dingtalk-listen", "", "start only the fake DingTalk (auto-approving) on this loopback address, for a provider started elsewhere")
	fs.StringVar(&o.dingtalkClientID, "dingtalk-client-id", "dingbridge-load", "with -dingtalk-listen: the DingTalk app's client ID the provider uses")
	fs.StringVar(&dingtalkSecretFile, "dingtalk-client-secret-file", "", "with -dingtalk-listen: file holding that app's secret (or set $"+dingtalkSecretEnv+")")
	fs.StringVar(&o.connectorID, "connector", "dingtalk", "with -dingtalk-listen: the provider's connector ID (its callback is <issuer>/callback/<id>)")
	fs.BoolVar(&o.verbose, "v", false, "report every failed operation, not only the first of each kind")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: dingbridge-load [flags]\n\n"+
			"  dingbridge-load -provider ./dingbridge -mode login -concurrency 8 -duration 10s\n"+
			"  dingbridge-load -issuer http://127.0.0.1:5556/dex -client-id load -client-secret-file secret -mode refresh\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	bad := func(format string, a ...any) (options, error) {
		return o, fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
	}
	switch o.mode {
	case modeLogin, modeRefresh, modeUserinfo:
	default:
		return bad("-mode %q: use login, refresh or userinfo", o.mode)
	}
	if o.concurrency < 1 || o.concurrency > 1024 {
		return bad("-concurrency %d: use 1 to 1024", o.concurrency)
	}
	if o.clients < 1 || o.clients > 1000 {
		return bad("-clients %d: use 1 to 1000", o.clients)
	}
	if o.duration <= 0 || o.duration > time.Hour {
		return bad("-duration %s: use more than 0 and at most 1h", o.duration)
	}
	if o.warmup < 0 || o.timeout <= 0 {
		return bad("-warmup must not be negative and -timeout must be positive")
	}
	if o.mode == modeRefresh && !strings.Contains(" "+o.scopes+" ", " offline_access ") {
		return bad("-mode refresh needs offline_access in -scopes")
	}
	if o.keyAlgorithm != "RS256" && o.keyAlgorithm != "ES256" {
		return bad("-key-algorithm %q: use RS256 or ES256", o.keyAlgorithm)
	}
	if o.providerBin != "" {
		if o.issuer != "" || o.clientID != "" || o.providerPID != 0 || o.dingtalkListen != "" {
			return bad("-provider starts its own provider: leave out -issuer, -client-id, -provider-pid and -dingtalk-listen")
		}
		return o, nil
	}
	if o.issuer == "" || o.clientID == "" {
		return bad("give -issuer and -client-id (or -provider to start a dingbridge)")
	}
	var err error
	if o.secret, err = readSecret(secretFile, secretEnv, env); err != nil {
		return o, err
	}
	if o.dingtalkListen != "" {
		if o.dingtalkSecret, err = readSecret(dingtalkSecretFile, dingtalkSecretEnv, env); err != nil {
			return o, err
		}
		if o.dingtalkSecret == "" {
			return bad("-dingtalk-listen needs the app secret: -dingtalk-client-secret-file or $%s", dingtalkSecretEnv)
		}
	}
	return o, nil
}

// readSecret reads a secret from file, else from the environment variable name.
func readSecret(file, name string, env Env) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read secret: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	v, _ := env(name)
	return v, nil
}

// run is the whole command as a function, so tests can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env Env) error {
	o, err := parseOptions(args, stderr, env)
	if err != nil {
		return err
	}
	target := target{issuer: o.issuer, clientID: o.clientID, secret: o.secret, pid: o.providerPID}
	switch {
	case o.providerBin != "":
		started, err := startProvider(ctx, providerOptions{binary: o.providerBin, redirectURI: o.redirectURI, clients: o.clients,
			keyAlgorithm: o.keyAlgorithm, keepDir: o.keepDir, stderr: stderr})
		if err != nil {
			return err
		}
		defer started.stop()
		target = started.target
		fmt.Fprintf(stdout, "started %s serve (pid %d, %s signing, bbolt with fsync) at %s; fake DingTalk at %s\n",
			o.providerBin, target.pid, o.keyAlgorithm, target.issuer, started.dingtalkURL)
		if o.keepDir {
			fmt.Fprintf(stdout, "its config, database and log stay in %s\n", started.dir)
		}
	case o.dingtalkListen != "":
		fake, err := startFakeDingTalk(o.dingtalkListen, o.dingtalkClientID, o.dingtalkSecret,
			strings.TrimSuffix(o.issuer, "/")+"/callback/"+o.connectorID)
		if err != nil {
			return err
		}
		defer fake.close()
		target.extraHosts = append(target.extraHosts, fake.host)
		target.upstreamConns = fake.conns
		fmt.Fprintf(stdout, "fake DingTalk (auto-approving %s) at %s\n", fake.user, fake.url)
	}
	res, err := runLoad(ctx, o, target, stdout, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res.line())
	return nil
}
