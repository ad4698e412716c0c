package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/geminihooks/geminihooks/shared/event"
)

// CollectionCollecting is the collection_state of a job whose output is
// being collected, possibly over several Collector invocations (see
// collection_progress and package collect's "Checkpoints").
const CollectionCollecting = "collecting"

// Checkpoint is how far a checkpointed collection has got: stored on the
// job as collect_checkpoint. Every result before Lines (by index) and
// before byte Bytes of File is stored (the result writer was flushed before
// the checkpoint was written), and Counts and Tokens sum exactly those.
type Checkpoint struct {
	// State is the API state being collected, File the output file, and
	// GeminiName and EndTime what the final summary needs without reading
	// the job again.
	State      string    `firestore:"state" json:"state"`
	File       string    `firestore:"file" json:"file"`
	GeminiName string    `firestore:"gemini_name,omitempty" json:"gemini_name,omitzero"`
	EndTime    time.Time `firestore:"end_time,omitempty" json:"end_time,omitzero"`
	// Seq numbers checkpoints; a continuation message carries the Seq it
	// resumes from.
	Seq    int64        `firestore:"seq" json:"seq"`
	Lines  int64        `firestore:"lines" json:"lines"`
	Bytes  int64        `firestore:"bytes" json:"bytes"`
	Counts event.Counts `firestore:"counts" json:"counts"`
	Tokens event.Tokens `firestore:"tokens" json:"tokens"`
	// HandedOff is set once the continuation message for Seq is published:
	// until then, a redelivery of an older message may take over (the
	// invocation that wrote the checkpoint died before publishing).
	HandedOff bool      `firestore:"handed_off" json:"handed_off"`
	At        time.Time `firestore:"at" json:"at"`
}

// Lease is the right of one Collector invocation to collect a job
// (collect_lease). Fence grows with every grant; each checkpoint and the
// final summary are written only while the job's lease still carries the
// writer's fence, so an invocation that lost its lease (it ran past Until,
// or a redelivery took over) cannot move the checkpoint.
type Lease struct {
	Fence int64 `firestore:"fence" json:"fence"`
	// Holder is the Pub/Sub message id of the holder, Attempt its delivery
	// attempt: a redelivery of the same message (a later attempt) takes
	// over a lease its crashed predecessor still holds.
	Holder  string    `firestore:"holder,omitempty" json:"holder,omitzero"`
	Attempt int       `firestore:"attempt,omitempty" json:"attempt,omitzero"`
	Until   time.Time `firestore:"until" json:"until"`
}

// Progress is collection_progress: how far the collection of a job's
// output has got, for people and the CLI.
type Progress struct {
	// Lines is the number of output lines (results) stored, Bytes the bytes
	// of the output file consumed, TotalBytes the file's size when the
	// server said (0 when unknown).
	Lines      int64 `firestore:"lines" json:"lines"`
	Bytes      int64 `firestore:"bytes" json:"bytes"`
	TotalBytes int64 `firestore:"total_bytes,omitempty" json:"total_bytes,omitzero"`
	// Invocations counts the Collector invocations that took part.
	Invocations int64     `firestore:"invocations" json:"invocations"`
	UpdatedAt   time.Time `firestore:"updated_at" json:"updated_at"`
}

// LeaseRequest asks for the collection lease of a job's output file.
type LeaseRequest struct {
	State      event.State
	File       string
	GeminiName string
	EndTime    time.Time
	// MessageID and Attempt identify the push delivery asking.
	MessageID string
	Attempt   int
	// Seq is the checkpoint a continuation message resumes from; -1 for a
	// JobEvent, which resumes from whatever checkpoint is stored.
	Seq int64
	// TTL is how long the lease lasts unless renewed by a checkpoint.
	TTL time.Duration
	// Quiet is how long a handed-off checkpoint is taken to be in the hands
	// of its continuation message: a JobEvent arriving within it is stale.
	// After it, the chain is presumed broken and the JobEvent takes over.
	Quiet time.Duration
}

// LeaseOutcome says what [Store.AcquireCollection] decided.
type LeaseOutcome int

