package ledger

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geminihooks/geminihooks/shared/event"
)

// Options configures a [Store]. The zero value is usable.
type Options struct {
	// DeliveryTTL is how long a delivery document is kept (its expire_at).
	// It must outlast Gemini's 24 h retry window. Defaults to 7 days.
	DeliveryTTL time.Duration
	// PublishLease is how long an attempt may hold the right to publish a
	// delivery before another attempt may take over. Defaults to 30s.
	PublishLease time.Duration
	// MaxBodyBytes bounds the body kept for invalid deliveries; Firestore
	// documents are at most 1 MiB. Defaults to 512 KiB.
	MaxBodyBytes int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Schedule is when the Reconciler reads non-terminal jobs; zero fields
	// take DefaultSchedule's (see Schedule.First for its override).
	Schedule Schedule
}

// DefaultOptions are the defaults applied to zero fields of [Options].
var DefaultOptions = Options{
	DeliveryTTL:  7 * 24 * time.Hour,
	PublishLease: 30 * time.Second,
	MaxBodyBytes: 512 << 10,
	Now:          time.Now,
}

// Store is the Firestore ledger. It is safe for concurrent use.
type Store struct {
	c    *firestore.Client
	opts Options
}

// New returns a Store on c.
func New(c *firestore.Client, opts Options) *Store {
	if opts.DeliveryTTL <= 0 {
		opts.DeliveryTTL = DefaultOptions.DeliveryTTL
	}
	if opts.PublishLease <= 0 {
		opts.PublishLease = DefaultOptions.PublishLease
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultOptions.MaxBodyBytes
	}
	if opts.Now == nil {
		opts.Now = DefaultOptions.Now
	}
	opts.Schedule = opts.Schedule.withDefaults()
	return &Store{c: c, opts: opts}
}

// Client returns the underlying Firestore client.
func (s *Store) Client() *firestore.Client { return s.c }

// Outcome says what the caller of [Store.Record] must do next.
type Outcome int

const (
	// OutcomePublish: the caller holds the publish lease and must publish
	// the event, then call MarkPublished (or ReleaseLease on failure).
	OutcomePublish Outcome = iota + 1
	// OutcomeDone: the delivery was already published; nothing to do.
	OutcomeDone
	// OutcomeInFlight: another attempt holds the publish lease; the sender
	// should retry later.
	OutcomeInFlight
)

