package devstack_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/genai"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/devstack"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/submit"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

// A stack can run only once per process (see devstack.ErrAlreadyStarted), so
// each pipeline scenario re-runs this test binary with scenarioEnv set and
// -test.run selecting TestScenarioChild. The child inherits the parent's
// Firestore emulator through FIRESTORE_EMULATOR_HOST.
const (
	scenarioEnv = "DEVSTACK_TEST_SCENARIO"
	faultsEnv   = "DEVSTACK_TEST_FAULTS"
	roundsEnv   = "DEVSTACK_TEST_ROUNDS"
	// reconcileEnv sets Options.ReconcileEvery; cliEnv is a built
	// geminihooks binary for scenarios that use the CLI.
	reconcileEnv = "DEVSTACK_TEST_RECONCILE"
	cliEnv       = "DEVSTACK_TEST_CLI"
)

func TestMain(m *testing.M) {
	if os.Getenv(scenarioEnv) != "" {
		os.Exit(m.Run())
	}
	testenv.Main(m)
}

// TestPipeline: inline batch, file batch, video and interaction jobs (static
// HMAC webhook), two dynamic JWT jobs and two jobs delivered across a
// Receiver outage all end up collected with exactly one results event each.
func TestPipeline(t *testing.T) {
	t.Parallel()
	runScenario(t, "clean", "timescale=100", 1)
}

// TestPipelineDuplicatesShuffled: the same with 30 % duplicate deliveries and
// randomly reordered deliveries.
func TestPipelineDuplicatesShuffled(t *testing.T) {
	t.Parallel()
	// Four rounds of the four kinds plus four more jobs: 20 webhook
	// messages, so the chance that no duplicate is sent at all is 0.7^20 (0.08 %).
	runScenario(t, "dup-shuffle", "dup=0.3,shuffle=20s,timescale=100", 4)
}

// TestForgedClaim: a correctly HMAC-signed batch.failed about a batch the
// simulator reports succeeded (every genuine webhook is lost, so the forged
// one comes first) ends with the batch succeeded and collected, one results
// event for succeeded and none for failed; the genuine batch.succeeded
// afterwards changes nothing.
func TestForgedClaim(t *testing.T) {
	t.Parallel()
	runScenario(t, "forged", "drop=1,timescale=100", 1)
}

// TestPipelineLargeBatch: a file batch whose output takes several Collector
// invocations (a 2 s budget, continuations on the events topic through the
// push dispatcher) is collected completely: every result document, the
// counts, one results event. DEVSTACK_TEST_LINES sets the size (10,000
// here to keep test.sh short; scripts/bench.sh runs 50,000).
func TestPipelineLargeBatch(t *testing.T) {
	t.Parallel()
	runScenario(t, "large", "timescale=100", 1, "COLLECT_TIME_BUDGET=2s")
}

// TestReconcileLostWebhooks: `geminihooks dev --faults drop=1
// --reconcile-every 2s`: every webhook delivery is lost, yet a batch
// created by another client (unknown to the ledger) and a video submitted
// with `geminihooks submit video` both reach collection_state=collected
// within 30 s, found by the Reconciler's sweep, with one results event each.
func TestReconcileLostWebhooks(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	runScenario(t, "reconcile", "drop=1", 1, reconcileEnv+"=2s", cliEnv+"="+bin)
}

// buildCLI builds cmd/geminihooks into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "geminihooks")
	build := exec.Command(goTool(), "build", "-o", bin, "./cmd/geminihooks")
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/geminihooks: %v\n%s", err, out)
	}
	return bin
}

func runScenario(t *testing.T, name, faults string, rounds int, env ...string) {
	t.Helper()
	limit := 4 * time.Minute
	if os.Getenv("DEVSTACK_TEST_LINES") != "" {
		limit = 10 * time.Minute // scripts/bench.sh's 50,000 lines
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestScenarioChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), scenarioEnv+"="+name, faultsEnv+"="+faults, fmt.Sprintf("%s=%d", roundsEnv, rounds))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scenario %s (faults %q) failed: %v\n%s", name, faults, err, out)
	}
	// Keep the summary lines on success.
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, "summary:") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

// tlogWriter turns the stack's Out lines into test log lines and keeps them.
type tlogWriter struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (w *tlogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	line := strings.TrimRight(string(p), "\n")
	w.lines = append(w.lines, line)
	w.t.Log(line)
	return len(p), nil
}

