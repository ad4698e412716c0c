package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/submit"
)

// submitCommon are the flags every "submit" subcommand has.
type submitCommon struct {
	model       string
	webhookURIs []string
	labels      []string
	wait        bool
	waitTimeout time.Duration
	collectWait time.Duration
	poll        time.Duration
}

func (s *submitCommon) flags(cmd *cobra.Command, modelHelp string) {
	f := cmd.Flags()
	f.StringVar(&s.model, "model", "", modelHelp+" (required)")
	f.StringArrayVar(&s.webhookURIs, "webhook-uri", nil, "send this job's events to URI instead of the registered webhooks (repeatable; JWT-signed)")
	f.StringArrayVar(&s.labels, "label", nil, "label KEY=VALUE stored on the job in Firestore (repeatable)")
	f.BoolVar(&s.wait, "wait", false, "wait until the job's results are collected (polls Firestore, not Gemini)")
	f.DurationVar(&s.waitTimeout, "wait-timeout", time.Hour, "with --wait: give up after this long")
	f.DurationVar(&s.collectWait, "collect-timeout", 2*time.Minute, "with --wait: how long to wait for collection once the job is terminal")
	f.DurationVar(&s.poll, "poll-interval", time.Second, "with --wait: Firestore polling interval")
}

func (s *submitCommon) parseLabels() (map[string]string, error) {
	if len(s.labels) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(s.labels))
	for _, l := range s.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageErr("--label must be KEY=VALUE, not %q", l)
		}
		m[strings.TrimSpace(k)] = v
	}
	// Checked before anything is submitted: a label that cannot travel as a
	// Pub/Sub attribute would leave a job at Gemini whose results event
	// lacks it.
	if err := event.ValidateLabels(m); err != nil {
		return nil, usageErr("--label: %v", err)
	}
	return m, nil
}

func (a *app) submitCmd() *cobra.Command {
	cmd := groupCmd("submit", "Submit a Gemini job and record it in the ledger",
		`  geminihooks submit batch --model gemini-2.5-flash --input requests.jsonl --label team=search
  geminihooks submit video --model veo-3.1-generate-preview --prompt "a cat surfing" --wait
  geminihooks submit interaction --model gemini-3-flash --input "What is the weather?" --tool get_weather`)
	cmd.Long = `Submits a job with the Gemini API (or the simulator, with --gemini-url) and
records it in Firestore as jobs/{id} with state "submitted", so the ledger
knows the job, its model and labels before its webhook arrives.

Prints the job id. With --wait, polls jobs/{id} in Firestore until the
Collector has collected the results (or failed to), then prints the job.`
	cmd.AddCommand(a.submitBatchCmd(), a.submitVideoCmd(), a.submitInteractionCmd())
	return cmd
}

func (a *app) submitBatchCmd() *cobra.Command {
	var (
		c           submitCommon
		input       string
		prompts     []string
		displayName string
	)
	cmd := &cobra.Command{
		Use:   "batch --model MODEL (--input FILE.jsonl | --prompt TEXT...)",
		Short: "Submit a batch job (a JSONL file or inline prompts)",
		Long: `Creates a Gemini batch job. With --input, the JSONL request file (one
{"key":…,"request":{…}} per line) is uploaded to the Files API first; with
--prompt (repeatable), each prompt becomes one inline request.`,
		Example: `  geminihooks submit batch --model gemini-2.5-flash --input requests.jsonl
  geminihooks submit batch --model gemini-2.5-flash --prompt "Hello" --prompt "Bonjour" --wait`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd.Flags(), "model"); err != nil {
				return err
			}
			if (input == "") == (len(prompts) == 0) {
				return usageErr("exactly one of --input or --prompt is required")
			}
			labels, err := c.parseLabels()
			if err != nil {
				return err
			}
			req := submit.BatchRequest{Model: c.model, Prompts: prompts, DisplayName: displayName, WebhookURIs: c.webhookURIs, Labels: labels}
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return inputErr("open --input", err)
				}
				defer f.Close()
				req.InputJSONL = f
				if req.DisplayName == "" {
					req.DisplayName = input
				}
			}
			return a.submitJob(cmd.Context(), event.KindBatch, c, func(ctx context.Context, st *ledger.Store) (event.JobRef, error) {
				g, err := a.geminiClient(ctx)
				if err != nil {
					return event.JobRef{}, err
				}
				return submit.Batch(ctx, g.GenAI, st, req)
			})
		},
	}
	c.flags(cmd, "model id, e.g. gemini-2.5-flash")
	cmd.Flags().StringVar(&input, "input", "", "JSONL request file to upload")
	cmd.Flags().StringArrayVar(&prompts, "prompt", nil, "inline prompt (repeatable)")
	cmd.Flags().StringVar(&displayName, "display-name", "", "batch display name, which Gemini requires (default: geminihooks-<UTC time>-<random>)")
	return cmd
}

