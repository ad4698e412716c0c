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

// Record stores a verified delivery and applies its event to the job in one
// atomic commit. ev is the event to publish; its JobID, Type and State drive
// the job update.
//
// The commit is an optimistic transaction: both documents are read in one
// BatchGetDocuments, and the writes carry preconditions (the delivery must
// not exist, the job must be unchanged since the read) so a concurrent
// writer makes the commit fail and Record reads again. That costs two round
// trips where RunTransaction costs three (it opens the transaction with a
// separate BeginTransaction), and it holds no locks, so concurrent
// attempts of one delivery do not queue behind each other.
func (s *Store) Record(ctx context.Context, ev event.JobEvent, scheme string) (Claim, error) {
	body := event.Marshal(ev)
	var err error
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
		case d.Status == StatusPublished || d.Status == StatusInvalid:
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
		ExpireAt: now.Add(s.opts.DeliveryTTL),
	}
	fields, err := jobFields(jsnap, ev, now)
	if err != nil {
		return Claim{}, err
	}
	// WriteBatch is deprecated in favour of transactions and BulkWriter, but
	// it is the client's only atomic multi-document commit without a
	// BeginTransaction round trip; the preconditions make it safe.
	b := s.c.Batch()
	b.Create(dref, d)
	if jsnap.Exists() {
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

// jobFields are the top-level fields a new delivery writes on its job:
// the whole document for a new job, the changes for an existing one.
func jobFields(snap *firestore.DocumentSnapshot, ev event.JobEvent, now time.Time) (map[string]any, error) {
	fields := map[string]any{
		"job_id":           ev.JobID,
		"kind":             string(ev.Kind),
		"gemini_name":      ev.GeminiName,
		"deliveries":       int64(1),
		"last_received_at": now,
		"updated_at":       now,
	}
	var old Job
	if snap.Exists() {
		if err := snap.DataTo(&old); err != nil {
			return nil, fmt.Errorf("decode %s: %w", snap.Ref.Path, err)
		}
		fields["deliveries"] = firestore.Increment(1)
	} else {
		fields["first_received_at"] = now
		fields["counts"] = event.Counts{}
		fields["tokens"] = event.Tokens{}
	}
	if old.FirstReceivedAt.IsZero() && snap.Exists() {
		fields["first_received_at"] = now
	}
	switch {
	case ev.State == event.StateUnknown:
		fields["last_unknown_event"] = ev.Type
		if !snap.Exists() {
			fields["state"] = string(event.StateUnknown)
		}
	case ev.State.Supersedes(event.State(old.State)):
		fields["state"] = string(ev.State)
		fields["event_type"] = ev.Type
		fields["event_time"] = ev.EventTime
		fields["state_changed_at"] = now
		fields["collection_state"] = CollectionPending
		if ev.Data.ErrorCode != "" || ev.Data.ErrorMessage != "" {
			fields["error"] = event.JobError{Code: ev.Data.ErrorCode, Message: ev.Data.ErrorMessage}
		}
		if u := ev.Data.OutputURI(); u != "" {
			fields["output_uri"] = u
		}
		if ev.Data.FileName != "" {
			fields["file_name"] = ev.Data.FileName
		}
	}
	return fields, nil
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
	return s.c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
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

// RecordInvalid stores a signed delivery whose body could not be parsed.
// A retry of the same delivery is recognised and not stored twice.
func (s *Store) RecordInvalid(ctx context.Context, webhookID, scheme string, body []byte, reason string) error {
	now := s.opts.Now().UTC()
	d := Delivery{
		WebhookID: webhookID, Status: StatusInvalid, Scheme: scheme, ReceivedAt: now,
		Attempts: 1, Reason: reason, ExpireAt: now.Add(s.opts.DeliveryTTL),
	}
	if len(body) > s.opts.MaxBodyBytes {
		d.Body, d.BodyTruncated = body[:s.opts.MaxBodyBytes], true
	} else {
		d.Body = body
	}
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
	err := s.c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil && status.Code(err) != codes.NotFound {
			return err
		}
		fields := map[string]any{
			"job_id": sub.Ref.ID, "kind": string(sub.Ref.Kind), "gemini_name": sub.Ref.Name,
			"submitted_at": sub.SubmittedAt, "updated_at": now,
		}
		if sub.Model != "" {
			fields["model"] = sub.Model
		}
		if len(sub.Labels) > 0 {
			fields["labels"] = sub.Labels
		}
		if !snap.Exists() {
			fields["state"] = string(event.StateSubmitted)
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