func (w *tlogWriter) snapshot() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// traceOf returns the trace=<id> of a stack log line, or "".
func traceOf(line string) string {
	_, after, ok := strings.Cut(line, " trace=")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(after, " ")
	return id
}

// allLogged reports whether every job has its collector line.
func allLogged(lines []string, jobIDs []string) bool {
	for _, id := range jobIDs {
		found := false
		for _, l := range lines {
			if strings.Contains(l, " collector "+id+" ") {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// checkOneTracePerJob: the stack's log shows one trace id along each job's
// chain: the results event ("collector <job>") continues the trace of one of
// the job's published events ("receiver <job>"), and its notification
// ("notifier <job>") continues the results event's trace.
func checkOneTracePerJob(t *testing.T, lines []string, jobIDs []string) {
	t.Helper()
	for _, id := range jobIDs {
		received := map[string]bool{}
		var collected, notified []string
		for _, l := range lines {
			_, rest, _ := strings.Cut(l, " ") // drop the time stamp
			switch {
			case strings.HasPrefix(rest, "receiver "+id+" "):
				received[traceOf(l)] = true
			case strings.HasPrefix(rest, "collector "+id+" "):
				collected = append(collected, traceOf(l))
			case strings.HasPrefix(rest, "notifier "+id+" "):
				notified = append(notified, traceOf(l))
			}
		}
		if len(collected) == 0 || len(notified) == 0 {
			t.Errorf("job %s: log has %d collector and %d notifier lines", id, len(collected), len(notified))
			continue
		}
		for _, tr := range collected {
			if tr == "" || !received[tr] {
				t.Errorf("job %s: results event trace %q is not the trace of its events %v", id, tr, received)
			}
		}
		for _, tr := range notified {
			if tr == "" || tr != collected[len(collected)-1] {
				t.Errorf("job %s: notification trace %q, want the results event's %q", id, tr, collected[len(collected)-1])
			}
		}
	}
}

// resultsSeen records results events by job.
type resultsSeen struct {
	mu       sync.Mutex
	eventIDs map[string]map[string]int // job id → event id → copies
	events   map[string]event.ResultsEvent
	all      []event.ResultsEvent
	messages int
}

// watchResults subscribes to the results topic as a user's consumer would
// (before any job exists) and records every results event until stop,
// which waits for the receiver to end.
func watchResults(t *testing.T, ctx context.Context, st *devstack.Stack, name string) (seen *resultsSeen, stop func()) {
	t.Helper()
	sub, err := st.SubscribeResults(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	seen = &resultsSeen{eventIDs: map[string]map[string]int{}, events: map[string]event.ResultsEvent{}}
	recvCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- sub.Receive(recvCtx, func(_ context.Context, m *pubsub.Message) {
			var e event.ResultsEvent
			if err := json.Unmarshal(m.Data, &e); err != nil {
				t.Errorf("results message %s: %v", m.ID, err)
			} else if m.Attributes[event.AttrEventID] != e.EventID {
				t.Errorf("results message %s: attribute event_id %q != body %q", m.ID, m.Attributes[event.AttrEventID], e.EventID)
			}
			seen.add(e)
			m.Ack()
		})
	}()
	var once sync.Once
	return seen, func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("results Receive: %v", err)
			}
		})
	}
}

// snapshot returns every results event received so far.
func (r *resultsSeen) snapshot() []event.ResultsEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.ResultsEvent(nil), r.all...)
}

func (r *resultsSeen) add(e event.ResultsEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages++
	if r.eventIDs[e.JobID] == nil {
		r.eventIDs[e.JobID] = map[string]int{}
	}
	r.eventIDs[e.JobID][e.EventID]++
	r.events[e.JobID] = e
	r.all = append(r.all, e)
}

func (r *resultsSeen) has(ids []string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if len(r.eventIDs[id]) == 0 {
			return false
		}
	}
	return true
}