func (o Outcome) String() string {
	switch o {
	case OutcomePublish:
		return "publish"
	case OutcomeDone:
		return "done"
	case OutcomeInFlight:
		return "in_flight"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Claim is the result of [Store.Record].
type Claim struct {
	Outcome Outcome
	// Event is the JobEvent body to publish (with OutcomePublish); on a
	// retry it is the body recorded by the first attempt, so every publish
	// of a delivery carries identical bytes.
	Event []byte
	// Lease identifies the lease held, for MarkPublished/ReleaseLease.
	Lease string
	// Duplicate is true when this webhook-id had been received before.
	Duplicate bool
}

// Record stores a verified delivery and its claim about the job in one
// atomic commit. ev is the event to publish; its JobID, Type and State (the
// claim) drive the job update. The job's state is never taken from the
// claim: the Receiver writes reported_state/reported_event_type/
// reported_at/reported_error, and marks the job's collection pending so
// the Collector reads the job from Gemini's API. An event that cannot be
// encoded fails with an error wrapping [event.ErrLimit] (a retry cannot
// help).
//
// The commit is an optimistic transaction: both documents are read in one
// BatchGetDocuments, and the writes carry preconditions (the delivery must
// not exist, the job must be unchanged since the read) so a concurrent
// writer makes the commit fail and Record reads again. That costs two round
// trips where RunTransaction costs three (it opens the transaction with a
// separate BeginTransaction), and it holds no locks, so concurrent
// attempts of one delivery do not queue behind each other.
func (s *Store) Record(ctx context.Context, ev event.JobEvent, scheme string) (Claim, error) {
	body, err := encodeEvent(ev)
	if err != nil {
		return Claim{}, err
	}
	for attempt, wait := 1, 20*time.Millisecond; ; attempt, wait = attempt+1, wait*2 {
		var claim Claim
		if claim, err = s.record(ctx, ev, scheme, body); err == nil {
			return claim, nil
		}
		if !isConflict(err) || attempt == 10 {
			break
		}
		select {
		case <-ctx.Done():
			return Claim{}, fmt.Errorf("firestore record delivery %s: %w (retryable)", ev.WebhookID, ctx.Err())
		case <-time.After(min(wait, time.Second) + time.Duration(rand.Int64N(int64(wait)))):
		}
	}
	return Claim{}, fmt.Errorf("firestore record delivery %s: %w (retryable)", ev.WebhookID, err)
}

// MaxEventBytes bounds the JobEvent stored on a delivery document, which
// like every Firestore document holds at most 1 MiB.
const MaxEventBytes = 512 << 10

// encodeEvent encodes the event to publish, failing with [event.ErrLimit]
// when it cannot be encoded or stored.
func encodeEvent(ev event.JobEvent) ([]byte, error) {
	body, err := event.Encode(ev)
	if err == nil && len(body) > MaxEventBytes {
		err = fmt.Errorf("%w: event of %d bytes (max %d)", event.ErrLimit, len(body), MaxEventBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("record delivery %s: %w", event.Bound(ev.WebhookID, 64), err)
	}
	return body, nil
}

// isConflict reports a failed precondition: another writer got there first.
func isConflict(err error) bool {
	switch status.Code(err) {
	case codes.AlreadyExists, codes.FailedPrecondition, codes.Aborted:
		return true
	}
	return false
}

func (s *Store) record(ctx context.Context, ev event.JobEvent, scheme string, body []byte) (Claim, error) {
	now := s.opts.Now().UTC()
	lease := newLease()
	dref := s.c.Collection(DeliveriesCollection).Doc(event.EscapeDocID(ev.WebhookID))
	jref := s.c.Collection(JobsCollection).Doc(ev.JobID)
	snaps, err := s.c.GetAll(ctx, []*firestore.DocumentRef{dref, jref})
	if err != nil {
		return Claim{}, err
	}
	dsnap, jsnap := snaps[0], snaps[1]
	if dsnap.Exists() {
		claim := Claim{Duplicate: true}
		var d Delivery
		if err := dsnap.DataTo(&d); err != nil {
			return Claim{}, fmt.Errorf("decode %s: %w", dref.Path, err)
		}
		switch {
		case d.Status == StatusPublished || d.Status == StatusInvalid || d.Status == StatusPing:
			claim.Outcome = OutcomeDone
		case d.LeaseUntil.After(now):
			// No write: the attempt holding the lease is about to update
			// this document.
			claim.Outcome = OutcomeInFlight
			return claim, nil
		default:
			claim.Outcome, claim.Event, claim.Lease = OutcomePublish, d.Event, lease
		}
		upd := []firestore.Update{{Path: "attempts", Value: firestore.Increment(1)}}
		var pre []firestore.Precondition
		if claim.Outcome == OutcomePublish {
			upd = append(upd,
				firestore.Update{Path: "lease_until", Value: now.Add(s.opts.PublishLease)},
				firestore.Update{Path: "lease", Value: lease})
			// Two attempts taking over an expired lease: only one wins.
			pre = append(pre, firestore.LastUpdateTime(dsnap.UpdateTime))
		}
		_, err := dref.Update(ctx, upd, pre...)
		return claim, err
	}
	d := Delivery{
		WebhookID: ev.WebhookID, Type: ev.Type, Status: StatusReceived, JobID: ev.JobID,
		GeminiName: ev.GeminiName, Scheme: scheme, EventTime: ev.EventTime, ReceivedAt: now,
		Attempts: 1, LeaseUntil: now.Add(s.opts.PublishLease), Lease: lease, Event: body,
		ReportedState: string(ev.State), ExpireAt: now.Add(s.opts.DeliveryTTL),
	}
	var old *Job
	if jsnap.Exists() {
		old = new(Job)
		if err := jsnap.DataTo(old); err != nil {
			return Claim{}, fmt.Errorf("decode %s: %w", jref.Path, err)
		}
	}
	fields := claimFields(old, ev, now)
	scheduleOnClaim(fields, old, s.opts.Schedule, now)
	sourceOnClaim(fields, old, ev, now)
	// WriteBatch is deprecated in favour of transactions and BulkWriter, but
	// it is the client's only atomic multi-document commit without a
	// BeginTransaction round trip; the preconditions make it safe.
	b := s.c.Batch()
	b.Create(dref, d)
	if old != nil {
		upd := make([]firestore.Update, 0, len(fields))
		for k, v := range fields {
			upd = append(upd, firestore.Update{Path: k, Value: v})
		}
		b.Update(jref, upd, firestore.LastUpdateTime(jsnap.UpdateTime))
	} else {
		b.Create(jref, fields)
	}
	if _, err := b.Commit(ctx); err != nil {
		return Claim{}, err
	}
	return Claim{Outcome: OutcomePublish, Event: body, Lease: lease}, nil
}

// claimFields are the top-level fields a new delivery writes on its job
// (old is nil for a job the ledger has not seen): the whole document for a
// new job, the changes for an existing one. Both ledgers use it, so they
// cannot drift.
func claimFields(old *Job, ev event.JobEvent, now time.Time) map[string]any {
	fields := map[string]any{
		"job_id":              ev.JobID,
		"kind":                string(ev.Kind),
		"deliveries":          int64(1),
		"last_received_at":    now,
		"updated_at":          now,
		"reported_event_type": ev.Type,
		"reported_at":         now,
	}
	if old == nil {
		fields["gemini_name"] = ev.GeminiName
		fields["first_received_at"] = now
		fields["counts"] = event.Counts{}
		fields["tokens"] = event.Tokens{}
	} else {
		fields["deliveries"] = firestore.Increment(1)
		if old.FirstReceivedAt.IsZero() {
			fields["first_received_at"] = now
		}
		// A webhook may name the job by another form of its name than the
		// one recorded at submission; the recorded one is what the API
		// accepts, so it is only replaced when it lacks the model
		// (event.BetterName).
		if n := event.BetterName(old.GeminiName, ev.GeminiName); n != old.GeminiName {
			fields["gemini_name"] = n
		}
	}
	// Fields of an earlier claim that this one does not carry are removed
	// (from an existing job only: a new document has nothing to remove).
	clear := func(k string) {
		if old != nil {
			fields[k] = firestore.Delete
		}
	}
	// An event type geminihooks does not interpret claims no state: the
	// last known claim stays, the type is noted.
	if ev.State == event.StateUnknown {
		fields["last_unknown_event"] = ev.Type
	} else {
		fields["reported_state"] = string(ev.State)
	}
	if re := reportedError(ev.Data); re != nil {
		fields["reported_error"] = *re
	} else {
		clear("reported_error")
	}
	// The claim makes the Collector read the job, unless Gemini's API has
	// already shown a terminal state and it was collected: terminal states
	// are final, so no claim can change the outcome.
	if claimResetsCollection(old) {
		fields["collection_state"] = CollectionPending
	}
	return fields
}

// claimResetsCollection reports whether a new claim on old (nil: a job
// the ledger has not seen) marks its collection pending. Not when Gemini's
// API already showed a terminal state and it was collected (terminal states
// are final), nor while a checkpointed collection is under way: its lease
// and checkpoint say where it is, and "pending" would hide that until the
// next checkpoint.
func claimResetsCollection(old *Job) bool {
	if old == nil {
		return true
	}
	if event.State(old.CollectedState).Terminal() && old.StateSource == SourceAPI {
		return false
	}
	return old.CollectionState != CollectionCollecting
}

// reportedError is a webhook's claimed error in the stored shape
// {code, status, message} (event.NormalizeError), nil when it has none.
func reportedError(d event.Data) *event.JobError {
	if d.ErrorCode == "" && d.ErrorMessage == "" {
		return nil
	}
	return event.NormalizeError(d.ErrorCode, "", d.ErrorMessage)
}

// MarkPublished records that the delivery's event is on the topic. It
// retries lock contention (concurrent attempts of the same delivery) a few
// times, because failing here after a successful publish leaves the lease to
// expire and the event to be published a second time.
func (s *Store) MarkPublished(ctx context.Context, webhookID, messageID string) error {
	ref := s.c.Collection(DeliveriesCollection).Doc(event.EscapeDocID(webhookID))
	upd := []firestore.Update{
		{Path: "status", Value: StatusPublished},
		{Path: "published_at", Value: s.opts.Now().UTC()},
		{Path: "message_id", Value: messageID},
		{Path: "lease_until", Value: firestore.Delete},
		{Path: "lease", Value: firestore.Delete},
	}
	var err error
	for attempt, wait := 1, 50*time.Millisecond; ; attempt, wait = attempt+1, wait*2 {
		if _, err = ref.Update(ctx, upd); err == nil {
			return nil
		}
		if c := status.Code(err); attempt == 5 || (c != codes.Aborted && c != codes.Unavailable && c != codes.DeadlineExceeded) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("firestore update %s: %w (retryable)", ref.Path, err)
		case <-time.After(wait):
		}
	}
	return fmt.Errorf("firestore update %s: %w (retryable)", ref.Path, err)
}

// ReleaseLease gives up the publish lease after a failed publish so the
// sender's next retry can publish at once. Best effort: an unreleased lease
// simply expires.
func (s *Store) ReleaseLease(ctx context.Context, webhookID, lease string) error {
	ref := s.c.Collection(DeliveriesCollection).Doc(event.EscapeDocID(webhookID))
	return s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return fmt.Errorf("firestore get %s: %w", ref.Path, err)
		}
		if held, _ := snap.DataAt("lease"); held != lease {
			return nil // someone else took over; not ours to release
		}
		return tx.Update(ref, []firestore.Update{
			{Path: "lease_until", Value: firestore.Delete},
			{Path: "lease", Value: firestore.Delete},
		})
	})
}

