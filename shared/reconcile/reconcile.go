// Package reconcile is the Reconciler's domain: it makes sure no Gemini job
// stays unfinished silently when its webhook never arrives. Webhooks make
// completion fast, not certain: Gemini gives up on a delivery after 24 h,
// disables a webhook after repeated failures, sends no event for a failed
// Veo operation and sends *.cancelled only to per-job URIs.
//
// One [Service.Sweep] (the Reconciler function, run by Cloud Scheduler, or
// `geminihooks reconcile`) does four bounded things:
//
//  1. Webhooks: lists Gemini's webhooks; one disabled_due_to_failed_deliveries
//     is logged at ERROR (an alert) and, if enabled by option, re-enabled.
//  2. Known jobs: reads from Gemini's API the jobs whose next_check_at has
//     passed (ledger.Store.DueJobs: an index range, most overdue first).
//     A job in a state no webhook announced (terminal, or
//     requires_action) is a missed webhook: logged as "missed webhook" (a
//     log-based metric counts it) and announced like a webhook
//     (ingest.Service.Announce) with the delivery id
//     reconcile:<job_id>:<state>, so Collector, Notifier and workflows see
//     one results event per job state whoever reported it. Every other
//     job is rescheduled (ledger.Schedule: doubling intervals).
//  3. Stuck collections: a job whose collection stayed pending, failed
//     after exhausted retries, or stayed collecting without a checkpoint
//     and with its lease run out (an invocation that died without handing
//     on), longer than StuckAfter is announced again
//     (redrive:<job_id>:<n>), at most MaxRedrives times.
//  4. Unknown batches: lists Gemini's batches newest first back to
//     LookBack and records the ones the ledger does not know (source
//     reconciler): finished ones are announced, running ones scheduled.
//
// Each step is bounded by Limit and the whole sweep by Budget, so an
// invocation never depends on finishing an unbounded amount of work; what
// is left is due in the next sweep.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/logging"
)

// Ledger is what the sweep needs from the job store; *ledger.Store
// implements it.
type Ledger interface {
	DueJobs(ctx context.Context, now time.Time, limit int) ([]ledger.DueJob, error)
	RecordCheck(ctx context.Context, j ledger.DueJob, c ledger.Check) error
	StuckCandidates(ctx context.Context, cutoff time.Time, limit int) ([]ledger.DueJob, error)
	RecordRedrive(ctx context.Context, j ledger.DueJob, at time.Time) error
	GiveUpRedrive(ctx context.Context, j ledger.DueJob, at time.Time, msg string) error
	KnownJobs(ctx context.Context, ids []string) (map[string]bool, error)
	RecordDiscovered(ctx context.Context, d ledger.Discovery) error
	Schedule() ledger.Schedule
}

// Gemini is what the sweep reads from Gemini's API; [GenAI] implements it
// with the genai SDK. Errors of ReadJob wrap gemini.ErrNotReadable for a job
// this key cannot read.
type Gemini interface {
	ReadJob(ctx context.Context, kind event.Kind, name string) (*gemini.Job, error)
	// ListBatches returns one page of batches, newest first.
	ListBatches(ctx context.Context, pageToken string, pageSize int) ([]Batch, string, error)
	// ListWebhooks returns every static webhook.
	ListWebhooks(ctx context.Context) ([]Webhook, error)
	// EnableWebhook sets a webhook's state to enabled.
	EnableWebhook(ctx context.Context, id string) error
}

// Batch is a batch as the list shows it.
type Batch struct {
	Name       string
	State      event.State
	CreateTime time.Time
	EndTime    time.Time
	Model      string
}

// Webhook is a static webhook as the list shows it.
type Webhook struct {
	ID, Name, URI, State string
}

// WebhookDisabled is the state Gemini puts a webhook in after repeated
// failed deliveries.
const WebhookDisabled = "disabled_due_to_failed_deliveries"

// Announcer enters a job event into the pipeline; *ingest.Service
// implements it.
type Announcer interface {
	Announce(ctx context.Context, ev event.JobEvent) (ingest.Result, error)
}

