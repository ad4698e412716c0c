// Package ingest is the Receiver's domain: it turns a verified webhook
// delivery into exactly one message on the events topic, with the delivery
// and its job recorded in the ledger first.
//
// # Sequence
//
//  1. Parse the envelope. A signed body that does not parse is recorded as
//     invalid and acknowledged: a retry can never fix it.
//  2. Record the delivery and apply its state to the job, in one
//     transaction, and take the publish lease ([Ledger.Record]).
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
}

// Delivery is a verified webhook request.
type Delivery struct {
	// WebhookID is the sender's idempotency key; empty derives one from the body.
	WebhookID string
	// Scheme is how it was verified ("hmac" or "jwt").
	Scheme string
	Body   []byte
}

// Status of a handled delivery.
type Status string

// Statuses reported to the sender.
const (
	StatusAccepted  Status = "accepted"
	StatusDuplicate Status = "duplicate"
	StatusInvalid   Status = "invalid"
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
	res := Result{WebhookID: d.WebhookID}

	env, err := event.ParseEnvelope(d.Body)
	var ref event.JobRef
	if err == nil {
		ref, err = event.ParseRef(env.Type, env.Data.ID)
	}
	if err != nil {
		if rerr := s.Ledger.RecordInvalid(ctx, d.WebhookID, d.Scheme, d.Body, err.Error()); rerr != nil {
			return res, fmt.Errorf("%w: %v", ErrUnavailable, rerr)
		}
		// A verified sender sent something we cannot read: worth a human look.
		log.Error("signed delivery has an unparseable body; stored as invalid",
			"webhook_id", d.WebhookID, "reason", err.Error(), "bytes", len(d.Body))
		res.Status = StatusInvalid
		return res, nil
	}
	res.JobID, res.Type = ref.ID, env.Type
	state, _ := event.StateOf(env.Type)
	ev := event.JobEvent{
		SchemaVersion: event.SchemaVersion, WebhookID: d.WebhookID, Type: env.Type,
		JobID: ref.ID, Kind: ref.Kind, GeminiName: ref.Name, State: state,
		EventTime: env.Timestamp, ReceivedAt: s.now().UTC(), Data: env.Data,
	}
	claim, err := s.Ledger.Record(ctx, ev, d.Scheme)
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
		// Let the sender's next retry publish without waiting for the lease.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := s.Ledger.ReleaseLease(rctx, d.WebhookID, claim.Lease); rerr != nil {
			log.Warn("release publish lease failed; it will expire", "webhook_id", d.WebhookID, "error", rerr.Error())
		}
		return res, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	res.MessageID = id
	res.Status = StatusAccepted
	if claim.Duplicate {
		log.Info("published a delivery recorded by an earlier attempt", "webhook_id", d.WebhookID, "job_id", ref.ID)
	}
	if err := s.Ledger.MarkPublished(ctx, d.WebhookID, id); err != nil {
		// The event is on the topic: answering an error now would make the
		// sender retry and publish it a second time. The delivery stays
		// "received" in the ledger; consumers de-duplicate on webhook_id anyway.
		log.Warn("event published but not marked in the ledger", "webhook_id", d.WebhookID, "message_id", id, "error", err.Error())
	}
	return res, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