// RecordInvalid stores a signed delivery that can never be processed (its
// body does not parse, or a value is beyond Firestore or Pub/Sub limits),
// with the body (truncated to MaxBodyBytes) and the reason (bounded to
// [event.MaxReasonBytes]). A retry of the same delivery is recognised and
// not stored twice.
func (s *Store) RecordInvalid(ctx context.Context, webhookID, scheme string, body []byte, reason string) error {
	return s.recordOnce(ctx, webhookID, invalidDelivery(s.opts, webhookID, scheme, body, reason))
}

// RecordPing stores a webhook.ping delivery: proof that Gemini reaches the
// Receiver, never a job and never published.
func (s *Store) RecordPing(ctx context.Context, webhookID, scheme string, eventTime time.Time) error {
	return s.recordOnce(ctx, webhookID, pingDelivery(s.opts, webhookID, scheme, eventTime))
}

func (s *Store) recordOnce(ctx context.Context, webhookID string, d Delivery) error {
	ref := s.c.Collection(DeliveriesCollection).Doc(event.EscapeDocID(webhookID))
	_, err := ref.Create(ctx, d)
	if status.Code(err) == codes.AlreadyExists {
		_, err = ref.Update(ctx, []firestore.Update{{Path: "attempts", Value: firestore.Increment(1)}})
	}
	if err != nil {
		return fmt.Errorf("firestore create %s: %w (retryable)", ref.Path, err)
	}
	return nil
}

