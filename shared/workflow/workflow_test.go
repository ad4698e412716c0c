package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/collect"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/gemsim"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/submit"
	"github.com/geminihooks/geminihooks/shared/workflow"
	"github.com/geminihooks/geminihooks/shared/workflow/tools"
	"github.com/geminihooks/geminihooks/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is the pipeline minus Pub/Sub: the simulator's webhooks are
// recorded in the ledger like the Receiver does and collected by the real
// Collector; its results events queue up for delivery to the Workflow
// service, which the test does with duplicates and shuffling.
type stack struct {
	t     *testing.T
	ctx   context.Context
	sim   *gemsim.Simulator
	gc    *genai.Client
	fs    *firestore.Client
	store *ledger.Store
	pub   *bus.MemoryPublisher
	svc   *workflow.Service
	opts  workflow.Options // svc's, for redeploying with other tools

	mu        sync.Mutex
	collected int // results events taken from pub
	collErrs  []error
	finished  map[string]bool
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newStack(t *testing.T, extra ...string) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	// Jobs run "forever" until the test finishes them, after the workflow
	// recorded them (as with real Gemini, where jobs take far longer than
	// recording a submission).
	sim := gemsim.New(gemsim.Options{Durations: gemsim.Durations{Batch: time.Hour, Video: time.Hour, Interaction: time.Hour}})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	gcl, err := gemini.New(ctx, gemini.Config{APIKey: "k", BaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := testenv.Firestore(t)
	s := &stack{t: t, ctx: ctx, sim: sim, gc: gcl.GenAI, fs: fs, store: ledger.New(fs, ledger.Options{}),
		pub: &bus.MemoryPublisher{}, finished: map[string]bool{}}
	col := collect.New(collect.Options{Ledger: s.store, Gemini: gcl, Publisher: s.pub, Logger: quiet})

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		env, err := event.ParseEnvelope(body)
		if err != nil {
			w.WriteHeader(200)
			return
		}
		ref, err := event.ParseRef(env.Type, env.Data.ID)
		if err != nil {
			w.WriteHeader(200)
			return
		}
		st, _ := event.StateOf(env.Type)
		ev := event.JobEvent{SchemaVersion: event.SchemaVersion, WebhookID: r.Header.Get("webhook-id"), Type: env.Type,
			JobID: ref.ID, Kind: ref.Kind, GeminiName: ref.Name, State: st, EventTime: env.Timestamp,
			ReceivedAt: time.Now().UTC(), Data: env.Data}
		if _, err := s.store.Record(r.Context(), ev, "hmac"); err != nil {
			http.Error(w, err.Error(), 503)
			return
		}
		if err := col.Handle(r.Context(), bus.PushMessage{Data: event.Marshal(ev), MessageID: ev.WebhookID, DeliveryAttempt: 1}); err != nil {
			s.mu.Lock()
			s.collErrs = append(s.collErrs, err)
			s.mu.Unlock()
			http.Error(w, err.Error(), 503)
		}
	}))
	t.Cleanup(hook.Close)
	events := make([]webhooks.WebhookSubscribedEvent, 0, len(gemsim.SubscribableEvents))
	for _, e := range gemsim.SubscribableEvents {
		events = append(events, webhooks.WebhookSubscribedEvent(e))
	}
	if _, err := s.gc.Webhooks.Create(ctx, operations.CreateWebhookRequest{Body: webhooks.WebhookInput{
		Name: genai.Ptr("test"), URI: hook.URL, SubscribedEvents: events}}); err != nil {
		t.Fatal(err)
	}

	reg, err := tools.NewRegistry(tools.GetTime(func() time.Time { return time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC) }), tools.WordCount())
	if err != nil {
		t.Fatal(err)
	}
	cat, err := workflow.LoadFS(workflows.FS, func(n string) bool { _, ok := reg.Lookup(n); return ok })
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range extra {
		d, err := workflow.Parse([]byte(src), nil)
		if err != nil {
			t.Fatal(err)
		}
		cat[d.Name] = d
	}
	s.opts = workflow.Options{Firestore: fs, Ledger: s.store, GenAI: s.gc, Catalog: cat, Tools: reg,
		IntentLease: 5 * time.Second, Logger: quiet}
	s.svc = workflow.New(s.opts)
	return s
}

