package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// recorder is what both ledgers implement.
type recorder interface {
	Record(ctx context.Context, ev event.JobEvent, scheme string) (ledger.Claim, error)
	MarkPublished(ctx context.Context, webhookID, messageID string) error
	ReleaseLease(ctx context.Context, webhookID, lease string) error
	RecordInvalid(ctx context.Context, webhookID, scheme string, body []byte, reason string) error
	RecordPing(ctx context.Context, webhookID, scheme string, eventTime time.Time) error
	GetJob(ctx context.Context, jobID string) (ledger.Job, error)
	GetDelivery(ctx context.Context, webhookID string) (ledger.Delivery, error)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// The same contract runs against Firestore (emulator) and the in-memory ledger.
func TestContract(t *testing.T) {
	impls := map[string]func(t *testing.T, now func() time.Time) recorder{
		"firestore": func(t *testing.T, now func() time.Time) recorder {
			c, _ := testenv.Firestore(t)
			return ledger.New(c, ledger.Options{Now: now})
		},
		"memory": func(t *testing.T, now func() time.Time) recorder {
			return ledger.NewMemory(ledger.Options{Now: now})
		},
	}
	for name, newL := range impls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runContract(t, newL)
		})
	}
}

func jobEvent(webhookID, typ, dataID string, at time.Time) event.JobEvent {
	ref, err := event.ParseRef(typ, dataID)
	if err != nil {
		panic(err)
	}
	st, _ := event.StateOf(typ)
	return event.JobEvent{SchemaVersion: event.SchemaVersion, WebhookID: webhookID, Type: typ,
		JobID: ref.ID, Kind: ref.Kind, GeminiName: ref.Name, State: st, EventTime: at,
		ReceivedAt: at, Data: event.Data{ID: dataID}}
}