func invalidDelivery(o Options, webhookID, scheme string, body []byte, reason string) Delivery {
	now := o.Now().UTC()
	d := Delivery{
		WebhookID: storableID(webhookID), Status: StatusInvalid, Scheme: scheme, ReceivedAt: now,
		Attempts: 1, Reason: event.Bound(reason, event.MaxReasonBytes), ExpireAt: now.Add(o.DeliveryTTL),
	}
	if len(body) > o.MaxBodyBytes {
		d.Body, d.BodyTruncated = body[:o.MaxBodyBytes], true
	} else {
		d.Body = body
	}
	return d
}

func pingDelivery(o Options, webhookID, scheme string, eventTime time.Time) Delivery {
	now := o.Now().UTC()
	return Delivery{
		WebhookID: storableID(webhookID), Type: event.TypeWebhookPing, Status: StatusPing, Scheme: scheme,
		EventTime: eventTime, ReceivedAt: now, Attempts: 1, ExpireAt: now.Add(o.DeliveryTTL),
	}
}

// storableID is a webhook id as a Firestore string field: valid UTF-8 and
// bounded. The document id is derived from the original (EscapeDocID), so
// retries still meet on one document.
func storableID(id string) string { return event.Bound(id, event.MaxWebhookIDBytes) }

// Submission describes a job geminihooks submitted itself.
type Submission struct {
	Ref         event.JobRef
	Model       string
	Labels      map[string]string
	SubmittedAt time.Time
}

