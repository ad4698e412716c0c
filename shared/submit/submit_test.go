package submit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemsim"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/submit"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func setup(t *testing.T) (*gemsim.Simulator, *genai.Client, *ledger.Store, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	sim := gemsim.New(gemsim.Options{Durations: gemsim.Durations{Batch: 50 * time.Millisecond, Video: 50 * time.Millisecond, Interaction: 50 * time.Millisecond}})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	client, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: "k", Backend: genai.BackendGeminiAPI, HTTPOptions: genai.HTTPOptions{BaseURL: url}})
	if err != nil {
		t.Fatalf("genai client: %v", err)
	}
	fs, _ := testenv.Firestore(t)
	return sim, client, ledger.New(fs, ledger.Options{}), ctx
}

func checkJob(t *testing.T, ctx context.Context, st *ledger.Store, ref event.JobRef, kind event.Kind, model string, labels map[string]string) {
	t.Helper()
	if ref.Kind != kind || ref.ID == "" || ref.Name == "" {
		t.Fatalf("ref = %+v, want kind %s", ref, kind)
	}
	job, err := st.GetJob(ctx, ref.ID)
	if err != nil {
		t.Fatalf("GetJob(%s): %v", ref.ID, err)
	}
	if job.State != string(event.StateSubmitted) || job.Kind != string(kind) || job.GeminiName != ref.Name || job.Model != model {
		t.Errorf("job = state %q kind %q name %q model %q; want submitted %s %s %s", job.State, job.Kind, job.GeminiName, job.Model, kind, ref.Name, model)
	}
	if len(job.Labels) != len(labels) {
		t.Errorf("labels = %v, want %v", job.Labels, labels)
	}
	for k, v := range labels {
		if job.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, job.Labels[k], v)
		}
	}
	if job.SubmittedAt.IsZero() {
		t.Error("submitted_at not set")
	}
}

