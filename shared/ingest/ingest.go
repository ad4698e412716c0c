// Package ingest is the Receiver's domain: it turns a verified webhook
// delivery into exactly one message on the events topic, with the delivery
// and its job recorded in the ledger first.
//
// # Sequence
//
//  1. Parse and validate the envelope. A signed delivery that can never be
//     processed — a body that does not parse, a timestamp outside the years
//     0001–9999, an id, type or family beyond Firestore's or Pub/Sub's
//     limits — is recorded once as invalid (with a bounded reason) and
//     acknowledged: a retry can never fix it. A webhook.ping is recorded
//     and acknowledged; it is not about a job.
//  2. Record the delivery and its claim about the job, in one transaction,
//     and take the publish lease ([Ledger.Record]). The claim is not the
//     job's state: the Collector reads that from Gemini's API.
//  3. Publish the event, wait for the server's acknowledgement, and mark the
//     delivery published.
//
// A failure in 2 or 3 returns [ErrUnavailable]: the sender retries, and the
// retry publishes the recorded event (byte for byte the first attempt's).
// A concurrent attempt of a delivery being published returns [ErrInFlight].
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/logging"
)

// Sentinel errors of [Service.Handle].
var (
	// ErrUnavailable: Firestore or Pub/Sub failed; a retry can succeed.
	ErrUnavailable = errors.New("ledger or topic unavailable")
	// ErrInFlight: another attempt of this delivery is publishing; retry later.
	ErrInFlight = errors.New("delivery is being processed by another attempt")
)

// Ledger records deliveries and jobs; *ledger.Store implements it.
type Ledger interface {
	Record(ctx context.Context, ev event.JobEvent, scheme string) (ledger.Claim, error)
	MarkPublished(ctx context.Context, webhookID, messageID string) error
	ReleaseLease(ctx context.Context, webhookID, lease string) error
	RecordInvalid(ctx context.Context, webhookID, scheme string, body []byte, reason string) error
	RecordPing(ctx context.Context, webhookID, scheme string, eventTime time.Time) error
}

// Delivery is a verified webhook request.
type Delivery struct {
	// WebhookID is the sender's idempotency key; empty derives one from the body.
	WebhookID string
	// Scheme is how it was verified ("hmac" or "jwt").
	Scheme string
	Body   []byte
	// SignedEnvelope is set when the signature itself covers the event (a
	// JWT whose claims carry it, see webhook.Delivery.SignedEvent): it is
	// the envelope, and the body, which the token does not cover, is ignored.
	SignedEnvelope []byte
}

// Status of a handled delivery.
type Status string

// Statuses reported to the sender.
const (
	StatusAccepted  Status = "accepted"
	StatusDuplicate Status = "duplicate"
	StatusInvalid   Status = "invalid"
	StatusPing      Status = "ping"
)

// Result describes a handled delivery.
type Result struct {
	Status    Status `json:"status"`
	WebhookID string `json:"webhook_id"`
	JobID     string `json:"job_id,omitempty"`
	Type      string `json:"type,omitempty"`
	MessageID string `json:"message_id,omitempty"`
}