func (a *app) submitVideoCmd() *cobra.Command {
	var (
		c      submitCommon
		prompt string
		n      int32
	)
	cmd := &cobra.Command{
		Use:     "video --model MODEL --prompt TEXT",
		Short:   "Submit a Veo video generation",
		Example: `  geminihooks submit video --model veo-3.1-generate-preview --prompt "a cat surfing at sunset"`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd.Flags(), "model", "prompt"); err != nil {
				return err
			}
			labels, err := c.parseLabels()
			if err != nil {
				return err
			}
			req := submit.VideoRequest{Model: c.model, Prompt: prompt, NumberOfVideos: n, WebhookURIs: c.webhookURIs, Labels: labels}
			return a.submitJob(cmd.Context(), event.KindVideo, c, func(ctx context.Context, st *ledger.Store) (event.JobRef, error) {
				g, err := a.geminiClient(ctx)
				if err != nil {
					return event.JobRef{}, err
				}
				return submit.Video(ctx, g.GenAI, st, req)
			})
		},
	}
	c.flags(cmd, "Veo model id, e.g. veo-3.1-generate-preview")
	cmd.Flags().StringVar(&prompt, "prompt", "", "video description (required)")
	cmd.Flags().Int32Var(&n, "videos", 0, "number of videos (0: service default)")
	return cmd
}

func (a *app) submitInteractionCmd() *cobra.Command {
	var (
		c     submitCommon
		input string
		tools []string
		bg    bool
	)
	cmd := &cobra.Command{
		Use:   "interaction --model MODEL --input TEXT [--tool NAME...]",
		Short: "Submit a background interaction",
		Long: `Creates an interaction with background=true (webhooks require it). Each
--tool declares a function taking one string argument "input"; if the model
calls it, the interaction ends in requires_action.`,
		Example: `  geminihooks submit interaction --model gemini-3-flash --input "Summarise RFC 9110"
  geminihooks submit interaction --model gemini-3-flash --input "weather in Paris" --tool get_weather`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd.Flags(), "model", "input"); err != nil {
				return err
			}
			if !bg {
				return usageErr("--background=false is not supported: webhooks need background interactions")
			}
			labels, err := c.parseLabels()
			if err != nil {
				return err
			}
			req := submit.InteractionRequest{Model: c.model, Input: input, Tools: tools, WebhookURIs: c.webhookURIs, Labels: labels}
			return a.submitJob(cmd.Context(), event.KindInteraction, c, func(ctx context.Context, st *ledger.Store) (event.JobRef, error) {
				g, err := a.geminiClient(ctx)
				if err != nil {
					return event.JobRef{}, err
				}
				return submit.Interaction(ctx, g.GenAI, st, req)
			})
		},
	}
	c.flags(cmd, "model id, e.g. gemini-3-flash")
	cmd.Flags().StringVar(&input, "input", "", "user input text (required)")
	cmd.Flags().StringArrayVar(&tools, "tool", nil, "declare a function tool NAME (repeatable)")
	cmd.Flags().BoolVar(&bg, "background", true, "run in the background (always true)")
	return cmd
}

