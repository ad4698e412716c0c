package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/geminihooks/geminihooks/shared/workflow"
	"github.com/geminihooks/geminihooks/shared/workflow/tools"
	"github.com/geminihooks/geminihooks/workflows"
)

// workflowCmd groups the workflow commands. Runs live in Firestore
// (workflow_runs); the definitions are the ones embedded from workflows/,
// the same the deployed Workflow function has.
func (a *app) workflowCmd() *cobra.Command {
	cmd := groupCmd("workflow", "Start and inspect multi-step Gemini workflows",
		`  geminihooks workflow list
  geminihooks workflow start summarise-consolidate --input '{"docs":["first text","second text"]}' --watch
  geminihooks workflow show summarise-consolidate-1a2b3c4d5e6f --watch
  geminihooks workflow retry-step summarise-consolidate-1a2b3c4d5e6f summarise`)
	cmd.AddCommand(a.workflowListCmd(), a.workflowStartCmd(), a.workflowShowCmd(), a.workflowRetryCmd(), a.workflowResumeCmd())
	return cmd
}

// workflowService opens the service; withGemini also builds the Gemini
// client (start and retry-step submit jobs).
func (a *app) workflowService(ctx context.Context, withGemini bool) (*workflow.Service, error) {
	reg := tools.Default()
	cat, err := workflow.LoadFS(workflows.FS, func(n string) bool { _, ok := reg.Lookup(n); return ok })
	if err != nil {
		return nil, fail("load workflow definitions", err)
	}
	st, err := a.ledgerStore(ctx)
	if err != nil {
		return nil, err
	}
	o := workflow.Options{Firestore: st.Client(), Ledger: st, Catalog: cat, Tools: reg}
	if withGemini {
		gc, err := a.geminiClient(ctx)
		if err != nil {
			return nil, err
		}
		o.GenAI = gc.GenAI
	}
	return workflow.New(o), nil
}