// TestScenarioChild is the body of TestPipeline*; it runs only in the child
// process those tests start.
func TestScenarioChild(t *testing.T) {
	scenario := os.Getenv(scenarioEnv)
	if scenario == "" {
		t.Skip("runs only as a child of TestPipeline / TestPipelineDuplicatesShuffled")
	}
	rounds := 1
	fmt.Sscan(os.Getenv(roundsEnv), &rounds)
	limit := 3 * time.Minute
	if os.Getenv("DEVSTACK_TEST_LINES") != "" {
		limit = 9 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	start := time.Now()
	out := &tlogWriter{t: t}
	var budget time.Duration
	if v := os.Getenv("COLLECT_TIME_BUDGET"); v != "" {
		budget, _ = time.ParseDuration(v)
	}
	every, _ := time.ParseDuration(os.Getenv(reconcileEnv))
	st, err := devstack.Start(ctx, devstack.Options{
		Project:        testenv.Project(t) + "-" + scenario,
		Faults:         os.Getenv(faultsEnv),
		Out:            out,
		Log:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		CollectBudget:  budget,
		ReconcileEvery: every,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := st.Close(); err != nil { // idempotent
			t.Errorf("second Close: %v", err)
		}
	}()
	t.Logf("stack up in %s", time.Since(start).Round(time.Millisecond))
	switch scenario {
	case "forged":
		forgedScenario(t, ctx, st)
		return
	case "reconcile":
		reconcileScenario(t, ctx, st, every)
		return
	}
	if scenario == "large" {
		largeScenario(t, ctx, st)
		return
	}

	// The test's own subscriber on the results topic, created before any job.
	seen, stopRecv := watchResults(t, ctx, st, "e2e-results")
	defer stopRecv()

	type job struct {
		ref     event.JobRef
		what    string
		results int // exact result count; 0 = at least one
		scheme  string
	}
	var jobs []job
	addAll := func(what, scheme string, o devstack.SubmitOptions) {
		t.Helper()
		refs, err := st.SubmitAll(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range refs {
			jobs = append(jobs, job{ref: r, what: what + " " + []string{"inline batch", "file batch", "video", "interaction"}[i],
				results: []int{2, 3, 0, 0}[i], scheme: scheme})
		}
	}
	ids := func(from int) []string {
		var out []string
		for _, j := range jobs[from:] {
			out = append(out, j.ref.ID)
		}
		return out
	}

	// 1. Static webhook (Standard Webhooks HMAC), every kind.
	for range rounds {
		t0 := time.Now()
		addAll("static", string(webhook.SchemeHMAC), devstack.SubmitOptions{})
		t.Logf("submitted 4 jobs in %s", time.Since(t0).Round(time.Millisecond))
	}
	// 2. Dynamic webhooks: webhook_config.uris → RS256 JWT verified against
	// the simulator's JWKS (the Receiver's JWKS_URL).
	dyn := devstack.SubmitOptions{WebhookURIs: []string{st.ReceiverURL}, Text: "dynamic"}
	r, err := st.SubmitInteraction(ctx, dyn)
	if err != nil {
		t.Fatal(err)
	}
	jobs = append(jobs, job{ref: r, what: "dynamic interaction", scheme: string(webhook.SchemeJWT)})
	r, err = st.SubmitInlineBatch(ctx, dyn)
	if err != nil {
		t.Fatal(err)
	}
	jobs = append(jobs, job{ref: r, what: "dynamic inline batch", results: 2, scheme: string(webhook.SchemeJWT)})
	if _, err := st.WaitCollected(ctx, ids(0), nil); err != nil {
		t.Fatal(err)
	}

	// 3. Receiver outage longer than Gemini's first retries: nothing is lost.
	st.SetReceiverDown(true)
	failedBefore := st.Sim.Stats().Deliveries.Failed
	outageFrom := len(jobs)
	r, err = st.SubmitFileBatch(ctx, devstack.SubmitOptions{Text: "outage"})
	if err != nil {
		t.Fatal(err)
	}
	jobs = append(jobs, job{ref: r, what: "outage file batch", results: 3, scheme: string(webhook.SchemeHMAC)})
	r, err = st.SubmitVideo(ctx, devstack.SubmitOptions{Text: "outage"})
	if err != nil {
		t.Fatal(err)
	}
	jobs = append(jobs, job{ref: r, what: "outage video", scheme: string(webhook.SchemeHMAC)})
	// Two messages, at least three failed attempts each (first try + two retries).
	for st.Sim.Stats().Deliveries.Failed-failedBefore < 6 {
		if ctx.Err() != nil {
			t.Fatal("the simulator never retried during the outage")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range ids(outageFrom) {
		if j, err := st.Ledger.GetJob(ctx, id); err != nil || j.State != string(event.StateSubmitted) {
			t.Fatalf("during the outage job %s = %+v, %v; want still submitted", id, j, err)
		}
	}
	st.SetReceiverDown(false)

	if _, err := st.WaitCollected(ctx, ids(0), nil); err != nil {
		t.Fatal(err)
	}
	for !seen.has(ids(0)) {
		if ctx.Err() != nil {
			t.Fatal("results events missing for some jobs")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Give late duplicates (redeliveries, duplicate webhooks) a moment to
	// show up before counting distinct ids.
	time.Sleep(time.Second)
	stopRecv()

	for st.Notifications() < int64(len(jobs)) {
		if ctx.Err() != nil {
			t.Fatalf("the notification sink got %d notifications, want %d", st.Notifications(), len(jobs))
		}
		time.Sleep(50 * time.Millisecond)
	}

	seen.mu.Lock()
	defer seen.mu.Unlock()
	for _, j := range jobs {
		doc, err := st.Ledger.GetJob(ctx, j.ref.ID)
		if err != nil {
			t.Errorf("%s: %v", j.what, err)
			continue
		}
		if doc.State != string(event.StateSucceeded) || doc.CollectionState != ledger.CollectionDone {
			t.Errorf("%s %s: state=%s collection_state=%s error=%+v collect_error=%+v", j.what, j.ref.ID, doc.State, doc.CollectionState, doc.Error, doc.CollectError)
			continue
		}
		if n := st.NotificationsFor(j.ref.ID); n != 1 {
			t.Errorf("%s %s: %d notifications, want 1", j.what, j.ref.ID, n)
		}
		if n := len(seen.eventIDs[j.ref.ID]); n != 1 {
			t.Errorf("%s %s: %d distinct results event ids %v, want exactly 1", j.what, j.ref.ID, n, seen.eventIDs[j.ref.ID])
		}
		ev := seen.events[j.ref.ID]
		if ev.CollectionState != ledger.CollectionDone || ev.State != event.StateSucceeded || ev.EventID != doc.ResultsEventID {
			t.Errorf("%s %s: results event %+v does not match job (results_event_id %s)", j.what, j.ref.ID, ev, doc.ResultsEventID)
		}
		if (j.results > 0 && doc.Counts.Results != j.results) || doc.Counts.Results < 1 {
			t.Errorf("%s %s: counts %+v, want %d results", j.what, j.ref.ID, doc.Counts, j.results)
		}
		if j.ref.Kind == event.KindBatch {
			docs, err := st.Firestore.Collection(ledger.ResultsPath(j.ref.ID)).Documents(ctx).GetAll()
			if err != nil || len(docs) != j.results {
				t.Errorf("%s %s: %d result documents (%v), want %d", j.what, j.ref.ID, len(docs), err, j.results)
			}
		}
		dels, err := st.Firestore.Collection(ledger.DeliveriesCollection).Where("job_id", "==", j.ref.ID).Documents(ctx).GetAll()
		if err != nil || len(dels) != 1 {
			t.Errorf("%s %s: %d delivery documents (%v), want exactly 1 (one webhook-id per job event)", j.what, j.ref.ID, len(dels), err)
			continue
		}
		var d ledger.Delivery
		if err := dels[0].DataTo(&d); err != nil || d.Scheme != j.scheme || d.Status != ledger.StatusPublished {
			t.Errorf("%s %s: delivery %+v (%v), want scheme %s, status published", j.what, j.ref.ID, d, err, j.scheme)
		}
	}
	if n := st.Notifications(); n != int64(len(jobs)) {
		t.Errorf("notification sink got %d notifications for %d jobs, want one each", n, len(jobs))
	}
	// The collector lines come from a log tap subscription: give it a moment.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok := allLogged(out.snapshot(), ids(0)); ok {
			break
		}
	}
	checkOneTracePerJob(t, out.snapshot(), ids(0))
	stats := st.Sim.Stats().Deliveries
	if stats.GaveUp != 0 {
		t.Errorf("simulator gave up on %d messages", stats.GaveUp)
	}
	if strings.Contains(os.Getenv(faultsEnv), "dup=") && stats.Duplicates == 0 {
		t.Errorf("no duplicate deliveries were sent (stats %+v): the scenario tested nothing extra", stats)
	}
	t.Logf("summary: scenario=%s jobs=%d notifications=%d results_messages=%d webhook_messages=%d attempts=%d duplicates=%d failed_attempts=%d push=%v elapsed=%s",
		scenario, len(jobs), st.Notifications(), seen.messages, stats.Messages, stats.Attempts, stats.Duplicates, stats.Failed,
		st.Dispatcher.Stats(), time.Since(start).Round(time.Millisecond))
}

func forgedScenario(t *testing.T, ctx context.Context, st *devstack.Stack) {
	seen, stopRecv := watchResults(t, ctx, st, "forged-results")
	defer stopRecv()

	ref, err := st.SubmitFileBatch(ctx, devstack.SubmitOptions{Text: "forged"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Sim.FinishJob(ref.Name); err != nil {
		t.Fatal(err)
	}
	signer, err := webhook.NewSigner(st.WebhookSecret())
	if err != nil {
		t.Fatal(err)
	}
	post := func(webhookID, typ string, data map[string]any) {
		t.Helper()
		data["id"] = ref.Name
		body, _ := json.Marshal(map[string]any{"type": typ, "version": "v1", "timestamp": time.Now().UTC().Format(time.RFC3339), "data": data})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, st.ReceiverURL, bytes.NewReader(body))
		for k, v := range signer.Headers(webhookID, time.Now(), body) {
			req.Header[k] = v
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", typ, res.StatusCode)
		}
	}
	post("msg_forged", event.TypeBatchFailed, map[string]any{"error_code": "INTERNAL", "error_message": "forged"})
	jobs, err := st.WaitCollected(ctx, []string{ref.ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	j := jobs[0]
	if j.State != string(event.StateSucceeded) || j.CollectedState != string(event.StateSucceeded) || j.Counts.Results != 3 ||
		j.Error != nil || j.Verification != ledger.VerdictContradicted || j.ReportedState != string(event.StateFailed) {
		t.Fatalf("job after the forged claim: %+v", j)
	}
	post("msg_genuine", event.TypeBatchSucceeded, map[string]any{})
	for {
		d, err := st.Ledger.GetDelivery(ctx, "msg_genuine")
		if err == nil && d.Verification == ledger.VerdictConfirmed {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the genuine delivery was never verified: %+v %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // a second results event would show up by now
	got := seen.snapshot()
	if len(got) == 0 {
		t.Fatal("no results event")
	}
	for _, e := range got {
		if e.JobID != ref.ID || e.State != event.StateSucceeded || e.EventID != event.ResultsEventID(ref.ID, event.StateSucceeded) {
			t.Errorf("results event %+v; want only succeeded for %s", e, ref.ID)
		}
	}
	t.Logf("summary: scenario=forged results_messages=%d state=%s verification=%s", len(got), j.State, j.Verification)
}

func reconcileScenario(t *testing.T, ctx context.Context, st *devstack.Stack, every time.Duration) {
	seen, stopRecv := watchResults(t, ctx, st, "reconcile-results")
	defer stopRecv()

	t0 := time.Now()
	// A batch created by another client: the ledger never hears of it.
	b, err := st.Gemini.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
		{Contents: []*genai.Content{genai.NewContentFromText("reconcile me", genai.RoleUser)}}}}, &genai.CreateBatchJobConfig{DisplayName: "other client"})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := event.RefForName(event.KindBatch, b.Name)
	if err != nil {
		t.Fatal(err)
	}
	// A video submitted with the CLI, configured from the ready line.
	cli := exec.CommandContext(ctx, os.Getenv(cliEnv), "submit", "video", "--model", "veo-3.1-generate-preview", "--prompt", "a lost webhook", "--format", "json")
	cli.Env = append(os.Environ(), "GOOGLE_CLOUD_PROJECT="+st.Project, "FIRESTORE_EMULATOR_HOST="+st.FirestoreHost,
		"GEMINI_BASE_URL="+st.GeminiURL, "GEMINI_API_KEY="+devstack.SimAPIKey, ledger.FirstCheckEnv+"="+every.String())
	outJSON, err := cli.Output()
	if err != nil {
		t.Fatalf("geminihooks submit video: %v\n%s", err, outJSON)
	}
	var submitted struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(outJSON, &submitted); err != nil || submitted.JobID == "" {
		t.Fatalf("submit output %q: %v", outJSON, err)
	}
	ids := []string{batch.ID, submitted.JobID}

	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	jobs, err := st.WaitCollected(wctx, ids, nil)
	if err != nil {
		t.Fatalf("jobs not collected within 30 s of submission: %v", err)
	}
	elapsed := time.Since(t0)
	for _, j := range jobs {
		if j.CollectionState != ledger.CollectionDone || j.State != string(event.StateSucceeded) || j.Source != ledger.SourceReconciler {
			t.Errorf("job %s: state=%s collection=%s source=%s", j.JobID, j.State, j.CollectionState, j.Source)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !seen.has(ids) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * every) // a second results event would show up by now
	seen.mu.Lock()
	defer seen.mu.Unlock()
	for _, id := range ids {
		if n := len(seen.eventIDs[id]); n != 1 {
			t.Errorf("job %s: %d distinct results events, want 1", id, n)
		}
	}
	stats := st.Sim.Stats().Deliveries
	if stats.Succeeded != 0 || stats.Dropped == 0 {
		t.Errorf("deliveries %+v: want every attempt dropped", stats)
	}
	t.Logf("summary: scenario=reconcile jobs=%d collected_within=%s webhook_attempts=%d dropped=%d", len(ids), elapsed.Round(time.Millisecond), stats.Attempts, stats.Dropped)
}

// TestStartWithoutEmulatorBinary: a missing emulator is reported with the
// install hint, and nothing is left running.
func TestStartWithoutEmulatorBinary(t *testing.T) {
	t.Setenv("FIRESTORE_EMULATOR_HOST", "")
	t.Setenv("FIRESTORE_EMULATOR_PATH", t.TempDir()+"/no-such-emulator")
	_, err := devstack.Start(context.Background(), devstack.Options{})
	if err == nil || !strings.Contains(err.Error(), "gcloud components install cloud-firestore-emulator") {
		t.Fatalf("Start = %v, want the install hint", err)
	}
	if v := os.Getenv("PUBSUB_EMULATOR_HOST"); v != "" {
		t.Errorf("PUBSUB_EMULATOR_HOST=%s left behind", v)
	}
}

// signedPing builds a signed Standard Webhooks delivery like the simulator's ping.
func signedPing(t *testing.T, secret, webhookID string) ([]byte, map[string][]string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"type": "webhook.ping", "version": "v1",
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano), "data": map[string]string{"id": webhookID}})
	s, err := webhook.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	return body, s.Headers(fmt.Sprintf("msg_devstacktest%d", time.Now().UnixNano()), time.Now(), body)
}

// TestDevCommand runs `geminihooks dev --demo` as a separate process with
// its own Firestore emulator: the ready line appears, the demo reaches
// "results in Firestore", a delivery signed with the --secret-file secret is
// accepted, and SIGTERM leaves no emulator process and no listening port.
func TestDevCommand(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	if m, _ := filepath.Glob(filepath.Join(root, "cmd", "geminihooks", "*.go")); len(m) == 0 {
		t.Skip("cmd/geminihooks not built yet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "geminihooks")
	build := exec.CommandContext(ctx, goTool(), "build", "-o", bin, "./cmd/geminihooks")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/geminihooks: %v\n%s", err, out)
	}

	secretFile := filepath.Join(t.TempDir(), "secret")
	cmd := exec.CommandContext(ctx, bin, "dev", "--demo", "--secret-file", secretFile, "--project", "geminihooks-clitest")
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", scenarioEnv, faultsEnv, roundsEnv:
			// The command must start (and stop) its own emulators.
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 1024)
	var outMu sync.Mutex
	var output []string
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			outMu.Lock()
			output = append(output, sc.Text())
			outMu.Unlock()
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	dump := func() string {
		outMu.Lock()
		defer outMu.Unlock()
		return "stdout:\n" + strings.Join(output, "\n") + "\nstderr:\n" + stderr.String()
	}
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	waitLine := func(what string, match func(string) bool) string {
		t.Helper()
		timeout := time.After(3 * time.Minute)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("geminihooks dev exited before %s\n%s", what, dump())
				}
				if match(l) {
					return l
				}
			case <-timeout:
				t.Fatalf("no %s within 3 minutes\n%s", what, dump())
			}
		}
	}

	ready := waitLine("ready line", func(l string) bool { return strings.HasPrefix(l, "ready ") })
	kv := map[string]string{}
	for _, f := range strings.Fields(strings.TrimPrefix(ready, "ready ")) {
		k, v, _ := strings.Cut(f, "=")
		kv[k] = v
	}
	for _, k := range []string{"receiver_url", "gemini_url", "firestore", "pubsub", "project"} {
		if kv[k] == "" || kv[k] == "-" {
			t.Fatalf("ready line lacks %s: %q", k, ready)
		}
	}
	if kv["project"] != "geminihooks-clitest" {
		t.Errorf("project = %q", kv["project"])
	}
	fi, err := os.Stat(secretFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, mode %v; want 0600", err, fi)
	}
	secret, _ := os.ReadFile(secretFile)
	if strings.Contains(dump(), strings.TrimSpace(string(secret))) {
		t.Error("the signing secret appears in the command's output")
	}

	waitLine("demo completion", func(l string) bool { return strings.Contains(l, "demo: all 4 jobs done") })

	body, hdr := signedPing(t, strings.TrimSpace(string(secret)), kv["webhook_id"])
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, kv["receiver_url"], bytes.NewReader(body))
	req.Header = hdr
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST signed delivery: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("signed delivery: HTTP %d, want 2xx\n%s", resp.StatusCode, dump())
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("geminihooks dev after SIGTERM: %v\n%s", err, dump())
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("geminihooks dev did not exit within 45s of SIGTERM\n%s", dump())
	}

	for _, k := range []string{"receiver_url", "gemini_url", "firestore", "pubsub"} {
		host := kv[k]
		if u, err := url.Parse(host); err == nil && u.Host != "" {
			host = u.Host
		}
		if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
			c.Close()
			t.Errorf("%s %s still accepts connections after exit", k, host)
		}
	}
	_, fsPort, _ := net.SplitHostPort(kv["firestore"])
	if pids := processesWith("--port=" + fsPort); len(pids) > 0 {
		t.Errorf("Firestore emulator processes %v (port %s) survived the command", pids, fsPort)
	}
}

