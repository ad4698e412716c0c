package ledger

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geminihooks/geminihooks/shared/event"
)

// Verification is what reading a job from Gemini's API established, and the
// verdict on the webhook claim that triggered the read.
type Verification struct {
	// State is the job's state per Gemini's API; empty when the job could
	// not be read (VerdictUnverifiable).
	State event.State
	// Error is the API's error for a job that did not succeed.
	Error *event.JobError
	// OutputURI and FileName point at the output, as the API reports it.
	OutputURI, FileName string
	// EndTime is when the API says the job reached a terminal state.
	EndTime time.Time
	// At is when the API was read.
	At time.Time
	// WebhookID names the delivery whose claim was checked, Claimed its
	// claim; both empty for a read no webhook triggered (a replay, a sweep).
	WebhookID string
	Claimed   event.State
	// Detail says why a job was unverifiable (bounded; never a secret).
	Detail string
}

// VerdictSuperseded: the API shows a later state than the claim, which was
// about an earlier one (a requires_action that arrives after completion).
const VerdictSuperseded = "superseded"

// Verdict compares the claim with the API's state.
func (v Verification) Verdict() string {
	switch {
	case v.State == event.StateUnknown:
		return VerdictUnverifiable
	case v.Claimed == event.StateUnknown:
		return ""
	case v.Claimed == v.State:
		return VerdictConfirmed
	case v.State.Supersedes(v.Claimed):
		return VerdictSuperseded
	}
	return VerdictContradicted
}

// applies reports whether the API's state s replaces the stored state old:
// API states only move forward, except that a terminal state read from the
// API always wins (it is final at Gemini, so a different stored one came
// from an older version of geminihooks that believed a webhook).
func applies(s, old event.State) bool {
	return s != event.StateUnknown && (s.Supersedes(old) || (s.Terminal() && s != old))
}

// verificationFields are the job fields a verification writes: the API's
// state (when it applies), its error and output pointers, the verdict and
// the read time. Both ledgers use it.
func verificationFields(old *Job, kind event.Kind, v Verification) map[string]any {
	f := map[string]any{"verified_at": v.At, "updated_at": v.At}
	if vd := v.Verdict(); vd != "" {
		f["verification"] = vd
	}
	var cur event.State
	if old != nil {
		cur = event.State(old.State)
	}
	if applies(v.State, cur) || (v.State == cur && v.State != event.StateUnknown) {
		f["state"] = string(v.State)
		f["state_source"] = SourceAPI
		if v.State != cur {
			f["state_changed_at"] = v.At
		}
		if t := event.TypeFor(kind, v.State); t != "" {
			f["event_type"] = t
		}
		if !v.EndTime.IsZero() && event.ValidTimestamp(v.EndTime) {
			f["event_time"] = v.EndTime
		}
		if v.Error != nil {
			f["error"] = *v.Error
		} else if old != nil {
			f["error"] = firestore.Delete
		}
		if v.OutputURI != "" {
			f["output_uri"] = v.OutputURI
		}
		unscheduleOnTerminal(f, v.State)
		if v.FileName != "" {
			f["file_name"] = v.FileName
		}
	}
	return f
}

// settledCollectionState is the collection_state of a job whose pending
// claim turned out to need no collection: what it was before the claim.
func settledCollectionState(j *Job) any {
	switch {
	case j == nil || j.CollectedState == "":
		return firestore.Delete
	case j.CollectError != nil:
		return CollectionFailed
	}
	return CollectionDone
}

// ApplyVerification records a read of job jobID from Gemini's API that
// leads to no collection: the job is not in a collectable state (the claim
// was premature or false), the job's collection for that state is already
// stored, or the job cannot be read (unverifiable: no state changes). It
// writes the API's state on the job and the verdict on the job and on the
// claim's delivery, in one transaction, and settles a pending
// collection_state that nothing will collect.
func (s *Store) ApplyVerification(ctx context.Context, jobID string, kind event.Kind, v Verification) error {
	jref := s.c.Collection(JobsCollection).Doc(jobID)
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		old, err := getJobTx(tx, jref)
		if err != nil {
			return err
		}
		dref, err := s.deliveryToVerify(tx, v)
		if err != nil {
			return err
		}
		f := verificationFields(old, kind, v)
		if old != nil && old.CollectionState == CollectionPending && !v.State.Collectable() {
			f["collection_state"] = settledCollectionState(old)
		}
		if old == nil {
			if v.State == event.StateUnknown {
				return nil // nothing known about it, nothing learned: no junk job
			}
			f["job_id"], f["kind"], f["deliveries"] = jobID, string(kind), int64(0)
			f["counts"], f["tokens"] = event.Counts{}, event.Tokens{}
			removeDeletes(f)
		}
		if err := tx.Set(jref, f, firestore.MergeAll); err != nil {
			return err
		}
		return updateDelivery(tx, dref, v)
	})
	if err != nil {
		return fmt.Errorf("firestore apply verification %s: %w (retryable)", jref.Path, err)
	}
	return nil
}

