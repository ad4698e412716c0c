package collect_test

// Collector scenarios against the Gemini simulator with the real genai SDK:
// webhooks from shared/gemsim go through the Receiver's domain
// (shared/ingest) into the ledger, and the JobEvents it publishes are
// handed to the Collector, which reads Gemini through gemini.Client.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/iterator"
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
	"github.com/geminihooks/geminihooks/shared/submit"
)

const simKey = "sim-key"

type simEnv struct {
	t       *testing.T
	fs      *firestore.Client
	sim     *gemsim.Simulator
	genai   *genai.Client
	store   *ledger.Store
	events  *bus.MemoryPublisher
	results *bus.MemoryPublisher
	svc     *collect.Service
	hookID  string
	now     func() time.Time // the Collector's clock
	opts    collect.Options  // the Collector's options (to build a variant)

	mu       sync.Mutex
	statuses []ingest.Status
	handled  int // events handed to the Collector
}

// newSimEnv starts the simulator with opts, a static webhook feeding the
// Receiver's domain, and a Collector reading the simulator. now, if set,
// is the Collector's clock.
func newSimEnv(t *testing.T, opts gemsim.Options, co collect.Options) *simEnv {
	t.Helper()
	ctx := context.Background()
	fs, _ := testenv.Firestore(t)
	opts.APIKey = simKey
	if d := opts.Durations; d.Batch == 0 && d.Video == 0 && d.Interaction == 0 && d.Func == nil {
		opts.Durations = gemsim.Durations{Batch: 20 * time.Millisecond, Video: 20 * time.Millisecond, Interaction: 20 * time.Millisecond}
	}
	sim := gemsim.New(opts)
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
	e := &simEnv{t: t, fs: fs, sim: sim, genai: gc, store: ledger.New(fs, ledger.Options{}),
		events: &bus.MemoryPublisher{}, results: &bus.MemoryPublisher{}}
	in := &ingest.Service{Ledger: e.store, Publisher: e.events}
	// The signature is the Receiver's business (tested there); this
	// endpoint takes the delivery straight to the Receiver's domain.
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		res, err := in.Handle(r.Context(), ingest.Delivery{WebhookID: r.Header.Get("webhook-id"), Scheme: "hmac", Body: body})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		e.mu.Lock()
		e.statuses = append(e.statuses, res.Status)
		e.mu.Unlock()
		json.NewEncoder(w).Encode(res)
	}))
	t.Cleanup(rcv.Close)
	hook, err := gc.Webhooks.Create(ctx, operations.CreateWebhookRequest{Body: webhooks.WebhookInput{URI: rcv.URL, SubscribedEvents: []webhooks.WebhookSubscribedEvent{
		webhooks.WebhookSubscribedEventBatchSucceeded, webhooks.WebhookSubscribedEventBatchFailed, webhooks.WebhookSubscribedEventBatchExpired,
		webhooks.WebhookSubscribedEventVideoGenerated, webhooks.WebhookSubscribedEventInteractionCompleted,
		webhooks.WebhookSubscribedEventInteractionFailed, webhooks.WebhookSubscribedEventInteractionRequiresAction,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	e.hookID = *hook.Webhook.ID
	co.Ledger, co.Gemini, co.Publisher = e.store, client, e.results
	if co.Logger == nil {
		co.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e.now = co.Now
	if e.now == nil {
		e.now = time.Now
	}
	e.opts = co
	e.svc = collect.New(co)
	return e
}

// awaitEvents waits until n JobEvents are published in all.
func (e *simEnv) awaitEvents(n int) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(e.events.Messages()) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("%d events published, want %d", len(e.events.Messages()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// collect hands every event not yet handled to the Collector (delivery
// attempt attempt) and returns Handle's errors by job id.
func (e *simEnv) collect(attempt int) map[string]error {
	e.t.Helper()
	errs := map[string]error{}
	msgs := e.events.Messages()
	e.mu.Lock()
	from := e.handled
	e.handled = len(msgs)
	e.mu.Unlock()
	for _, m := range msgs[from:] {
		pm := bus.PushMessage{Data: m.Data, Attributes: m.Attributes, MessageID: "m-" + m.Attributes[event.AttrWebhookID],
			OrderingKey: m.OrderingKey, DeliveryAttempt: attempt, PublishTime: e.now().Add(-time.Hour)}
		errs[m.Attributes[event.AttrJobID]] = e.svc.Handle(context.Background(), pm)
	}
	return errs
}

// redeliver hands the event of job to the Collector again.
func (e *simEnv) redeliver(jobID string, attempt int) error {
	for _, m := range e.events.Messages() {
		if m.Attributes[event.AttrJobID] == jobID {
			return e.svc.Handle(context.Background(), bus.PushMessage{Data: m.Data, MessageID: "again", DeliveryAttempt: attempt,
				PublishTime: e.now().Add(-time.Hour)})
		}
	}
	e.t.Fatalf("no event for %s", jobID)
	return nil
}

func (e *simEnv) job(id string) ledger.Job {
	e.t.Helper()
	j, err := e.store.GetJob(context.Background(), id)
	if err != nil {
		e.t.Fatalf("job %s: %v", id, err)
	}
	return j
}

func (e *simEnv) published() map[string]event.ResultsEvent {
	out := map[string]event.ResultsEvent{}
	for _, m := range e.results.Messages() {
		var re event.ResultsEvent
		if err := json.Unmarshal(m.Data, &re); err != nil {
			e.t.Fatal(err)
		}
		out[re.JobID] = re
	}
	return out
}

func mustNoErrors(t *testing.T, errs map[string]error) {
	t.Helper()
	for id, err := range errs {
		if err != nil {
			t.Errorf("collect %s: %v", id, err)
		}
	}
}

// TestSimIDForms: whichever form of data.id the webhook uses, the job
// submitted through shared/submit is one document, keeps the name the API
// returned, and is collected; a video geminihooks did not submit, known
// only by a bare or "operations/" id, is read as "operations/<id>".
func TestSimIDForms(t *testing.T) {
	for _, form := range []gemsim.IDForm{gemsim.IDFormBare, gemsim.IDFormPrefixed, gemsim.IDFormCanonical} {
		t.Run(string(form), func(t *testing.T) {
			e := newSimEnv(t, gemsim.Options{EventIDs: form}, collect.Options{})
			ctx := context.Background()
			b, err := submit.Batch(ctx, e.genai, e.store, submit.BatchRequest{Model: "gemini-2.5-flash", Prompts: []string{"hello"}})
			if err != nil {
				t.Fatal(err)
			}
			v, err := submit.Video(ctx, e.genai, e.store, submit.VideoRequest{Model: "veo-3.1-generate-preview", Prompt: "a cat"})
			if err != nil {
				t.Fatal(err)
			}
			i, err := submit.Interaction(ctx, e.genai, e.store, submit.InteractionRequest{Model: "gemini-3-flash", Input: "hi"})
			if err != nil {
				t.Fatal(err)
			}
			stranger, err := e.genai.Models.GenerateVideosFromSource(ctx, "veo-3.1-generate-preview", &genai.GenerateVideosSource{Prompt: "not ours"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			strangerRef, _ := event.RefForName(event.KindVideo, stranger.Name)
			e.awaitEvents(4)
			mustNoErrors(t, e.collect(1))

			for _, ref := range []event.JobRef{b, v, i} {
				j := e.job(ref.ID)
				if j.GeminiName != ref.Name || j.Deliveries != 1 || j.State != "succeeded" || j.CollectionState != ledger.CollectionDone ||
					j.Verification != ledger.VerdictConfirmed {
					t.Errorf("%s: gemini_name %q (submitted %q), deliveries %d, state %q, collection %q, verdict %q",
						ref.ID, j.GeminiName, ref.Name, j.Deliveries, j.State, j.CollectionState, j.Verification)
				}
			}
			sj := e.job(strangerRef.ID)
			wantName := stranger.Name
			if form != gemsim.IDFormCanonical {
				wantName = "operations/" + strings.TrimPrefix(strangerRef.ID, "video-")
			}
			if sj.GeminiName != wantName || sj.State != "succeeded" || sj.CollectionState != ledger.CollectionDone {
				t.Errorf("unsubmitted video: gemini_name %q (want %q), state %q, collection %q", sj.GeminiName, wantName, sj.State, sj.CollectionState)
			}
			// Nothing else was created: four jobs, four documents.
			n := 0
			it := e.fs.Collection(ledger.JobsCollection).Documents(ctx)
			for {
				if _, err := it.Next(); err != nil {
					break
				}
				n++
			}
			if n != 4 {
				t.Errorf("%d job documents; want 4", n)
			}
		})
	}
}

// TestSimErrorShapes: errors from every source are stored as {code,
// status, message}: a batch line's google.rpc.Status, a failed batch's
// operation error, a failed interaction's Interactions error word, and
// the webhooks' claimed error codes.
func TestSimErrorShapes(t *testing.T) {
	e := newSimEnv(t, gemsim.Options{}, collect.Options{})
	ctx := context.Background()
	in := `{"key":"ok","request":{"contents":[{"parts":[{"text":"fine"}]}]}}` + "\n" +
		`{"key":"bad","request":{"contents":[{"parts":[{"text":"FAIL_LINE"}]}]}}` + "\n"
	lines, err := submit.Batch(ctx, e.genai, e.store, submit.BatchRequest{Model: "gemini-2.5-flash", InputJSONL: strings.NewReader(in)})
	if err != nil {
		t.Fatal(err)
	}
	failed, err := submit.Batch(ctx, e.genai, e.store, submit.BatchRequest{Model: "fail-model", Prompts: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := submit.Interaction(ctx, e.genai, e.store, submit.InteractionRequest{Model: "gemini-3-flash", Input: "FAIL_INTERACTION"})
	if err != nil {
		t.Fatal(err)
	}
	e.awaitEvents(3)
	mustNoErrors(t, e.collect(1))

	res, err := e.fs.Collection(ledger.JobsCollection).Doc(lines.ID).Collection(ledger.ResultsCollection).Doc(collect.ResultID(1)).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var r ledger.Result
	res.DataTo(&r)
	if r.Key != "bad" || r.Error == nil || r.Error.Code != "3" || r.Error.Status != "INVALID_ARGUMENT" || !strings.Contains(r.Error.Message, "FAIL_LINE") {
		t.Errorf("failed line = %+v (error %+v)", r, r.Error)
	}
	internal := func(je *event.JobError) bool {
		return je != nil && je.Code == "13" && je.Status == "INTERNAL" && je.Message != ""
	}
	if j := e.job(failed.ID); j.State != "failed" || !internal(j.Error) || !internal(j.ReportedError) {
		t.Errorf("failed batch: state %q, error %+v, reported %+v", j.State, j.Error, j.ReportedError)
	}
	if j := e.job(fi.ID); j.State != "failed" || !internal(j.Error) || !internal(j.ReportedError) {
		t.Errorf("failed interaction: state %q, error %+v, reported %+v", j.State, j.Error, j.ReportedError)
	}
	if re := e.published()[failed.ID]; re.Type != event.TypeBatchFailed || !internal(re.Error) {
		t.Errorf("results event of the failed batch: %+v", re)
	}
}

// TestSimOutputExpired: an output collected after Gemini deleted it (48 h
// of sim-time) is a permanent collect_failed with code output_expired; a
// video's message names VIDEO_BUCKET. Gone within the TTL, it is retried.
func TestSimOutputExpired(t *testing.T) {
	clk := gemsim.NewFakeClock(time.Time{})
	e := newSimEnv(t, gemsim.Options{Clock: clk, Durations: gemsim.Durations{Batch: time.Minute, Video: time.Minute}},
		collect.Options{Now: clk.Now, MaxDeliveryAttempts: 3})
	ctx := context.Background()
	in := `{"key":"a","request":{"contents":[{"parts":[{"text":"x"}]}]}}` + "\n"
	b, err := submit.Batch(ctx, e.genai, e.store, submit.BatchRequest{Model: "gemini-2.5-flash", InputJSONL: strings.NewReader(in)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := submit.Video(ctx, e.genai, e.store, submit.VideoRequest{Model: "veo-3.1-generate-preview", Prompt: "late"})
	if err != nil {
		t.Fatal(err)
	}
	eventuallyTimers(t, clk, 3)
	clk.Advance(time.Minute)
	e.awaitEvents(2)
	clk.Advance(gemsim.DefaultFileTTL + time.Hour) // the webhooks sat in a dead-letter topic for two days
	errs := e.collect(1)
	for id, err := range errs {
		if err != nil {
			t.Errorf("%s: expired output not acknowledged: %v", id, err)
		}
	}
	for _, ref := range []event.JobRef{b, v} {
		j := e.job(ref.ID)
		if j.State != "succeeded" || j.CollectionState != ledger.CollectionFailed || j.CollectError == nil || j.CollectError.Code != collect.CodeOutputExpired {
			t.Fatalf("%s: state %q collection %q error %+v", ref.ID, j.State, j.CollectionState, j.CollectError)
		}
		re := e.published()[ref.ID]
		if re.CollectionState != ledger.CollectionFailed || re.Error == nil || re.Error.Code != collect.CodeOutputExpired {
			t.Errorf("%s: results event %+v", ref.ID, re)
		}
	}
	if msg := e.job(v.ID).CollectError.Message; !strings.Contains(msg, "VIDEO_BUCKET") || !strings.Contains(msg, "48h") {
		t.Errorf("video message %q does not say how VIDEO_BUCKET keeps videos", msg)
	}
	if msg := e.job(b.ID).CollectError.Message; strings.Contains(msg, "VIDEO_BUCKET") {
		t.Errorf("batch message %q names VIDEO_BUCKET", msg)
	}

	// A file deleted while the job is young: the API may lag; retried,
	// and recorded as retries_exhausted on the last attempt.
	young, err := submit.Batch(ctx, e.genai, e.store, submit.BatchRequest{Model: "gemini-2.5-flash", InputJSONL: strings.NewReader(in)})
	if err != nil {
		t.Fatal(err)
	}
	eventuallyTimers(t, clk, 2)
	clk.Advance(time.Minute)
	e.awaitEvents(3)
	job, err := e.genai.Batches.Get(ctx, young.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.genai.Files.Delete(ctx, job.Dest.FileName, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.collect(1)[young.ID]; err == nil || gemini.IsPermanent(err) {
		t.Fatalf("a young job's missing output: %v; want a transient error", err)
	}
	if err := e.redeliver(young.ID, 3); err == nil {
		t.Fatal("last attempt acknowledged")
	}
	if j := e.job(young.ID); j.CollectionState != ledger.CollectionFailed || j.CollectError == nil || j.CollectError.Code != "retries_exhausted" {
		t.Errorf("young job after the last attempt: %q %+v", j.CollectionState, j.CollectError)
	}
}

func eventuallyTimers(t *testing.T, clk *gemsim.FakeClock, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for clk.Waiters() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d timers armed, want %d", clk.Waiters(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSimVeoAndInteractionOutcomes: a safety-filtered video and a failed
// one end as failed jobs with the reason (video.failed results events);
// incomplete and budget_exceeded interactions are failed with the status
// as the code, their partial text kept; requires_continuation is running,
// so a claim of it finished is contradicted until it really completes.
func TestSimVeoAndInteractionOutcomes(t *testing.T) {
	clk := gemsim.NewFakeClock(time.Time{})
	e := newSimEnv(t, gemsim.Options{Clock: clk, Durations: gemsim.Durations{Video: time.Minute, Interaction: time.Minute}},
		collect.Options{Now: clk.Now})
	ctx := context.Background()
	rai, err := submit.Video(ctx, e.genai, e.store, submit.VideoRequest{Model: "veo-3.1-generate-preview", Prompt: "x " + gemsim.TriggerRAIFilter})
	if err != nil {
		t.Fatal(err)
	}
	failed, err := submit.Video(ctx, e.genai, e.store, submit.VideoRequest{Model: "veo-3.1-generate-preview", Prompt: gemsim.TriggerFailVideo})
	if err != nil {
		t.Fatal(err)
	}
	inc, err := submit.Interaction(ctx, e.genai, e.store, submit.InteractionRequest{Model: "gemini-3-flash", Input: "a long story " + gemsim.TriggerIncomplete})
	if err != nil {
		t.Fatal(err)
	}
	budget, err := submit.Interaction(ctx, e.genai, e.store, submit.InteractionRequest{Model: "gemini-3-flash", Input: gemsim.TriggerBudgetExceeded})
	if err != nil {
		t.Fatal(err)
	}
	cont, err := submit.Interaction(ctx, e.genai, e.store, submit.InteractionRequest{Model: "gemini-3-flash", Input: "go " + gemsim.TriggerContinuation})
	if err != nil {
		t.Fatal(err)
	}
	eventuallyTimers(t, clk, 6)
	clk.Advance(30 * time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for { // the timer's goroutine pauses it
		res, err := e.genai.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: cont.Name})
		if err != nil {
			t.Fatal(err)
		}
		if res.Interaction.Status == "requires_continuation" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("interaction %s is %q, not paused", cont.Name, res.Interaction.Status)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// A claim that the paused interaction completed (forged, or a sweep
	// looking early): the API shows requires_continuation, i.e. running.
	forged := event.JobEvent{SchemaVersion: event.SchemaVersion, WebhookID: "forged-cont", Type: event.TypeInteractionCompleted,
		JobID: cont.ID, Kind: cont.Kind, GeminiName: cont.Name, State: event.StateSucceeded, ReceivedAt: time.Now()}
	if err := e.svc.Handle(ctx, bus.PushMessage{Data: event.Marshal(forged), MessageID: "f1", DeliveryAttempt: 1, PublishTime: e.now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if j := e.job(cont.ID); j.State != "running" || j.Verification != ledger.VerdictContradicted {
		t.Errorf("paused interaction: state %q verdict %q", j.State, j.Verification)
	}
	clk.Advance(30 * time.Second)
	e.awaitEvents(4) // rai video, incomplete, budget, continued (none for the failed video)
	mustNoErrors(t, e.collect(1))
	// Gemini sends nothing for the failed video; a sweep's event (here a
	// claim the reconciler could publish) makes the Collector read it.
	sweep := event.JobEvent{SchemaVersion: event.SchemaVersion, WebhookID: "sweep-1", Type: event.TypeVideoGenerated,
		JobID: failed.ID, Kind: failed.Kind, GeminiName: failed.Name, ReceivedAt: time.Now()}
	if err := e.svc.Handle(ctx, bus.PushMessage{Data: event.Marshal(sweep), MessageID: "s1", DeliveryAttempt: 1}); err != nil {
		t.Fatal(err)
	}

	pub := e.published()
	j := e.job(rai.ID)
	if j.State != "failed" || j.Error == nil || j.Error.Code != "rai_filtered" || !strings.Contains(j.Error.Message, gemsim.SimulatedRAIReason) ||
		j.Output["rai_filtered_count"] != int64(1) || pub[rai.ID].Type != event.TypeVideoFailed {
		t.Errorf("filtered video: state %q error %+v output %v event %q", j.State, j.Error, j.Output, pub[rai.ID].Type)
	}
	j = e.job(failed.ID)
	if j.State != "failed" || j.Error == nil || j.Error.Code != "13" || j.Error.Status != "INTERNAL" || pub[failed.ID].Type != event.TypeVideoFailed {
		t.Errorf("failed video: state %q error %+v event %q", j.State, j.Error, pub[failed.ID].Type)
	}
	j = e.job(inc.ID)
	if j.State != "failed" || j.Error == nil || j.Error.Code != "incomplete" || j.Output["status"] != "incomplete" ||
		!strings.HasPrefix(j.Output["text"].(string), "echo: a long") || pub[inc.ID].Type != event.TypeInteractionFailed {
		t.Errorf("incomplete interaction: state %q error %+v output %v", j.State, j.Error, j.Output)
	}
	j = e.job(budget.ID)
	if j.State != "failed" || j.Error == nil || j.Error.Code != "budget_exceeded" {
		t.Errorf("budget_exceeded interaction: state %q error %+v", j.State, j.Error)
	}
	j = e.job(cont.ID)
	if j.State != "succeeded" || j.CollectionState != ledger.CollectionDone || pub[cont.ID].Type != event.TypeInteractionCompleted {
		t.Errorf("continued interaction: state %q collection %q", j.State, j.CollectionState)
	}
}

// TestSimRedirectAndOddLines: downloads answered with a redirect to
// another host are collected without sending the API key there; output
// lines without a key or with Struct metadata are stored.
func TestSimRedirectAndOddLines(t *testing.T) {
	e := newSimEnv(t, gemsim.Options{RedirectDownloads: true}, collect.Options{})
	ctx := context.Background()
	in := `{"request":{"contents":[{"parts":[{"text":"no key"}]}]}}` + "\n" +
		`{"metadata":{"key":"m1","n":2,"tags":["a","b"]},"request":{"contents":[{"parts":[{"text":"struct"}]}]}}` + "\n"
	b, err := submit.Batch(ctx, e.genai, e.store, submit.BatchRequest{Model: "gemini-2.5-flash", InputJSONL: strings.NewReader(in)})
	if err != nil {
		t.Fatal(err)
	}
	e.awaitEvents(1)
	mustNoErrors(t, e.collect(1))
	st := e.sim.Stats()
	if st.Requests["media.download"] != 1 || st.KeyLeaks != 0 {
		t.Errorf("media downloads %d, key leaks %d; want 1, 0", st.Requests["media.download"], st.KeyLeaks)
	}
	j := e.job(b.ID)
	if j.Counts != (event.Counts{Results: 2}) {
		t.Fatalf("counts %+v (collection %q, error %+v)", j.Counts, j.CollectionState, j.CollectError)
	}
	docs := e.fs.Collection(ledger.JobsCollection).Doc(b.ID).Collection(ledger.ResultsCollection)
	var r0, r1 ledger.Result
	for id, r := range map[string]*ledger.Result{collect.ResultID(0): &r0, collect.ResultID(1): &r1} {
		s, err := docs.Doc(id).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.DataTo(r)
	}
	if r0.Key != "" || r0.Text != "echo: no key" || r0.Error != nil {
		t.Errorf("key-less line = %+v", r0)
	}
	if r1.Key != "m1" || r1.Text != "echo: struct" || r1.Metadata["n"] != float64(2) || len(r1.Metadata["tags"].([]any)) != 2 {
		t.Errorf("Struct metadata line = %+v", r1)
	}
}

// TestSimPingIsNotAJob: a webhook ping is recorded as a delivery and
// answered "ping"; it creates no job and publishes nothing.
func TestSimPingIsNotAJob(t *testing.T) {
	e := newSimEnv(t, gemsim.Options{}, collect.Options{})
	ctx := context.Background()
	if _, err := e.genai.Webhooks.Ping(ctx, operations.PingWebhookRequest{ID: e.hookID}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		e.mu.Lock()
		n := len(e.statuses)
		e.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no ping delivered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if e.statuses[0] != ingest.StatusPing || len(e.events.Messages()) != 0 {
		t.Errorf("ping answered %q, %d events published", e.statuses[0], len(e.events.Messages()))
	}
	it := e.fs.Collection(ledger.JobsCollection).Documents(ctx)
	defer it.Stop()
	if _, err := it.Next(); !errors.Is(err, iterator.Done) {
		t.Errorf("a ping created a job document (%v)", err)
	}
}

// TestSimVideoBucket: with VIDEO_BUCKET a fresh video is copied (through a
// redirected download, without sending the API key to the media host); a
// video collected after Gemini deleted it is output_expired, and the
// message says it expired before it could be copied to VIDEO_BUCKET.
func TestSimVideoBucket(t *testing.T) {
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{Host: "127.0.0.1", Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcs.Stop)
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "vids"})
	clk := gemsim.NewFakeClock(time.Time{})
	e := newSimEnv(t, gemsim.Options{Clock: clk, Durations: gemsim.Durations{Video: time.Minute}, RedirectDownloads: true, VideoBytes: 1000},
		collect.Options{Now: clk.Now, Videos: collect.NewGCSVideos(gcs.Client(), "vids")})
	ctx := context.Background()
	fresh, err := submit.Video(ctx, e.genai, e.store, submit.VideoRequest{Model: "veo-3.1-generate-preview", Prompt: "fresh"})
	if err != nil {
		t.Fatal(err)
	}
	late, err := submit.Video(ctx, e.genai, e.store, submit.VideoRequest{Model: "veo-3.1-generate-preview", Prompt: "late"})
	if err != nil {
		t.Fatal(err)
	}
	eventuallyTimers(t, clk, 2)
	clk.Advance(time.Minute)
	e.awaitEvents(2)
	// Collect the fresh one now, the late one two days later.
	for _, m := range e.events.Messages() {
		if m.Attributes[event.AttrJobID] == fresh.ID {
			if err := e.svc.Handle(ctx, bus.PushMessage{Data: m.Data, MessageID: "fresh", DeliveryAttempt: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.Advance(gemsim.DefaultFileTTL)
	if err := e.redeliver(late.ID, 1); err != nil {
		t.Fatalf("expired video not acknowledged: %v", err)
	}
	obj, err := gcs.GetObject("vids", collect.VideoObject(fresh.ID, 0))
	if err != nil || !bytes.Equal(obj.Content, gemsim.FakeVideo("fresh", 0, 1000)) {
		t.Fatalf("copied video: %v (%d bytes)", err, len(obj.Content))
	}
	if st := e.sim.Stats(); st.Requests["media.download"] != 1 || st.KeyLeaks != 0 {
		t.Errorf("media downloads %d, key leaks %d; want 1, 0", st.Requests["media.download"], st.KeyLeaks)
	}
	j := e.job(late.ID)
	if j.CollectionState != ledger.CollectionFailed || j.CollectError == nil || j.CollectError.Code != collect.CodeOutputExpired ||
		!strings.Contains(j.CollectError.Message, "before the Collector could copy it to VIDEO_BUCKET") {
		t.Errorf("late video: %q %+v", j.CollectionState, j.CollectError)
	}
}