func TestBatchInline(t *testing.T) {
	_, client, st, ctx := setup(t)
	labels := map[string]string{"team": "search"}
	ref, err := submit.Batch(ctx, client, st, submit.BatchRequest{Model: "gemini-2.5-flash", Prompts: []string{"a", "b"}, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref.Name, "batches/") {
		t.Errorf("name = %q", ref.Name)
	}
	checkJob(t, ctx, st, ref, event.KindBatch, "gemini-2.5-flash", labels)
	// The batch really holds both prompts.
	job, err := client.Batches.Get(ctx, ref.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	for job.State != genai.JobStateSucceeded {
		time.Sleep(20 * time.Millisecond)
		if job, err = client.Batches.Get(ctx, ref.Name, nil); err != nil {
			t.Fatal(err)
		}
	}
	if job.Dest == nil || len(job.Dest.InlinedResponses) != 2 {
		t.Fatalf("dest = %+v, want 2 inline responses", job.Dest)
	}
	// No display name given: a generated one is sent (the simulator, like
	// the REST reference, requires one).
	if !strings.HasPrefix(job.DisplayName, "geminihooks-") {
		t.Errorf("display name = %q; want a generated geminihooks-… name", job.DisplayName)
	}
}

func TestBatchFileUpload(t *testing.T) {
	sim, client, st, ctx := setup(t)
	in := `{"key":"k1","request":{"contents":[{"parts":[{"text":"hi"}]}]}}` + "\n"
	ref, err := submit.Batch(ctx, client, st, submit.BatchRequest{Model: "gemini-2.5-flash", InputJSONL: strings.NewReader(in), DisplayName: "in.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	checkJob(t, ctx, st, ref, event.KindBatch, "gemini-2.5-flash", nil)
	if n := sim.Stats().Requests["files.upload.start"]; n != 1 {
		t.Errorf("files.upload.start requests = %d, want 1", n)
	}
}

func TestVideoAndInteraction(t *testing.T) {
	_, client, st, ctx := setup(t)
	ref, err := submit.Video(ctx, client, st, submit.VideoRequest{Model: "veo-3.1-generate-preview", Prompt: "a cat", Labels: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	checkJob(t, ctx, st, ref, event.KindVideo, "veo-3.1-generate-preview", map[string]string{"k": "v"})
	if !strings.Contains(ref.Name, "/operations/") {
		t.Errorf("video name = %q", ref.Name)
	}

	ref, err = submit.Interaction(ctx, client, st, submit.InteractionRequest{Model: "gemini-3-flash", Input: "hello", Tools: []string{"get_weather"}})
	if err != nil {
		t.Fatal(err)
	}
	checkJob(t, ctx, st, ref, event.KindInteraction, "gemini-3-flash", nil)
}

// TestWebhookURIs proves the dynamic URIs reach Gemini: the simulator
// delivers the job's event to them.
func TestWebhookURIs(t *testing.T) {
	_, client, st, ctx := setup(t)
	var mu sync.Mutex
	var got []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	ref, err := submit.Interaction(ctx, client, st, submit.InteractionRequest{Model: "gemini-3-flash", Input: "hi", WebhookURIs: []string{hook.URL}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no delivery to the dynamic webhook URI")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(got[0], `"interaction.completed"`) || !strings.Contains(got[0], ref.Name) {
		t.Errorf("delivery = %s, want interaction.completed for %s", got[0], ref.Name)
	}
}

func TestInvalidRequests(t *testing.T) {
	_, client, st, ctx := setup(t)
	cases := []struct {
		name string
		call func() error
	}{
		{"batch no model", func() error {
			_, err := submit.Batch(ctx, client, st, submit.BatchRequest{Prompts: []string{"x"}})
			return err
		}},
		{"batch no input", func() error {
			_, err := submit.Batch(ctx, client, st, submit.BatchRequest{Model: "m"})
			return err
		}},
		{"batch two inputs", func() error {
			_, err := submit.Batch(ctx, client, st, submit.BatchRequest{Model: "m", Prompts: []string{"x"}, InputFile: "files/a"})
			return err
		}},
		{"batch empty prompt", func() error {
			_, err := submit.Batch(ctx, client, st, submit.BatchRequest{Model: "m", Prompts: []string{" "}})
			return err
		}},
		{"bad webhook uri", func() error {
			_, err := submit.Batch(ctx, client, st, submit.BatchRequest{Model: "m", Prompts: []string{"x"}, WebhookURIs: []string{"ftp://x"}})
			return err
		}},
		{"empty label key", func() error {
			_, err := submit.Video(ctx, client, st, submit.VideoRequest{Model: "m", Prompt: "p", Labels: map[string]string{"": "v"}})
			return err
		}},
		{"label with a reserved goog prefix", func() error {
			_, err := submit.Batch(ctx, client, st, submit.BatchRequest{Model: "m", Prompts: []string{"x"}, Labels: map[string]string{"goog_x": "v"}})
			return err
		}},
		{"label value over Pub/Sub's 1024 bytes", func() error {
			_, err := submit.Interaction(ctx, client, st, submit.InteractionRequest{Model: "m", Input: "x", Labels: map[string]string{"k": strings.Repeat("v", 1025)}})
			return err
		}},
		{"more labels than attributes", func() error {
			labels := map[string]string{}
			for i := range event.MaxLabels + 1 {
				labels[fmt.Sprint("k", i)] = "v"
			}
			_, err := submit.Video(ctx, client, st, submit.VideoRequest{Model: "m", Prompt: "p", Labels: labels})
			return err
		}},
		{"video no prompt", func() error {
			_, err := submit.Video(ctx, client, st, submit.VideoRequest{Model: "m"})
			return err
		}},
		{"interaction no input", func() error {
			_, err := submit.Interaction(ctx, client, st, submit.InteractionRequest{Model: "m"})
			return err
		}},
		{"interaction empty tool", func() error {
			_, err := submit.Interaction(ctx, client, st, submit.InteractionRequest{Model: "m", Input: "x", Tools: []string{""}})
			return err
		}},
	}
	for _, c := range cases {
		if err := c.call(); !errors.Is(err, submit.ErrInvalidRequest) {
			t.Errorf("%s: err = %v, want ErrInvalidRequest", c.name, err)
		}
	}
}

type failingRecorder struct{}

func (failingRecorder) RecordSubmission(context.Context, ledger.Submission) error {
	return errors.New("firestore unavailable")
}

func TestNotRecordedKeepsRef(t *testing.T) {
	_, client, _, ctx := setup(t)
	ref, err := submit.Batch(ctx, client, failingRecorder{}, submit.BatchRequest{Model: "m", Prompts: []string{"x"}})
	if !errors.Is(err, submit.ErrNotRecorded) {
		t.Fatalf("err = %v, want ErrNotRecorded", err)
	}
	if ref.ID == "" || !strings.HasPrefix(ref.Name, "batches/") {
		t.Errorf("ref = %+v, want the created batch", ref)
	}
}

func TestGeminiErrorIsReported(t *testing.T) {
	_, client, st, ctx := setup(t)
	// The simulator rejects an unknown file as batch input.
	_, err := submit.Batch(ctx, client, st, submit.BatchRequest{Model: "m", InputFile: "files/doesnotexist"})
	if err == nil || errors.Is(err, submit.ErrNotRecorded) {
		t.Fatalf("err = %v, want a Gemini error", err)
	}
	if !strings.Contains(err.Error(), "batches.create") {
		t.Errorf("err = %v, want it to name batches.create", err)
	}
}
