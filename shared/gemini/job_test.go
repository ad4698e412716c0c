package gemini

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"

	"github.com/geminihooks/geminihooks/shared/event"
)

func TestBatchState(t *testing.T) {
	for in, want := range map[genai.JobState]event.State{
		genai.JobStateQueued:             event.StateSubmitted,
		genai.JobStatePending:            event.StateSubmitted,
		genai.JobStateRunning:            event.StateRunning,
		genai.JobStateCancelling:         event.StateRunning,
		genai.JobStateSucceeded:          event.StateSucceeded,
		genai.JobStatePartiallySucceeded: event.StateSucceeded,
		genai.JobStateFailed:             event.StateFailed,
		genai.JobStateCancelled:          event.StateCancelled,
		genai.JobStateExpired:            event.StateExpired,
		genai.JobStateUnspecified:        event.StateUnknown,
		"JOB_STATE_FROM_THE_FUTURE":      event.StateUnknown,
	} {
		if got := BatchState(in); got != want {
			t.Errorf("BatchState(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestVideoState(t *testing.T) {
	for name, tc := range map[string]struct {
		op       genai.GenerateVideosOperation
		state    event.State
		wantCode string
	}{
		"running": {genai.GenerateVideosOperation{}, event.StateRunning, ""},
		"failed": {genai.GenerateVideosOperation{Done: true, Error: map[string]any{"code": float64(13), "message": "boom"}},
			event.StateFailed, "13"},
		"filtered": {genai.GenerateVideosOperation{Done: true, Response: &genai.GenerateVideosResponse{RAIMediaFilteredCount: 1,
			RAIMediaFilteredReasons: []string{"unsafe"}}}, event.StateFailed, "rai_filtered"},
		"no video": {genai.GenerateVideosOperation{Done: true}, event.StateFailed, "no_video"},
		"done": {genai.GenerateVideosOperation{Done: true, Response: &genai.GenerateVideosResponse{
			GeneratedVideos: []*genai.GeneratedVideo{{Video: &genai.Video{URI: "u"}}}}}, event.StateSucceeded, ""},
	} {
		s, e := VideoState(&tc.op)
		code := ""
		if e != nil {
			code = e.Code
		}
		if s != tc.state || code != tc.wantCode {
			t.Errorf("%s: %q %+v, want %q code %q", name, s, e, tc.state, tc.wantCode)
		}
		if name == "failed" && (e == nil || e.Status != "INTERNAL" || e.Message != "boom") {
			t.Errorf("failed operation error = %+v; want {13, INTERNAL, boom}", e)
		}
	}
}

func TestInteractionState(t *testing.T) {
	str := func(s string) *string { return &s }
	for status, want := range map[interactions.InteractionStatus]event.State{
		interactions.InteractionStatusQueued:               event.StateSubmitted,
		interactions.InteractionStatusInProgress:           event.StateRunning,
		interactions.InteractionStatusRequiresAction:       event.StateRequiresAction,
		interactions.InteractionStatusRequiresContinuation: event.StateRunning,
		interactions.InteractionStatusCompleted:            event.StateSucceeded,
		interactions.InteractionStatusCancelled:            event.StateCancelled,
		interactions.InteractionStatusFailed:               event.StateFailed,
		interactions.InteractionStatusIncomplete:           event.StateFailed,
		interactions.InteractionStatusBudgetExceeded:       event.StateFailed,
	} {
		if got, _ := InteractionState(&interactions.Interaction{Status: status}); got != want {
			t.Errorf("InteractionState(%s) = %q, want %q", status, got, want)
		}
	}
	_, e := InteractionState(&interactions.Interaction{Status: interactions.InteractionStatusBudgetExceeded})
	if e == nil || e.Code != "budget_exceeded" {
		t.Errorf("budget_exceeded error = %+v", e)
	}
	_, e = InteractionState(&interactions.Interaction{Status: interactions.InteractionStatusFailed,
		Errors: []interactions.Error{{Code: str("invalid_request"), Message: str("bad tool")}}})
	if e == nil || e.Code != "3" || e.Status != "INVALID_ARGUMENT" || e.Message != "bad tool" {
		t.Errorf("failed error = %+v", e)
	}
	_, e = InteractionState(&interactions.Interaction{Status: interactions.InteractionStatusIncomplete,
		Errors: []interactions.Error{{Message: str("max_output_tokens reached")}}})
	if e == nil || e.Code != "incomplete" || !strings.Contains(e.Message, "max_output_tokens") {
		t.Errorf("incomplete error = %+v", e)
	}
	if st, e := InteractionState(&interactions.Interaction{Status: "a_status_from_the_future"}); st != event.StateUnknown || e != nil {
		t.Errorf("unknown status = %q %+v", st, e)
	}
}

// ReadJob: one read; a failed batch's error comes from the raw answer;
// 404 and 403 are "not readable".
func TestReadJob(t *testing.T) {
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits[r.URL.Path]++
		switch r.URL.Path {
		case "/v1beta/batches/ok":
			json.NewEncoder(w).Encode(map[string]any{"name": "batches/ok", "metadata": map[string]any{"state": "BATCH_STATE_RUNNING"}})
		case "/v1beta/batches/failed":
			json.NewEncoder(w).Encode(map[string]any{"name": "batches/failed", "done": true,
				"metadata": map[string]any{"state": "BATCH_STATE_FAILED"}, "error": map[string]any{"code": 3, "message": "bad input"}})
		case "/v1beta/batches/theirs":
			w.WriteHeader(403)
			w.Write([]byte(`{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}`))
		default:
			w.WriteHeader(404)
			w.Write([]byte(`{"error":{"code":404,"message":"nope","status":"NOT_FOUND"}}`))
		}
	}))
	defer srv.Close()
	c, err := New(context.Background(), Config{APIKey: "k", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	j, err := c.ReadJob(ctx, event.KindBatch, "batches/ok")
	if err != nil || j.State != event.StateRunning || hits["/v1beta/batches/ok"] != 1 {
		t.Fatalf("running: %+v, %v, %d reads", j, err, hits["/v1beta/batches/ok"])
	}
	j, err = c.ReadJob(ctx, event.KindBatch, "batches/failed")
	if err != nil || j.State != event.StateFailed || j.Error == nil || j.Error.Code != "3" || j.Error.Status != "INVALID_ARGUMENT" || j.Error.Message != "bad input" {
		t.Fatalf("failed: %+v, %v", j, err)
	}
	for _, name := range []string{"batches/gone", "batches/theirs"} {
		if _, err := c.ReadJob(ctx, event.KindBatch, name); !IsNotReadable(err) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want not readable", name, err)
		}
	}
	if _, err := c.ReadJob(ctx, "custom", "x"); !IsPermanent(err) {
		t.Errorf("unknown kind: %v, want permanent", err)
	}
}