// newEvents returns the results events published since the last call.
func (s *stack) newEvents() []event.ResultsEvent {
	msgs := s.pub.Messages()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []event.ResultsEvent
	for _, m := range msgs[s.collected:] {
		var ev event.ResultsEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			s.t.Fatalf("results event: %v", err)
		}
		out = append(out, ev)
	}
	s.collected = len(msgs)
	return out
}

// finishRunning ends, at the simulator, every job a run is waiting for.
func (s *stack) finishRunning(runIDs []string) {
	for _, id := range runIDs {
		r, err := s.svc.Get(s.ctx, id)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, st := range r.Steps {
			if st.Status == workflow.StepRunning && st.GeminiName != "" && !s.finished[st.GeminiName] {
				s.finished[st.GeminiName] = true
				if err := s.sim.FinishJob(st.GeminiName); err != nil {
					s.t.Fatalf("finish %s: %v", st.GeminiName, err)
				}
			}
		}
	}
}

// pump delivers results events to the service until every run is
// terminal: with dupRate of them delivered twice, the copy late, and each
// round's events shuffled.
func (s *stack) pump(runIDs []string, dupRate float64, rng *rand.Rand) (deliveries int) {
	s.t.Helper()
	return s.pumpUntil(runIDs, dupRate, rng, nil)
}

// pumpUntil is pump that also stops once stop reports true after a round.
func (s *stack) pumpUntil(runIDs []string, dupRate float64, rng *rand.Rand, stop func() bool) (deliveries int) {
	s.t.Helper()
	var late []event.ResultsEvent
	for {
		if s.ctx.Err() != nil {
			for _, id := range runIDs {
				r, _ := s.svc.Get(context.Background(), id)
				s.t.Logf("run %s: %+v", id, r)
			}
			s.t.Fatalf("runs did not finish; collector errors: %v", s.collErrs)
		}
		s.finishRunning(runIDs)
		batch := append(late, s.newEvents()...)
		late = nil
		for _, ev := range append([]event.ResultsEvent(nil), batch...) {
			switch r := rng.Float64(); {
			case r < dupRate/2:
				batch = append(batch, ev) // concurrent duplicate
			case r < dupRate:
				late = append(late, ev) // late duplicate, after newer events
			}
		}
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		// A round's deliveries run concurrently, like push deliveries to
		// several function instances; a duplicate may race its original.
		var wg sync.WaitGroup
		var mu sync.Mutex
		var fatal error
		for _, ev := range batch {
			deliveries++
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.svc.Handle(s.ctx, ev)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, workflow.ErrInFlight):
					late = append(late, ev) // 409: Pub/Sub redelivers
				case err != nil:
					fatal = fmt.Errorf("handle %s %s: %w", ev.Type, ev.JobID, err)
				}
			}()
		}
		wg.Wait()
		if fatal != nil {
			s.t.Fatal(fatal)
		}
		if stop != nil && stop() {
			return deliveries // late copies are duplicates; dropping them is harmless
		}
		done := len(late) == 0
		for _, id := range runIDs {
			r, err := s.svc.Get(s.ctx, id)
			if err != nil {
				s.t.Fatal(err)
			}
			if !r.Terminal() {
				done = false
			}
		}
		if done {
			return deliveries
		}
		time.Sleep(15 * time.Millisecond)
	}
}

