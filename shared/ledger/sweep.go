package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geminihooks/geminihooks/shared/event"
)

// DueJob is a job the Reconciler must look at, with the version it read so
// its update can be made conditional on nothing having changed since.
type DueJob struct {
	Job
	// Version is the document's update time as read.
	Version time.Time
}

// ErrChanged reports a conditional update of a job that was written since
// it was read: someone else (a Collector, a webhook) acted on it; skip it,
// the next sweep sees the new version.
var ErrChanged = errors.New("job changed since it was read")

// DueJobs returns up to limit jobs whose next_check_at is at or before now,
// most overdue first. It reads only those documents (a range on one field:
// Firestore's automatic single-field index on next_check_at), so a sweep
// costs what is due, not what is stored.
func (s *Store) DueJobs(ctx context.Context, now time.Time, limit int) ([]DueJob, error) {
	q := s.c.Collection(JobsCollection).Where(FieldNextCheckAt, "<=", now).OrderBy(FieldNextCheckAt, firestore.Asc).Limit(limit)
	return s.queryDue(ctx, q, "due jobs")
}

// Collection error codes the Reconciler treats as transient or writes.
const (
	// CodeRetriesExhausted is the Collector's collect_error.code after the
	// last delivery attempt of a transient failure: worth another try.
	CodeRetriesExhausted = "retries_exhausted"
	// CodeRedrivesExhausted is written by the Reconciler when re-driving a
	// stuck collection did not help MaxRedrives times: a human looks (and
	// `geminihooks replay --job` tries again).
	CodeRedrivesExhausted = "redrives_exhausted"
)

// StuckCandidates returns up to limit jobs whose collection may be stuck:
// collection_state pending, or collect_failed after exhausted retries,
// last updated at or before cutoff, oldest first. Permanent failures are
// not read. Uses the composite indexes jobs(collection_state,
// updated_at) and jobs(collection_state, collect_error.code, updated_at).
// [Stuck] decides which of them to drive again.
func (s *Store) StuckCandidates(ctx context.Context, cutoff time.Time, limit int) ([]DueJob, error) {
	jobs := s.c.Collection(JobsCollection)
	pending, err := s.queryDue(ctx, jobs.Where("collection_state", "==", CollectionPending).
		Where("updated_at", "<=", cutoff).OrderBy("updated_at", firestore.Asc).Limit(limit), "stuck pending jobs")
	if err != nil {
		return nil, err
	}
	failed, err := s.queryDue(ctx, jobs.Where("collection_state", "==", CollectionFailed).
		Where("collect_error.code", "==", CodeRetriesExhausted).
		Where("updated_at", "<=", cutoff).OrderBy("updated_at", firestore.Asc).Limit(limit), "stuck failed jobs")
	if err != nil {
		return nil, err
	}
	// A checkpointed collection whose invocation died without handing on:
	// every checkpoint moves updated_at, so an old one means no progress.
	collecting, err := s.queryDue(ctx, jobs.Where("collection_state", "==", CollectionCollecting).
		Where("updated_at", "<=", cutoff).OrderBy("updated_at", firestore.Asc).Limit(limit), "stuck collecting jobs")
	if err != nil {
		return nil, err
	}
	out := append(append(pending, failed...), collecting...)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Stuck reports whether j's collection has made no progress for longer
// than after at now and should be driven again: a pending claim nobody
// collected (its event dead-lettered, say), or a collection whose
// retries ran out on a transient failure. Permanent failures stay as they
// are. A checkpointed collection ("collecting") is stuck when no checkpoint
// moved for that long and its lease has run out: a live invocation renews
// both, and a redrive under a live lease would only be turned away.
func Stuck(j Job, now time.Time, after time.Duration) bool {
	idle := now.Sub(j.UpdatedAt) >= after
	switch j.CollectionState {
	case CollectionPending:
		return idle
	case CollectionCollecting:
		return idle && (j.CollectLease == nil || !j.CollectLease.Until.After(now))
	case CollectionFailed:
		return idle && j.CollectError != nil && j.CollectError.Code == CodeRetriesExhausted
	}
	return false
}

func (s *Store) queryDue(ctx context.Context, q firestore.Query, what string) ([]DueJob, error) {
	snaps, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("firestore query %s: %w (retryable)", what, err)
	}
	out := make([]DueJob, 0, len(snaps))
	for _, sn := range snaps {
		var j Job
		if err := sn.DataTo(&j); err != nil {
			return nil, fmt.Errorf("decode %s: %w", sn.Ref.Path, err)
		}
		if j.JobID == "" {
			j.JobID = sn.Ref.ID
		}
		out = append(out, DueJob{Job: j, Version: sn.UpdateTime})
	}
	return out, nil
}

// Check is the outcome of one Reconciler read of a job, for [Store.RecordCheck].
type Check struct {
	// At is when the API was read.
	At time.Time
	// Next is when the job is due again; zero removes it from the schedule
	// (it is terminal, or can never be read).
	Next time.Time
}

