package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"cloud.google.com/go/firestore"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// Output formats accepted by --format.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// app holds the global flags and the clients commands open lazily.
type app struct {
	stdout, stderr io.Writer

	project   string
	format    string
	geminiURL string
	apiKey    string
	database  string

	closers []func()
}

// run is the whole CLI; main only adds the process's arguments and streams.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	defer a.close()
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ce *cliError
	if !errors.As(err, &ce) {
		// Cobra's own errors: unknown command or flag, wrong arguments.
		ce = &cliError{what: "usage", err: err, usage: true}
	}
	fmt.Fprintf(stderr, "geminihooks: %s\n", ce.Error())
	if ce.usage {
		fmt.Fprintln(stderr, `Run "geminihooks help" or "geminihooks COMMAND --help" for usage.`)
		return exitUsage
	}
	return exitRuntime
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "geminihooks",
		Short: "Event-driven Gemini API jobs on Google Cloud",
		Long: `geminihooks receives Gemini API webhooks, records jobs in Firestore and
publishes Pub/Sub events. This tool runs the local stack, sends signed test
webhooks, submits jobs, inspects the job ledger, manages Gemini webhook
registrations and replays recorded events.`,
		Example: `  # Run the local stack with the Gemini simulator and a demo job
  geminihooks dev --demo

  # Submit a batch and wait until its results are collected
  geminihooks submit batch --model gemini-2.5-flash --prompt "Hello" --wait

  # Register a webhook, keeping its signing secret in a file
  geminihooks webhooks create --name prod --uri https://example.com/gemini --secret-file secret.txt`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.applyEnv(cmd.Flags())
			if a.format != formatTable && a.format != formatJSON {
				return usageErr("--format must be json or table, not %q", a.format)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr("unknown command %q", args[0])
			}
			return cmd.Help()
		},
		Args: cobra.ArbitraryArgs,
	}
	// Defaults from the environment are applied after parsing, so --help
	// never prints them (GEMINI_API_KEY is a credential).
	pf := root.PersistentFlags()
	pf.StringVar(&a.project, "project", "", "Google Cloud project id (default $GOOGLE_CLOUD_PROJECT)")
	pf.StringVar(&a.format, "format", formatTable, "output format: json or table")
	pf.StringVar(&a.geminiURL, "gemini-url", "", "Gemini API base URL, e.g. the simulator's (default $GEMINI_BASE_URL, else Google)")
	pf.StringVar(&a.apiKey, "api-key", "", "Gemini API key (default $GEMINI_API_KEY)")
	pf.StringVar(&a.database, "firestore-database", "", "Firestore database id (default $FIRESTORE_DATABASE, else (default))")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &cliError{what: "usage", err: err, usage: true}
	})
	root.AddCommand(
		a.devCmd(),
		a.sendCmd(),
		a.submitCmd(),
		a.jobsCmd(),
		a.webhooksCmd(),
		a.replayCmd(),
		a.reconcileCmd(),
		a.workflowCmd(),
	)
	return root
}

// applyEnv fills global flags the user did not set from the environment.
func (a *app) applyEnv(fs *pflag.FlagSet) {
	fill := func(v *string, flag, env, def string) {
		if !fs.Changed(flag) {
			*v = os.Getenv(env)
		}
		if *v == "" {
			*v = def
		}
	}
	fill(&a.project, "project", "GOOGLE_CLOUD_PROJECT", "")
	fill(&a.geminiURL, "gemini-url", "GEMINI_BASE_URL", "")
	fill(&a.apiKey, "api-key", "GEMINI_API_KEY", "")
	fill(&a.database, "firestore-database", "FIRESTORE_DATABASE", firestore.DefaultDatabaseID)
}

// groupCmd is a command that only holds subcommands: without one it prints
// help, with an unknown one it is a usage error.
func groupCmd(use, short, example string) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
}

// exactArgs is cobra.ExactArgs with a usage error naming the arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageErr("%s takes %d argument(s) (%s), got %d", cmd.CommandPath(), len(names), strings.Join(names, ", "), len(args))
		}
		for i, v := range args {
			if strings.TrimSpace(v) == "" {
				return usageErr("%s must not be empty", names[i])
			}
		}
		return nil
	}
}

// requireFlags returns a usage error naming the first unset flag.
func requireFlags(fs *pflag.FlagSet, names ...string) error {
	for _, n := range names {
		if f := fs.Lookup(n); f == nil || !f.Changed {
			return usageErr("--%s is required", n)
		}
	}
	return nil
}

// ledgerStore opens the Firestore ledger of the selected project.
func (a *app) ledgerStore(ctx context.Context) (*ledger.Store, error) {
	if a.project == "" {
		return nil, usageErr("--project (or $GOOGLE_CLOUD_PROJECT) is required")
	}
	c, err := firestore.NewClientWithDatabase(ctx, a.project, a.database)
	if err != nil {
		return nil, fail("firestore client", err)
	}
	a.closers = append(a.closers, func() { c.Close() })
	return ledger.New(c, ledger.Options{}), nil
}

// geminiClient builds the genai client from --api-key and --gemini-url.
func (a *app) geminiClient(ctx context.Context) (*gemini.Client, error) {
	if a.apiKey == "" {
		return nil, usageErr("--api-key (or $GEMINI_API_KEY) is required")
	}
	c, err := gemini.New(ctx, gemini.Config{APIKey: a.apiKey, BaseURL: a.geminiURL})
	if err != nil {
		return nil, inputErr("gemini client", err)
	}
	return c, nil
}
