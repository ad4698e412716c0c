package reconcile_test

// Reconciler scenarios on the Firestore emulator with the Gemini simulator
// and the real genai SDK: webhooks from shared/gemsim go through the
// Receiver's domain (shared/ingest) into the ledger, events published on
// the (in-memory) events topic are handed to the real Collector, and the
// sweep reads the simulator through gemini.Client.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/collect"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/gemsim"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/reconcile"
	"github.com/geminihooks/geminihooks/shared/submit"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const simKey = "sim-key"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// logRecorder keeps every log record the sweep writes.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// count returns how many records with message msg were logged at level.
func (h *logRecorder) count(level slog.Level, msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level == level && r.Message == msg {
			n++
		}
	}
	return n
}

// countingGemini counts the sweep's Gemini reads.
type countingGemini struct {
	reconcile.Gemini
	reads atomic.Int64
}

func (c *countingGemini) ReadJob(ctx context.Context, kind event.Kind, name string) (*gemini.Job, error) {
	c.reads.Add(1)
	return c.Gemini.ReadJob(ctx, kind, name)
}

// countingLedger counts the job documents the sweep's queries return.
type countingLedger struct {
	*ledger.Store
	docs atomic.Int64
}

func (c *countingLedger) DueJobs(ctx context.Context, now time.Time, limit int) ([]ledger.DueJob, error) {
	j, err := c.Store.DueJobs(ctx, now, limit)
	c.docs.Add(int64(len(j)))
	return j, err
}

func (c *countingLedger) StuckCandidates(ctx context.Context, cutoff time.Time, limit int) ([]ledger.DueJob, error) {
	j, err := c.Store.StuckCandidates(ctx, cutoff, limit)
	c.docs.Add(int64(len(j)))
	return j, err
}

type env struct {
	t       *testing.T
	clock   *clock
	sim     *gemsim.Simulator
	genai   *genai.Client
	store   *ledger.Store
	ledger  *countingLedger
	gem     *countingGemini
	events  *bus.MemoryPublisher
	results *bus.MemoryPublisher
	coll    *collect.Service
	rec     *reconcile.Service
	logs    *logRecorder
	hookID  string
	down    atomic.Bool // the Receiver answers 503
	handled int
}

func newEnv(t *testing.T, simOpts gemsim.Options, ro reconcile.Options) *env {
	t.Helper()
	ctx := context.Background()
	fs, _ := testenv.Firestore(t)
	simOpts.APIKey = simKey
	if d := simOpts.Durations; d.Batch == 0 && d.Video == 0 && d.Interaction == 0 {
		simOpts.Durations = gemsim.Durations{Batch: 20 * time.Millisecond, Video: 20 * time.Millisecond, Interaction: 20 * time.Millisecond}
	}
	sim := gemsim.New(simOpts)
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	gc, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: simKey, Backend: genai.BackendGeminiAPI, HTTPOptions: genai.HTTPOptions{BaseURL: url}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := gemini.New(ctx, gemini.Config{APIKey: simKey, BaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now().UTC()}
	store := ledger.New(fs, ledger.Options{Now: clk.Now, Schedule: ledger.Schedule{First: 5 * time.Minute}})
	e := &env{t: t, clock: clk, sim: sim, genai: gc, store: store, ledger: &countingLedger{Store: store},
		gem: &countingGemini{Gemini: reconcile.GenAI{Client: client}}, events: &bus.MemoryPublisher{}, results: &bus.MemoryPublisher{},
		logs: &logRecorder{}}
	in := &ingest.Service{Ledger: store, Publisher: e.events, Now: clk.Now}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		res, err := in.Handle(r.Context(), ingest.Delivery{WebhookID: r.Header.Get("webhook-id"), Scheme: "hmac", Body: body})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(res)
	}))
	t.Cleanup(rcv.Close)
	var subscribed []webhooks.WebhookSubscribedEvent
	for _, ev := range gemsim.SubscribableEvents {
		subscribed = append(subscribed, webhooks.WebhookSubscribedEvent(ev))
	}
	hook, err := gc.Webhooks.Create(ctx, operations.CreateWebhookRequest{Body: webhooks.WebhookInput{URI: rcv.URL, SubscribedEvents: subscribed}})
	if err != nil {
		t.Fatal(err)
	}
	e.hookID = *hook.Webhook.ID
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.coll = collect.New(collect.Options{Ledger: store, Gemini: client, Publisher: e.results, Logger: quiet})
	ro.Ledger, ro.Gemini, ro.Announcer, ro.Now = e.ledger, e.gem, in, clk.Now
	ro.Logger = slog.New(e.logs)
	e.rec = reconcile.New(ro)
	return e
}