// RecordCheck records a Reconciler read on jobs/{j.JobID}: checks + 1,
// last_check_at and the next due time. It is conditional on the job being
// unchanged since it was read ([ErrChanged] otherwise), so a sweep never
// puts a job a Collector just finished back on the schedule. It does not
// touch updated_at: a check is not progress of the job.
func (s *Store) RecordCheck(ctx context.Context, j DueJob, c Check) error {
	ref := s.c.Collection(JobsCollection).Doc(j.JobID)
	upd := []firestore.Update{
		{Path: FieldChecks, Value: firestore.Increment(1)},
		{Path: FieldLastCheckAt, Value: c.At},
		{Path: FieldNextCheckAt, Value: firestore.Delete},
	}
	if !c.Next.IsZero() {
		upd[2].Value = c.Next
	}
	_, err := ref.Update(ctx, upd, firestore.LastUpdateTime(j.Version))
	return conditional(err, ref)
}

func conditional(err error, ref *firestore.DocumentRef) error {
	switch c := status.Code(err); {
	case err == nil:
		return nil
	case c == codes.FailedPrecondition || c == codes.Aborted || c == codes.NotFound:
		return fmt.Errorf("firestore update %s: %w", ref.Path, ErrChanged)
	}
	return fmt.Errorf("firestore update %s: %w (retryable)", ref.Path, err)
}

// RecordRedrive counts a re-drive of j's stuck collection before the
// Reconciler announces it (conditional like RecordCheck), so the re-drive's
// delivery id redrive:<job>:<n> is new each time.
func (s *Store) RecordRedrive(ctx context.Context, j DueJob, at time.Time) error {
	ref := s.c.Collection(JobsCollection).Doc(j.JobID)
	_, err := ref.Update(ctx, []firestore.Update{
		{Path: "redrives", Value: firestore.Increment(1)},
		{Path: "last_redrive_at", Value: at},
	}, firestore.LastUpdateTime(j.Version))
	return conditional(err, ref)
}

// GiveUpRedrive records that re-driving j's collection did not help:
// collect_failed with redrives_exhausted, off the stuck list for good.
func (s *Store) GiveUpRedrive(ctx context.Context, j DueJob, at time.Time, msg string) error {
	ref := s.c.Collection(JobsCollection).Doc(j.JobID)
	_, err := ref.Update(ctx, []firestore.Update{
		{Path: "collection_state", Value: CollectionFailed},
		{Path: "collect_error", Value: event.JobError{Code: CodeRedrivesExhausted, Message: event.Bound(msg, event.MaxErrorMessageBytes)}},
		{Path: "updated_at", Value: at},
	}, firestore.LastUpdateTime(j.Version))
	return conditional(err, ref)
}

// KnownJobs reports which of the job ids have a document (one
// BatchGetDocuments).
func (s *Store) KnownJobs(ctx context.Context, ids []string) (map[string]bool, error) {
	if len(ids) == 0 {
		return map[string]bool{}, nil
	}
	refs := make([]*firestore.DocumentRef, len(ids))
	for i, id := range ids {
		refs[i] = s.c.Collection(JobsCollection).Doc(id)
	}
	snaps, err := s.c.GetAll(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("firestore get %d jobs: %w (retryable)", len(ids), err)
	}
	known := make(map[string]bool, len(ids))
	for _, sn := range snaps {
		if sn.Exists() {
			known[sn.Ref.ID] = true
		}
	}
	return known, nil
}

// Discovery is a job the Reconciler found at Gemini that the ledger did not
// know (created by another client, its webhook lost).
type Discovery struct {
	Ref event.JobRef
	// CreatedAt is Gemini's create time; the first check counts from when
	// the job was seen.
	CreatedAt time.Time
	Model     string
}

// RecordDiscovered records an unknown, still running job so the schedule
// checks it (source reconciler, due Schedule.First after now). It never
// overwrites a job recorded meanwhile (a webhook, a submission).
func (s *Store) RecordDiscovered(ctx context.Context, d Discovery) error {
	now := s.opts.Now().UTC()
	ref := s.c.Collection(JobsCollection).Doc(d.Ref.ID)
	fields := map[string]any{
		"job_id": d.Ref.ID, "kind": string(d.Ref.Kind), "gemini_name": d.Ref.Name,
		"deliveries": int64(0), "counts": event.Counts{}, "tokens": event.Tokens{},
		"first_received_at": now, "updated_at": now,
		FieldSource: SourceReconciler, FieldSourceAt: now,
		FieldNextCheckAt: now.Add(s.opts.Schedule.First), FieldChecks: int64(0),
	}
	if d.Model != "" {
		fields["model"] = d.Model
	}
	_, err := ref.Create(ctx, fields)
	if status.Code(err) == codes.AlreadyExists {
		return nil
	}
	if err != nil {
		return fmt.Errorf("firestore create %s: %w (retryable)", ref.Path, err)
	}
	return nil
}

// Schedule returns the store's reconciliation schedule.
func (s *Store) Schedule() Schedule { return s.opts.Schedule }
