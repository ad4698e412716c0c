package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

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
	var results int
	cmd := &cobra.Command{
		Use:   "show JOB_ID [--results N]",
		Short: "Show a job and its first collected results",
		Example: `  geminihooks jobs show batch-abc
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
			return a.showJob(ctx, st, job, results)
		},
	}
	cmd.Flags().IntVar(&results, "results", 10, "number of results to show (0: none)")
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