// sweep runs one sweep and fails the test on an error.
func (e *env) sweep() reconcile.Report {
	e.t.Helper()
	rep, err := e.rec.Sweep(context.Background(), false)
	if err != nil {
		e.t.Fatalf("Sweep: %v (report %+v)", err, rep)
	}
	return rep
}

// pump hands every event not yet handled to the Collector.
func (e *env) pump() {
	e.t.Helper()
	msgs := e.events.Messages()
	from := e.handled
	e.handled = len(msgs)
	for _, m := range msgs[from:] {
		pm := bus.PushMessage{Data: m.Data, Attributes: m.Attributes, MessageID: "m-" + m.Attributes[event.AttrWebhookID],
			DeliveryAttempt: 1, PublishTime: time.Now().Add(-time.Hour)}
		if err := e.coll.Handle(context.Background(), pm); err != nil {
			e.t.Errorf("collect %s: %v", m.Attributes[event.AttrWebhookID], err)
		}
	}
}

func (e *env) job(id string) ledger.Job {
	e.t.Helper()
	j, err := e.store.GetJob(context.Background(), id)
	if err != nil {
		e.t.Fatalf("job %s: %v", id, err)
	}
	return j
}

// resultsFor returns the results events published for job id.
func (e *env) resultsFor(id string) []event.ResultsEvent {
	var out []event.ResultsEvent
	for _, m := range e.results.Messages() {
		var re event.ResultsEvent
		if err := json.Unmarshal(m.Data, &re); err != nil {
			e.t.Fatal(err)
		}
		if re.JobID == id {
			out = append(out, re)
		}
	}
	return out
}

// eventIDs lists the webhook ids of the events published for job id.
func (e *env) eventIDs(id string) []string {
	var out []string
	for _, m := range e.events.Messages() {
		if m.Attributes[event.AttrJobID] == id {
			out = append(out, m.Attributes[event.AttrWebhookID])
		}
	}
	return out
}

// waitDone waits until the simulator shows the job finished.
func (e *env) waitDone(kind event.Kind, name string) {
	e.t.Helper()
	c, _ := gemini.New(context.Background(), gemini.Config{APIKey: simKey, BaseURL: e.sim.URL()})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		j, err := c.ReadJob(context.Background(), kind, name)
		if err == nil && j.State.Terminal() {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never finished: %+v %v", name, j, err)
		}
	}
}

