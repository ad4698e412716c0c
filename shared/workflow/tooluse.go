package workflow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genai"
	gi "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/retry"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/submit"
	"github.com/geminihooks/geminihooks/shared/workflow/tools"
)

// noRetry: a lost Interactions.Create response retried by the SDK would
// start a second, billed interaction; Pub/Sub redelivery is the retry.
var noRetry = operations.WithRetries(retry.Config{Strategy: "none"})

// PendingCall is a function call the Collector stored on a requires_action
// interaction (jobs/{id}.output.pending_calls).
type PendingCall struct {
	ID, Name, ArgumentsJSON string
}

// pendingCalls reads output.pending_calls of a job.
func pendingCalls(job ledger.Job) []PendingCall {
	raw, _ := job.Output["pending_calls"].([]any)
	var out []PendingCall
	for _, c := range raw {
		m, _ := c.(map[string]any)
		if m == nil {
			continue
		}
		s := func(k string) string { v, _ := m[k].(string); return v }
		out = append(out, PendingCall{ID: s("id"), Name: s("name"), ArgumentsJSON: s("arguments_json")})
	}
	return out
}

// toolTurn answers a requires_action interaction: it runs the registered
// tool of every pending call and continues the interaction with the results
// (previous_interaction_id, background, webhook by the static
// registration), recording the new interaction with the step's labels and
// the next turn so its results event continues the loop.
func (s *Service) toolTurn(ctx context.Context, r *Run, act action) error {
	d, err := s.def(r)
	if err != nil {
		return err
	}
	sd, st := d.Steps[act.step], r.Steps[act.step]
	failWith := func(reason string) error {
		return s.finish(ctx, r.RunID, act.step, act.token, func(r *Run, st *StepState, sd Step, now time.Time) {
			s.failStep(r, st, sd, reason, now)
		})
	}
	job, err := s.o.Ledger.GetJob(ctx, st.JobID)
	if err != nil {
		return s.release(ctx, r.RunID, act.step, act.token, err)
	}
	calls := pendingCalls(job)
	if omitted, _ := job.Output["pending_calls_omitted"].(bool); omitted {
		return failWith(fmt.Sprintf("interaction %s requires action, but its %v pending function calls (%v bytes of arguments) were too large to store on the job",
			st.JobID, job.Output["pending_calls_count"], job.Output["pending_calls_bytes"]))
	}
	if len(calls) == 0 {
		return failWith(fmt.Sprintf("interaction %s requires action but has no pending function calls", st.JobID))
	}
	// Every declared tool is offered again in the continuation. One taken
	// out of the registry (a deployment) while this run waited fails the
	// step here, before any tool runs, rather than mid-turn.
	for _, name := range sd.Tools {
		if _, ok := s.o.Tools.Lookup(name); !ok {
			return failWith(fmt.Sprintf("interaction %s cannot be continued: step %s declares %v %q (registered: %s); it is not (or no longer) registered",
				st.JobID, sd.Name, tools.ErrUnknownTool, name, strings.Join(s.o.Tools.Names(), ", ")))
		}
	}
	var steps []gi.Step
	for _, c := range calls {
		if !containsTool(sd.Tools, c.Name) {
			return failWith(fmt.Sprintf("interaction %s called tool %q, which step %s does not declare (declared: %s)", st.JobID, c.Name, sd.Name, strings.Join(sd.Tools, ", ")))
		}
		out, err := s.o.Tools.Call(ctx, c.Name, []byte(c.ArgumentsJSON))
		if errors.Is(err, tools.ErrUnknownTool) {
			return failWith(fmt.Sprintf("interaction %s called %v", st.JobID, err))
		}
		fr := gi.FunctionResultStep{CallID: c.ID, Name: genai.Ptr(c.Name)}
		if err != nil {
			// The model sees the failure and may recover.
			fr.IsError, out = genai.Ptr(true), err.Error()
		}
		fr.Result = gi.NewFunctionResultStepResultUnion(out)
		steps = append(steps, gi.NewStep(fr))
	}
	body := gi.CreateModelInteraction{
		Model:                 gi.Model(sd.Model),
		Input:                 genai.Ptr(gi.NewInteractionsInput(steps)),
		PreviousInteractionID: genai.Ptr(job.GeminiName),
		Background:            genai.Ptr(true),
	}
	for _, name := range sd.Tools {
		t, _ := s.o.Tools.Lookup(name)
		body.Tools = append(body.Tools, gi.NewTool(gi.Function{
			Name: genai.Ptr(t.Name()), Description: genai.Ptr(t.Description()), Parameters: t.Parameters(),
		}))
	}
	gctx, cancel := s.geminiCtx(ctx)
	defer cancel()
	turn := st.Turn + 1
	res, err := s.o.GenAI.Interactions.Create(gctx, operations.CreateInteractionRequest{
		Body: operations.NewCreateInteractionRequestBody(body),
	}, noRetry)
	var ref event.JobRef
	switch {
	case err != nil:
		err = gemini.Classify(fmt.Errorf("gemini interactions.create (continue %s): %w", job.GeminiName, err))
	case res == nil || res.Interaction == nil || res.Interaction.ID == nil || *res.Interaction.ID == "":
		err = fmt.Errorf("gemini interactions.create (continue %s): response has no interaction id: %w", job.GeminiName, gemini.ErrTransient)
	default:
		ref, err = event.RefForName(event.KindInteraction, *res.Interaction.ID)
		if err == nil {
			if rerr := s.o.Ledger.RecordSubmission(ctx, ledger.Submission{Ref: ref, Model: sd.Model, Labels: s.labels(r.RunID, st, turn), SubmittedAt: s.now()}); rerr != nil {
				err = fmt.Errorf("%w: %s: %w", submit.ErrNotRecorded, ref.ID, rerr)
			}
		}
	}
	return s.afterCreate(ctx, r.RunID, act, ref, turn, err)
}

func containsTool(list []string, name string) bool {
	for _, t := range list {
		if t == name {
			return true
		}
	}
	return false
}