func (s *stack) run(id string) *workflow.Run {
	s.t.Helper()
	r, err := s.svc.Get(s.ctx, id)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

func (s *stack) creates() (batches, videos, interactions int64) {
	st := s.sim.Stats().Requests
	return st["batches.create"], st["models.predictLongRunning"], st["interactions.create"]
}

func TestExamplesEndToEndWithDuplicatesAndShuffle(t *testing.T) {
	for _, tc := range []struct {
		name string
		dup  float64
	}{{"clean", 0}, {"dup30-shuffled", 0.3}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			const n = 3 // runs of each workflow, interleaved
			var ids []string
			for i := range n {
				id, err := s.svc.Start(s.ctx, "summarise-consolidate", "", map[string]any{"docs": []any{"alpha text", "beta text", "gamma " + string(rune('a'+i))}})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
				id, err = s.svc.Start(s.ctx, "video-describe", "", map[string]any{"prompt": "a lighthouse"})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			// Starting again with the same id is a no-op.
			if _, err := s.svc.Start(s.ctx, "video-describe", ids[1], map[string]any{"prompt": "other"}); err != nil {
				t.Fatal(err)
			}
			d := s.pump(ids, tc.dup, rand.New(rand.NewPCG(7, 9)))
			t.Logf("%d deliveries of %d results events", d, len(s.pub.Messages()))
			if tc.dup > 0 && d <= len(s.pub.Messages()) {
				t.Errorf("no duplicates delivered")
			}

			b, v, i := s.creates()
			// summarise (batch) + consolidate (interaction); generate
			// (video) + describe (interaction) + one tool continuation.
			if b != n || v != n || i != 3*n {
				t.Errorf("creates: batches %d videos %d interactions %d; want %d %d %d", b, v, i, n, n, 3*n)
			}
			for _, id := range ids {
				r := s.run(id)
				if r.Status != workflow.RunSucceeded {
					t.Fatalf("run %s: %s (%s)", id, r.Status, r.Error)
				}
				for _, st := range r.Steps {
					if st.Status != workflow.StepSucceeded || st.State != "succeeded" || st.Attempt != 1 {
						t.Errorf("run %s step %s: %+v", id, st.Name, st)
					}
				}
			}
			// Fan-out and fan-in: three batch lines, all in the consolidation.
			r := s.run(ids[0])
			sum, err := s.store.GetJob(s.ctx, r.Steps[0].JobID)
			if err != nil || sum.Counts.Results != 3 {
				t.Errorf("summarise job: %+v %v", sum.Counts, err)
			}
			con, _ := s.store.GetJob(s.ctx, r.Steps[1].JobID)
			text, _ := con.Output["text"].(string)
			for _, want := range []string{"0. echo: Summarise in one sentence: alpha text", "2. echo: Summarise in one sentence: gamma a"} {
				if !strings.Contains(text, want) {
					t.Errorf("consolidation %q lacks %q", text, want)
				}
			}
			// The tool loop: describe answered get_time and word_count in
			// one turn and completed with their results.
			vr := s.run(ids[1])
			desc := vr.Steps[1]
			if desc.Turn != 1 || len(desc.Jobs) != 2 {
				t.Errorf("describe: turn %d jobs %v, want 1 turn, 2 jobs", desc.Turn, desc.Jobs)
			}
			last, _ := s.store.GetJob(s.ctx, desc.JobID)
			out, _ := last.Output["text"].(string)
			if !strings.Contains(out, `get_time={"time":"2026-11-29T12:00:00Z","zone":"UTC"}`) || !strings.Contains(out, "word_count=") {
				t.Errorf("describe output = %q", out)
			}
			if last.Labels[workflow.LabelTurn] != "1" || last.Labels[workflow.LabelRun] != vr.RunID {
				t.Errorf("continuation labels = %v", last.Labels)
			}
		})
	}
}

const flaky = `
name: flaky
steps:
  - name: first
    kind: batch
    model: gemini-2.5-flash
    display_name: '{{ if eq .Attempt 1 }}FAIL-first-attempt{{ else }}ok{{ end }}'
    prompt: "{{ .Input.text }}"
  - name: second
    kind: interaction
    model: gemini-3-flash
    prompt: "got {{ .Steps.first.Text }}"
`