func runContract(t *testing.T, newL func(t *testing.T, now func() time.Time) recorder) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

	t.Run("new delivery is published once", func(t *testing.T) {
		clk := &clock{t: t0}
		l := newL(t, clk.Now)
		ev := jobEvent("msg_1", event.TypeBatchSucceeded, "batches/a1", t0)
		c, err := l.Record(ctx, ev, "hmac")
		if err != nil || c.Outcome != ledger.OutcomePublish || c.Duplicate {
			t.Fatalf("first Record = %+v, %v; want publish", c, err)
		}
		// An attempt that finds it in flight is told so and writes nothing.
		if c2, _ := l.Record(ctx, ev, "hmac"); c2.Outcome != ledger.OutcomeInFlight {
			t.Fatalf("concurrent Record = %v; want in_flight", c2.Outcome)
		}
		if err := l.MarkPublished(ctx, "msg_1", "m1"); err != nil {
			t.Fatal(err)
		}
		c3, _ := l.Record(ctx, ev, "hmac")
		if c3.Outcome != ledger.OutcomeDone || !c3.Duplicate {
			t.Fatalf("Record after publish = %+v; want done", c3)
		}
		d, err := l.GetDelivery(ctx, "msg_1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != ledger.StatusPublished || d.Attempts != 2 || d.MessageID != "m1" || d.JobID != "batch-a1" {
			t.Errorf("delivery = %+v", d)
		}
		if want := t0.Add(ledger.DefaultOptions.DeliveryTTL); !d.ExpireAt.Equal(want) {
			t.Errorf("expire_at = %v, want %v", d.ExpireAt, want)
		}
		j, err := l.GetJob(ctx, "batch-a1")
		if err != nil {
			t.Fatal(err)
		}
		// The webhook's claim is recorded, not believed: state is only
		// ever read from Gemini's API (by the Collector).
		if j.State != "" || j.ReportedState != "succeeded" || j.ReportedEventType != event.TypeBatchSucceeded ||
			!j.ReportedAt.Equal(t0) || j.Deliveries != 1 || j.GeminiName != "batches/a1" || j.CollectionState != ledger.CollectionPending {
			t.Errorf("job = %+v", j)
		}
		if d.ReportedState != "succeeded" {
			t.Errorf("delivery reported_state = %q", d.ReportedState)
		}
	})

	t.Run("released lease lets a retry publish the recorded event", func(t *testing.T) {
		clk := &clock{t: t0}
		l := newL(t, clk.Now)
		ev := jobEvent("msg_2", event.TypeBatchSucceeded, "b2", t0)
		c, _ := l.Record(ctx, ev, "hmac")
		if err := l.ReleaseLease(ctx, "msg_2", c.Lease); err != nil {
			t.Fatal(err)
		}
		ev2 := ev
		ev2.ReceivedAt = t0.Add(time.Minute) // a retry builds a different body ...
		c2, err := l.Record(ctx, ev2, "hmac")
		if err != nil || c2.Outcome != ledger.OutcomePublish || !c2.Duplicate {
			t.Fatalf("retry = %+v, %v", c2, err)
		}
		if string(c2.Event) != string(c.Event) { // ... but publishes the first one's
			t.Errorf("retry event differs from the recorded one")
		}
		if j, _ := l.GetJob(ctx, "batch-b2"); j.Deliveries != 1 {
			t.Errorf("deliveries = %d, want 1 (retries are not new deliveries)", j.Deliveries)
		}
	})

	t.Run("expired lease is taken over", func(t *testing.T) {
		clk := &clock{t: t0}
		l := newL(t, clk.Now)
		ev := jobEvent("msg_3", event.TypeVideoGenerated, "models/veo/operations/op3", t0)
		l.Record(ctx, ev, "hmac")
		clk.Advance(ledger.DefaultOptions.PublishLease + time.Second)
		if c, _ := l.Record(ctx, ev, "hmac"); c.Outcome != ledger.OutcomePublish {
			t.Fatalf("after lease expiry: %v, want publish", c.Outcome)
		}
	})

	t.Run("claims are recorded, never taken as state", func(t *testing.T) {
		clk := &clock{t: t0}
		l := newL(t, clk.Now)
		steps := []struct {
			id, typ string
			want    string // reported_state
		}{
			{"s1", event.TypeInteractionRequiresAction, "requires_action"},
			{"s2", event.TypeInteractionCompleted, "succeeded"},
			{"s3", event.TypeInteractionRequiresAction, "requires_action"}, // the latest claim, whatever it says
			{"s4", event.TypeInteractionFailed, "failed"},
			{"s5", "interaction.weird_new_thing", "failed"}, // unknown: noted, claims no state
		}
		for _, s := range steps {
			clk.Advance(time.Second)
			if _, err := l.Record(ctx, jobEvent(s.id, s.typ, "v1_abc/def", t0), "hmac"); err != nil {
				t.Fatal(err)
			}
			j, err := l.GetJob(ctx, "interaction-v1_abc~2Fdef")
			if err != nil {
				t.Fatal(err)
			}
			if j.State != "" || j.Error != nil || j.ReportedState != s.want || j.ReportedEventType != s.typ || !j.ReportedAt.Equal(clk.Now()) {
				t.Fatalf("after %s: state %q error %v reported %q/%q at %v; want no state, reported %q", s.typ,
					j.State, j.Error, j.ReportedState, j.ReportedEventType, j.ReportedAt, s.want)
			}
		}
		j, _ := l.GetJob(ctx, "interaction-v1_abc~2Fdef")
		if j.Deliveries != 5 || j.LastUnknownEvent != "interaction.weird_new_thing" || j.CollectionState != ledger.CollectionPending {
			t.Errorf("job = %+v", j)
		}
	})

	t.Run("a claimed error is kept as reported_error, bounded", func(t *testing.T) {
		l := newL(t, (&clock{t: t0}).Now)
		ev := jobEvent("f1", event.TypeBatchFailed, "batches/f", t0)
		ev.Data.ErrorCode, ev.Data.ErrorMessage = "INVALID_ARGUMENT", strings.Repeat("bad input file ", 10000)
		if _, err := l.Record(ctx, ev, "hmac"); err != nil {
			t.Fatal(err)
		}
		j, _ := l.GetJob(ctx, "batch-f")
		if j.State != "" || j.Error != nil || j.ReportedError == nil || j.ReportedError.Code != "3" || j.ReportedError.Status != "INVALID_ARGUMENT" ||
			!strings.HasPrefix(j.ReportedError.Message, "bad input file") || len(j.ReportedError.Message) > 4096 {
			t.Errorf("job = %+v", j)
		}
	})

	t.Run("an event that cannot be stored is refused, not retried", func(t *testing.T) {
		l := newL(t, (&clock{t: t0}).Now)
		ev := jobEvent("big", event.TypeBatchSucceeded, "batches/big", t0)
		ev.Data.Extra = map[string]json.RawMessage{"blob": json.RawMessage(`"` + strings.Repeat("x", ledger.MaxEventBytes) + `"`)}
		if _, err := l.Record(ctx, ev, "hmac"); !errors.Is(err, event.ErrLimit) {
			t.Fatalf("Record of an oversized event: %v, want ErrLimit", err)
		}
		if _, err := l.GetDelivery(ctx, "big"); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("oversized event left a delivery: %v", err)
		}
	})

	t.Run("ping stored once, never a job", func(t *testing.T) {
		l := newL(t, (&clock{t: t0}).Now)
		for range 2 {
			if err := l.RecordPing(ctx, "ping/1", "hmac", t0); err != nil {
				t.Fatal(err)
			}
		}
		d, err := l.GetDelivery(ctx, "ping/1")
		if err != nil || d.Status != ledger.StatusPing || d.Type != event.TypeWebhookPing || d.Attempts != 2 || d.JobID != "" {
			t.Errorf("ping delivery = %+v, %v", d, err)
		}
		if c, _ := l.Record(ctx, jobEvent("ping/1", event.TypeBatchSucceeded, "x", t0), "hmac"); c.Outcome != ledger.OutcomeDone {
			t.Errorf("event reusing a ping's id: %v, want done", c.Outcome)
		}
	})

	t.Run("invalid delivery stored once", func(t *testing.T) {
		l := newL(t, (&clock{t: t0}).Now)
		for range 2 {
			if err := l.RecordInvalid(ctx, "bad/1", "hmac", []byte("{not json"), "invalid webhook envelope"); err != nil {
				t.Fatal(err)
			}
		}
		d, err := l.GetDelivery(ctx, "bad/1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != ledger.StatusInvalid || string(d.Body) != "{not json" || d.Attempts != 2 {
			t.Errorf("delivery = %+v", d)
		}
		// A reason that embeds unbounded input is bounded.
		long := "invalid: " + strings.Repeat("\xff", 2<<20)
		if err := l.RecordInvalid(ctx, "bad/2", "hmac", []byte("{}"), long); err != nil {
			t.Fatal(err)
		}
		if d, _ := l.GetDelivery(ctx, "bad/2"); len(d.Reason) > event.MaxReasonBytes || !utf8.ValidString(d.Reason) {
			t.Errorf("reason of %d bytes stored", len(d.Reason))
		}
		if c, _ := l.Record(ctx, jobEvent("bad/1", event.TypeBatchSucceeded, "x", t0), "hmac"); c.Outcome != ledger.OutcomeDone {
			t.Errorf("valid event reusing an invalid delivery's id: %v, want done", c.Outcome)
		}
	})

	t.Run("missing job", func(t *testing.T) {
		l := newL(t, (&clock{t: t0}).Now)
		if _, err := l.GetJob(ctx, "batch-nope"); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("GetJob missing: %v, want ErrNotFound", err)
		}
	})
}