// Options configures a [Service]. Zero fields take the defaults below.
type Options struct {
	Ledger    Ledger
	Gemini    Gemini
	Announcer Announcer
	// Limit bounds the jobs read per step (due jobs, stuck jobs) and the
	// batches listed per sweep (default 200).
	Limit int
	// Budget bounds one sweep's wall time (default 4 minutes, below the
	// function's timeout and Cloud Scheduler's attempt deadline).
	Budget time.Duration
	// ReadTimeout bounds one Gemini call (default 30s).
	ReadTimeout time.Duration
	// LookBack is how far back (by create time) batches are listed to find
	// unknown ones (default 72h: past the batch expiry window).
	LookBack time.Duration
	// StuckAfter is how long a collection may stay pending or failed after
	// exhausted retries before it is driven again (default 15 minutes,
	// above the Collector's 480 s deadline).
	StuckAfter time.Duration
	// MaxRedrives bounds the re-drives of one job (default 5).
	MaxRedrives int64
	// ReEnableWebhooks re-enables a webhook Gemini disabled after failed
	// deliveries (default off: the failures usually need a human first).
	ReEnableWebhooks bool
	// SkipBatchList turns off step 4 (for a deployment whose jobs are all
	// submitted through geminihooks).
	SkipBatchList bool
	// Now is the clock (default time.Now); Logger defaults to slog.Default().
	Now    func() time.Time
	Logger *slog.Logger
}

// Defaults of [Options].
const (
	DefaultLimit       = 200
	DefaultBudget      = 4 * time.Minute
	DefaultReadTimeout = 30 * time.Second
	DefaultLookBack    = 72 * time.Hour
	DefaultStuckAfter  = 15 * time.Minute
	DefaultMaxRedrives = 5
)

// Service runs sweeps. It is safe for concurrent use (two overlapping
// sweeps announce the same delivery ids: harmless).
type Service struct{ o Options }

// New returns a Service; Ledger, Gemini and Announcer are required.
func New(o Options) *Service {
	if o.Limit <= 0 {
		o.Limit = DefaultLimit
	}
	if o.Budget <= 0 {
		o.Budget = DefaultBudget
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.LookBack <= 0 {
		o.LookBack = DefaultLookBack
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = DefaultStuckAfter
	}
	if o.MaxRedrives <= 0 {
		o.MaxRedrives = DefaultMaxRedrives
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{o: o}
}

// Report is what one sweep did.
type Report struct {
	DryRun bool `json:"dry_run,omitzero"`
	// Checked jobs were read from Gemini's API because they were due.
	Checked int `json:"checked"`
	// Missed are job states found by reading the API that no webhook
	// announced (announced now, unless DryRun).
	Missed int `json:"missed"`
	// Redriven collections were stuck and announced again.
	Redriven int `json:"redriven"`
	// Discovered jobs were at Gemini but unknown to the ledger.
	Discovered int `json:"discovered"`
	// DisabledWebhooks were found disabled after failed deliveries;
	// ReEnabled of them were re-enabled.
	DisabledWebhooks int `json:"disabled_webhooks"`
	ReEnabled        int `json:"re_enabled,omitzero"`
	// GeminiCalls counts the sweep's requests to Gemini's API.
	GeminiCalls int `json:"gemini_calls"`
	// Skipped jobs changed while being looked at, or their read failed
	// transiently: they are due again.
	Skipped int `json:"skipped,omitzero"`
	// Truncated is true when Limit or Budget stopped a step early: more
	// work is due (the next sweep continues).
	Truncated bool `json:"truncated,omitzero"`
	// Errors are failures that did not stop the sweep (bounded).
	Errors []string `json:"errors,omitempty"`
}

func (r *Report) fail(err error) {
	if len(r.Errors) < 20 {
		r.Errors = append(r.Errors, event.Bound(err.Error(), 300))
	}
}

// ErrUnavailable reports a sweep that could not do its work (Firestore or
// Gemini unavailable); the next scheduled run retries.
var ErrUnavailable = errors.New("reconcile: ledger or gemini unavailable (retryable)")

// Sweep runs one bounded reconciliation. With dryRun it reads and reports
// but writes and announces nothing. The error is non-nil when a step could
// not run at all (wrapping [ErrUnavailable]); per-job failures are in
// Report.Errors and the jobs stay due.
func (s *Service) Sweep(ctx context.Context, dryRun bool) (Report, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Budget)
	defer cancel()
	rep := Report{DryRun: dryRun}
	var errs []error
	if err := s.webhooks(ctx, &rep, dryRun); err != nil {
		errs = append(errs, err)
	}
	if err := s.dueJobs(ctx, &rep, dryRun); err != nil {
		errs = append(errs, err)
	}
	if err := s.stuck(ctx, &rep, dryRun); err != nil {
		errs = append(errs, err)
	}
	if !s.o.SkipBatchList {
		if err := s.unknownBatches(ctx, &rep, dryRun); err != nil {
			errs = append(errs, err)
		}
	}
	log := s.log(ctx)
	log.Info("reconcile sweep", "checked", rep.Checked, "missed", rep.Missed, "redriven", rep.Redriven,
		"discovered", rep.Discovered, "disabled_webhooks", rep.DisabledWebhooks, "gemini_calls", rep.GeminiCalls,
		"skipped", rep.Skipped, "truncated", rep.Truncated, "dry_run", dryRun)
	if len(errs) > 0 {
		return rep, fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(errs...))
	}
	return rep, nil
}