func (e *env) submitBatch(name string) event.JobRef {
	e.t.Helper()
	ref, err := submit.Batch(context.Background(), e.genai, e.store, submit.BatchRequest{Model: "gemini-2.5-flash", Prompts: []string{"a", "b"}, DisplayName: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return ref
}

// TestLostEventRecovered: a batch whose every webhook delivery is lost, a
// failed video (Gemini sends no event) and a cancelled batch (*.cancelled
// never reaches a static webhook) are not read before their first check;
// then one sweep finds each, logs "missed webhook", and announces it
// through the ledger as reconcile:<job>:<state>; the Collector collects it
// with one results event, the job says source=reconciler and leaves the
// schedule, and later sweeps read nothing.
func TestLostEventRecovered(t *testing.T) {
	e := newEnv(t, gemsim.Options{Faults: gemsim.Faults{LoseRate: 1}, Durations: gemsim.Durations{Batch: time.Hour, Video: 20 * time.Millisecond}},
		reconcile.Options{SkipBatchList: true})
	ctx := context.Background()
	lost := e.submitBatch("lost")
	if err := e.sim.FinishJob(lost.Name); err != nil {
		t.Fatal(err)
	}
	video, err := submit.Video(ctx, e.genai, e.store, submit.VideoRequest{Model: "veo-3.1-generate-preview", Prompt: gemsim.TriggerFailVideo + " a cat"})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := submit.Batch(ctx, e.genai, e.store, submit.BatchRequest{Model: "gemini-2.5-flash", Prompts: []string{"x"}, DisplayName: "to-cancel"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.genai.Batches.Cancel(ctx, cancelled.Name, nil); err != nil {
		t.Fatal(err)
	}
	e.waitDone(event.KindBatch, lost.Name)
	e.waitDone(event.KindVideo, video.Name)
	if got := e.sim.Stats().Deliveries.Succeeded; got != 0 {
		t.Fatalf("%d deliveries succeeded; the scenario wants every event lost", got)
	}

	// Not due yet: nothing is read.
	if rep := e.sweep(); rep.Checked != 0 || e.gem.reads.Load() != 0 {
		t.Fatalf("sweep before the first check read %d jobs: %+v", e.gem.reads.Load(), rep)
	}
	e.clock.Advance(6 * time.Minute)
	rep := e.sweep()
	if rep.Checked != 3 || rep.Missed != 3 {
		t.Fatalf("sweep after the first check: %+v", rep)
	}
	if n := e.logs.count(slog.LevelWarn, "missed webhook"); n != 3 {
		t.Errorf("%d \"missed webhook\" lines, want 3", n)
	}
	e.pump()
	for _, tc := range []struct {
		ref   event.JobRef
		state event.State
	}{{lost, event.StateSucceeded}, {video, event.StateFailed}, {cancelled, event.StateCancelled}} {
		j := e.job(tc.ref.ID)
		if j.State != string(tc.state) || j.CollectionState != ledger.CollectionDone || j.Source != ledger.SourceReconciler ||
			j.SourceAt.IsZero() || !j.NextCheckAt.IsZero() || j.Checks != 1 {
			t.Errorf("%s: state=%s collection=%s source=%s source_at=%s next_check_at=%s checks=%d", tc.ref.ID, j.State,
				j.CollectionState, j.Source, j.SourceAt, j.NextCheckAt, j.Checks)
		}
		if ids := e.eventIDs(tc.ref.ID); len(ids) != 1 || ids[0] != ingest.ReconcileID(tc.ref.ID, tc.state) {
			t.Errorf("%s: events %v, want one reconcile:<job>:%s", tc.ref.ID, ids, tc.state)
		}
		if res := e.resultsFor(tc.ref.ID); len(res) != 1 || res[0].State != tc.state || res[0].EventID != event.ResultsEventID(tc.ref.ID, tc.state) {
			t.Errorf("%s: results events %+v, want one for %s", tc.ref.ID, res, tc.state)
		}
		d, err := e.store.GetDelivery(ctx, ingest.ReconcileID(tc.ref.ID, tc.state))
		if err != nil || d.Scheme != ingest.SchemeReconciler || d.Status != ledger.StatusPublished || d.Verification != ledger.VerdictConfirmed {
			t.Errorf("%s: delivery %+v, %v", tc.ref.ID, d, err)
		}
	}
	if r := e.job(lost.ID); r.Counts.Results != 2 {
		t.Errorf("lost batch collected %d results, want 2", r.Counts.Results)
	}

	// Terminal jobs are off the schedule: later sweeps read nothing.
	reads := e.gem.reads.Load()
	e.clock.Advance(24 * time.Hour)
	if rep := e.sweep(); rep.Checked != 0 || e.gem.reads.Load() != reads {
		t.Errorf("sweep a day later: %+v", rep)
	}
}

// TestUnknownBatchDiscovered: a batch created by another client (never
// recorded), its webhook lost, is found by listing Gemini's batches:
// recorded with source reconciler and announced; a still running one is
// put on the schedule and announced once it has finished.
func TestUnknownBatchDiscovered(t *testing.T) {
	e := newEnv(t, gemsim.Options{Faults: gemsim.Faults{LoseRate: 1}, Durations: gemsim.Durations{Batch: time.Hour}}, reconcile.Options{})
	ctx := context.Background()
	mk := func(display string) *genai.BatchJob {
		b, err := e.genai.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
			{Contents: []*genai.Content{genai.NewContentFromText("hi", genai.RoleUser)}}}}, &genai.CreateBatchJobConfig{DisplayName: display})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	done, slow := mk("other-client"), mk("other-client-slow")
	if err := e.sim.FinishJob(done.Name); err != nil {
		t.Fatal(err)
	}
	e.waitDone(event.KindBatch, done.Name)
	doneRef, _ := event.RefForName(event.KindBatch, done.Name)
	slowRef, _ := event.RefForName(event.KindBatch, slow.Name)

	rep := e.sweep()
	if rep.Discovered != 2 || rep.Missed != 1 {
		t.Fatalf("sweep: %+v", rep)
	}
	e.pump()
	j := e.job(doneRef.ID)
	if j.Source != ledger.SourceReconciler || j.State != string(event.StateSucceeded) || j.CollectionState != ledger.CollectionDone {
		t.Errorf("discovered finished batch: %+v", j)
	}
	if res := e.resultsFor(doneRef.ID); len(res) != 1 {
		t.Errorf("results events %+v, want 1", res)
	}
	s := e.job(slowRef.ID)
	if s.Source != ledger.SourceReconciler || s.NextCheckAt.IsZero() || s.CollectionState != "" {
		t.Errorf("discovered running batch: %+v", s)
	}
	// A second sweep discovers nothing new.
	if rep := e.sweep(); rep.Discovered != 0 || rep.Missed != 0 {
		t.Errorf("second sweep: %+v", rep)
	}
	// The running one finishes; its scheduled check finds it.
	if err := e.sim.FinishJob(slow.Name); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(6 * time.Minute)
	if rep := e.sweep(); rep.Checked != 1 || rep.Missed != 1 {
		t.Fatalf("sweep after the running batch finished: %+v", rep)
	}
	e.pump()
	if s := e.job(slowRef.ID); s.CollectionState != ledger.CollectionDone || len(e.resultsFor(slowRef.ID)) != 1 {
		t.Errorf("slow batch after the sweep: %+v", s)
	}
}

// TestDisabledWebhookAlerted: a webhook Gemini disabled after failed
// deliveries is logged at ERROR by every sweep; with ReEnableWebhooks it is
// enabled again, without it left alone.
func TestDisabledWebhookAlerted(t *testing.T) {
	for _, reenable := range []bool{false, true} {
		e := newEnv(t, gemsim.Options{Delivery: gemsim.DeliveryOptions{DisableAfter: 1}}, reconcile.Options{ReEnableWebhooks: reenable, SkipBatchList: true})
		e.down.Store(true)
		e.submitBatch("fails")
		for deadline := time.Now().Add(10 * time.Second); e.sim.WebhookState(e.hookID) != gemsim.StateDisabledDueToFailedDeliveries; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("webhook never disabled: %s", e.sim.WebhookState(e.hookID))
			}
		}
		rep := e.sweep()
		if rep.DisabledWebhooks != 1 || e.logs.count(slog.LevelError, "gemini webhook disabled after failed deliveries") != 1 {
			t.Fatalf("reenable=%v: %+v", reenable, rep)
		}
		want := gemsim.StateDisabledDueToFailedDeliveries
		if reenable {
			want = gemsim.StateEnabled
			if rep.ReEnabled != 1 {
				t.Errorf("re-enabled %d", rep.ReEnabled)
			}
		}
		if got := e.sim.WebhookState(e.hookID); got != want {
			t.Errorf("reenable=%v: webhook state %s, want %s", reenable, got, want)
		}
	}
}

