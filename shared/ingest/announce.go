package ingest

import (
	"context"
	"fmt"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// SchemeReconciler is the scheme recorded on deliveries the Reconciler
// announces (webhook deliveries say hmac or jwt).
const SchemeReconciler = "reconciler"

// ReconcileID is the delivery id of a job state the Reconciler found by
// reading Gemini's API: one per job and state, so the sweep announcing a
// state twice (two sweeps, a retry) publishes it once.
func ReconcileID(jobID string, s event.State) string {
	return ledger.ReconcilePrefix + jobID + ":" + string(s)
}

// RedriveID is the delivery id of the n-th re-drive of a job's stuck
// collection.
func RedriveID(jobID string, n int64) string {
	return fmt.Sprintf("%s%s:%d", ledger.RedrivePrefix, jobID, n)
}

// Announce enters a job event the Reconciler produced into the pipeline
// exactly like a webhook's: recorded in the ledger as a delivery with its
// claim on the job (source reconciler, from the id's prefix), published on
// the events topic once per delivery id, marked published. The Collector
// then reads the job from Gemini's API as for any webhook, and its results
// event id (event.ResultsEventID) depends only on the job and state, so a
// state announced by both a webhook and the Reconciler yields one results
// event. ev.WebhookID must be set ([ReconcileID], [RedriveID]); ReceivedAt
// defaults to now. Errors: [ErrUnavailable] and [ErrInFlight] (retry), or
// one wrapping event.ErrLimit (never storable).
func (s *Service) Announce(ctx context.Context, ev event.JobEvent) (Result, error) {
	if ev.WebhookID == "" || ev.JobID == "" {
		return Result{}, fmt.Errorf("announce: event without webhook_id or job_id: %w", event.ErrLimit)
	}
	if ev.SchemaVersion == "" {
		ev.SchemaVersion = event.SchemaVersion
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = s.now().UTC()
	}
	res := Result{WebhookID: event.Bound(ev.WebhookID, logIDBytes), JobID: ev.JobID, Type: ev.Type}
	return s.recordAndPublish(ctx, ev, SchemeReconciler, res)
}
