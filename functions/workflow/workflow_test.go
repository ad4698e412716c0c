package workflow_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/genai"

	fnworkflow "github.com/geminihooks/geminihooks/functions/workflow"
	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/workflow"
	"github.com/geminihooks/geminihooks/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestStatusCodes(t *testing.T) {
	ctx := context.Background()
	fs, _ := testenv.Firestore(t)
	cat, err := workflow.LoadFS(workflows.FS, nil)
	if err != nil {
		t.Fatal(err)
	}
	// No Gemini call happens in these cases; the client points nowhere.
	gc, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: "k", Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: "http://127.0.0.1:9/"}})
	if err != nil {
		t.Fatal(err)
	}
	h := &fnworkflow.Handler{
		Service: workflow.New(workflow.Options{Firestore: fs, Ledger: ledger.New(fs, ledger.Options{}), GenAI: gc, Catalog: cat,
			IntentLease: time.Minute}),
		Logger:              logging.New(io.Discard, slog.LevelInfo),
		MaxDeliveryAttempts: 2,
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(ev event.ResultsEvent, attempt int) int {
		t.Helper()
		body := bus.EncodePushBody(bus.PushMessage{Data: event.Marshal(ev), Attributes: ev.Attributes(), MessageID: "m-" + ev.EventID,
			PublishTime: time.Now(), DeliveryAttempt: attempt})
		resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	def := cat["video-describe"]
	put := func(id string, st workflow.StepState) {
		now := time.Now().UTC()
		r := &workflow.Run{RunID: id, Workflow: def.Name, Status: workflow.RunRunning, Definition: string(def.Source),
			CreatedAt: now, UpdatedAt: now, Steps: []workflow.StepState{st, {Name: "describe", Kind: "interaction", Status: workflow.StepPending, Attempt: 1}}}
		if _, err := fs.Collection(workflow.RunsCollection).Doc(id).Set(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	labels := func(run string) map[string]string {
		return map[string]string{workflow.LabelRun: run, workflow.LabelStep: "generate", workflow.LabelAttempt: "1", workflow.LabelTurn: "0"}
	}
	ev := func(id, job string, l map[string]string) event.ResultsEvent {
		return event.ResultsEvent{SchemaVersion: "1", EventID: id, Type: "video.generated", JobID: job, Kind: event.KindVideo,
			State: event.StateSucceeded, CollectionState: "collected", Labels: l}
	}

	// Unrelated events are acknowledged.
	if c := post(ev("e1", "video-x", nil), 1); c != 200 {
		t.Errorf("unrelated: %d, want 200", c)
	}
	if c := post(ev("e2", "video-x", labels("no-such-run")), 1); c != 200 {
		t.Errorf("unknown run: %d, want 200", c)
	}
	// A step whose intent another attempt holds: 409.
	put("busy", workflow.StepState{Name: "generate", Kind: "video", Status: workflow.StepSubmitting, Attempt: 1,
		Intent: &workflow.Intent{Key: "a1/t0", Token: "other", Until: time.Now().Add(time.Hour)}})
	stale := labels("busy")
	stale[workflow.LabelTurn] = "9"
	if c := post(ev("e3", "video-other", stale), 1); c != 409 {
		t.Errorf("in flight: %d, want 409", c)
	}
	// A transient failure (the job the tool turn needs is missing): 503,
	// and on the last attempt the run fails with the reason.
	put("broken", workflow.StepState{Name: "generate", Kind: "interaction", Status: workflow.StepActing, Attempt: 1, JobID: "interaction-gone"})
	if c := post(ev("e4", "video-y", labels("broken")), 1); c != 503 {
		t.Errorf("transient: %d, want 503", c)
	}
	r, _ := h.Service.Get(ctx, "broken")
	if r.Status != workflow.RunRunning {
		t.Errorf("after attempt 1: run %s", r.Status)
	}
	if c := post(ev("e4", "video-y", labels("broken")), 2); c != 503 {
		t.Errorf("transient, last attempt: %d, want 503", c)
	}
	r, _ = h.Service.Get(ctx, "broken")
	if r.Status != workflow.RunFailed || r.Error == "" {
		t.Errorf("after the last attempt: run %s %q, want failed with a reason", r.Status, r.Error)
	}
	// Not a push / not a results event: 400.
	resp, _ := http.Post(srv.URL, "application/json", bytes.NewReader([]byte(`{"message":{}}`)))
	if resp.StatusCode != 400 {
		t.Errorf("bad push: %d", resp.StatusCode)
	}
	resp.Body.Close()
	body := bus.EncodePushBody(bus.PushMessage{Data: []byte(`{"x":1}`), MessageID: "m9"})
	resp, _ = http.Post(srv.URL, "application/json", bytes.NewReader(body))
	if resp.StatusCode != 400 {
		t.Errorf("not a results event: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestFromEnvConfig(t *testing.T) {
	_, err := fnworkflow.FromEnv(context.Background(), func(string) string { return "" })
	if err == nil {
		t.Fatal("FromEnv without configuration succeeded")
	}
	for _, want := range []string{"GOOGLE_CLOUD_PROJECT", "GEMINI_API_KEY"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
