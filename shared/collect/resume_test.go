package collect_test

// Checkpointed collection (resume.go) against the simulator through the
// genai SDK and the Firestore emulator: a batch output file collected over
// several invocations, with Range and without, and crashes at every step.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/collect"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemsim"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/submit"
)

// stepClock advances by step on every reading, so an invocation's time
// budget is a number of clock readings (about one per line) and the number
// of invocations does not depend on the machine's speed.
func stepClock(step time.Duration) func() time.Time {
	var mu sync.Mutex
	t := time.Now()
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(step)
		return t
	}
}

// resumeEnv is a simulator environment whose Collector hands on after a
// budget of about budgetLines lines.
func newResumeEnv(t *testing.T, so gemsim.Options, budgetLines int) *simEnv {
	t.Helper()
	e := newSimEnv(t, so, collect.Options{Now: stepClock(time.Millisecond),
		TimeBudget: time.Duration(budgetLines) * time.Millisecond, CheckpointEvery: time.Hour})
	o := e.opts
	o.Events = e.events
	e.opts = o
	e.svc = collect.New(o)
	return e
}

// submitLines submits a batch whose output has n generated lines and waits
// for its JobEvent; it returns the job id.
func (e *simEnv) submitLines(n int) string {
	e.t.Helper()
	ctx := context.Background()
	in := fmt.Sprintf(`{"key":"k","simulate_lines":%d,"line_bytes":300}`+"\n", n)
	b, err := submit.Batch(ctx, e.genai, e.store, submit.BatchRequest{Model: "gemini-2.5-flash", InputJSONL: strings.NewReader(in)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.awaitEvents(1)
	return b.ID
}

// pushOf is the push delivery of an events-topic message: a JobEvent's
// message id is its webhook id's, a continuation's its continuation id's.
func pushOf(m bus.Message, attempt int) bus.PushMessage {
	id := "m-" + m.Attributes[event.AttrWebhookID]
	if c := m.Attributes[event.AttrContinuationID]; c != "" {
		id = "c-" + c
	}
	return bus.PushMessage{Data: m.Data, Attributes: m.Attributes, MessageID: id, OrderingKey: m.OrderingKey,
		DeliveryAttempt: attempt, PublishTime: time.Now()}
}

// drain delivers every events-topic message not yet handled, in order,
// including the continuations they publish, until none is left or one
// fails; it returns the failing message (to redeliver) and its error.
func (e *simEnv) drain(svc *collect.Service) (*bus.Message, error) {
	e.t.Helper()
	for {
		msgs := e.events.Messages()
		e.mu.Lock()
		if e.handled >= len(msgs) {
			e.mu.Unlock()
			return nil, nil
		}
		m := msgs[e.handled]
		e.handled++
		e.mu.Unlock()
		if err := svc.Handle(context.Background(), pushOf(m, 1)); err != nil {
			return &m, err
		}
	}
}

// checkCollected asserts the job's n results are stored exactly once, the
// summary and progress are right and one results event was published.
func (e *simEnv) checkCollected(jobID string, n int) ledger.Job {
	e.t.Helper()
	ctx := context.Background()
	res, err := e.fs.Collection(ledger.ResultsPath(jobID)).NewAggregationQuery().WithCount("n").Get(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if got := res["n"].(interface{ GetIntegerValue() int64 }).GetIntegerValue(); got != int64(n) {
		e.t.Errorf("%d result documents, want %d", got, n)
	}
	last, err := e.fs.Collection(ledger.ResultsPath(jobID)).Doc(collect.ResultID(int64(n - 1))).Get(ctx)
	if err != nil {
		e.t.Fatalf("last result: %v", err)
	}
	if k, _ := last.DataAt("key"); k != fmt.Sprintf("k-%d", n-1) {
		e.t.Errorf("last result key %v", k)
	}
	j := e.job(jobID)
	if j.CollectionState != ledger.CollectionDone || j.Counts.Results != n || j.Counts.Failed != 0 || j.ResultsEventID == "" {
		e.t.Errorf("summary: collection_state=%s counts=%+v results_event_id=%q", j.CollectionState, j.Counts, j.ResultsEventID)
	}
	if p := j.CollectionProgress; p == nil || p.Lines != int64(n) || p.TotalBytes == 0 || p.Bytes != p.TotalBytes {
		e.t.Errorf("collection_progress = %+v", p)
	}
	if j.CollectCheckpoint != nil {
		e.t.Errorf("checkpoint left behind: %+v", j.CollectCheckpoint)
	}
	var events []event.ResultsEvent
	for _, m := range e.results.Messages() {
		var re event.ResultsEvent
		json.Unmarshal(m.Data, &re)
		if re.JobID == jobID {
			events = append(events, re)
		}
	}
	if len(events) != 1 || events[0].Counts.Results != n || events[0].State != event.StateSucceeded {
		e.t.Errorf("results events %+v, want one with %d results", events, n)
	}
	return j
}

func (e *simEnv) continuations() int {
	n := 0
	for _, m := range e.events.Messages() {
		if m.Attributes[event.AttrEventType] == event.TypeContinuation {
			n++
		}
	}
	return n
}

// TestResumeAfterBudget: an output file larger than one invocation's budget
// is collected over several invocations, resumed with Range requests (206),
// or — the server ignoring Range — by skipping bytes; the result is the same.
func TestResumeAfterBudget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		noRange bool
	}{{"range", false}, {"skip", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newResumeEnv(t, gemsim.Options{IgnoreRange: tc.noRange}, 300)
			id := e.submitLines(1500)
			if m, err := e.drain(e.svc); err != nil {
				t.Fatalf("%s: %v", m.Attributes, err)
			}
			j := e.checkCollected(id, 1500)
			if c := e.continuations(); c < 3 {
				t.Errorf("%d continuations, want several", c)
			}
			if j.CollectionProgress.Invocations != int64(e.continuations()+1) {
				t.Errorf("invocations %d, continuations %d", j.CollectionProgress.Invocations, e.continuations())
			}
			ranged := int(e.sim.Stats().Requests["files.download.ranged"])
			if tc.noRange && ranged != 0 || !tc.noRange && ranged != e.continuations() {
				t.Errorf("%d ranged downloads for %d continuations (range support %v)", ranged, e.continuations(), !tc.noRange)
			}
		})
	}
}

