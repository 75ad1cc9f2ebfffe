// Command dingbridge is an OpenID Provider that logs people in with DingTalk.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/dingbridge/dingbridge/config"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	// zitadel's op starts an OpenTelemetry span in most of its handlers and
	// storage calls. Nothing here exports traces; with the no-op provider those
	// spans cost nothing, where the default global one allocates each of them.
	otel.SetTracerProvider(noop.NewTracerProvider())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// run is the whole CLI as a function, so tests can drive it without a process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env config.Env) int {
	root := &cobra.Command{
		Use:           "dingbridge",
		Short:         "An OpenID Provider that logs people in with DingTalk (钉钉)",
		Long:          "An OpenID Provider that logs people in with DingTalk (钉钉).\n" + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(serveCommand(env), devCommand(), configCommand(env), versionCommand(),
		clientCommand(env), keysCommand(env), usersCommand(env), claimsCommand(env),
		backupCommand(env), dbCommand(env), reloadCommand(env), healthCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "dingbridge:", err)
		return exitCode(err)
	}
	return exitOK
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			revision := ""
			if info, ok := debug.ReadBuildInfo(); ok {
				for _, s := range info.Settings {
					if s.Key == "vcs.revision" {
						revision = " (" + s.Value + ")"
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "dingbridge %s%s\n", version, revision)
		},
	}
}

func configCommand(env config.Env) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with the configuration file"}
	var path string
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate a configuration file and say what is wrong with it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, env)
			if err != nil {
				return err
			}
			// What serve builds from the file, short of opening the database:
			// a file that passes here starts.
			if _, err := newConnectors(cfg, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK (issuer %s, %d connector(s), %d static client(s))\n",
				path, cfg.Issuer, len(cfg.Connectors), len(cfg.StaticClients))
			return nil
		},
	}
	addConfigFlag(check, &path, env)
	cmd.AddCommand(check)
	return cmd
}

// addConfigFlag adds --config, defaulting to $DINGBRIDGE_CONFIG.
func addConfigFlag(cmd *cobra.Command, path *string, env config.Env) {
	def := ""
	if env != nil {
		def, _ = env("DINGBRIDGE_CONFIG")
	}
	cmd.Flags().StringVarP(path, "config", "c", def, "configuration file (default $DINGBRIDGE_CONFIG)")
	if def == "" {
		_ = cmd.MarkFlagRequired("config")
	}
}
