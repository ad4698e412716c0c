package collect

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/genai/interactions/models/interactions"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// Budgets for what an interaction puts on its job document (which, like
// every Firestore document, is limited to 1 MiB). The full text is always
// in the results collection. Together they leave room for the rest of the
// job document, labels included (at most ~120 KiB, see
// event.ValidateLabels). Beyond a budget the output records counts and
// sizes instead of the bodies.
const (
	maxOutputText    = 256 << 10
	maxOutputSteps   = 320 << 10
	maxOutputPending = 160 << 10
	maxOutputErrors  = 32
)

// collectInteraction records an interaction in a collectable state: its
// text, steps, unanswered function calls and errors. jobErr is the API's
// error for a failed one.
func (s *Service) collectInteraction(ctx context.Context, ev event.JobEvent, it *interactions.Interaction, state event.State, jobErr *event.JobError) (outcome, error) {
	text := ""
	if it.OutputText != nil {
		text = *it.OutputText
	}
	out := outcome{output: map[string]any{"status": string(it.Status)}, resultsPath: ledger.ResultsPath(ev.JobID)}
	if len(text) <= maxOutputText {
		out.output["text"] = text
	} else {
		out.output["text_in_results"] = true
	}

	steps := make([]any, 0, len(it.Steps))
	size := 0
	answered := map[string]bool{}
	for _, st := range it.Steps {
		if st.FunctionResultStep != nil {
			answered[st.FunctionResultStep.CallID] = true
		}
		b, err := json.Marshal(st)
		if err != nil {
			return outcome{}, fmt.Errorf("%w: encode interaction step: %v", errInvalidData, err)
		}
		size += len(b)
		var m any
		if err := json.Unmarshal(b, &m); err != nil {
			return outcome{}, fmt.Errorf("%w: decode interaction step: %v", errInvalidData, err)
		}
		steps = append(steps, sanitize(m))
	}
	out.output["steps_count"] = int64(len(steps))
	if size <= maxOutputSteps {
		out.output["steps"] = steps
	} else {
		out.output["steps_omitted"] = true
		out.output["steps_bytes"] = int64(size)
	}
	// Pending calls are what a workflow answers, so they are kept whole as
	// long as they fit: first with their arguments both decoded and as
	// JSON, then as JSON only (which is all a tool needs), else as a count
	// (a workflow then fails the step, naming the size).
	pending, lean := []any{}, []any{}
	pendingBytes, leanBytes := 0, 0
	for _, st := range it.Steps {
		fc := st.FunctionCallStep
		if fc == nil || answered[fc.ID] {
			continue
		}
		args, _ := json.Marshal(fc.Arguments)
		pending = append(pending, map[string]any{
			"id":             fc.ID,
			"name":           fc.Name,
			"arguments":      sanitize(toAny(fc.Arguments)),
			"arguments_json": string(args),
		})
		lean = append(lean, map[string]any{"id": fc.ID, "name": fc.Name, "arguments_json": string(args)})
		c := len(fc.ID) + len(fc.Name) + len(args) + 64 // + field names
		leanBytes += c
		pendingBytes += c + 2*len(args) // decoded arguments: keys, values and map overhead
	}
	if state == event.StateRequiresAction || len(pending) > 0 {
		switch {
		case pendingBytes <= maxOutputPending:
			out.output["pending_calls"] = pending
		case leanBytes <= maxOutputPending:
			out.output["pending_calls"] = lean
		default:
			out.output["pending_calls"] = []any{}
			out.output["pending_calls_omitted"] = true
			out.output["pending_calls_count"] = int64(len(pending))
			out.output["pending_calls_bytes"] = int64(leanBytes)
		}
	}
	if len(it.Errors) > 0 {
		errs := make([]any, 0, min(len(it.Errors), maxOutputErrors))
		for _, e := range it.Errors {
			if len(errs) == maxOutputErrors {
				out.output["errors_count"] = int64(len(it.Errors))
				break
			}
			je := event.NormalizeError(deref(e.Code), "", deref(e.Message))
			if je == nil {
				continue
			}
			errs = append(errs, map[string]any{"code": je.Code, "status": je.Status, "message": je.Message})
		}
		out.output["errors"] = errs
	}

	r := ledger.Result{Index: 0, Text: text, FinishReason: string(it.Status)}
	if u := it.Usage; u != nil {
		r.Tokens = event.Tokens{Prompt: derefInt(u.TotalInputTokens), Candidates: derefInt(u.TotalOutputTokens), Total: derefInt(u.TotalTokens)}
	}
	if state == event.StateFailed {
		r.Error = jobErr
		if r.Error == nil {
			r.Error = &event.JobError{Message: "interaction failed"}
		}
	}
	w := s.o.Ledger.OpenResults(ctx, ev.JobID)
	err := writeResult(w, r)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return outcome{}, err
	}
	var t tally
	t.add(r)
	out.counts, out.tokens = t.counts, t.tokens
	return out, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func derefInt(p *int) int64 {
	if p == nil {
		return 0
	}
	return int64(*p)
}

func toAny(m map[string]any) any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// sanitize makes a decoded JSON value storable in Firestore, which does not
// accept an array directly inside an array: such an inner array becomes
// {"values": [...]}. Exact JSON is kept alongside where it matters
// (pending_calls[].arguments_json).
func sanitize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = sanitize(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			e = sanitize(e)
			if inner, ok := e.([]any); ok {
				e = map[string]any{"values": inner}
			}
			a[i] = e
		}
		return a
	default:
		return v
	}
}