func (s *Service) log(ctx context.Context) *slog.Logger { return logging.FromOr(ctx, s.o.Logger) }

func (s *Service) now() time.Time { return s.o.Now().UTC() }

// webhooks alerts on (and optionally re-enables) webhooks Gemini disabled.
func (s *Service) webhooks(ctx context.Context, rep *Report, dryRun bool) error {
	rctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	hooks, err := s.o.Gemini.ListWebhooks(rctx)
	cancel()
	rep.GeminiCalls++
	if err != nil {
		return fmt.Errorf("gemini webhooks.list: %w", err)
	}
	log := s.log(ctx)
	for _, h := range hooks {
		if h.State != WebhookDisabled {
			continue
		}
		rep.DisabledWebhooks++
		// The alert: terraform's log-based metric counts this message.
		log.Error("gemini webhook disabled after failed deliveries", "webhook", h.ID, "name", h.Name, "uri", h.URI,
			"state", h.State, "re_enable", s.o.ReEnableWebhooks && !dryRun)
		if !s.o.ReEnableWebhooks || dryRun {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
		err := s.o.Gemini.EnableWebhook(rctx, h.ID)
		cancel()
		rep.GeminiCalls++
		if err != nil {
			rep.fail(fmt.Errorf("gemini webhooks.update %s state=enabled: %w", h.ID, err))
			continue
		}
		rep.ReEnabled++
		log.Warn("gemini webhook re-enabled", "webhook", h.ID)
	}
	return nil
}

// dueJobs reads the jobs whose next check has come.
func (s *Service) dueJobs(ctx context.Context, rep *Report, dryRun bool) error {
	due, err := s.o.Ledger.DueJobs(ctx, s.now(), s.o.Limit)
	if err != nil {
		return err
	}
	if len(due) == s.o.Limit {
		rep.Truncated = true
	}
	for _, j := range due {
		if ctx.Err() != nil {
			rep.Truncated = true
			return nil
		}
		s.checkJob(ctx, rep, j, dryRun)
	}
	return nil
}

// checkJob reads one due job from Gemini's API and announces a state no
// webhook did, or reschedules it.
func (s *Service) checkJob(ctx context.Context, rep *Report, j ledger.DueJob, dryRun bool) {
	log := s.log(ctx).With("job_id", j.JobID)
	kind := event.Kind(j.Kind)
	sched := s.o.Ledger.Schedule()
	start := firstNonZero(j.SubmittedAt, j.FirstReceivedAt, j.NextCheckAt)
	if !kind.Collected() || j.GeminiName == "" {
		// Nothing to read it by: off the schedule.
		if !dryRun {
			s.recordCheck(ctx, rep, log, j, ledger.Check{At: s.now()})
		}
		return
	}
	rctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	gj, err := s.o.Gemini.ReadJob(rctx, kind, j.GeminiName)
	cancel()
	rep.GeminiCalls++
	rep.Checked++
	now := s.now()
	switch {
	case gemini.IsNotReadable(err):
		// Deleted, or not this key's: it can never be read again.
		log.Warn("reconcile: job not readable with this API key; taken off the schedule", "err", err.Error())
		if !dryRun {
			s.recordCheck(ctx, rep, log, j, ledger.Check{At: now})
		}
		return
	case err != nil:
		// Transient (or a permanent error of one read): try again at the
		// next interval.
		rep.Skipped++
		rep.fail(fmt.Errorf("gemini read %s: %w", j.GeminiName, err))
		if !dryRun {
			s.recordCheck(ctx, rep, log, j, ledger.Check{At: now, Next: sched.Next(kind, start, now, int(j.Checks)+1)})
		}
		return
	}
	announce := announceable(j.Job, gj.State)
	next := time.Time{}
	if !gj.State.Terminal() {
		next = sched.Next(kind, start, now, int(j.Checks)+1)
	} else if announce {
		// Announced now; keep one more check in case the Collector never
		// runs (it removes the schedule once it has read the state).
		next = now.Add(sched.Interval(int(j.Checks) + 1))
	}
	if dryRun {
		if announce {
			rep.Missed++
			s.logMissed(log, j.Job, gj, now, true)
		}
		return
	}
	// Reschedule first, conditional on the job being unchanged: a job a
	// Collector is acting on right now is left to it.
	if !s.recordCheck(ctx, rep, log, j, ledger.Check{At: now, Next: next}) || !announce {
		return
	}
	ev := event.JobEvent{
		WebhookID: ingest.ReconcileID(j.JobID, gj.State), Type: event.TypeFor(kind, gj.State),
		JobID: j.JobID, Kind: kind, GeminiName: j.GeminiName, State: gj.State,
		EventTime: firstNonZero(gj.EndTime, now), Data: event.Data{ID: j.GeminiName},
	}
	if _, err := s.o.Announcer.Announce(ctx, ev); err != nil {
		rep.fail(fmt.Errorf("announce %s: %w", ev.WebhookID, err))
		return
	}
	rep.Missed++
	s.logMissed(log, j.Job, gj, now, false)
}

// announceable: the API shows a state an event announces (terminal, or
// requires_action) that no claim on the job has reported and that has not
// been collected. A job whose webhook arrived but whose collection is
// pending is the stuck rule's business, not a missed webhook.
func announceable(j ledger.Job, s event.State) bool {
	if !s.Collectable() || event.TypeFor(event.Kind(j.Kind), s) == "" {
		return false
	}
	if j.CollectedState == string(s) && j.CollectionState == ledger.CollectionDone {
		return false
	}
	return j.ReportedState != string(s)
}

// logMissed writes the line the missed-webhooks metric counts, with the
// recovery delay (job end → found) when the API gives the end time.
func (s *Service) logMissed(log *slog.Logger, j ledger.Job, gj *gemini.Job, now time.Time, dryRun bool) {
	args := []any{"kind", j.Kind, "state", string(gj.State), "gemini_name", j.GeminiName,
		"reported_state", j.ReportedState, "checks", j.Checks + 1, "dry_run", dryRun}
	if !gj.EndTime.IsZero() {
		args = append(args, "recovery_delay_s", max(now.Sub(gj.EndTime).Seconds(), 0))
	}
	log.Warn("missed webhook", args...)
}

// recordCheck writes the check; false when the job changed meanwhile (or
// the write failed), so the caller does not announce on a stale read.
func (s *Service) recordCheck(ctx context.Context, rep *Report, log *slog.Logger, j ledger.DueJob, c ledger.Check) bool {
	err := s.o.Ledger.RecordCheck(ctx, j, c)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ledger.ErrChanged):
		rep.Skipped++
		log.Info("reconcile: job changed while checked; left to the next sweep")
	default:
		rep.Skipped++
		rep.fail(err)
	}
	return false
}