// faultLedger injects failures into the ledger's checkpoint writes and
// result writes.
type faultLedger struct {
	*ledger.Store
	// failCheckpoints fails that many upcoming SaveCheckpoint calls (the
	// results before it are flushed: a crash between flush and checkpoint).
	failCheckpoints atomic.Int32
	// onWrite is called before every result write.
	onWrite func()
	writes  atomic.Int64
}

func (f *faultLedger) SaveCheckpoint(ctx context.Context, jobID string, fence int64, cp ledger.Checkpoint, total int64, release bool, ttl time.Duration) error {
	if release && f.failCheckpoints.Add(-1) >= 0 {
		return errors.New("injected: crash after flush, before the checkpoint")
	}
	return f.Store.SaveCheckpoint(ctx, jobID, fence, cp, total, release, ttl)
}

func (f *faultLedger) OpenResults(ctx context.Context, jobID string) ledger.ResultWriter {
	return &faultWriter{ResultWriter: f.Store.OpenResults(ctx, jobID), f: f}
}

type faultWriter struct {
	ledger.ResultWriter
	f *faultLedger
}

func (w *faultWriter) Write(id string, r ledger.Result) error {
	if w.f.onWrite != nil {
		w.f.onWrite()
	}
	w.f.writes.Add(1)
	return w.ResultWriter.Write(id, r)
}

// failingEvents fails that many upcoming continuation publishes.
type failingEvents struct {
	bus.Publisher
	fail atomic.Int32
}

func (p *failingEvents) Publish(ctx context.Context, m bus.Message) (string, error) {
	if p.fail.Add(-1) >= 0 {
		return "", errors.New("injected: crash after the checkpoint, before the continuation is published")
	}
	return p.Publisher.Publish(ctx, m)
}