// TestStuckCollectionRedriven: a claim whose event never reached the
// Collector (pending) and a collection whose retries ran out
// (collect_failed, retries_exhausted) and a checkpointed collection whose
// invocation died holding the lease (collecting, no checkpoint since, the
// lease run out) are announced again once idle past StuckAfter, as
// redrive:<job>:<n>, and then collected; a permanent
// failure is left alone; after MaxRedrives a job is given up on.
func TestStuckCollectionRedriven(t *testing.T) {
	e := newEnv(t, gemsim.Options{}, reconcile.Options{SkipBatchList: true, StuckAfter: 15 * time.Minute, MaxRedrives: 2})
	ctx := context.Background()
	pending, failed, permanent := e.submitBatch("pending"), e.submitBatch("failed"), e.submitBatch("permanent")
	collecting := e.submitBatch("collecting")
	for deadline := time.Now().Add(10 * time.Second); len(e.events.Messages()) < 4; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d webhook events, want 4", len(e.events.Messages()))
		}
	}
	e.handled = 4 // the events are "dead-lettered": never collected
	// A checkpointed collection whose invocation died holding the lease.
	if g, err := e.store.AcquireCollection(ctx, collecting.ID, ledger.LeaseRequest{State: event.StateSucceeded, File: "files/out-collecting",
		GeminiName: collecting.Name, MessageID: "m-crashed", Attempt: 1, Seq: -1, TTL: 8 * time.Minute, Quiet: 8 * time.Minute}); err != nil || g.Outcome != ledger.LeaseAcquired {
		t.Fatalf("lease: %+v, %v", g, err)
	}
	if err := e.store.RecordCollectFailure(ctx, failed.ID, event.JobError{Code: ledger.CodeRetriesExhausted, Message: "gemini 503"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RecordCollectFailure(ctx, permanent.ID, event.JobError{Code: "permanent", Message: "bad output"}); err != nil {
		t.Fatal(err)
	}
	if rep := e.sweep(); rep.Redriven != 0 {
		t.Fatalf("redriven before StuckAfter: %+v", rep)
	}
	e.clock.Advance(16 * time.Minute)
	rep := e.sweep()
	if rep.Redriven != 3 || rep.Missed != 0 {
		t.Fatalf("sweep: %+v", rep)
	}
	e.pump()
	for _, ref := range []event.JobRef{pending, failed, collecting} {
		j := e.job(ref.ID)
		if j.CollectionState != ledger.CollectionDone || j.Redrives != 1 || len(e.resultsFor(ref.ID)) != 1 {
			t.Errorf("%s: collection=%s redrives=%d results=%d", ref.ID, j.CollectionState, j.Redrives, len(e.resultsFor(ref.ID)))
		}
		if ids := e.eventIDs(ref.ID); ids[len(ids)-1] != ingest.RedriveID(ref.ID, 1) {
			t.Errorf("%s: events %v", ref.ID, ids)
		}
	}
	if j := e.job(permanent.ID); j.CollectionState != ledger.CollectionFailed || j.Redrives != 0 {
		t.Errorf("permanent failure touched: %+v", j)
	}

	// A job that stays stuck is re-driven MaxRedrives times, then given up.
	if err := e.store.RecordCollectFailure(ctx, pending.ID, event.JobError{Code: ledger.CodeRetriesExhausted, Message: "again"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		e.clock.Advance(16 * time.Minute)
		e.sweep()
		e.handled = len(e.events.Messages()) // never collected
	}
	j := e.job(pending.ID)
	if j.Redrives != 2 || j.CollectionState != ledger.CollectionFailed || j.CollectError == nil || j.CollectError.Code != ledger.CodeRedrivesExhausted {
		t.Errorf("after MaxRedrives: redrives=%d collection=%s error=%+v", j.Redrives, j.CollectionState, j.CollectError)
	}
}

// TestLateWebhookAfterReconciliation: the Receiver is down while a batch
// finishes; the sweep finds and announces it, the Collector publishes its
// results event; when the Receiver is back Gemini's retry delivers the
// webhook, which is recorded and published, and changes nothing: no second
// results event, the job still says source reconciler.
func TestLateWebhookAfterReconciliation(t *testing.T) {
	e := newEnv(t, gemsim.Options{Faults: gemsim.Faults{TimeScale: 200}}, reconcile.Options{SkipBatchList: true})
	e.down.Store(true)
	ref := e.submitBatch("late")
	e.waitDone(event.KindBatch, ref.Name)
	e.clock.Advance(6 * time.Minute)
	if rep := e.sweep(); rep.Missed != 1 {
		t.Fatalf("sweep: %+v", rep)
	}
	e.pump()
	if res := e.resultsFor(ref.ID); len(res) != 1 {
		t.Fatalf("results after the sweep: %+v", res)
	}
	e.down.Store(false)
	for deadline := time.Now().Add(20 * time.Second); len(e.eventIDs(ref.ID)) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the late webhook never arrived: %v", e.eventIDs(ref.ID))
		}
	}
	e.pump()
	if res := e.resultsFor(ref.ID); len(res) != 1 {
		t.Errorf("results events after the late webhook: %d, want 1", len(res))
	}
	j := e.job(ref.ID)
	if j.Source != ledger.SourceReconciler || j.CollectionState != ledger.CollectionDone || j.Deliveries != 2 {
		t.Errorf("job after the late webhook: source=%s collection=%s deliveries=%d", j.Source, j.CollectionState, j.Deliveries)
	}
	if e.logs.count(slog.LevelWarn, "missed webhook") != 1 {
		t.Errorf("missed webhook lines: %d", e.logs.count(slog.LevelWarn, "missed webhook"))
	}
}