// Service handles verified deliveries. It is safe for concurrent use.
type Service struct {
	Ledger    Ledger
	Publisher bus.Publisher
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

// Handle records d and publishes its event exactly once per webhook-id.
func (s *Service) Handle(ctx context.Context, d Delivery) (Result, error) {
	log := logging.From(ctx)
	if d.WebhookID == "" {
		sum := sha256.Sum256(d.Body)
		d.WebhookID = "sha256_" + hex.EncodeToString(sum[:16])
	}
	res := Result{WebhookID: event.Bound(d.WebhookID, logIDBytes)}

	invalid := func(err error) (Result, error) {
		if rerr := s.Ledger.RecordInvalid(ctx, d.WebhookID, d.Scheme, d.Body, err.Error()); rerr != nil {
			return res, fmt.Errorf("%w: %v", ErrUnavailable, rerr)
		}
		// A verified sender sent something we can never process: worth a
		// human look. The reason is bounded; the body is only in Firestore.
		log.Error("signed delivery cannot be processed; stored as invalid",
			"webhook_id", res.WebhookID, "reason", event.Bound(err.Error(), event.MaxReasonBytes), "bytes", len(d.Body))
		res.Status = StatusInvalid
		return res, nil
	}
	env, ref, err := s.parse(d)
	if err != nil {
		return invalid(err)
	}
	res.Type = env.Type
	if env.Type == event.TypeWebhookPing {
		if err := s.Ledger.RecordPing(ctx, d.WebhookID, d.Scheme, env.Timestamp); err != nil {
			return res, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		log.Info("webhook ping received", "webhook_id", res.WebhookID)
		res.Status = StatusPing
		return res, nil
	}
	res.JobID = ref.ID
	state, _ := event.StateOf(env.Type)
	ev := event.JobEvent{
		SchemaVersion: event.SchemaVersion, WebhookID: d.WebhookID, Type: env.Type,
		JobID: ref.ID, Kind: ref.Kind, GeminiName: ref.Name, State: state,
		EventTime: env.Timestamp, ReceivedAt: s.now().UTC(), Data: env.Data,
	}
	res, err = s.recordAndPublish(ctx, ev, d.Scheme, res)
	if errors.Is(err, event.ErrLimit) {
		return invalid(err)
	}
	return res, err
}

// recordAndPublish records ev (one delivery, its claim on the job) and
// publishes it exactly once per delivery id: the path every announced job
// state takes, from a webhook or from the Reconciler. An error wrapping
// [event.ErrLimit] means the event can never be stored.
func (s *Service) recordAndPublish(ctx context.Context, ev event.JobEvent, scheme string, res Result) (Result, error) {
	log := logging.From(ctx)
	claim, err := s.Ledger.Record(ctx, ev, scheme)
	if errors.Is(err, event.ErrLimit) {
		return res, err
	}
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	switch claim.Outcome {
	case ledger.OutcomeDone:
		res.Status = StatusDuplicate
		return res, nil
	case ledger.OutcomeInFlight:
		return res, ErrInFlight
	}

	id, err := s.Publisher.Publish(ctx, bus.Message{
		Data: claim.Event, Attributes: ev.Attributes(), OrderingKey: ev.JobID,
	})
	if err != nil {
		// Let the sender's next retry publish without waiting for the
		// lease, if that can be done quickly: the answer must not wait for
		// it (the lease expires anyway).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if rerr := s.Ledger.ReleaseLease(rctx, ev.WebhookID, claim.Lease); rerr != nil {
			log.Warn("release publish lease failed; it will expire", "webhook_id", res.WebhookID, "error", rerr.Error())
		}
		return res, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	res.MessageID = id
	res.Status = StatusAccepted
	if claim.Duplicate {
		log.Info("published a delivery recorded by an earlier attempt", "webhook_id", res.WebhookID, "job_id", ev.JobID)
	}
	// The event is out: the mark gets its own short budget rather than what
	// is left of the request's, so a slow publish does not leave the
	// delivery looking unpublished.
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer mcancel()
	if err := s.Ledger.MarkPublished(mctx, ev.WebhookID, id); err != nil {
		// The event is on the topic: answering an error now would make the
		// sender retry and publish it a second time. The delivery stays
		// "received" in the ledger; consumers de-duplicate on webhook_id anyway.
		log.Warn("event published but not marked in the ledger", "webhook_id", res.WebhookID, "message_id", id, "error", err.Error())
	}
	return res, nil
}

// logIDBytes bounds ids echoed in answers and log lines.
const logIDBytes = 128

// markTimeout bounds marking a delivery published after its publish.
const markTimeout = 2 * time.Second

// releaseTimeout bounds giving the publish lease back after a failed
// publish; it runs after the request's deadline may have passed.
const releaseTimeout = time.Second

// parse reads and validates a delivery: the envelope (with the signed
// claims, when the signature covers the event, taking precedence), the job
// it names, and every value that ends up in Firestore or Pub/Sub. An error
// means the delivery can never be processed.
func (s *Service) parse(d Delivery) (event.Envelope, event.JobRef, error) {
	if err := event.CheckText("webhook-id", d.WebhookID, event.MaxWebhookIDBytes); err != nil {
		return event.Envelope{}, event.JobRef{}, err
	}
	src := d.Body
	if d.SignedEnvelope != nil {
		// The signature covers the claims, not the body: they decide.
		src = d.SignedEnvelope
	}
	env, err := event.ParseEnvelope(src)
	if err != nil {
		return env, event.JobRef{}, err
	}
	if env.Type == event.TypeWebhookPing {
		return env, event.JobRef{}, nil
	}
	ref, err := event.ParseRef(env.Type, env.Data.ID)
	if err != nil {
		return env, ref, err
	}
	if err := event.CheckText("gemini name", ref.Name, event.MaxAttributeValueBytes); err != nil {
		return env, ref, err
	}
	return env, ref, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
