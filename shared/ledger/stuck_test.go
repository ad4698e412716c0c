package ledger_test

import (
	"testing"
	"time"

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