// RecordSubmission records a job as submitted so the ledger knows it before
// its webhook arrives. It never moves an existing job's state backwards.
func (s *Store) RecordSubmission(ctx context.Context, sub Submission) error {
	now := s.opts.Now().UTC()
	if sub.SubmittedAt.IsZero() {
		sub.SubmittedAt = now
	}
	ref := s.c.Collection(JobsCollection).Doc(sub.Ref.ID)
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil && status.Code(err) != codes.NotFound {
			return err
		}
		fields := map[string]any{
			"job_id": sub.Ref.ID, "kind": string(sub.Ref.Kind), "gemini_name": sub.Ref.Name,
			"submitted_at": sub.SubmittedAt, "updated_at": now,
		}
		var old Job
		if snap.Exists() {
			if err := snap.DataTo(&old); err != nil {
				return fmt.Errorf("decode %s: %w", ref.Path, err)
			}
			// The API's answer to the submission names the job as the API
			// reads it: it replaces whatever form a webhook recorded first,
			// unless that is the full name and this the model-less form.
			if n := event.BetterName(sub.Ref.Name, old.GeminiName); n != sub.Ref.Name {
				delete(fields, "gemini_name")
			}
		}
		if sub.Model != "" {
			fields["model"] = sub.Model
		}
		if len(sub.Labels) > 0 {
			fields["labels"] = sub.Labels
		}
		if old.State == "" {
			// geminihooks knows it submitted the job; a webhook that came
			// first only left a claim.
			fields["state"] = string(event.StateSubmitted)
			fields["state_source"] = SourceSubmission
		}
		if !event.State(old.State).Terminal() && (old.NextCheckAt.IsZero() || old.Checks == 0) {
			// The first check counts from the submission.
			fields[FieldNextCheckAt] = sub.SubmittedAt.Add(s.opts.Schedule.First)
		}
		if !snap.Exists() {
			fields["deliveries"] = 0
			fields["counts"] = event.Counts{}
			fields["tokens"] = event.Tokens{}
		}
		return tx.Set(ref, fields, firestore.MergeAll)
	})
	if err != nil {
		return fmt.Errorf("firestore record submission %s: %w (retryable)", ref.Path, err)
	}
	return nil
}

// ErrNotFound reports a missing document.
var ErrNotFound = errors.New("not found")

// GetJob reads jobs/{jobID}.
func (s *Store) GetJob(ctx context.Context, jobID string) (Job, error) {
	ref := s.c.Collection(JobsCollection).Doc(jobID)
	snap, err := ref.Get(ctx)
	if status.Code(err) == codes.NotFound {
		return Job{}, fmt.Errorf("firestore get %s: %w", ref.Path, ErrNotFound)
	}
	if err != nil {
		return Job{}, fmt.Errorf("firestore get %s: %w (retryable)", ref.Path, err)
	}
	var j Job
	if err := snap.DataTo(&j); err != nil {
		return Job{}, fmt.Errorf("decode %s: %w", ref.Path, err)
	}
	return j, nil
}

// GetDelivery reads deliveries/{webhookID}.
func (s *Store) GetDelivery(ctx context.Context, webhookID string) (Delivery, error) {
	ref := s.c.Collection(DeliveriesCollection).Doc(event.EscapeDocID(webhookID))
	snap, err := ref.Get(ctx)
	if status.Code(err) == codes.NotFound {
		return Delivery{}, fmt.Errorf("firestore get %s: %w", ref.Path, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("firestore get %s: %w (retryable)", ref.Path, err)
	}
	var d Delivery
	if err := snap.DataTo(&d); err != nil {
		return Delivery{}, fmt.Errorf("decode %s: %w", ref.Path, err)
	}
	return d, nil
}

// ListJobs returns the most recently updated jobs, optionally only those in
// state (uses the composite index jobs(state, updated_at desc)).
func (s *Store) ListJobs(ctx context.Context, state string, limit int) ([]Job, error) {
	q := s.c.Collection(JobsCollection).OrderBy("updated_at", firestore.Desc)
	if state != "" {
		q = s.c.Collection(JobsCollection).Where("state", "==", state).OrderBy("updated_at", firestore.Desc)
	}
	if limit > 0 {
		q = q.Limit(limit)
	}
	snaps, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("firestore query %s: %w (retryable)", JobsCollection, err)
	}
	jobs := make([]Job, 0, len(snaps))
	for _, sn := range snaps {
		var j Job
		if err := sn.DataTo(&j); err != nil {
			return nil, fmt.Errorf("decode %s: %w", sn.Ref.Path, err)
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

func newLease() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
