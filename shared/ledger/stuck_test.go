package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

func TestStuck(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	const after = 15 * time.Minute
	old, recent := now.Add(-16*time.Minute), now.Add(-time.Minute)
	lease := func(until time.Time) *ledger.Lease { return &ledger.Lease{Fence: 3, Until: until} }
	for _, tc := range []struct {
		name string
		job  ledger.Job
		want bool
	}{
		{"pending, idle", ledger.Job{CollectionState: ledger.CollectionPending, UpdatedAt: old}, true},
		{"pending, recent", ledger.Job{CollectionState: ledger.CollectionPending, UpdatedAt: recent}, false},
		{"retries exhausted, idle", ledger.Job{CollectionState: ledger.CollectionFailed, UpdatedAt: old,
			CollectError: &event.JobError{Code: ledger.CodeRetriesExhausted}}, true},
		{"permanent failure", ledger.Job{CollectionState: ledger.CollectionFailed, UpdatedAt: old,
			CollectError: &event.JobError{Code: "output_expired"}}, false},
		{"collecting, no checkpoint for long, lease run out", ledger.Job{CollectionState: ledger.CollectionCollecting, UpdatedAt: old,
			CollectLease: lease(old.Add(8 * time.Minute))}, true},
		{"collecting, handed off (lease released)", ledger.Job{CollectionState: ledger.CollectionCollecting, UpdatedAt: old,
			CollectLease: lease(time.Time{})}, true},
		{"collecting, lease still live", ledger.Job{CollectionState: ledger.CollectionCollecting, UpdatedAt: old,
			CollectLease: lease(now.Add(time.Minute))}, false},
		{"collecting, recent checkpoint", ledger.Job{CollectionState: ledger.CollectionCollecting, UpdatedAt: recent,
			CollectLease: lease(recent)}, false},
		{"collected", ledger.Job{CollectionState: ledger.CollectionDone, UpdatedAt: old}, false},
	} {
		if got := ledger.Stuck(tc.job, now, after); got != tc.want {
			t.Errorf("%s: Stuck = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestClaimKeepsCollecting: a webhook claim arriving while a checkpointed
// collection holds its lease leaves collection_state "collecting" (it used
// to read "pending" until the next checkpoint); on any other job it marks
// the collection pending.
func TestClaimKeepsCollecting(t *testing.T) {
	c, _ := testenv.Firestore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	l := ledger.New(c, ledger.Options{Now: func() time.Time { return t0 }})
	first := jobEvent("claim-1", event.TypeBatchSucceeded, "batches/keep", t0)
	if _, err := l.Record(ctx, first, "hmac"); err != nil {
		t.Fatal(err)
	}
	if j, _ := l.GetJob(ctx, first.JobID); j.CollectionState != ledger.CollectionPending {
		t.Fatalf("after the first claim: %q", j.CollectionState)
	}
	g, err := l.AcquireCollection(ctx, first.JobID, ledger.LeaseRequest{State: event.StateSucceeded, File: "files/out-keep",
		GeminiName: first.GeminiName, MessageID: "m1", Attempt: 1, Seq: -1, TTL: 8 * time.Minute, Quiet: 8 * time.Minute})
	if err != nil || g.Outcome != ledger.LeaseAcquired {
		t.Fatalf("lease: %+v, %v", g, err)
	}
	if _, err := l.Record(ctx, jobEvent("claim-2", event.TypeBatchSucceeded, "batches/keep", t0), "hmac"); err != nil {
		t.Fatal(err)
	}
	j, err := l.GetJob(ctx, first.JobID)
	if err != nil || j.CollectionState != ledger.CollectionCollecting || j.Deliveries != 2 || j.CollectLease == nil || j.CollectLease.Fence != g.Fence {
		t.Errorf("after a claim mid-collection: state %q deliveries %d lease %+v, %v", j.CollectionState, j.Deliveries, j.CollectLease, err)
	}
}