func TestConcurrentRecordOnePublisher(t *testing.T) {
	c, _ := testenv.Firestore(t)
	l := ledger.New(c, ledger.Options{})
	ev := jobEvent("same", event.TypeBatchSucceeded, "batches/conc", time.Now())
	var mu sync.Mutex
	outcomes := map[ledger.Outcome]int{}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := l.Record(context.Background(), ev, "hmac")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				outcomes[0]++
				return
			}
			outcomes[cl.Outcome]++
		}()
	}
	wg.Wait()
	if outcomes[ledger.OutcomePublish] != 1 {
		t.Fatalf("outcomes = %v; want exactly one publish", outcomes)
	}
	j, _ := l.GetJob(context.Background(), "batch-conc")
	if j.Deliveries != 1 {
		t.Errorf("deliveries = %d, want 1", j.Deliveries)
	}
}

func TestSubmissionThenEvent(t *testing.T) {
	c, _ := testenv.Firestore(t)
	l := ledger.New(c, ledger.Options{})
	ctx := context.Background()
	ref, _ := event.RefForName(event.KindBatch, "batches/sub1")
	if err := l.RecordSubmission(ctx, ledger.Submission{Ref: ref, Model: "gemini-x", Labels: map[string]string{"run": "r1"}}); err != nil {
		t.Fatal(err)
	}
	if j, _ := l.GetJob(ctx, ref.ID); j.State != "submitted" || j.Labels["run"] != "r1" {
		t.Fatalf("after submission: %+v", j)
	}
	l.Record(ctx, jobEvent("w1", event.TypeBatchSucceeded, "sub1", time.Now()), "hmac")
	// A late submission record (the CLI crashed and retried) must not regress.
	if err := l.RecordSubmission(ctx, ledger.Submission{Ref: ref}); err != nil {
		t.Fatal(err)
	}
	j, _ := l.GetJob(ctx, ref.ID)
	if j.State != "submitted" || j.ReportedState != "succeeded" || j.Labels["run"] != "r1" || j.Deliveries != 1 {
		t.Errorf("job = %+v", j)
	}
	// A webhook before the submission record: the claim does not set the
	// state, the submission does.
	ref2, _ := event.RefForName(event.KindBatch, "batches/sub2")
	l.Record(ctx, jobEvent("w2", event.TypeBatchSucceeded, "sub2", time.Now()), "hmac")
	if err := l.RecordSubmission(ctx, ledger.Submission{Ref: ref2}); err != nil {
		t.Fatal(err)
	}
	if j, _ := l.GetJob(ctx, ref2.ID); j.State != "submitted" || j.StateSource != ledger.SourceSubmission || j.ReportedState != "succeeded" {
		t.Errorf("job = %+v", j)
	}
}

