package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/geminihooks/geminihooks/shared/collect"
	"github.com/geminihooks/geminihooks/shared/devstack"
)

func (a *app) devCmd() *cobra.Command {
	var (
		project, gemini, publicURL, faults, secretFile string
		demo, verbose                                  bool
		collectBudget                                  time.Duration
		reconcileEvery                                 time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dev [--demo] [--gemini=sim|real] [--faults SPEC]",
		Short: "Run the local stack (emulators, functions, Gemini simulator)",
		Long: `Runs geminihooks locally until interrupted (Ctrl-C): the Firestore
emulator, an in-process Pub/Sub with push delivery, the Receiver, Collector,
Notifier and Workflow functions, and the Gemini simulator. When the stack is
up it prints one "ready key=value ..." line with the URLs and environment to
use, e.g. GEMINI_BASE_URL for "geminihooks submit --gemini-url".

With --gemini=real, jobs go to the real Gemini API (GEMINI_API_KEY) and its
webhooks must reach the local Receiver through --public-url (a tunnel).`,
		Example: `  # Local stack with a demo batch flowing end to end
  geminihooks dev --demo

  # Duplicate 30% of webhook deliveries and shuffle their order
  geminihooks dev --faults dup=0.3,shuffle

  # Behave like the real API where it differs: every id form in events,
  # redirected downloads, files that expire after 1h of sim-time
  geminihooks dev --faults ids=mixed,redirect,filettl=1h

  # Collect large batch outputs in 5 s steps (checkpoint + continuation)
  geminihooks dev --collect-budget 5s

  # Keep the local webhook's secret to send hand-made deliveries
  geminihooks dev --secret-file /tmp/gh-secret
  geminihooks send --url RECEIVER_URL --type batch.succeeded --id batches/x --secret-file /tmp/gh-secret

  # Every webhook delivery lost: the Reconciler's sweep (every 2s, jobs due
  # 2s after submission) still gets every job collected
  geminihooks dev --faults drop=1 --reconcile-every 2s

  # Real Gemini API, webhooks through a tunnel
  geminihooks dev --gemini=real --public-url https://abc.trycloudflare.com`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if collectBudget < 0 || collectBudget > collect.MaxTimeBudget {
				return usageErr("--collect-budget must be between 0 and %s, not %s", collect.MaxTimeBudget, collectBudget)
			}
			if gemini != "sim" && gemini != "real" {
				return usageErr("--gemini must be sim or real, not %q", gemini)
			}
			if gemini == "real" && publicURL == "" {
				return usageErr("--gemini=real needs --public-url: Gemini must be able to reach the Receiver")
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err := devstack.Run(ctx, devstack.Options{
				Project: project, Demo: demo, Gemini: gemini, PublicURL: publicURL,
				Out: a.stdout, Log: log, Faults: faults, SecretFile: secretFile, CollectBudget: collectBudget, ReconcileEvery: reconcileEvery,
			})
			if err != nil && ctx.Err() == nil {
				return fail("dev stack", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	// Shadows the global --project: the local stack uses its own project id.
	f.StringVar(&project, "project", "geminihooks-dev", "project id used by the emulators")
	f.BoolVar(&demo, "demo", false, "submit demo jobs once the stack is ready")
	f.StringVar(&gemini, "gemini", "sim", "Gemini backend: sim (local simulator) or real")
	f.StringVar(&publicURL, "public-url", "", "public URL of the local Receiver (with --gemini=real)")
	f.StringVar(&faults, "faults", "", "simulator knobs: dup=P, drop=P, lose=P, delay=D, shuffle[=D], timescale=X, jobs=D, ids=canonical|bare|prefixed|mixed, filettl=D, redirect, norange")
	f.StringVar(&secretFile, "secret-file", "", "write the local webhook's signing secret to this file (mode 0600), for geminihooks send")
	f.DurationVar(&collectBudget, "collect-budget", 0, "the Collector's time budget per invocation (COLLECT_TIME_BUDGET; default 300s): larger batch outputs are collected over several invocations")
	f.DurationVar(&reconcileEvery, "reconcile-every", 0, "run the Reconciler's sweep this often and make jobs due for their first check this long after submission (0: no sweeps); export the ready line's reconcile_first_check as RECONCILE_FIRST_CHECK for the CLI")
	f.BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	return cmd
}
