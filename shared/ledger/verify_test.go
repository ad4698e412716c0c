package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		claimed, api event.State
		want         string
	}{
		{event.StateSucceeded, event.StateSucceeded, ledger.VerdictConfirmed},
		{event.StateFailed, event.StateSucceeded, ledger.VerdictContradicted},
		{event.StateSucceeded, event.StateRunning, ledger.VerdictContradicted},
		{event.StateRequiresAction, event.StateSucceeded, ledger.VerdictSuperseded},
		{event.StateSucceeded, event.StateUnknown, ledger.VerdictUnverifiable},
		{event.StateUnknown, event.StateRunning, ""},
	} {
		v := ledger.Verification{Claimed: tc.claimed, State: tc.api}
		if got := v.Verdict(); got != tc.want {
			t.Errorf("claim %q, API %q: verdict %q, want %q", tc.claimed, tc.api, got, tc.want)
		}
	}
}

// The Collector's writes: the API's state replaces whatever was claimed,
// and the verdict lands on the job and on the claim's delivery.
func TestVerificationWrites(t *testing.T) {
	c, _ := testenv.Firestore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	l := ledger.New(c, ledger.Options{Now: func() time.Time { return t0 }})

	record := func(webhookID, typ, id string) event.JobEvent {
		t.Helper()
		ev := jobEvent(webhookID, typ, id, t0)
		if _, err := l.Record(ctx, ev, "jwt"); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	job := func(id string) ledger.Job {
		t.Helper()
		j, err := l.GetJob(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}

	t.Run("a false terminal claim is contradicted by the collection", func(t *testing.T) {
		ref, _ := event.RefForName(event.KindBatch, "batches/v1")
		if err := l.RecordSubmission(ctx, ledger.Submission{Ref: ref}); err != nil {
			t.Fatal(err)
		}
		ev := record("forged-1", event.TypeBatchFailed, "batches/v1")
		v := ledger.Verification{State: event.StateSucceeded, At: t0, WebhookID: ev.WebhookID, Claimed: ev.State}
		saved, err := l.SaveCollection(ctx, ref.ID, ledger.Collection{CollectionState: ledger.CollectionDone,
			CollectedState: event.StateSucceeded, Kind: event.KindBatch, Verification: &v})
		if err != nil || !saved.Applied {
			t.Fatalf("save: %+v, %v", saved, err)
		}
		j := job(ref.ID)
		if j.State != "succeeded" || j.StateSource != ledger.SourceAPI || j.Verification != ledger.VerdictContradicted ||
			j.EventType != event.TypeBatchSucceeded || j.ReportedState != "failed" || !j.VerifiedAt.Equal(t0) {
			t.Errorf("job = %+v", j)
		}
		d, _ := l.GetDelivery(ctx, "forged-1")
		if d.Verification != ledger.VerdictContradicted || d.VerifiedState != "succeeded" || d.ReportedState != "failed" {
			t.Errorf("delivery = %+v", d)
		}
		// Another claim after a final, collected state leaves nothing to
		// collect: the job is not marked pending again.
		record("late-1", event.TypeBatchFailed, "batches/v1")
		if j := job(ref.ID); j.CollectionState != ledger.CollectionDone || j.State != "succeeded" {
			t.Errorf("after a late claim: %+v", j)
		}
	})

	t.Run("a premature claim settles pending and keeps the API's state", func(t *testing.T) {
		ev := record("early-1", event.TypeVideoGenerated, "models/veo/operations/p1")
		v := ledger.Verification{State: event.StateRunning, At: t0, WebhookID: ev.WebhookID, Claimed: ev.State}
		if err := l.ApplyVerification(ctx, ev.JobID, ev.Kind, v); err != nil {
			t.Fatal(err)
		}
		j := job(ev.JobID)
		if j.State != "running" || j.CollectionState != "" || j.Verification != ledger.VerdictContradicted {
			t.Errorf("job = %+v", j)
		}
	})

	t.Run("an unverifiable claim changes no state", func(t *testing.T) {
		ref, _ := event.RefForName(event.KindInteraction, "v1_u1")
		if err := l.RecordSubmission(ctx, ledger.Submission{Ref: ref}); err != nil {
			t.Fatal(err)
		}
		ev := record("foreign-1", event.TypeInteractionFailed, "v1_u1")
		v := ledger.Verification{At: t0, WebhookID: ev.WebhookID, Claimed: ev.State, Detail: "404"}
		if err := l.ApplyVerification(ctx, ev.JobID, ev.Kind, v); err != nil {
			t.Fatal(err)
		}
		j := job(ev.JobID)
		if j.State != "submitted" || j.Verification != ledger.VerdictUnverifiable || j.CollectionState != "" || j.Error != nil {
			t.Errorf("job = %+v", j)
		}
		if d, _ := l.GetDelivery(ctx, "foreign-1"); d.Verification != ledger.VerdictUnverifiable || d.VerifiedState != "" {
			t.Errorf("delivery = %+v", d)
		}
		// Unverifiable and unknown to the ledger: no document is created.
		if err := l.ApplyVerification(ctx, "interaction-nobody", event.KindInteraction, v); err != nil {
			t.Fatal(err)
		}
		if _, err := l.GetJob(ctx, "interaction-nobody"); err == nil {
			t.Error("an unverifiable claim about an unknown job created a job")
		}
	})

	t.Run("a terminal state read from the API replaces a different stored one", func(t *testing.T) {
		// As written by a version that believed webhooks.
		ref, _ := event.RefForName(event.KindBatch, "batches/old1")
		if _, err := c.Collection(ledger.JobsCollection).Doc(ref.ID).Set(ctx, map[string]any{
			"job_id": ref.ID, "kind": "batch", "gemini_name": ref.Name, "state": "failed",
			"error": map[string]any{"code": "X", "message": "lie"}, "collected_state": "failed", "collection_state": "collected",
		}); err != nil {
			t.Fatal(err)
		}
		v := ledger.Verification{State: event.StateSucceeded, At: t0}
		if _, err := l.SaveCollection(ctx, ref.ID, ledger.Collection{CollectionState: ledger.CollectionDone,
			CollectedState: event.StateSucceeded, Kind: event.KindBatch, Verification: &v}); err != nil {
			t.Fatal(err)
		}
		if j := job(ref.ID); j.State != "succeeded" || j.CollectedState != "succeeded" || j.Error != nil {
			t.Errorf("job = %+v", j)
		}
	})

	t.Run("non-terminal API states only move forward", func(t *testing.T) {
		ref, _ := event.RefForName(event.KindInteraction, "v1_m1")
		v := ledger.Verification{State: event.StateRequiresAction, At: t0}
		if err := l.ApplyVerification(ctx, ref.ID, event.KindInteraction, v); err != nil {
			t.Fatal(err)
		}
		v.State = event.StateRunning // a stale read
		if err := l.ApplyVerification(ctx, ref.ID, event.KindInteraction, v); err != nil {
			t.Fatal(err)
		}
		if j := job(ref.ID); j.State != "requires_action" || j.EventType != event.TypeInteractionRequiresAction {
			t.Errorf("job = %+v", j)
		}
	})

	// The Receiver answers 2xx once its publish succeeded even if marking
	// the delivery failed; the event reaching the Collector settles it.
	t.Run("a delivery left received is published once its event is verified", func(t *testing.T) {
		for _, via := range []string{"transaction", "verdict"} {
			ev := record("unmarked-"+via, event.TypeVideoGenerated, "models/veo/operations/u-"+via)
			if d, _ := l.GetDelivery(ctx, ev.WebhookID); d.Status != ledger.StatusReceived || d.LeaseUntil.IsZero() {
				t.Fatalf("before: %+v", d)
			}
			v := ledger.Verification{State: event.StateSucceeded, At: t0, WebhookID: ev.WebhookID, Claimed: ev.State}
			var err error
			if via == "transaction" {
				err = l.ApplyVerification(ctx, ev.JobID, ev.Kind, v)
			} else {
				err = l.RecordVerdict(ctx, ev.JobID, v)
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := l.GetDelivery(ctx, ev.WebhookID)
			if err != nil || d.Status != ledger.StatusPublished || !d.LeaseUntil.IsZero() || d.Verification != ledger.VerdictConfirmed {
				t.Errorf("%s: delivery = %+v, %v", via, d, err)
			}
		}
	})
}