// TestSweepReadsOnlyDueJobs: of many jobs — terminal ones (no schedule),
// ones due later, and a few overdue — a sweep's queries return only the
// overdue ones, most overdue first, bounded by Limit.
func TestSweepReadsOnlyDueJobs(t *testing.T) {
	e := newEnv(t, gemsim.Options{}, reconcile.Options{SkipBatchList: true, Limit: 4})
	ctx := context.Background()
	now := e.clock.Now()
	var overdue []string
	for i := range 60 {
		ref, _ := event.RefForName(event.KindBatch, "batches/nosuch"+string(rune('a'+i%26))+strings.Repeat("x", i/26))
		sub := ledger.Submission{Ref: ref, SubmittedAt: now.Add(-time.Duration(i) * time.Second)} // due in ~5 min
		if i < 6 {
			sub.SubmittedAt = now.Add(-10*time.Minute - time.Duration(i)*time.Minute) // overdue
			overdue = append(overdue, ref.ID)
		}
		if err := e.store.RecordSubmission(ctx, sub); err != nil {
			t.Fatal(err)
		}
		if i >= 40 {
			// Terminal: the Collector took it off the schedule.
			if err := e.store.ApplyVerification(ctx, ref.ID, event.KindBatch, ledger.Verification{State: event.StateSucceeded, At: now}); err != nil {
				t.Fatal(err)
			}
			if j := e.job(ref.ID); !j.NextCheckAt.IsZero() {
				t.Fatalf("terminal job still scheduled: %+v", j)
			}
		}
	}
	due, err := e.store.DueJobs(ctx, now, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != len(overdue) {
		t.Fatalf("DueJobs returned %d documents, want the %d overdue", len(due), len(overdue))
	}
	for i := 1; i < len(due); i++ {
		if due[i].NextCheckAt.Before(due[i-1].NextCheckAt) {
			t.Errorf("not most overdue first: %s before %s", due[i-1].NextCheckAt, due[i].NextCheckAt)
		}
	}
	if due[0].JobID != overdue[len(overdue)-1] {
		t.Errorf("most overdue = %s, want %s", due[0].JobID, overdue[len(overdue)-1])
	}
	rep := e.sweep() // Limit 4
	if rep.Checked != 4 || !rep.Truncated || e.ledger.docs.Load() != 4 || e.gem.reads.Load() != 4 {
		t.Fatalf("first sweep: %+v, %d documents, %d reads", rep, e.ledger.docs.Load(), e.gem.reads.Load())
	}
	rep = e.sweep()
	if rep.Checked != 2 || e.ledger.docs.Load() != 6 || e.gem.reads.Load() != 6 {
		t.Fatalf("second sweep: %+v, %d documents in all, %d reads", rep, e.ledger.docs.Load(), e.gem.reads.Load())
	}
	// None of these exist at Gemini (404): they leave the schedule.
	if rep := e.sweep(); rep.Checked != 0 || e.ledger.docs.Load() != 6 {
		t.Fatalf("third sweep: %+v, %d documents", rep, e.ledger.docs.Load())
	}
}