func TestFailedStepFailsRunAndRetryStepResubmits(t *testing.T) {
	s := newStack(t, flaky)
	rng := rand.New(rand.NewPCG(1, 2))
	id, err := s.svc.Start(s.ctx, "flaky", "flaky-1", map[string]any{"text": "hello"})
	if err != nil {
		t.Fatal(err)
	}
	s.pump([]string{id}, 0.3, rng)
	r := s.run(id)
	if r.Status != workflow.RunFailed || r.Steps[0].Status != workflow.StepFailed || r.Steps[1].Status != workflow.StepPending {
		t.Fatalf("run = %s, steps %s/%s", r.Status, r.Steps[0].Status, r.Steps[1].Status)
	}
	// Gemini's error as its API reports it (the operation's google.rpc.Status).
	if !strings.Contains(r.Error, "step first: job batch-") || !strings.Contains(r.Error, "failed: 13 simulated batch failure") {
		t.Errorf("run error = %q, want the failed job and Gemini's error", r.Error)
	}
	// retry-step on a step that did not fail is refused.
	if err := s.svc.RetryStep(s.ctx, id, "second"); !errors.Is(err, workflow.ErrNotRetryable) {
		t.Errorf("retry of a pending step: %v, want ErrNotRetryable", err)
	}
	failedJob := r.Steps[0].JobID
	if err := s.svc.RetryStep(s.ctx, id, "first"); err != nil {
		t.Fatal(err)
	}
	r = s.run(id)
	if r.Status != workflow.RunRunning || r.Steps[0].Attempt != 2 || r.Steps[0].JobID == failedJob || r.Steps[0].Status != workflow.StepRunning {
		t.Fatalf("after retry: %s %+v", r.Status, r.Steps[0])
	}
	// The old attempt's results event, redelivered late, changes nothing.
	old := event.ResultsEvent{EventID: "old", Type: "batch.failed", JobID: failedJob, Kind: event.KindBatch, State: event.StateFailed,
		CollectionState: "collected", Labels: map[string]string{workflow.LabelRun: id, workflow.LabelStep: "first", workflow.LabelAttempt: "1", workflow.LabelTurn: "0"}}
	if note, err := s.svc.Handle(s.ctx, old); err != nil || !strings.Contains(note, "earlier attempt") {
		t.Errorf("late event of attempt 1: %q %v", note, err)
	}
	s.pump([]string{id}, 0.3, rng)
	r = s.run(id)
	if r.Status != workflow.RunSucceeded || r.Error != "" {
		t.Fatalf("after retry: run %s (%s)", r.Status, r.Error)
	}
	if b, _, i := s.creates(); b != 2 || i != 1 {
		t.Errorf("creates: batches %d interactions %d, want 2 and 1", b, i)
	}
}

const unknownTool = `
name: unknown-tool
steps:
  - name: ask
    kind: interaction
    model: gemini-3-flash
    tools: [lookup_stock]
    prompt: "price of GOOG? use lookup_stock"
`

