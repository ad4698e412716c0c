package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/shared/event"
)

// TestTakeLease: who gets the collection lease, who is stale, who waits.
func TestTakeLease(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cp := func(seq int64, handedOff bool, at time.Time) *Checkpoint {
		return &Checkpoint{State: "succeeded", File: "files/f", Seq: seq, Lines: 10 * seq, Bytes: 100 * seq, HandedOff: handedOff, At: at}
	}
	live := &Lease{Fence: 4, Holder: "m1", Attempt: 1, Until: now.Add(time.Minute)}
	expired := &Lease{Fence: 4, Holder: "m1", Attempt: 1, Until: now.Add(-time.Second)}
	released := &Lease{Fence: 4}
	req := func(msg string, attempt int, seq int64) LeaseRequest {
		return LeaseRequest{State: event.StateSucceeded, File: "files/f", MessageID: msg, Attempt: attempt, Seq: seq,
			TTL: 8 * time.Minute, Quiet: 8 * time.Minute}
	}
	for _, tc := range []struct {
		name     string
		job      Job
		req      LeaseRequest
		want     LeaseOutcome
		fromSeq  int64
		newFence int64
	}{
		{"fresh job event", Job{}, req("m1", 1, -1), LeaseAcquired, 0, 1},
		{"job event resumes a stored checkpoint", Job{CollectCheckpoint: cp(2, false, now), CollectLease: released}, req("m9", 1, -1), LeaseAcquired, 2, 5},
		{"job event while a continuation is in flight", Job{CollectCheckpoint: cp(2, true, now.Add(-time.Minute)), CollectLease: released}, req("m9", 1, -1), LeaseStale, 0, 0},
		{"job event after a broken chain", Job{CollectCheckpoint: cp(2, true, now.Add(-time.Hour)), CollectLease: released}, req("m9", 1, -1), LeaseAcquired, 2, 5},
		{"continuation of the stored checkpoint", Job{CollectCheckpoint: cp(2, true, now), CollectLease: released}, req("c2", 1, 2), LeaseAcquired, 2, 5},
		{"continuation behind a handed-off checkpoint", Job{CollectCheckpoint: cp(3, true, now), CollectLease: released}, req("c2", 2, 2), LeaseStale, 0, 0},
		{"message behind a checkpoint never handed off takes over", Job{CollectCheckpoint: cp(3, false, now), CollectLease: released}, req("c2", 2, 2), LeaseAcquired, 3, 5},
		{"continuation ahead of the checkpoint", Job{CollectCheckpoint: cp(2, true, now), CollectLease: released}, req("c5", 1, 5), LeaseStale, 0, 0},
		{"continuation without a checkpoint", Job{}, req("c1", 1, 1), LeaseStale, 0, 0},
		{"continuation for another file", Job{CollectCheckpoint: &Checkpoint{State: "succeeded", File: "files/other", Seq: 1}}, req("c1", 1, 1), LeaseStale, 0, 0},
		{"live lease, other message", Job{CollectCheckpoint: cp(2, false, now), CollectLease: live}, req("m2", 1, 2), LeaseHeld, 0, 0},
		{"live lease, same message, same attempt (a duplicate)", Job{CollectCheckpoint: cp(2, false, now), CollectLease: live}, req("m1", 1, 2), LeaseHeld, 0, 0},
		{"live lease, same message redelivered", Job{CollectCheckpoint: cp(2, false, now), CollectLease: live}, req("m1", 2, 2), LeaseAcquired, 2, 5},
		{"expired lease", Job{CollectCheckpoint: cp(2, false, now), CollectLease: expired}, req("m2", 1, 2), LeaseAcquired, 2, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := tc.job
			g := TakeLease(&j, tc.req, now)
			if g.Outcome != tc.want {
				t.Fatalf("outcome %s, want %s", g.Outcome, tc.want)
			}
			if g.Outcome != LeaseAcquired {
				if j.CollectLease != tc.job.CollectLease || j.CollectCheckpoint != tc.job.CollectCheckpoint {
					t.Error("a refused request changed the job")
				}
				return
			}
			if g.From.Seq != tc.fromSeq || g.Fence != tc.newFence || j.CollectLease.Fence != tc.newFence {
				t.Errorf("from seq %d fence %d/%d, want %d and %d", g.From.Seq, g.Fence, j.CollectLease.Fence, tc.fromSeq, tc.newFence)
			}
			if j.CollectionState != CollectionCollecting || j.CollectionProgress == nil || j.CollectionProgress.Invocations != 1 {
				t.Errorf("state %s progress %+v", j.CollectionState, j.CollectionProgress)
			}
			if !j.CollectLease.Until.Equal(now.Add(8 * time.Minute)) {
				t.Errorf("lease until %s", j.CollectLease.Until)
			}
		})
	}
}

// TestMoveCheckpoint: only the current fence moves the checkpoint;
// releasing keeps the fence so fences only grow.
func TestMoveCheckpoint(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	j := Job{}
	g := TakeLease(&j, LeaseRequest{State: event.StateSucceeded, File: "files/f", MessageID: "m", Attempt: 1, Seq: -1, TTL: time.Minute}, now)
	next := Checkpoint{State: "succeeded", File: "files/f", Seq: 1, Lines: 5, Bytes: 50}
	if err := MoveCheckpoint(&j, g.Fence+1, next, 0, false, time.Minute, now); !errors.Is(err, ErrFenced) {
		t.Fatalf("a stale fence moved the checkpoint: %v", err)
	}
	if err := MoveCheckpoint(&j, g.Fence, next, 500, true, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	if j.CollectCheckpoint.Lines != 5 || j.CollectionProgress.Bytes != 50 || j.CollectionProgress.TotalBytes != 500 ||
		!j.CollectLease.Until.IsZero() || j.CollectLease.Fence != g.Fence {
		t.Errorf("after release: checkpoint %+v progress %+v lease %+v", j.CollectCheckpoint, j.CollectionProgress, j.CollectLease)
	}
	g2 := TakeLease(&j, LeaseRequest{State: event.StateSucceeded, File: "files/f", MessageID: "c1", Attempt: 1, Seq: 1, TTL: time.Minute}, now)
	if g2.Outcome != LeaseAcquired || g2.Fence != g.Fence+1 || g2.From.Lines != 5 || j.CollectionProgress.Invocations != 2 {
		t.Errorf("continuation grant %+v, progress %+v", g2, j.CollectionProgress)
	}
}
