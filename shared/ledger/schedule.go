package ledger

import (
	"os"
	"strings"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/geminihooks/geminihooks/shared/event"
)

// Reconciliation schedule fields of jobs/{job_id}. The Reconciler's sweep
// reads only jobs whose next_check_at has passed (an index on it), so its
// cost grows with the jobs that are overdue, not with the collection.
const (
	// FieldNextCheckAt is when the Reconciler next reads a non-terminal job
	// from Gemini's API; absent on terminal jobs.
	FieldNextCheckAt = "next_check_at"
	// FieldChecks counts the Reconciler's reads of the job.
	FieldChecks = "checks"
	// FieldLastCheckAt is the Reconciler's last read of the job.
	FieldLastCheckAt = "last_check_at"
	// FieldSource says how the job's latest claimed state was learned
	// (SourceWebhook or SourceReconciler); FieldSourceAt when.
	FieldSource   = "source"
	FieldSourceAt = "source_at"
)

// How a job's state was learned.
const (
	// SourceWebhook: a Gemini webhook delivery announced it.
	SourceWebhook = "webhook"
	// SourceReconciler: the Reconciler's sweep found it reading Gemini's API
	// (the webhook was missed, late, or never sent).
	SourceReconciler = "reconciler"
)

// ReconcilePrefix starts the delivery id of every event the Reconciler
// announces ("reconcile:<job_id>:<state>", "redrive:<job_id>:<n>"): the
// ledger derives a job's source from it.
const (
	ReconcilePrefix = "reconcile:"
	RedrivePrefix   = "redrive:"
)

// SourceOf is how a delivery id learned its job: the Reconciler's ids
// carry ReconcilePrefix or RedrivePrefix, everything else is a webhook.
func SourceOf(webhookID string) string {
	if strings.HasPrefix(webhookID, ReconcilePrefix) || strings.HasPrefix(webhookID, RedrivePrefix) {
		return SourceReconciler
	}
	return SourceWebhook
}

// Schedule is when the Reconciler reads a non-terminal job: First after it
// was submitted or first seen, then after doubling intervals (First,
// 2·First, 4·First … capped at Max), and once right after a batch's expiry
// window (a batch that expired may send no event anyone hears). A job that
// ends before its first check, with its webhook delivered, costs no read; a
// longer one costs about log2(duration/First) reads ([Schedule.Checks]).
type Schedule struct {
	// First is the delay of the first check (default 5 minutes; the
	// environment variable RECONCILE_FIRST_CHECK overrides it, which the
	// local stack uses to make jobs due within seconds).
	First time.Duration
	// Max caps the interval between checks (default 4 hours).
	Max time.Duration
	// BatchExpiry is how long Gemini lets a batch run before it expires
	// (default 48 hours; Google's pages say 24 h or 48 h), ExpiryMargin how
	// long after it the extra check runs (default 10 minutes).
	BatchExpiry, ExpiryMargin time.Duration
}

// DefaultSchedule is the schedule of zero fields.
var DefaultSchedule = Schedule{First: 5 * time.Minute, Max: 4 * time.Hour, BatchExpiry: 48 * time.Hour, ExpiryMargin: 10 * time.Minute}

// FirstCheckEnv names the variable that overrides Schedule.First.
const FirstCheckEnv = "RECONCILE_FIRST_CHECK"

// withDefaults fills zero fields, First from FirstCheckEnv when set.
func (p Schedule) withDefaults() Schedule {
	if p.First <= 0 {
		p.First = DefaultSchedule.First
		if d, err := time.ParseDuration(os.Getenv(FirstCheckEnv)); err == nil && d > 0 {
			p.First = d
		}
	}
	if p.Max <= 0 {
		p.Max = max(DefaultSchedule.Max, p.First)
	}
	if p.BatchExpiry <= 0 {
		p.BatchExpiry = DefaultSchedule.BatchExpiry
	}
	if p.ExpiryMargin <= 0 {
		p.ExpiryMargin = DefaultSchedule.ExpiryMargin
	}
	return p
}

// Interval is the wait after the job's checks-th check (0: after it was
// submitted or first seen): First·2^checks, capped at Max.
func (p Schedule) Interval(checks int) time.Duration {
	p = p.withDefaults()
	d := p.First
	for range checks {
		if d >= p.Max {
			break
		}
		d *= 2
	}
	return min(d, p.Max)
}

// Next is when a job of kind, started (submitted or first seen) at start,
// is next due after its checks-th check at now. For a batch, a check right
// after its expiry window comes first if it falls before the regular one.
func (p Schedule) Next(kind event.Kind, start, now time.Time, checks int) time.Time {
	p = p.withDefaults()
	next := now.Add(p.Interval(checks))
	if kind == event.KindBatch && !start.IsZero() {
		if exp := start.Add(p.BatchExpiry + p.ExpiryMargin); exp.After(now) && exp.Before(next) {
			next = exp
		}
	}
	return next
}

// Checks is how many reads the schedule spends on a job that runs for d
// before its webhook arrives (kind only matters for a batch's expiry
// check): the reads a job costs when its webhook is delivered.
func (p Schedule) Checks(kind event.Kind, d time.Duration) int {
	p = p.withDefaults()
	start := time.Unix(0, 0)
	end := start.Add(d)
	n := 0
	for at := p.Next(kind, start, start, 0); at.Before(end); at = p.Next(kind, start, at, n) {
		n++
	}
	return n
}

// scheduleOnClaim adds the schedule to a claim's job fields: a job the
// ledger sees for the first time, or one that has none and is not known
// terminal, becomes due First after now. A claim about a job already on a
// schedule leaves it alone.
func scheduleOnClaim(fields map[string]any, old *Job, p Schedule, now time.Time) {
	if old != nil && (!old.NextCheckAt.IsZero() || event.State(old.State).Terminal()) {
		return
	}
	fields[FieldNextCheckAt] = now.Add(p.withDefaults().First)
	if old == nil {
		fields[FieldChecks] = int64(0)
	}
}

// sourceOnClaim records how the claim's state was learned, unless the job
// already claims that state (a late webhook after the Reconciler found the
// state does not rewrite history: the webhook was missed).
func sourceOnClaim(fields map[string]any, old *Job, ev event.JobEvent, now time.Time) {
	if old != nil && old.Source != "" && ev.State != event.StateUnknown && old.ReportedState == string(ev.State) {
		return
	}
	fields[FieldSource] = SourceOf(ev.WebhookID)
	fields[FieldSourceAt] = now
}

// unscheduleOnTerminal removes a job's schedule once the API shows it
// terminal: nothing more can happen to it.
func unscheduleOnTerminal(fields map[string]any, s event.State) {
	if s.Terminal() {
		fields[FieldNextCheckAt] = firestore.Delete
	}
}
