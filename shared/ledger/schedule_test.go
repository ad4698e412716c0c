package ledger_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// TestScheduleNext: the first check First after the start, then doubling
// intervals capped at Max, and a batch's extra check right after its
// expiry window when that comes before the regular one.
func TestScheduleNext(t *testing.T) {
	p := ledger.Schedule{First: 5 * time.Minute, Max: 4 * time.Hour, BatchExpiry: 48 * time.Hour, ExpiryMargin: 10 * time.Minute}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		kind   event.Kind
		now    time.Duration // since t0
		checks int
		want   time.Duration // since t0
	}{
		{"first check after submission", event.KindVideo, 0, 0, 5 * time.Minute},
		{"after the first check: 2·First", event.KindVideo, 5 * time.Minute, 1, 15 * time.Minute},
		{"after the second: 4·First", event.KindVideo, 15 * time.Minute, 2, 35 * time.Minute},
		{"doubling", event.KindInteraction, 35 * time.Minute, 3, 75 * time.Minute},
		{"capped at Max", event.KindVideo, 10 * time.Hour, 9, 14 * time.Hour},
		{"many checks stay capped", event.KindVideo, 30 * time.Hour, 60, 34 * time.Hour},
		{"batch: regular check before expiry", event.KindBatch, 10 * time.Hour, 9, 14 * time.Hour},
		{"batch: expiry check comes first", event.KindBatch, 46 * time.Hour, 12, 48*time.Hour + 10*time.Minute},
		{"batch: after the expiry check, regular again", event.KindBatch, 48*time.Hour + 10*time.Minute, 13, 52*time.Hour + 10*time.Minute},
		{"video: no expiry check", event.KindVideo, 46 * time.Hour, 12, 50 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := p.Next(tc.kind, t0, t0.Add(tc.now), tc.checks)
			if got.Sub(t0) != tc.want {
				t.Errorf("Next(%s, now=+%s, checks=%d) = +%s, want +%s", tc.kind, tc.now, tc.checks, got.Sub(t0), tc.want)
			}
		})
	}
	if got := (ledger.Schedule{}).Interval(0); got != ledger.DefaultSchedule.First {
		t.Errorf("zero Schedule: first interval %s, want the default %s", got, ledger.DefaultSchedule.First)
	}
}

// TestScheduleChecks: the reads a job costs when its webhook arrives at its
// end: none before the first check, then logarithmic in its duration.
func TestScheduleChecks(t *testing.T) {
	p := ledger.DefaultSchedule
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{
		{time.Minute, 0},
		{4 * time.Minute, 0},
		{10 * time.Minute, 1},
		{20 * time.Minute, 2},
		{time.Hour, 3},
		{6 * time.Hour, 6},
		{24 * time.Hour, 10},
	} {
		if got := p.Checks(event.KindVideo, tc.d); got != tc.want {
			t.Errorf("Checks(%s) = %d, want %d", tc.d, got, tc.want)
		}
	}
	// A batch pays one more read for the check after its expiry window.
	if v, b := p.Checks(event.KindVideo, 49*time.Hour), p.Checks(event.KindBatch, 49*time.Hour); b != v+1 {
		t.Errorf("49 h: batch %d reads, video %d; want one more for the expiry check", b, v)
	}
	fmt.Fprint(testWriter{t}, ScheduleTable(p))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log("\n" + string(p)); return len(p), nil }

// ScheduleTable is the budget table in docs/bench/REPORT.md.
func ScheduleTable(p ledger.Schedule) string {
	s := "| job duration | reads per job (webhook delivered) | reads per job (webhook lost: +1 finding it) |\n| --- | --- | --- |\n"
	for _, d := range []time.Duration{2 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		n := p.Checks(event.KindBatch, d)
		s += fmt.Sprintf("| %s | %d | %d |\n", d, n, n+1)
	}
	return s
}