// TestIDFormsKeepTheReadableName: webhooks naming a video operation by a
// bare id or "operations/<id>" land on the submitted job and never replace
// its full name; a webhook that came first with the short form is
// completed by the submission, and a forged full name with another model
// cannot replace the submitted one.
func TestIDFormsKeepTheReadableName(t *testing.T) {
	c, _ := testenv.Firestore(t)
	ctx := context.Background()
	{
		l := ledger.New(c, ledger.Options{})
		full := "models/veo-3.1-generate-preview/operations/op1"
		ref, _ := event.RefForName(event.KindVideo, full)
		if err := l.RecordSubmission(ctx, ledger.Submission{Ref: ref}); err != nil {
			t.Fatal(err)
		}
		for i, id := range []string{"op1", "operations/op1", "models/evil/operations/op1"} {
			if _, err := l.Record(ctx, jobEvent(fmt.Sprintf("w-%d", i), event.TypeVideoGenerated, id, time.Now()), "hmac"); err != nil {
				t.Fatal(err)
			}
			if j, _ := l.GetJob(ctx, ref.ID); j.GeminiName != full || j.Deliveries != int64(i+1) {
				t.Errorf("%T after %q: gemini_name %q, deliveries %d", l, id, j.GeminiName, j.Deliveries)
			}
		}

		ref2, _ := event.RefForName(event.KindVideo, "models/veo-3.1-generate-preview/operations/op2")
		l.Record(ctx, jobEvent("w-first", event.TypeVideoGenerated, "op2", time.Now()), "hmac")
		if j, _ := l.GetJob(ctx, ref2.ID); j.GeminiName != "operations/op2" {
			t.Errorf("%T: webhook-only job named %q; want operations/op2", l, j.GeminiName)
		}
		if err := l.RecordSubmission(ctx, ledger.Submission{Ref: ref2}); err != nil {
			t.Fatal(err)
		}
		if j, _ := l.GetJob(ctx, ref2.ID); j.GeminiName != ref2.Name {
			t.Errorf("%T: after submission gemini_name %q; want %q", l, j.GeminiName, ref2.Name)
		}
	}
}