const (
	// LeaseAcquired: the caller holds the lease with Grant.Fence and
	// resumes from Grant.From.
	LeaseAcquired LeaseOutcome = iota + 1
	// LeaseStale: the message is behind the stored checkpoint (its work
	// was done and handed on); acknowledge it without writing.
	LeaseStale
	// LeaseHeld: another live invocation holds the lease.
	LeaseHeld
)

func (o LeaseOutcome) String() string {
	switch o {
	case LeaseAcquired:
		return "acquired"
	case LeaseStale:
		return "stale"
	case LeaseHeld:
		return "held"
	}
	return fmt.Sprintf("LeaseOutcome(%d)", int(o))
}

// LeaseGrant is the answer of [Store.AcquireCollection].
type LeaseGrant struct {
	Outcome LeaseOutcome
	Fence   int64
	From    Checkpoint
	// Invocations counts the invocations so far, this one included.
	Invocations int64
}

// ErrFenced reports that the caller's lease was taken over: its checkpoint
// or summary was not written. Stop; the holder of the newer lease goes on.
var ErrFenced = errors.New("collection lease taken over by another invocation (its work goes on; retry not needed)")

// TakeLease decides a lease request against job j (nil: no document) at
// now and, when granted, updates j in place: lease, checkpoint (a fresh one
// when none matches the request's state and file), collection_state and
// progress. Store and in-memory ledgers share it.
func TakeLease(j *Job, req LeaseRequest, now time.Time) LeaseGrant {
	cp := j.CollectCheckpoint
	matches := cp != nil && cp.State == string(req.State) && cp.File == req.File
	if req.Seq >= 0 {
		switch {
		case !matches, req.Seq > cp.Seq, req.Seq < cp.Seq && cp.HandedOff:
			return LeaseGrant{Outcome: LeaseStale}
		}
	} else if matches && cp.HandedOff && now.Sub(cp.At) < req.Quiet {
		return LeaseGrant{Outcome: LeaseStale}
	}
	var fence int64
	if l := j.CollectLease; l != nil {
		fence = l.Fence
		if l.Until.After(now) && !(l.Holder == req.MessageID && req.MessageID != "" && req.Attempt > l.Attempt) {
			return LeaseGrant{Outcome: LeaseHeld}
		}
	}
	if !matches {
		cp = &Checkpoint{State: string(req.State), File: req.File, GeminiName: req.GeminiName, EndTime: req.EndTime, At: now}
		j.CollectionProgress = &Progress{}
	}
	if j.CollectionProgress == nil {
		j.CollectionProgress = &Progress{Lines: cp.Lines, Bytes: cp.Bytes}
	}
	j.CollectCheckpoint = cp
	j.CollectLease = &Lease{Fence: fence + 1, Holder: req.MessageID, Attempt: req.Attempt, Until: now.Add(req.TTL)}
	j.CollectionState = CollectionCollecting
	j.CollectionProgress.Invocations++
	j.CollectionProgress.UpdatedAt = now
	return LeaseGrant{Outcome: LeaseAcquired, Fence: fence + 1, From: *cp, Invocations: j.CollectionProgress.Invocations}
}

// MoveCheckpoint writes cp on j if j's lease still carries fence (else
// [ErrFenced]); release ends the lease (its fence is kept, so fences only
// grow), otherwise it is renewed for ttl. totalBytes, when positive, is
// recorded as the file's size.
func MoveCheckpoint(j *Job, fence int64, cp Checkpoint, totalBytes int64, release bool, ttl time.Duration, now time.Time) error {
	if j.CollectLease == nil || j.CollectLease.Fence != fence {
		return ErrFenced
	}
	cp.At = now
	j.CollectCheckpoint = &cp
	if j.CollectionProgress == nil {
		j.CollectionProgress = &Progress{}
	}
	p := j.CollectionProgress
	p.Lines, p.Bytes, p.UpdatedAt = cp.Lines, cp.Bytes, now
	if totalBytes > 0 {
		p.TotalBytes = totalBytes
	}
	j.CollectionState = CollectionCollecting
	if release {
		j.CollectLease.Until, j.CollectLease.Holder, j.CollectLease.Attempt = time.Time{}, "", 0
	} else {
		j.CollectLease.Until = now.Add(ttl)
	}
	return nil
}

