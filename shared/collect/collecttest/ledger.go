package collecttest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// CountingLedger is an in-memory Collector ledger whose result writer only
// counts, so benchmarks measure the streaming path (download, line reading,
// decoding) and not Firestore. It keeps jobs, leases and checkpoints with
// the ledger's own rules (ledger.TakeLease, ledger.MoveCheckpoint), so it
// also drives checkpointed collection.
type CountingLedger struct {
	mu   sync.Mutex
	jobs map[string]ledger.Job
	// Written counts the results written.
	Written atomic.Int64
}

// NewCountingLedger returns an empty CountingLedger.
func NewCountingLedger() *CountingLedger {
	return &CountingLedger{jobs: map[string]ledger.Job{}}
}

// Reset forgets every job and zeroes Written.
func (l *CountingLedger) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.jobs = map[string]ledger.Job{}
	l.Written.Store(0)
}

// GetJob returns a stored job or ledger.ErrNotFound.
func (l *CountingLedger) GetJob(_ context.Context, id string) (ledger.Job, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j, ok := l.jobs[id]
	if !ok {
		return ledger.Job{}, ledger.ErrNotFound
	}
	return j, nil
}

// OpenResults returns a writer that counts.
func (l *CountingLedger) OpenResults(context.Context, string) ledger.ResultWriter {
	return countWriter{l}
}

type countWriter struct{ l *CountingLedger }

func (w countWriter) Write(string, ledger.Result) error { w.l.Written.Add(1); return nil }
func (w countWriter) Close() error                      { return nil }

// SaveCollection records the summary, fenced like the Firestore ledger.
func (l *CountingLedger) SaveCollection(_ context.Context, id string, c ledger.Collection) (ledger.Saved, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j := l.jobs[id]
	if c.Fence != 0 && (j.CollectLease == nil || j.CollectLease.Fence != c.Fence) {
		return ledger.Saved{}, ledger.ErrFenced
	}
	j.CollectionState, j.CollectedState, j.Counts, j.CollectCheckpoint = c.CollectionState, string(c.CollectedState), c.Counts, nil
	l.jobs[id] = j
	return ledger.Saved{Applied: true, Labels: j.Labels}, nil
}

// AcquireCollection takes the collection lease (ledger.TakeLease).
func (l *CountingLedger) AcquireCollection(_ context.Context, id string, req ledger.LeaseRequest) (ledger.LeaseGrant, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j := l.jobs[id]
	j.JobID = id
	g := ledger.TakeLease(&j, req, time.Now())
	if g.Outcome == ledger.LeaseAcquired {
		l.jobs[id] = j
	}
	return g, nil
}

// SaveCheckpoint moves the checkpoint (ledger.MoveCheckpoint).
func (l *CountingLedger) SaveCheckpoint(_ context.Context, id string, fence int64, cp ledger.Checkpoint, total int64, release bool, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	j := l.jobs[id]
	if err := ledger.MoveCheckpoint(&j, fence, cp, total, release, ttl, time.Now()); err != nil {
		return err
	}
	l.jobs[id] = j
	return nil
}

// MarkHandedOff marks checkpoint seq as handed to its continuation.
func (l *CountingLedger) MarkHandedOff(_ context.Context, id string, seq int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if j := l.jobs[id]; j.CollectCheckpoint != nil && j.CollectCheckpoint.Seq == seq {
		j.CollectCheckpoint.HandedOff = true
		l.jobs[id] = j
	}
	return nil
}

// MarkResultsPublished does nothing.
func (l *CountingLedger) MarkResultsPublished(context.Context, string, event.State, string) error {
	return nil
}

// NoteUnknownEvent does nothing.
func (l *CountingLedger) NoteUnknownEvent(context.Context, string, string) error { return nil }

// ApplyVerification does nothing.
func (l *CountingLedger) ApplyVerification(context.Context, string, event.Kind, ledger.Verification) error {
	return nil
}

// RecordVerdict does nothing.
func (l *CountingLedger) RecordVerdict(context.Context, string, ledger.Verification) error {
	return nil
}

// RecordCollectFailure does nothing.
func (l *CountingLedger) RecordCollectFailure(context.Context, string, event.JobError) error {
	return nil
}