// deliveryToVerify returns the delivery whose claim v checked, or nil when
// there is none (no webhook, or it expired).
func (s *Store) deliveryToVerify(tx *firestore.Transaction, v Verification) (*firestore.DocumentRef, error) {
	if v.WebhookID == "" {
		return nil, nil
	}
	dref := s.c.Collection(DeliveriesCollection).Doc(event.EscapeDocID(v.WebhookID))
	snap, err := tx.Get(dref)
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !snap.Exists() {
		return nil, nil
	}
	return dref, nil
}

func updateDelivery(tx *firestore.Transaction, dref *firestore.DocumentRef, v Verification) error {
	if dref == nil {
		return nil
	}
	upd := append(publishedByConsumer(), firestore.Update{Path: "verified_at", Value: v.At})
	if vd := v.Verdict(); vd != "" {
		upd = append(upd, firestore.Update{Path: "verification", Value: vd})
	}
	if v.State != event.StateUnknown {
		upd = append(upd, firestore.Update{Path: "verified_state", Value: string(v.State)})
	}
	return tx.Update(dref, upd)
}

// publishedByConsumer marks a delivery published from the consumer's side.
// Its event reached the Collector, so it is on the topic whatever the
// delivery says: the Receiver answers 2xx after a publish even when marking
// the delivery failed (a retry would publish twice), which would otherwise
// leave it "received" for good. Only published events reach the Collector,
// so this never overwrites invalid or ping.
func publishedByConsumer() []firestore.Update {
	return []firestore.Update{
		{Path: "status", Value: StatusPublished},
		{Path: "lease_until", Value: firestore.Delete},
		{Path: "lease", Value: firestore.Delete},
	}
}

func getJobTx(tx *firestore.Transaction, ref *firestore.DocumentRef) (*Job, error) {
	snap, err := tx.Get(ref)
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var j Job
	if err := snap.DataTo(&j); err != nil {
		return nil, fmt.Errorf("decode %s: %w", ref.Path, err)
	}
	return &j, nil
}

// removeDeletes drops Delete sentinels from fields written to a new
// document: there is nothing to delete.
func removeDeletes(f map[string]any) {
	for k, v := range f {
		// Interface values of different dynamic types compare unequal
		// without panicking, whatever v holds.
		if v == any(firestore.Delete) {
			delete(f, k)
		}
	}
}

// RecordVerdict records the verdict on a claim checked against a state the
// ledger already holds as final (terminal, read from the API and
// collected): no API read, no state change, so no transaction — one
// commit of the verdict on the job and on the claim's delivery (when it
// still exists).
func (s *Store) RecordVerdict(ctx context.Context, jobID string, v Verification) error {
	jref := s.c.Collection(JobsCollection).Doc(jobID)
	vd := v.Verdict()
	commit := func(withDelivery bool) error {
		b := s.c.Batch()
		b.Update(jref, []firestore.Update{{Path: "verification", Value: vd}, {Path: "updated_at", Value: v.At}})
		if withDelivery {
			b.Update(s.c.Collection(DeliveriesCollection).Doc(event.EscapeDocID(v.WebhookID)), append(publishedByConsumer(),
				firestore.Update{Path: "verification", Value: vd}, firestore.Update{Path: "verified_state", Value: string(v.State)},
				firestore.Update{Path: "verified_at", Value: v.At},
			))
		}
		_, err := b.Commit(ctx)
		return err
	}
	err := commit(v.WebhookID != "")
	if status.Code(err) == codes.NotFound && v.WebhookID != "" {
		err = commit(false) // the delivery expired or was never recorded
	}
	if err != nil {
		return fmt.Errorf("firestore record verdict %s: %w (retryable)", jref.Path, err)
	}
	return nil
}
