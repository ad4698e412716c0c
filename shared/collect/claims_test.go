package collect_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/collect/collecttest"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// A webhook is a claim. A batch.failed about a batch Gemini's API shows
// succeeded (a forged or mistaken event) gets the batch collected as
// succeeded, with one results event for succeeded and none for failed; the
// genuine batch.succeeded afterwards changes nothing and costs no read.
func TestFalseFailedClaimForSucceededBatch(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.gem.Set("batches/v1", collecttest.Batch("batches/v1", "BATCH_STATE_SUCCEEDED", map[string]any{
		"inlinedResponses": map[string]any{"inlinedResponses": []any{
			map[string]any{"metadata": map[string]any{"key": "a"}, "response": collecttest.Response("hello", 2, 3)},
		}},
	}))
	ref, _ := event.RefForName(event.KindBatch, "batches/v1")
	if err := e.store.RecordSubmission(context.Background(), ledger.Submission{Ref: ref, Labels: map[string]string{"run": "r1"}}); err != nil {
		t.Fatal(err)
	}
	forged := e.record(event.TypeBatchFailed, "batches/v1", event.Data{ErrorCode: "INTERNAL", ErrorMessage: "lie"}, nil)
	mustHandle(t, e, forged)

	j := e.job(ref.ID)
	if j.State != "succeeded" || j.StateSource != ledger.SourceAPI || j.Error != nil || j.CollectedState != "succeeded" ||
		j.Counts.Results != 1 || j.Verification != ledger.VerdictContradicted || j.ReportedState != "failed" {
		t.Fatalf("job after the false claim = %+v", j)
	}
	d, err := e.store.GetDelivery(context.Background(), "wh-batch.failed-"+ref.ID)
	if err != nil || d.Verification != ledger.VerdictContradicted || d.VerifiedState != "succeeded" {
		t.Fatalf("delivery = %+v, %v", d, err)
	}
	if n := e.gem.HitCount("batches/v1"); n != 1 {
		t.Errorf("Gemini reads = %d, want 1", n)
	}

	genuine := e.record(event.TypeBatchSucceeded, "batches/v1", event.Data{}, nil)
	mustHandle(t, e, genuine)
	mustHandle(t, e, forged) // redelivered
	if n := e.gem.HitCount("batches/v1"); n != 1 {
		t.Errorf("Gemini reads after a final state = %d, want still 1", n)
	}
	pub := e.published()
	if len(pub) != 1 || pub[0].State != event.StateSucceeded || pub[0].Type != event.TypeBatchSucceeded ||
		pub[0].Error != nil || pub[0].Labels["run"] != "r1" {
		t.Fatalf("published %+v; want one succeeded event", pub)
	}
	d, _ = e.store.GetDelivery(context.Background(), "wh-batch.succeeded-"+ref.ID)
	if d.Verification != ledger.VerdictConfirmed {
		t.Errorf("genuine delivery verification = %q", d.Verification)
	}
}

// A claim of a finished job that the API shows unfinished is looked at
// again while it is young (the API may lag its webhook) and recorded as
// contradicted after; nothing is published until the API shows the state.
func TestPrematureClaim(t *testing.T) {
	e := newEnv(t, envOpts{})
	const name = "models/veo/operations/p1"
	e.gem.Set(name, map[string]any{"name": name, "done": false})
	m := e.record(event.TypeVideoGenerated, name, event.Data{}, nil)

	m.PublishTime = time.Now()
	if err := e.handle(m); err == nil {
		t.Fatal("a young claim the API does not show yet was acknowledged")
	}
	m.PublishTime = time.Now().Add(-time.Hour)
	mustHandle(t, e, m)
	j := e.job("video-p1")
	if j.State != "running" || j.Verification != ledger.VerdictContradicted || j.CollectionState != "" {
		t.Fatalf("job = %+v", j)
	}
	if pub := e.published(); len(pub) != 0 {
		t.Fatalf("published %+v", pub)
	}

	// Gemini finishes it; the next trigger collects what the API shows.
	e.gem.Set(name, videoOp(name, "https://example.invalid/v1beta/files/vid1:download?alt=media"))
	e.gem.SetFile("vid1", collecttest.File{Data: []byte("mp4")})
	mustHandle(t, e, bus.PushMessage{Data: m.Data, MessageID: "m2", DeliveryAttempt: 1})
	if j := e.job("video-p1"); j.State != "succeeded" || j.CollectionState != ledger.CollectionDone {
		t.Fatalf("job = %+v", j)
	}
	if pub := e.published(); len(pub) != 1 || pub[0].State != event.StateSucceeded {
		t.Fatalf("published %+v", pub)
	}
}

// The last delivery attempt of a premature claim is acknowledged, not
// dead-lettered: a false claim must not fill the dead-letter topic.
func TestPrematureClaimNeverDeadLetters(t *testing.T) {
	e := newEnv(t, envOpts{maxAttempts: 3})
	e.gem.Set("batches/r1", collecttest.Batch("batches/r1", "BATCH_STATE_RUNNING", nil))
	m := e.record(event.TypeBatchSucceeded, "batches/r1", event.Data{}, nil)
	m.PublishTime, m.DeliveryAttempt = time.Now(), 3
	if err := e.handle(m); err != nil {
		t.Fatalf("last attempt: %v", err)
	}
}

// The results event announces the state the API shows, whatever the
// claim: a requires_action claim about a completed interaction collects it
// as completed.
func TestClaimOfAnotherStateCollectsTheAPIState(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.gem.Set("interactions/v1_x", interaction("v1_x", "completed",
		map[string]any{"type": "model_output", "content": []any{map[string]any{"type": "text", "text": "done"}}}))
	mustHandle(t, e, e.record(event.TypeInteractionRequiresAction, "v1_x", event.Data{}, nil))
	j := e.job("interaction-v1_x")
	if j.State != "succeeded" || j.Verification != ledger.VerdictSuperseded {
		t.Fatalf("job = %+v", j)
	}
	pub := e.published()
	if len(pub) != 1 || pub[0].State != event.StateSucceeded || pub[0].Type != event.TypeInteractionCompleted {
		t.Fatalf("published %+v", pub)
	}
}

// Reading the job is bounded by ReadTimeout: a Gemini that does not answer
// makes the push fail (redelivery) instead of holding it until the ack
// deadline.
func TestReadTimeout(t *testing.T) {
	e := newEnv(t, envOpts{readTimeout: 200 * time.Millisecond})
	e.gem.Set("batches/slow", collecttest.Batch("batches/slow", "BATCH_STATE_SUCCEEDED", nil))
	e.gem.Hang("batches/slow")
	err := e.handle(e.record(event.TypeBatchSucceeded, "batches/slow", event.Data{}, nil))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Handle = %v, want a deadline error", err)
	}
}
