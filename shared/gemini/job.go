package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"

	"github.com/geminihooks/geminihooks/shared/event"
)

// Job is a Gemini job as its API shows it: the state geminihooks derives
// from the API's answer, and the answer itself for the collection that may
// follow. Exactly one of Batch, Video and Interaction is set.
type Job struct {
	Kind event.Kind
	// Name is the resource name the job was read by.
	Name string
	// State is the job's state in geminihooks' model ([event.State]).
	State event.State
	// Error is Gemini's error for a job that did not succeed (nil
	// otherwise, and nil when the API gives none).
	Error *event.JobError
	// EndTime is when the job reached a terminal state, when the API says.
	EndTime time.Time

	Batch       *genai.BatchJob
	Video       *genai.GenerateVideosOperation
	Interaction *interactions.Interaction
}

// ErrNotReadable reports a job this project's API key cannot read: the API
// answered 404 (no such job) or 403 (it belongs to another project, or the
// key may not read it). A webhook about such a job cannot be verified.
var ErrNotReadable = errors.New("job not readable with this API key")

// IsNotReadable reports whether err says the job cannot be read.
func IsNotReadable(err error) bool { return errors.Is(err, ErrNotReadable) }

// ReadJob reads the job name of kind from Gemini's API: one request
// (two for a failed batch, whose error the SDK does not decode). Errors
// wrap [ErrNotReadable] for 404/403, else [ErrPermanent] or [ErrTransient].
func (c *Client) ReadJob(ctx context.Context, kind event.Kind, name string) (*Job, error) {
	j := &Job{Kind: kind, Name: name}
	var err error
	switch kind {
	case event.KindBatch:
		if j.Batch, err = c.GetBatch(ctx, name); err == nil {
			j.State, j.EndTime = BatchState(j.Batch.State), j.Batch.EndTime
			j.Error = jobError(j.Batch.Error)
			if j.State == event.StateFailed && j.Error == nil {
				// The SDK never fills BatchJob.Error; the operation's error
				// is in the raw answer.
				if j.Error, err = c.batchError(ctx, name); err != nil {
					return nil, err
				}
			}
		}
	case event.KindVideo:
		if j.Video, err = c.GetVideosOperation(ctx, name); err == nil {
			j.State, j.Error = VideoState(j.Video)
		}
	case event.KindInteraction:
		if j.Interaction, err = c.GetInteraction(ctx, name); err == nil {
			j.State, j.Error = InteractionState(j.Interaction)
			if u := j.Interaction.Updated; u != nil && j.State.Terminal() {
				j.EndTime, _ = time.Parse(time.RFC3339Nano, *u)
			}
		}
	default:
		return nil, fmt.Errorf("gemini read %s: kind %q is not collected by geminihooks: %w", name, kind, ErrPermanent)
	}
	if err != nil {
		if code := StatusCode(err); code == http.StatusNotFound || code == http.StatusForbidden {
			return nil, fmt.Errorf("%w: %w", err, ErrNotReadable)
		}
		return nil, err
	}
	return j, nil
}

// BatchState maps a batch's JobState. Queued and pending batches are
// "submitted"; a partially succeeded batch has results and counts as
// succeeded (its failed lines carry their own errors).
func BatchState(s genai.JobState) event.State {
	switch s {
	case genai.JobStateQueued, genai.JobStatePending:
		return event.StateSubmitted
	case genai.JobStateRunning, genai.JobStatePaused, genai.JobStateUpdating, genai.JobStateCancelling:
		return event.StateRunning
	case genai.JobStateSucceeded, genai.JobStatePartiallySucceeded:
		return event.StateSucceeded
	case genai.JobStateFailed:
		return event.StateFailed
	case genai.JobStateCancelled:
		return event.StateCancelled
	case genai.JobStateExpired:
		return event.StateExpired
	}
	return event.StateUnknown
}

// VideoState maps a video generation operation: running until done; done
// with an error, or with no video because every sample was filtered by
// safety, is failed.
func VideoState(op *genai.GenerateVideosOperation) (event.State, *event.JobError) {
	if !op.Done {
		return event.StateRunning, nil
	}
	if op.Error != nil {
		return event.StateFailed, StatusError(op.Error)
	}
	r := op.Response
	if r == nil || len(r.GeneratedVideos) == 0 {
		msg := "the operation finished without a video"
		if r != nil && r.RAIMediaFilteredCount > 0 {
			msg = fmt.Sprintf("%d video(s) filtered by safety", r.RAIMediaFilteredCount)
			if len(r.RAIMediaFilteredReasons) > 0 {
				msg += ": " + strings.Join(r.RAIMediaFilteredReasons, "; ")
			}
			return event.StateFailed, &event.JobError{Code: "rai_filtered", Message: event.Bound(msg, 4096)}
		}
		return event.StateFailed, &event.JobError{Code: "no_video", Message: msg}
	}
	return event.StateSucceeded, nil
}