func TestUnknownToolFailsStep(t *testing.T) {
	s := newStack(t, unknownTool)
	id, err := s.svc.Start(s.ctx, "unknown-tool", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.pump([]string{id}, 0.3, rand.New(rand.NewPCG(3, 4)))
	r := s.run(id)
	if r.Status != workflow.RunFailed || r.Steps[0].Status != workflow.StepFailed {
		t.Fatalf("run %s step %s", r.Status, r.Steps[0].Status)
	}
	if !strings.Contains(r.Error, `unknown tool "lookup_stock"`) || !strings.Contains(r.Error, "registered: get_time, word_count") {
		t.Errorf("error = %q, want it to name the unknown tool and the registered ones", r.Error)
	}
	if _, _, i := s.creates(); i != 1 {
		t.Errorf("interactions created = %d, want 1 (no continuation)", i)
	}
}

func TestTriggerStartsOneRunPerEvent(t *testing.T) {
	s := newStack(t)
	ref, err := submit.Batch(s.ctx, s.gc, s.store, submit.BatchRequest{Model: "gemini-2.5-flash",
		Prompts: []string{"doc one", "doc two"}, Labels: map[string]string{"pipeline": "summarise"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.sim.FinishJob(ref.Name); err != nil {
		t.Fatal(err)
	}
	var evs []event.ResultsEvent
	for len(evs) == 0 && s.ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
		evs = s.newEvents()
	}
	if len(evs) == 0 {
		t.Fatal("no results event for the input batch")
	}
	var runID string
	for range 3 { // duplicates start nothing new
		note, err := s.svc.Handle(s.ctx, evs[0])
		if err != nil {
			t.Fatal(err)
		}
		runID = strings.TrimPrefix(note, "started ")
	}
	runs, err := s.svc.List(s.ctx, 10)
	if err != nil || len(runs) != 1 || runs[0].RunID != runID || runs[0].Trigger == nil || runs[0].Trigger.JobID != ref.ID {
		t.Fatalf("runs = %v %v, want one run triggered by %s", runs, err, ref.ID)
	}
	s.pump([]string{runID}, 0.3, rand.New(rand.NewPCG(5, 6)))
	r := s.run(runID)
	if r.Status != workflow.RunSucceeded {
		t.Fatalf("run %s: %s", r.Status, r.Error)
	}
	con, _ := s.store.GetJob(s.ctx, r.Steps[1].JobID)
	if text, _ := con.Output["text"].(string); !strings.Contains(text, "echo: Summarise in one sentence: echo: doc two") {
		t.Errorf("consolidation = %q, want the trigger's results summarised", text)
	}
	// Results events of workflow jobs never trigger runs.
	if b, _, _ := s.creates(); b != 2 {
		t.Errorf("batches created = %d, want 2 (input + summarise)", b)
	}
}

// TestCrashBetweenSubmitAndRecord replays what a crashed attempt leaves:
// the step "submitting" with its intent, the job created at Gemini and
// recorded in the ledger with the step's labels, the run not updated.
func TestCrashBetweenSubmitAndRecord(t *testing.T) {
	s := newStack(t, flaky)
	def := s.svc.Catalog()["flaky"]
	crashed := func(id string, until time.Time) *workflow.Run {
		now := time.Now().UTC()
		r := &workflow.Run{RunID: id, Workflow: "flaky", Status: workflow.RunRunning, Input: map[string]any{"text": "x"},
			Definition: string(def.Source), CreatedAt: now, UpdatedAt: now, Steps: []workflow.StepState{
				{Name: "first", Kind: "batch", Status: workflow.StepSubmitting, Attempt: 2,
					Intent: &workflow.Intent{Key: "a2/t0", Token: "dead", Until: until}},
				{Name: "second", Kind: "interaction", Status: workflow.StepPending, Attempt: 1},
			}}
		if _, err := s.fs.Collection(workflow.RunsCollection).Doc(id).Set(s.ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	labels := func(id string) map[string]string {
		return map[string]string{workflow.LabelRun: id, workflow.LabelStep: "first", workflow.LabelAttempt: "2", workflow.LabelTurn: "0"}
	}

	// 1. Its results event arrives while the intent is still leased: the
	// step adopts the job and the run goes on.
	crashed("crash-event", time.Now().Add(time.Hour))
	if _, err := submit.Batch(s.ctx, s.gc, s.store, submit.BatchRequest{Model: "m", Prompts: []string{"x"}, Labels: labels("crash-event")}); err != nil {
		t.Fatal(err)
	}
	if err := s.svc.Resume(s.ctx, "crash-event"); !errors.Is(err, workflow.ErrInFlight) {
		t.Errorf("resume under a live intent: %v, want ErrInFlight", err)
	}
	for _, st := range s.run("crash-event").Steps[:1] {
		if st.Status != workflow.StepSubmitting {
			t.Fatalf("step = %+v", st)
		}
	}
	// Finish the job by name (the run does not know it yet).
	jobs, _ := s.store.ListJobs(s.ctx, "", 10)
	for _, j := range jobs {
		if j.Labels[workflow.LabelRun] == "crash-event" {
			s.sim.FinishJob(j.GeminiName)
		}
	}
	s.pump([]string{"crash-event"}, 0.3, rand.New(rand.NewPCG(8, 9)))
	if r := s.run("crash-event"); r.Status != workflow.RunSucceeded {
		t.Fatalf("crash-event: %s %s", r.Status, r.Error)
	}

	// 2. The lease ran out and the job is in the ledger: reconciled by its labels.
	crashed("crash-lease", time.Now().Add(-time.Second))
	ref, err := submit.Batch(s.ctx, s.gc, s.store, submit.BatchRequest{Model: "m", Prompts: []string{"x"}, Labels: labels("crash-lease")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.svc.Resume(s.ctx, "crash-lease"); err != nil {
		t.Fatal(err)
	}
	if st := s.run("crash-lease").Steps[0]; st.Status != workflow.StepRunning || st.JobID != ref.ID {
		t.Fatalf("reconciled step = %+v, want running %s", st, ref.ID)
	}
	s.pump([]string{"crash-lease"}, 0, rand.New(rand.NewPCG(8, 9)))
	if r := s.run("crash-lease"); r.Status != workflow.RunSucceeded {
		t.Fatalf("crash-lease: %s %s", r.Status, r.Error)
	}

	// 3. The lease ran out and no job carries the labels: the outcome is
	// unknown, so the step fails instead of submitting a second job.
	b0, _, _ := s.creates()
	crashed("crash-unknown", time.Now().Add(-time.Second))
	if err := s.svc.Resume(s.ctx, "crash-unknown"); err != nil {
		t.Fatal(err)
	}
	r := s.run("crash-unknown")
	if r.Status != workflow.RunFailed || !strings.Contains(r.Error, "submission outcome unknown") || !strings.Contains(r.Error, "retry-step crash-unknown first") {
		t.Fatalf("crash-unknown: %s %q", r.Status, r.Error)
	}
	if b, _, _ := s.creates(); b != b0 {
		t.Errorf("a batch was submitted (%d → %d)", b0, b)
	}
}

const twoTurns = `
name: two-turns
steps:
  - name: ask
    kind: interaction
    model: gemini-3-flash
    tools: [get_time, word_count]
    max_turns: MAX
    prompt: "What time is it? use get_time"
`

// TestToolLoopTwoTurns: the simulator asks for get_time (turn 1); the
// continuation then asks for word_count — injected as the Collector would
// store and announce it, since the simulator completes every interaction
// that receives function results — and the second continuation completes.
// With max_turns 1 the second request fails the step instead.
func TestToolLoopTwoTurns(t *testing.T) {
	for _, max := range []int{2, 1} {
		t.Run(fmt.Sprint("max_turns=", max), func(t *testing.T) {
			t.Parallel()
			s := newStack(t, strings.Replace(twoTurns, "MAX", fmt.Sprint(max), 1))
			rng := rand.New(rand.NewPCG(10, 11))
			id, err := s.svc.Start(s.ctx, "two-turns", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			// Run until the first continuation is submitted, before it finishes.
			s.finished = map[string]bool{}
			var cont workflow.StepState
			s.pumpUntil([]string{id}, 0.3, rng, func() bool {
				cont = s.run(id).Steps[0]
				if cont.Turn == 1 && cont.Status == workflow.StepRunning {
					s.finished[cont.GeminiName] = true // the test answers it
					return true
				}
				return false
			})
			first, _ := s.store.GetJob(s.ctx, cont.Jobs[0])
			if calls, _ := first.Output["pending_calls"].([]any); len(calls) != 1 || calls[0].(map[string]any)["name"] != "get_time" {
				t.Fatalf("turn 0 pending calls = %v", first.Output["pending_calls"])
			}
			// The continuation asks for another tool.
			if _, err := s.fs.Collection(ledger.JobsCollection).Doc(cont.JobID).Set(s.ctx, map[string]any{
				"state": "requires_action", "collection_state": "collected", "collected_state": "requires_action",
				"output": map[string]any{"status": "requires_action", "pending_calls": []any{map[string]any{
					"id": "call_2", "name": "word_count", "arguments": map[string]any{"input": "one two three"},
					"arguments_json": `{"input":"one two three"}`}}},
			}, firestore.MergeAll); err != nil {
				t.Fatal(err)
			}
			job, _ := s.store.GetJob(s.ctx, cont.JobID)
			ev := event.ResultsEvent{SchemaVersion: "1", EventID: event.ResultsEventID(cont.JobID, event.StateRequiresAction),
				Type: event.TypeInteractionRequiresAction, JobID: cont.JobID, Kind: event.KindInteraction, GeminiName: cont.GeminiName,
				State: event.StateRequiresAction, CollectionState: "collected", JobPath: "jobs/" + cont.JobID, Labels: job.Labels}
			for range 2 { // duplicated
				if _, err := s.svc.Handle(s.ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			s.pump([]string{id}, 0.3, rng)
			r := s.run(id)
			_, _, creates := s.creates()
			if max == 1 {
				if r.Status != workflow.RunFailed || !strings.Contains(r.Error, "after 1 tool turns (max_turns 1)") || creates != 2 {
					t.Fatalf("max_turns 1: run %s %q, %d interactions", r.Status, r.Error, creates)
				}
				return
			}
			st := r.Steps[0]
			if r.Status != workflow.RunSucceeded || st.Turn != 2 || len(st.Jobs) != 3 || creates != 3 {
				t.Fatalf("run %s (%s): turn %d jobs %v, %d interactions", r.Status, r.Error, st.Turn, st.Jobs, creates)
			}
			last, _ := s.store.GetJob(s.ctx, st.JobID)
			if text, _ := last.Output["text"].(string); text != "function results: word_count=3" {
				t.Errorf("final text = %q", text)
			}
		})
	}
}

// TestCatchUpFromLedger: a step's job is collected but its results event
// never reaches the service (lost, or published before the job's workflow
// labels were recorded, so the subscription filtered it). Resume takes the
// collection from the ledger; a late copy of the event is a duplicate.
func TestCatchUpFromLedger(t *testing.T) {
	s := newStack(t)
	id, err := s.svc.Start(s.ctx, "summarise-consolidate", "", map[string]any{"docs": []any{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	s.finishRunning([]string{id})
	// Wait until the batch is collected, then drop its results event.
	var lost []event.ResultsEvent
	for deadline := time.Now().Add(30 * time.Second); len(lost) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("batch not collected; collector errors %v", s.collErrs)
		}
		time.Sleep(50 * time.Millisecond)
		lost = s.newEvents()
	}
	if st := s.run(id).Steps[0]; st.Status != workflow.StepRunning {
		t.Fatalf("step 0 = %+v, want running", st)
	}
	if err := s.svc.Resume(s.ctx, id); err != nil {
		t.Fatal(err)
	}
	r := s.run(id)
	if r.Steps[0].Status != workflow.StepSucceeded || r.Steps[1].Status != workflow.StepRunning {
		t.Fatalf("after resume: %+v", r.Steps)
	}
	// The lost event turns up after all: nothing happens twice.
	for _, ev := range lost {
		if _, err := s.svc.Handle(s.ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, inter := s.creates(); inter != 1 {
		t.Errorf("consolidate submitted %d times, want 1", inter)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	s.pump([]string{id}, 0, rng)
	if r := s.run(id); r.Status != workflow.RunSucceeded {
		t.Errorf("run = %+v", r)
	}
}

// TestToolRemovedWhileRunWaits: a run waits on an interaction that asked
// for get_time; a deployment in the meantime takes a tool the step declares
// out of the registry. The requires_action event then fails the step with a
// message naming the tool (whether it is the one called or another the
// continuation would offer), runs no tool and continues no interaction.
func TestToolRemovedWhileRunWaits(t *testing.T) {
	for _, removed := range []string{"get_time", "word_count"} {
		t.Run("without_"+removed, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, strings.Replace(twoTurns, "MAX", "3", 1))
			id, err := s.svc.Start(s.ctx, "two-turns", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			// The interaction reaches requires_action; its results event
			// waits while the Workflow is redeployed.
			st := s.run(id).Steps[0]
			if st.Status != workflow.StepRunning || st.GeminiName == "" {
				t.Fatalf("step = %+v", st)
			}
			s.finished[st.GeminiName] = true
			if err := s.sim.FinishJob(st.GeminiName); err != nil {
				t.Fatal(err)
			}
			var kept []tools.Tool
			for _, tl := range []tools.Tool{tools.GetTime(time.Now), tools.WordCount()} {
				if tl.Name() != removed {
					kept = append(kept, tl)
				}
			}
			reg, err := tools.NewRegistry(kept...)
			if err != nil {
				t.Fatal(err)
			}
			opts := s.opts
			opts.Tools = reg
			s.svc = workflow.New(opts)

			s.pump([]string{id}, 0, rand.New(rand.NewPCG(7, 8)))
			r := s.run(id)
			if r.Status != workflow.RunFailed || r.Steps[0].Status != workflow.StepFailed {
				t.Fatalf("run %s step %s (%s)", r.Status, r.Steps[0].Status, r.Error)
			}
			if !strings.Contains(r.Error, `unknown tool "`+removed+`"`) || !strings.Contains(r.Error, "no longer) registered") {
				t.Errorf("error = %q, want it to name the removed tool %q", r.Error, removed)
			}
			if _, _, i := s.creates(); i != 1 {
				t.Errorf("interactions created = %d, want 1 (no continuation)", i)
			}
		})
	}
}