// stuck drives collections again that made no progress.
func (s *Service) stuck(ctx context.Context, rep *Report, dryRun bool) error {
	now := s.now()
	cands, err := s.o.Ledger.StuckCandidates(ctx, now.Add(-s.o.StuckAfter), s.o.Limit)
	if err != nil {
		return err
	}
	for _, j := range cands {
		if ctx.Err() != nil {
			rep.Truncated = true
			return nil
		}
		if !ledger.Stuck(j.Job, now, s.o.StuckAfter) || !event.Kind(j.Kind).Collected() || j.GeminiName == "" {
			continue
		}
		log := s.log(ctx).With("job_id", j.JobID)
		if j.Redrives >= s.o.MaxRedrives {
			log.Error("reconcile: collection still stuck after re-drives; giving up (replay by hand)",
				"collection_state", j.CollectionState, "redrives", j.Redrives)
			if !dryRun {
				if err := s.o.Ledger.GiveUpRedrive(ctx, j, now, fmt.Sprintf("collection stuck after %d re-drives by the Reconciler", j.Redrives)); err != nil && !errors.Is(err, ledger.ErrChanged) {
					rep.fail(err)
				}
			}
			continue
		}
		state := event.State(cmpOr(j.State, j.ReportedState))
		typ := event.TypeFor(event.Kind(j.Kind), state)
		if typ == "" {
			typ = j.ReportedEventType
		}
		if typ == "" {
			continue
		}
		log.Warn("reconcile: collection stuck; driving it again", "collection_state", j.CollectionState,
			"idle_s", now.Sub(j.UpdatedAt).Seconds(), "redrive", j.Redrives+1, "dry_run", dryRun)
		if dryRun {
			rep.Redriven++
			continue
		}
		if err := s.o.Ledger.RecordRedrive(ctx, j, now); err != nil {
			if !errors.Is(err, ledger.ErrChanged) {
				rep.fail(err)
			}
			rep.Skipped++
			continue
		}
		ev := event.JobEvent{
			WebhookID: ingest.RedriveID(j.JobID, j.Redrives+1), Type: typ, JobID: j.JobID, Kind: event.Kind(j.Kind),
			GeminiName: j.GeminiName, State: state, EventTime: firstNonZero(j.EventTime, now), Data: event.Data{ID: j.GeminiName},
		}
		if _, err := s.o.Announcer.Announce(ctx, ev); err != nil {
			rep.fail(fmt.Errorf("announce %s: %w", ev.WebhookID, err))
			continue
		}
		rep.Redriven++
	}
	return nil
}