// InteractionState maps an interaction's status.
//
//   - incomplete and budget_exceeded end the interaction without its full
//     answer: failed, with the status as the reason (any partial output is
//     still collected). A workflow must not take a truncated answer for a
//     finished one.
//   - requires_continuation is running: the SDK (v1.77 continuation.go)
//     documents it as a stop at the per-request decode limit that the
//     server resumes by itself for background interactions — the only kind
//     that sends webhooks and the only kind geminihooks submits — so
//     nothing waits for the client. Treating it as requires_action would
//     hand workflows a "requires action" with no function call to answer.
//   - a status this code does not know is unknown (nothing is collected).
func InteractionState(it *interactions.Interaction) (event.State, *event.JobError) {
	switch it.Status {
	case interactions.InteractionStatusQueued:
		return event.StateSubmitted, nil
	case interactions.InteractionStatusInProgress, interactions.InteractionStatusRequiresContinuation:
		return event.StateRunning, nil
	case interactions.InteractionStatusRequiresAction:
		return event.StateRequiresAction, nil
	case interactions.InteractionStatusCompleted:
		return event.StateSucceeded, nil
	case interactions.InteractionStatusCancelled:
		return event.StateCancelled, nil
	case interactions.InteractionStatusFailed, interactions.InteractionStatusIncomplete, interactions.InteractionStatusBudgetExceeded:
		var je *event.JobError
		if len(it.Errors) > 0 {
			e := it.Errors[0]
			je = event.NormalizeError(deref(e.Code), "", derefString(e.Message))
		}
		if it.Status != interactions.InteractionStatusFailed {
			// The status is the reason; an error the API adds explains it.
			msg := "interaction ended " + string(it.Status)
			if je != nil && je.Message != "" {
				msg += ": " + je.Message
			}
			je = &event.JobError{Code: string(it.Status), Message: event.Bound(msg, event.MaxErrorMessageBytes)}
		}
		if je == nil {
			je = &event.JobError{Code: string(it.Status), Message: "interaction ended " + string(it.Status)}
		}
		return event.StateFailed, je
	}
	return event.StateUnknown, nil
}

func deref(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func derefString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func jobError(e *genai.JobError) *event.JobError {
	if e == nil {
		return nil
	}
	var c any
	if e.Code != nil {
		c = *e.Code
	}
	return event.NormalizeError(c, "", e.Message)
}

// StatusError converts a decoded google.rpc.Status ({"code": 13,
// "message": …}), a Google HTTP error ({"code": 400, "status": …}) or an
// Interactions error ({"code": "invalid_request"}) into a JobError with the
// canonical code and status (event.NormalizeError).
func StatusError(m map[string]any) *event.JobError {
	return event.ErrorFromMap(m)
}

// batchError reads a batch's raw JSON for its error: the operation's
// "error" (a google.rpc.Status), or "metadata.error" in case the API puts
// it there. nil when there is none.
func (c *Client) batchError(ctx context.Context, name string) (*event.JobError, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/"+APIVersion+"/"+name, nil)
	if err != nil {
		return nil, fmt.Errorf("gemini batches.get %s (raw): %w: %w", name, err, ErrPermanent)
	}
	req.Header.Set("x-goog-api-key", c.key)
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("gemini batches.get %s (raw): %w: %w", name, err, ErrTransient)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("gemini batches.get %s (raw): read: %w: %w", name, err, ErrTransient)
	}
	if res.StatusCode/100 != 2 {
		return nil, statusError("gemini batches.get "+name+" (raw)", res.StatusCode, "")
	}
	var raw struct {
		Error    map[string]any `json:"error"`
		Metadata struct {
			Error map[string]any `json:"error"`
		} `json:"metadata"`
	}
	if json.Unmarshal(body, &raw) != nil {
		return nil, nil // the state is known; an undecodable error is no reason to retry
	}
	switch {
	case raw.Error != nil:
		return StatusError(raw.Error), nil
	case raw.Metadata.Error != nil:
		return StatusError(raw.Metadata.Error), nil
	}
	return nil, nil
}