func (a *app) workflowListCmd() *cobra.Command {
	var (
		runs  bool
		limit int
	)
	cmd := &cobra.Command{
		Use:   "list [--runs [--limit N]]",
		Short: "List the deployed workflow definitions, or recent runs",
		Example: `  geminihooks workflow list
  geminihooks workflow list --runs --limit 10 --format json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usageErr("--limit must be at least 1")
			}
			ctx := cmd.Context()
			if !runs {
				reg := tools.Default()
				cat, err := workflow.LoadFS(workflows.FS, func(n string) bool { _, ok := reg.Lookup(n); return ok })
				if err != nil {
					return fail("load workflow definitions", err)
				}
				type defView struct {
					Name        string             `json:"name"`
					Description string             `json:"description,omitempty"`
					Steps       []string           `json:"steps"`
					On          []workflow.Trigger `json:"on,omitempty"`
				}
				var views []defView
				var rows [][]string
				for _, n := range cat.Names() {
					d := cat[n]
					v := defView{Name: d.Name, Description: d.Description, On: d.On}
					for _, s := range d.Steps {
						v.Steps = append(v.Steps, s.Name+"("+s.Kind+")")
					}
					var trig []string
					for _, t := range d.On {
						var ls []string
						for k, val := range t.Label {
							ls = append(ls, k+"="+val)
						}
						trig = append(trig, t.EventType+" "+strings.Join(ls, ","))
					}
					views = append(views, v)
					rows = append(rows, []string{d.Name, strings.Join(v.Steps, " → "), orDash(strings.Join(trig, "; ")), d.Description})
				}
				if a.format == formatJSON {
					return a.printJSON(views)
				}
				return a.printTable([]string{"name", "steps", "trigger", "description"}, rows)
			}
			svc, err := a.workflowService(ctx, false)
			if err != nil {
				return err
			}
			list, err := svc.List(ctx, limit)
			if err != nil {
				return fail("list workflow runs", err)
			}
			if a.format == formatJSON {
				if list == nil {
					list = []*workflow.Run{}
				}
				return a.printJSON(list)
			}
			rows := make([][]string, 0, len(list))
			for _, r := range list {
				rows = append(rows, []string{r.RunID, r.Workflow, r.Status, progress(r), fmtTime(r.UpdatedAt)})
			}
			return a.printTable([]string{"run", "workflow", "status", "steps", "updated"}, rows)
		},
	}
	cmd.Flags().BoolVar(&runs, "runs", false, "list recent runs instead of definitions")
	cmd.Flags().IntVar(&limit, "limit", 20, "maximum number of runs")
	return cmd
}

// parseInput turns --input values into the run input: one JSON object, or
// KEY=VALUE pairs (values that parse as JSON are kept as such).
func parseInput(vals []string) (map[string]any, error) {
	in := map[string]any{}
	for _, v := range vals {
		if strings.HasPrefix(strings.TrimSpace(v), "{") {
			var m map[string]any
			if err := json.Unmarshal([]byte(v), &m); err != nil {
				return nil, usageErr("--input %q: not a JSON object: %v", v, err)
			}
			for k, x := range m {
				in[k] = x
			}
			continue
		}
		k, val, ok := strings.Cut(v, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageErr("--input %q: want a JSON object or KEY=VALUE", v)
		}
		var x any
		if json.Unmarshal([]byte(val), &x) != nil {
			x = val
		}
		in[strings.TrimSpace(k)] = x
	}
	return in, nil
}

type watchFlags struct {
	watch    bool
	interval time.Duration
}

func (w *watchFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.watch, "watch", false, "follow the run's progress until it finishes")
	cmd.Flags().DurationVar(&w.interval, "interval", 2*time.Second, "how often --watch reads the run")
}

func (a *app) workflowStartCmd() *cobra.Command {
	var (
		inputs []string
		runID  string
		w      watchFlags
	)
	cmd := &cobra.Command{
		Use:   "start NAME [--input JSON|KEY=VALUE]... [--run-id ID] [--watch]",
		Short: "Start a workflow run and submit its first step",
		Example: `  geminihooks workflow start video-describe --input prompt="a lighthouse at dusk"
  geminihooks workflow start summarise-consolidate --input '{"docs":["a","b"]}' --run-id nightly-2026-11-29 --watch`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := parseInput(inputs)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			svc, err := a.workflowService(ctx, true)
			if err != nil {
				return err
			}
			id, err := svc.Start(ctx, args[0], runID, in)
			if err != nil {
				return workflowErr("start workflow "+args[0], err)
			}
			if a.format != formatJSON {
				fmt.Fprintf(a.stdout, "Started workflow run %s\n", id)
			}
			return a.showRun(ctx, svc, id, w)
		},
	}
	cmd.Flags().StringArrayVar(&inputs, "input", nil, "run input: a JSON object or KEY=VALUE (repeatable)")
	cmd.Flags().StringVar(&runID, "run-id", "", "run id (default NAME-<random>); starting an existing id again does nothing")
	w.add(cmd)
	return cmd
}

func (a *app) workflowShowCmd() *cobra.Command {
	var w watchFlags
	cmd := &cobra.Command{
		Use:   "show RUN [--watch]",
		Short: "Show a workflow run: per-step status, jobs and timings",
		Example: `  geminihooks workflow show video-describe-0a1b2c3d4e5f
  geminihooks workflow show video-describe-0a1b2c3d4e5f --watch --interval 5s`,
		Args: exactArgs("RUN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, err := a.workflowService(ctx, false)
			if err != nil {
				return err
			}
			return a.showRun(ctx, svc, args[0], w)
		},
	}
	w.add(cmd)
	return cmd
}

func (a *app) workflowRetryCmd() *cobra.Command {
	var w watchFlags
	cmd := &cobra.Command{
		Use:     "retry-step RUN STEP [--watch]",
		Short:   "Re-submit a failed step (a new attempt) and continue the run",
		Example: `  geminihooks workflow retry-step summarise-consolidate-1a2b3c4d5e6f summarise --watch`,
		Args:    exactArgs("RUN", "STEP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, err := a.workflowService(ctx, true)
			if err != nil {
				return err
			}
			if err := svc.RetryStep(ctx, args[0], args[1]); err != nil {
				return workflowErr("retry step "+args[1]+" of "+args[0], err)
			}
			if a.format != formatJSON {
				fmt.Fprintf(a.stdout, "Retrying step %s of run %s\n", args[1], args[0])
			}
			return a.showRun(ctx, svc, args[0], w)
		},
	}
	w.add(cmd)
	return cmd
}

func (a *app) workflowResumeCmd() *cobra.Command {
	var w watchFlags
	cmd := &cobra.Command{
		Use:     "resume RUN [--watch]",
		Short:   "Drive a stalled run: reconcile an abandoned submission, or take a lost results event from the ledger",
		Example: `  geminihooks workflow resume summarise-consolidate-1a2b3c4d5e6f --watch`,
		Args:    exactArgs("RUN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, err := a.workflowService(ctx, true)
			if err != nil {
				return err
			}
			if err := svc.Resume(ctx, args[0]); err != nil {
				return workflowErr("resume "+args[0], err)
			}
			return a.showRun(ctx, svc, args[0], w)
		},
	}
	w.add(cmd)
	return cmd
}

func workflowErr(what string, err error) error {
	switch {
	case errors.Is(err, workflow.ErrUnknownWorkflow), errors.Is(err, workflow.ErrRunNotFound),
		errors.Is(err, workflow.ErrNotRetryable), errors.Is(err, workflow.ErrInput):
		return inputErr(what, err)
	case errors.Is(err, workflow.ErrInFlight):
		return &cliError{what: what, err: err, retry: true}
	}
	return fail(what, err)
}

// showRun prints the run once, or with --watch every change until it
// ends (JSON: the final run). A failed run is exit status 1.
func (a *app) showRun(ctx context.Context, svc *workflow.Service, id string, w watchFlags) error {
	if w.interval <= 0 {
		return usageErr("--interval must be positive")
	}
	last := ""
	for {
		r, err := svc.Get(ctx, id)
		if err != nil {
			return workflowErr("get workflow run "+id, err)
		}
		if !w.watch {
			return a.printRun(r)
		}
		if a.format != formatJSON {
			if line := progressLine(r); line != last {
				fmt.Fprintln(a.stdout, line)
				last = line
			}
		}
		if r.Terminal() {
			if a.format == formatJSON {
				if err := a.printJSON(r); err != nil {
					return err
				}
			} else if err := a.printRun(r); err != nil {
				return err
			}
			if r.Status == workflow.RunFailed {
				return inputErr("workflow run "+id, fmt.Errorf("failed: %s; after fixing the cause: geminihooks workflow retry-step %s STEP", r.Error, id))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fail("watch workflow run "+id, ctx.Err())
		case <-time.After(w.interval):
		}
	}
}

func (a *app) printRun(r *workflow.Run) error {
	if a.format == formatJSON {
		return a.printJSON(r)
	}
	if err := a.printFields([][2]string{
		{"run", r.RunID}, {"workflow", r.Workflow}, {"status", r.Status}, {"error", r.Error},
		{"trigger", triggerText(r.Trigger)}, {"created_at", fmtTime(r.CreatedAt)},
		{"updated_at", fmtTime(r.UpdatedAt)}, {"finished_at", fmtTime(r.FinishedAt)},
	}); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	rows := make([][]string, 0, len(r.Steps))
	for _, s := range r.Steps {
		took := ""
		if !s.SubmittedAt.IsZero() && !s.FinishedAt.IsZero() {
			took = s.FinishedAt.Sub(s.SubmittedAt).Round(time.Second).String()
		}
		rows = append(rows, []string{s.Name, s.Kind, s.Status, orDash(s.State), orDash(s.JobID), strconv.Itoa(s.Attempt),
			strconv.Itoa(s.Turn), orDash(fmtTime(s.SubmittedAt)), orDash(took), orDash(s.Error)})
	}
	return a.printTable([]string{"step", "kind", "status", "job_state", "job_id", "attempt", "turns", "submitted", "took", "error"}, rows)
}

func triggerText(t *workflow.TriggerRef) string {
	if t == nil {
		return ""
	}
	return t.Type + " " + t.JobID
}

// progress is a compact per-step view: summarise:succeeded consolidate:running.
func progress(r *workflow.Run) string {
	parts := make([]string, 0, len(r.Steps))
	for _, s := range r.Steps {
		p := s.Name + ":" + s.Status
		if s.Turn > 0 {
			p += fmt.Sprintf("(turn %d)", s.Turn)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func progressLine(r *workflow.Run) string {
	return fmt.Sprintf("%s  %s  %s", time.Now().UTC().Format(time.TimeOnly), r.Status, progress(r))
}