// progressFields are the job fields a lease or checkpoint write sets.
func progressFields(j *Job, now time.Time) map[string]any {
	return map[string]any{
		"collect_checkpoint":  j.CollectCheckpoint,
		"collect_lease":       j.CollectLease,
		"collection_progress": j.CollectionProgress,
		"collection_state":    j.CollectionState,
		"updated_at":          now,
	}
}

// AcquireCollection takes the collection lease of jobID's output file in a
// transaction (see [TakeLease]). Only LeaseAcquired writes.
func (s *Store) AcquireCollection(ctx context.Context, jobID string, req LeaseRequest) (LeaseGrant, error) {
	ref := s.c.Collection(JobsCollection).Doc(jobID)
	var g LeaseGrant
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		old, err := getJobTx(tx, ref)
		if err != nil {
			return err
		}
		j := Job{JobID: jobID}
		if old != nil {
			j = *old
		}
		now := s.opts.Now().UTC()
		if g = TakeLease(&j, req, now); g.Outcome != LeaseAcquired {
			return nil
		}
		f := progressFields(&j, now)
		f["job_id"] = jobID
		return tx.Set(ref, f, firestore.MergeAll)
	})
	if err != nil {
		return LeaseGrant{}, fmt.Errorf("firestore acquire collection lease %s: %w (retryable)", ref.Path, err)
	}
	return g, nil
}

// SaveCheckpoint moves jobID's checkpoint to cp if the caller's lease
// (fence) is still the job's, in a transaction (see [MoveCheckpoint]);
// [ErrFenced] otherwise. The caller must have flushed every result before
// cp first.
func (s *Store) SaveCheckpoint(ctx context.Context, jobID string, fence int64, cp Checkpoint, totalBytes int64, release bool, ttl time.Duration) error {
	ref := s.c.Collection(JobsCollection).Doc(jobID)
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		old, err := getJobTx(tx, ref)
		if err != nil {
			return err
		}
		if old == nil {
			return ErrFenced
		}
		now := s.opts.Now().UTC()
		if err := MoveCheckpoint(old, fence, cp, totalBytes, release, ttl, now); err != nil {
			return err
		}
		return tx.Set(ref, progressFields(old, now), firestore.MergeAll)
	})
	if errors.Is(err, ErrFenced) {
		return fmt.Errorf("firestore save checkpoint %s (fence %d): %w", ref.Path, fence, ErrFenced)
	}
	if err != nil {
		return fmt.Errorf("firestore save checkpoint %s: %w (retryable)", ref.Path, err)
	}
	return nil
}

// MarkHandedOff records that the continuation message for checkpoint seq
// is published; a no-op when the checkpoint has moved on.
func (s *Store) MarkHandedOff(ctx context.Context, jobID string, seq int64) error {
	ref := s.c.Collection(JobsCollection).Doc(jobID)
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		old, err := getJobTx(tx, ref)
		if err != nil || old == nil || old.CollectCheckpoint == nil || old.CollectCheckpoint.Seq != seq {
			return err
		}
		return tx.Update(ref, []firestore.Update{
			{Path: "collect_checkpoint.handed_off", Value: true},
			{Path: "collect_checkpoint.at", Value: s.opts.Now().UTC()},
		})
	})
	if err != nil {
		return fmt.Errorf("firestore mark handed off %s: %w (retryable)", ref.Path, err)
	}
	return nil
}

// finishFields adds to a checkpointed collection's summary fields the end
// of its lease and checkpoint, after checking the fence.
func finishFields(old *Job, c Collection, now time.Time, fields map[string]any) error {
	if old == nil || old.CollectLease == nil || old.CollectLease.Fence != c.Fence {
		return ErrFenced
	}
	fields["collect_lease"] = Lease{Fence: c.Fence}
	fields["collect_checkpoint"] = firestore.Delete
	p := Progress{}
	if old.CollectionProgress != nil {
		p = *old.CollectionProgress
	}
	if c.Progress != nil {
		p.Lines, p.Bytes = c.Progress.Lines, c.Progress.Bytes
		if c.Progress.TotalBytes > 0 {
			p.TotalBytes = c.Progress.TotalBytes
		}
	}
	p.UpdatedAt = now
	fields["collection_progress"] = p
	return nil
}