func (e *simEnv) variant(f func(*collect.Options)) *collect.Service {
	o := e.opts
	f(&o)
	return collect.New(o)
}

// TestResumeCrashes: a crash at each point of an invocation — mid-stream
// (the context cancelled), after the flush but before the checkpoint, after
// the checkpoint but before the continuation is published — followed by
// Pub/Sub's redelivery of the same message loses no result, duplicates
// none, and publishes one results event.
func TestResumeCrashes(t *testing.T) {
	for _, crash := range []string{"mid-stream", "before-checkpoint", "before-publish"} {
		t.Run(crash, func(t *testing.T) {
			e := newResumeEnv(t, gemsim.Options{}, 300)
			fl := &faultLedger{Store: e.store}
			ev := &failingEvents{Publisher: e.events}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			switch crash {
			case "mid-stream":
				fl.onWrite = func() {
					if fl.writes.Load() == 450 { // in the second invocation
						cancel()
					}
				}
			case "before-checkpoint":
				fl.failCheckpoints.Store(1)
			case "before-publish":
				ev.fail.Store(1)
			}
			svc := e.variant(func(o *collect.Options) { o.Ledger, o.Events = fl, ev })
			id := e.submitLines(1200)

			var failed *bus.Message
			for failed == nil {
				msgs := e.events.Messages()
				if e.handled >= len(msgs) {
					t.Fatal("collection finished without the injected crash")
				}
				m := msgs[e.handled]
				e.handled++
				if err := svc.Handle(ctx, pushOf(m, 1)); err != nil {
					failed = &m
				}
			}
			// Pub/Sub redelivers the message that got no 2xx.
			if err := svc.Handle(context.Background(), pushOf(*failed, 2)); err != nil {
				t.Fatalf("redelivery: %v", err)
			}
			if m, err := e.drain(svc); err != nil {
				t.Fatalf("%s: %v", m.Attributes, err)
			}
			e.checkCollected(id, 1200)
		})
	}
}

// TestResumeConcurrentContinuation: the same continuation delivered twice
// at once: one invocation collects, the other finds the lease held and
// asks for redelivery without writing a result; the redelivery, after the
// first handed on, is stale and acknowledged.
func TestResumeConcurrentContinuation(t *testing.T) {
	e := newResumeEnv(t, gemsim.Options{}, 300)
	fl := &faultLedger{Store: e.store}
	id := e.submitLines(900)
	first := e.variant(func(o *collect.Options) { o.Ledger = fl })
	// The JobEvent: first invocation, hands on.
	msgs := e.events.Messages()
	if err := first.Handle(context.Background(), pushOf(msgs[0], 1)); err != nil {
		t.Fatal(err)
	}
	e.handled = 1
	msgs = e.events.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want the JobEvent and one continuation", len(msgs))
	}
	cont := pushOf(msgs[1], 1)

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fl.onWrite = func() { once.Do(func() { close(entered); <-release }) }
	done := make(chan error, 1)
	go func() { done <- first.Handle(context.Background(), cont) }()
	<-entered
	before := fl.writes.Load()
	second := e.variant(func(o *collect.Options) { o.Ledger = fl })
	err := second.Handle(context.Background(), cont)
	if err == nil || errors.Is(err, collect.ErrInvalidEvent) {
		t.Fatalf("concurrent duplicate: %v, want a retryable error", err)
	}
	if fl.writes.Load() != before {
		t.Errorf("the duplicate wrote %d results", fl.writes.Load()-before)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.handled = 2
	// Redelivered later: behind the checkpoint now, acknowledged.
	if err := second.Handle(context.Background(), pushOf(msgs[1], 2)); err != nil {
		t.Fatalf("stale redelivery: %v", err)
	}
	if m, err := e.drain(e.svc); err != nil {
		t.Fatalf("%s: %v", m.Attributes, err)
	}
	e.checkCollected(id, 900)
}