// submitJob opens the ledger, submits, prints the job id and optionally waits.
func (a *app) submitJob(ctx context.Context, kind event.Kind, c submitCommon, do func(context.Context, *ledger.Store) (event.JobRef, error)) error {
	st, err := a.ledgerStore(ctx)
	if err != nil {
		return err
	}
	ref, err := do(ctx, st)
	if errors.Is(err, submit.ErrNotRecorded) {
		fmt.Fprintf(a.stderr, "job %s (%s) was created at Gemini but is not in the ledger yet; its webhook will record it\n", ref.ID, ref.Name)
	}
	if err != nil {
		if errors.Is(err, submit.ErrInvalidRequest) {
			return usageErr("%v", err)
		}
		return fail("submit "+string(kind), err)
	}
	if !c.wait {
		if a.format == formatJSON {
			return a.printJSON(map[string]string{"job_id": ref.ID, "kind": string(ref.Kind), "gemini_name": ref.Name, "state": string(event.StateSubmitted)})
		}
		fmt.Fprintf(a.stdout, "Submitted %s job %s (%s).\n", ref.Kind, ref.ID, ref.Name)
		fmt.Fprintf(a.stdout, "Follow it with: geminihooks jobs show %s\n", ref.ID)
		return nil
	}
	fmt.Fprintf(a.stderr, "Submitted %s job %s (%s); waiting for its results.\n", ref.Kind, ref.ID, ref.Name)
	job, err := a.waitJob(ctx, st, ref.ID, c)
	if err != nil {
		return err
	}
	if err := a.showJob(ctx, st, job, 10); err != nil {
		return err
	}
	return jobOutcome(job)
}

// waitJob polls jobs/{id} until it is collected or collection failed, or
// it is terminal and collection does not follow within c.collectWait.
func (a *app) waitJob(ctx context.Context, st *ledger.Store, id string, c submitCommon) (ledger.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, c.waitTimeout)
	defer cancel()
	start := time.Now()
	var terminalSince time.Time
	last := ""
	tick := time.NewTicker(max(c.poll, 50*time.Millisecond))
	defer tick.Stop()
	for {
		job, err := st.GetJob(ctx, id)
		if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			if ctx.Err() != nil {
				return job, a.waitTimedOut(id, c, ctx)
			}
			return job, fail("wait for job "+id, err)
		}
		line := fmt.Sprintf("%s: state=%s collection=%s deliveries=%d", id, orDash(job.State), orDash(job.CollectionState), job.Deliveries)
		if line != last {
			fmt.Fprintf(a.stderr, "[%5.1fs] %s\n", time.Since(start).Seconds(), line)
			last = line
		}
		switch job.CollectionState {
		case ledger.CollectionDone, ledger.CollectionFailed:
			return job, nil
		}
		if event.State(job.State).Terminal() {
			if terminalSince.IsZero() {
				terminalSince = time.Now()
			} else if time.Since(terminalSince) >= c.collectWait {
				return job, &cliError{what: "wait for job " + id,
					err:   fmt.Errorf("job is %s but its results were not collected within %s (is the Collector running?)", job.State, c.collectWait),
					retry: true}
			}
		}
		select {
		case <-ctx.Done():
			return job, a.waitTimedOut(id, c, ctx)
		case <-tick.C:
		}
	}
}

func (a *app) waitTimedOut(id string, c submitCommon, ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &cliError{what: "wait for job " + id, err: fmt.Errorf("not collected within --wait-timeout %s", c.waitTimeout), retry: true}
	}
	return &cliError{what: "wait for job " + id, err: ctx.Err()}
}

// jobOutcome turns a finished wait into the exit status: collected jobs that
// succeeded or need action are fine, everything else is a failure.
func jobOutcome(j ledger.Job) error {
	if j.CollectionState == ledger.CollectionFailed {
		msg := "collection failed"
		if j.CollectError != nil {
			msg += ": " + j.CollectError.Message
		}
		return &cliError{what: "job " + j.JobID, err: errors.New(msg), retry: true}
	}
	switch event.State(j.State) {
	case event.StateSucceeded, event.StateRequiresAction:
		return nil
	}
	msg := "job ended " + j.State
	if j.Error != nil {
		msg += ": " + strings.TrimSpace(j.Error.Code+" "+j.Error.Message)
	}
	return inputErr("job "+j.JobID, errors.New(msg))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
