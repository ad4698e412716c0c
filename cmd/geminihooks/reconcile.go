package main

import (
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/spf13/cobra"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/reconcile"
	"github.com/geminihooks/geminihooks/shared/topology"
)

func (a *app) reconcileCmd() *cobra.Command {
	var (
		dryRun, reenable, noList bool
		topic                    string
		limit                    int
		lookback, stuckAfter     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reconcile [--dry-run]",
		Short: "Run one Reconciler sweep: find jobs whose webhook never arrived",
		Long: `Runs the Reconciler function's sweep once, from here: reads from Gemini's
API the jobs whose scheduled check is due (next_check_at), announces every
job state no webhook announced on the events topic exactly like a webhook
(delivery id reconcile:<job>:<state>), drives stuck collections again,
records batches Gemini has that the ledger does not, and reports Gemini
webhooks disabled after failed deliveries.

With --dry-run it reads and reports, and writes and publishes nothing.
FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST are honoured.`,
		Example: `  geminihooks reconcile --dry-run
  geminihooks reconcile --format json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.ledgerStore(ctx)
			if err != nil {
				return err
			}
			gc, err := a.geminiClient(ctx)
			if err != nil {
				return err
			}
			ps, err := pubsub.NewClient(ctx, a.project)
			if err != nil {
				return fail("pubsub client", err)
			}
			defer ps.Close()
			pub := bus.NewPubSubPublisher(ps, topic)
			defer pub.Stop()
			svc := reconcile.New(reconcile.Options{
				Ledger: st, Gemini: reconcile.GenAI{Client: gc}, Announcer: &ingest.Service{Ledger: st, Publisher: pub},
				Limit: limit, LookBack: lookback, StuckAfter: stuckAfter, ReEnableWebhooks: reenable, SkipBatchList: noList,
				Budget: topology.ReconcilerDeadline,
				Logger: slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			})
			rep, err := svc.Sweep(ctx, dryRun)
			if a.format == formatJSON {
				if perr := a.printJSON(rep); perr != nil {
					return perr
				}
			} else {
				verb := "Announced"
				if dryRun {
					verb = "Would announce"
				}
				fmt.Fprintf(a.stdout, "Checked %d due jobs with %d Gemini calls. %s %d missed job states; re-drove %d stuck collections; found %d unknown batches.\n",
					rep.Checked, rep.GeminiCalls, verb, rep.Missed, rep.Redriven, rep.Discovered)
				if rep.DisabledWebhooks > 0 {
					fmt.Fprintf(a.stdout, "%d Gemini webhooks are disabled after failed deliveries (re-enabled: %d).\n", rep.DisabledWebhooks, rep.ReEnabled)
				}
				if rep.Truncated {
					fmt.Fprintln(a.stdout, "More work is due: run it again.")
				}
				for _, e := range rep.Errors {
					fmt.Fprintln(a.stdout, "error:", e)
				}
			}
			if err != nil {
				return fail("reconcile", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&dryRun, "dry-run", false, "read and report only")
	f.StringVar(&topic, "topic", topology.Default("").EventsTopic(), "events topic id")
	f.IntVar(&limit, "limit", reconcile.DefaultLimit, "jobs read per step")
	f.DurationVar(&lookback, "lookback", reconcile.DefaultLookBack, "list Gemini's batches created this far back")
	f.DurationVar(&stuckAfter, "stuck-after", reconcile.DefaultStuckAfter, "re-drive a collection idle this long")
	f.BoolVar(&reenable, "reenable-webhooks", false, "re-enable webhooks Gemini disabled after failed deliveries")
	f.BoolVar(&noList, "no-list-batches", false, "do not list Gemini's batches for unknown ones")
	return cmd
}