// syncBuffer is a bytes.Buffer safe for the exec copier and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// processesWith lists the pids whose command line contains arg.
func processesWith(arg string) []string {
	var pids []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(arg)) {
			pids = append(pids, d.Name())
		}
	}
	return pids
}

func largeScenario(t *testing.T, ctx context.Context, st *devstack.Stack) {
	lines := 10000
	if v := os.Getenv("DEVSTACK_TEST_LINES"); v != "" {
		lines, _ = strconv.Atoi(v)
	}
	seen, stopRecv := watchResults(t, ctx, st, "large-results")
	defer stopRecv()
	start := time.Now()
	// Any client: the genai SDK uploads the input and creates the batch.
	in := fmt.Sprintf(`{"key":"k","simulate_lines":%d,"line_bytes":300}`+"\n", lines)
	b, err := submit.Batch(ctx, st.Gemini, st.Ledger, submit.BatchRequest{Model: "gemini-2.5-flash", InputJSONL: strings.NewReader(in)})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := st.WaitCollected(ctx, []string{b.ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	j := jobs[0]
	res, err := st.Firestore.Collection(ledger.ResultsPath(b.ID)).NewAggregationQuery().WithCount("n").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	docs := res["n"].(interface{ GetIntegerValue() int64 }).GetIntegerValue()
	if j.CollectionState != ledger.CollectionDone || j.Counts.Results != lines || docs != int64(lines) {
		t.Fatalf("collection_state=%s counts=%+v result documents=%d; want %d", j.CollectionState, j.Counts, docs, lines)
	}
	if p := j.CollectionProgress; p == nil || p.Invocations < 2 || p.Lines != int64(lines) {
		t.Fatalf("collection_progress %+v: want all %d lines over several invocations", p, lines)
	}
	time.Sleep(time.Second) // a second results event would show up by now
	got := seen.snapshot()
	if len(got) != 1 || got[0].Counts.Results != lines {
		t.Fatalf("results events %+v; want one with %d results", got, lines)
	}
	t.Logf("summary: scenario=large lines=%d invocations=%d elapsed=%s results_per_s=%.0f", lines, j.CollectionProgress.Invocations,
		time.Since(start).Round(time.Millisecond), float64(lines)/time.Since(start).Seconds())
}
