package ledger_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

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
		if j.State != "succeeded" || j.Deliveries != 1 || j.GeminiName != "batches/a1" || j.CollectionState != ledger.CollectionPending {
			t.Errorf("job = %+v", j)
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

	t.Run("state is monotonic", func(t *testing.T) {
		clk := &clock{t: t0}
		l := newL(t, clk.Now)
		steps := []struct {
			id, typ string
			want    string
		}{
			{"s1", event.TypeInteractionRequiresAction, "requires_action"},
			{"s2", event.TypeInteractionCompleted, "succeeded"},
			{"s3", event.TypeInteractionRequiresAction, "succeeded"}, // late
			{"s4", event.TypeInteractionFailed, "succeeded"},         // terminal never changes
			{"s5", "interaction.weird_new_thing", "succeeded"},       // unknown: recorded only
		}
		for _, s := range steps {
			if _, err := l.Record(ctx, jobEvent(s.id, s.typ, "v1_abc/def", t0), "hmac"); err != nil {
				t.Fatal(err)
			}
			j, err := l.GetJob(ctx, "interaction-v1_abc~2Fdef")
			if err != nil {
				t.Fatal(err)
			}
			if j.State != s.want {
				t.Fatalf("after %s: state %q, want %q", s.typ, j.State, s.want)
			}
		}
		j, _ := l.GetJob(ctx, "interaction-v1_abc~2Fdef")
		if j.Deliveries != 5 || j.EventType != event.TypeInteractionCompleted || j.LastUnknownEvent != "interaction.weird_new_thing" {
			t.Errorf("job = %+v", j)
		}
	})

	t.Run("failure details are kept", func(t *testing.T) {
		l := newL(t, (&clock{t: t0}).Now)
		ev := jobEvent("f1", event.TypeBatchFailed, "batches/f", t0)
		ev.Data.ErrorCode, ev.Data.ErrorMessage = "INVALID_ARGUMENT", "bad input file"
		l.Record(ctx, ev, "hmac")
		j, _ := l.GetJob(ctx, "batch-f")
		if j.State != "failed" || j.Error == nil || j.Error.Code != "INVALID_ARGUMENT" || j.Error.Message != "bad input file" {
			t.Errorf("job = %+v", j)
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
	if j.State != "succeeded" || j.Labels["run"] != "r1" || j.Deliveries != 1 {
		t.Errorf("job = %+v", j)
	}
}