// unknownBatches lists Gemini's batches back to LookBack and records the
// ones the ledger does not know.
func (s *Service) unknownBatches(ctx context.Context, rep *Report, dryRun bool) error {
	const pageSize = 50
	cutoff := s.now().Add(-s.o.LookBack)
	token, listed := "", 0
	for {
		if ctx.Err() != nil || listed >= s.o.Limit {
			rep.Truncated = true
			return nil
		}
		rctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
		page, next, err := s.o.Gemini.ListBatches(rctx, token, pageSize)
		cancel()
		rep.GeminiCalls++
		if err != nil {
			return fmt.Errorf("gemini batches.list: %w", err)
		}
		done := next == ""
		var recent []Batch
		for _, b := range page {
			if !b.CreateTime.IsZero() && b.CreateTime.Before(cutoff) {
				done = true // newest first: the rest are older
				break
			}
			recent = append(recent, b)
		}
		listed += len(recent)
		if err := s.recordUnknown(ctx, rep, recent, dryRun); err != nil {
			return err
		}
		if done {
			return nil
		}
		token = next
	}
}

func (s *Service) recordUnknown(ctx context.Context, rep *Report, page []Batch, dryRun bool) error {
	refs := make([]event.JobRef, 0, len(page))
	ids := make([]string, 0, len(page))
	for _, b := range page {
		ref, err := event.RefForName(event.KindBatch, b.Name)
		if err != nil {
			rep.fail(fmt.Errorf("batch name %q: %w", event.Bound(b.Name, 100), err))
			refs = append(refs, event.JobRef{})
			continue
		}
		refs = append(refs, ref)
		ids = append(ids, ref.ID)
	}
	known, err := s.o.Ledger.KnownJobs(ctx, ids)
	if err != nil {
		return err
	}
	for i, b := range page {
		ref := refs[i]
		if ref.ID == "" || known[ref.ID] {
			continue
		}
		log := s.log(ctx).With("job_id", ref.ID)
		rep.Discovered++
		log.Warn("reconcile: batch unknown to the ledger", "gemini_name", ref.Name, "state", string(b.State), "dry_run", dryRun)
		if dryRun {
			continue
		}
		if err := s.o.Ledger.RecordDiscovered(ctx, ledger.Discovery{Ref: ref, CreatedAt: b.CreateTime, Model: b.Model}); err != nil {
			rep.fail(err)
			continue
		}
		if !b.State.Collectable() {
			continue // scheduled: its first check comes
		}
		ev := event.JobEvent{
			WebhookID: ingest.ReconcileID(ref.ID, b.State), Type: event.TypeFor(event.KindBatch, b.State),
			JobID: ref.ID, Kind: event.KindBatch, GeminiName: ref.Name, State: b.State,
			EventTime: firstNonZero(b.EndTime, s.now()), Data: event.Data{ID: ref.Name},
		}
		if _, err := s.o.Announcer.Announce(ctx, ev); err != nil {
			rep.fail(fmt.Errorf("announce %s: %w", ev.WebhookID, err))
			continue
		}
		rep.Missed++
		log.Warn("missed webhook", "kind", string(event.KindBatch), "state", string(b.State), "gemini_name", ref.Name,
			"discovered", true, "recovery_delay_s", max(s.now().Sub(b.EndTime).Seconds(), 0))
	}
	return nil
}

func firstNonZero(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
