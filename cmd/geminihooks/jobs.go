package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/spf13/cobra"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// jobView is the JSON form of a job: the Firestore document (its JSON
// names are its field names) plus, for "show", its first results.
type jobView struct {
	ledger.Job
	Results []resultView `json:"results,omitempty"`
}

// resultView is the JSON form of jobs/{id}/results/{result_id}.
type resultView struct {
	ID string `json:"id"`
	ledger.Result
}

func (a *app) jobsCmd() *cobra.Command {
	cmd := groupCmd("jobs", "Inspect jobs recorded in the Firestore ledger",
		`  geminihooks jobs list --state succeeded --limit 20
  geminihooks jobs show batch-abc --results 5 --format json`)
	cmd.AddCommand(a.jobsListCmd(), a.jobsShowCmd())
	return cmd
}

func (a *app) jobsListCmd() *cobra.Command {
	var (
		state string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "list [--state STATE] [--limit N]",
		Short: "List the most recently updated jobs",
		Example: `  geminihooks jobs list
  geminihooks jobs list --state failed --format json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch event.State(state) {
			case "", event.StateSubmitted, event.StateRunning, event.StateRequiresAction,
				event.StateSucceeded, event.StateFailed, event.StateExpired, event.StateCancelled:
			default:
				return usageErr("--state must be one of submitted, running, requires_action, succeeded, failed, expired, cancelled; not %q", state)
			}
			if limit < 1 {
				return usageErr("--limit must be at least 1")
			}
			ctx := cmd.Context()
			st, err := a.ledgerStore(ctx)
			if err != nil {
				return err
			}
			jobs, err := st.ListJobs(ctx, state, limit)
			if err != nil {
				return fail("list jobs", err)
			}
			if a.format == formatJSON {
				return a.printJSON(jobs)
			}
			rows := make([][]string, 0, len(jobs))
			for _, j := range jobs {
				rows = append(rows, []string{j.JobID, j.Kind, j.State, orDash(j.CollectionState),
					strconv.Itoa(j.Counts.Results), strconv.Itoa(j.Counts.Failed), fmtTime(j.UpdatedAt)})
			}
			return a.printTable([]string{"job_id", "kind", "state", "collection", "results", "failed", "updated"}, rows)
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only jobs in this state")
	cmd.Flags().IntVar(&limit, "limit", 50, "maximum number of jobs")
	return cmd
}

func (a *app) jobsShowCmd() *cobra.Command {
	var (
		results int
		wait    bool
	)
	cmd := &cobra.Command{
		Use:   "show JOB_ID [--results N] [--wait]",
		Short: "Show a job and its first collected results",
		Long: `Shows a job as recorded in the ledger and its first results. While a large
batch output is being collected over several Collector invocations the job's
collection_state is "collecting" and collection_progress says how far it got;
--wait shows a progress bar (on stderr) until collection ends.`,
		Example: `  geminihooks jobs show batch-abc
  geminihooks jobs show batch-abc --wait
  geminihooks jobs show interaction-v1_abc --results 0 --format json`,
		Args: exactArgs("JOB_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if results < 0 {
				return usageErr("--results must not be negative")
			}
			ctx := cmd.Context()
			st, err := a.ledgerStore(ctx)
			if err != nil {
				return err
			}
			job, err := st.GetJob(ctx, args[0])
			if err != nil {
				return fail("get job "+args[0], err)
			}
			if wait {
				if job, err = a.waitCollected(ctx, st, job, time.Second); err != nil {
					return err
				}
			}
			return a.showJob(ctx, st, job, results)
		},
	}
	cmd.Flags().IntVar(&results, "results", 10, "number of results to show (0: none)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the job's collection ends, showing its progress")
	return cmd
}

// showJob prints a job and up to n of its results.
func (a *app) showJob(ctx context.Context, st *ledger.Store, j ledger.Job, n int) error {
	res, err := readResults(ctx, st.Client(), j.JobID, n)
	if err != nil {
		return fail("read results of "+j.JobID, err)
	}
	if a.format == formatJSON {
		return a.printJSON(jobView{Job: j, Results: res})
	}
	var labels []string
	for k, v := range j.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	errText := func(e *event.JobError) string {
		if e == nil {
			return ""
		}
		return strings.TrimSpace(e.Code + " " + e.Message)
	}
	fields := [][2]string{
		{"job_id", j.JobID}, {"kind", j.Kind}, {"gemini_name", j.GeminiName}, {"model", j.Model},
		{"state", j.State}, {"labels", strings.Join(labels, ",")}, {"error", errText(j.Error)},
		{"last_event", strings.TrimSpace(j.EventType + " " + fmtTime(j.EventTime))},
		{"deliveries", strconv.FormatInt(j.Deliveries, 10)}, {"output_uri", j.OutputURI},
		{"submitted_at", fmtTime(j.SubmittedAt)}, {"updated_at", fmtTime(j.UpdatedAt)},
		{"collection_state", j.CollectionState}, {"collect_error", errText(j.CollectError)},
		{"results", fmt.Sprintf("%d (%d failed)", j.Counts.Results, j.Counts.Failed)},
		{"tokens", fmt.Sprintf("%d prompt, %d candidates, %d total", j.Tokens.Prompt, j.Tokens.Candidates, j.Tokens.Total)},
		{"results_path", j.ResultsPath}, {"collected_at", fmtTime(j.CollectedAt)},
		{"collection_progress", progressText(j.CollectionProgress)},
	}
	if err := a.printFields(fields); err != nil {
		return err
	}
	if len(res) == 0 {
		return nil
	}
	rows := make([][]string, 0, len(res))
	for _, r := range res {
		text := r.Text
		if r.Error != nil {
			text = "ERROR " + errText(r.Error)
		}
		rows = append(rows, []string{strconv.FormatInt(r.Index, 10), r.Key, truncate(oneLine(text), 80)})
	}
	fmt.Fprintln(a.stdout)
	return a.printTable([]string{"index", "key", "text"}, rows)
}

// readResults returns the first n results of a job in output order. It
// orders on index alone (the automatic single-field index) and sorts the
// parts of a split response locally.
func readResults(ctx context.Context, c *firestore.Client, jobID string, n int) ([]resultView, error) {
	if n <= 0 {
		return nil, nil
	}
	snaps, err := c.Collection(ledger.ResultsPath(jobID)).OrderBy("index", firestore.Asc).Limit(n).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("firestore query %s: %w", ledger.ResultsPath(jobID), err)
	}
	out := make([]resultView, 0, len(snaps))
	for _, s := range snaps {
		var r ledger.Result
		if err := s.DataTo(&r); err != nil {
			return nil, fmt.Errorf("decode %s: %w", s.Ref.Path, err)
		}
		out = append(out, resultView{ID: s.Ref.ID, Result: r})
	}
	sort.SliceStable(out, func(i, k int) bool {
		if out[i].Index != out[k].Index {
			return out[i].Index < out[k].Index
		}
		return out[i].Part < out[k].Part
	})
	return out, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// progressText renders collection_progress: lines, bytes of the file (with
// a percentage when its size is known), invocations and the last update.
func progressText(p *ledger.Progress) string {
	if p == nil {
		return ""
	}
	b := fmt.Sprintf("%d lines, %s", p.Lines, mib(p.Bytes))
	if p.TotalBytes > 0 {
		b += fmt.Sprintf(" of %s (%.0f%%)", mib(p.TotalBytes), 100*float64(p.Bytes)/float64(p.TotalBytes))
	}
	return fmt.Sprintf("%s, %d invocations, updated %s", b, p.Invocations, fmtTime(p.UpdatedAt))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// progressBar renders p as a one-line bar of width cells.
func progressBar(p *ledger.Progress, width int) string {
	if p == nil {
		return "[" + strings.Repeat(" ", width) + "] waiting"
	}
	frac := 0.0
	if p.TotalBytes > 0 {
		frac = min(float64(p.Bytes)/float64(p.TotalBytes), 1)
	}
	n := int(frac * float64(width))
	return fmt.Sprintf("[%s%s] %3.0f%% %d lines, %d invocations", strings.Repeat("#", n), strings.Repeat(" ", width-n),
		100*frac, p.Lines, p.Invocations)
}

// collectionOver reports whether nothing more will be collected for the
// job's current claims.
func collectionOver(j ledger.Job) bool {
	switch j.CollectionState {
	case ledger.CollectionDone, ledger.CollectionFailed:
		return true
	case "":
		return event.State(j.State).Terminal()
	}
	return false
}

// waitCollected polls the job every interval until its collection is over,
// drawing a progress bar on stderr, and returns the job as last read.
func (a *app) waitCollected(ctx context.Context, st *ledger.Store, j ledger.Job, interval time.Duration) (ledger.Job, error) {
	drawn := false
	for !collectionOver(j) {
		fmt.Fprintf(a.stderr, "\r%s: %s ", j.JobID, progressBar(j.CollectionProgress, 30))
		drawn = true
		select {
		case <-ctx.Done():
			fmt.Fprintln(a.stderr)
			return j, fail("wait for "+j.JobID, ctx.Err())
		case <-time.After(interval):
		}
		var err error
		if j, err = st.GetJob(ctx, j.JobID); err != nil {
			return j, fail("get job "+j.JobID, err)
		}
	}
	if drawn {
		fmt.Fprintf(a.stderr, "\r%s: %s\n", j.JobID, progressBar(j.CollectionProgress, 30))
	}
	return j, nil
}
