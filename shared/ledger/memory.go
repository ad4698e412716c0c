package ledger

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/geminihooks/geminihooks/shared/event"
)

// Memory is an in-process ledger with the same delivery semantics as
// [Store]: for unit tests and for benchmarks that measure the Receiver's own
// cost without Firestore. It is safe for concurrent use.
type Memory struct {
	opts       Options
	mu         sync.Mutex
	deliveries map[string]Delivery
	jobs       map[string]Job
}

// NewMemory returns an empty in-memory ledger.
func NewMemory(opts Options) *Memory {
	return &Memory{opts: New(nil, opts).opts, deliveries: map[string]Delivery{}, jobs: map[string]Job{}}
}

// Record implements the same contract as [Store.Record].
func (m *Memory) Record(_ context.Context, ev event.JobEvent, scheme string) (Claim, error) {
	now := m.opts.Now().UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.deliveries[ev.WebhookID]; ok {
		c := Claim{Duplicate: true}
		switch {
		case d.Status == StatusPublished || d.Status == StatusInvalid || d.Status == StatusPing:
			c.Outcome = OutcomeDone
			d.Attempts++
		case d.LeaseUntil.After(now):
			// Like Store: an attempt that finds the delivery in flight
			// writes nothing.
			c.Outcome = OutcomeInFlight
		default:
			d.Attempts++
			c.Outcome, c.Event, c.Lease = OutcomePublish, d.Event, newLease()
			d.LeaseUntil, d.Lease = now.Add(m.opts.PublishLease), c.Lease
		}
		m.deliveries[ev.WebhookID] = d
		return c, nil
	}
	body, err := encodeEvent(ev)
	if err != nil {
		return Claim{}, err
	}
	lease := newLease()
	m.deliveries[ev.WebhookID] = Delivery{
		WebhookID: ev.WebhookID, Type: ev.Type, Status: StatusReceived, JobID: ev.JobID,
		GeminiName: ev.GeminiName, Scheme: scheme, EventTime: ev.EventTime, ReceivedAt: now,
		Attempts: 1, LeaseUntil: now.Add(m.opts.PublishLease), Lease: lease, Event: body,
		ReportedState: string(ev.State), ExpireAt: now.Add(m.opts.DeliveryTTL),
	}
	// The same rules as claimFields, applied to the struct.
	j, seen := m.jobs[ev.JobID]
	j.JobID, j.Kind = ev.JobID, string(ev.Kind)
	j.GeminiName = event.BetterName(j.GeminiName, ev.GeminiName)
	j.Deliveries++
	j.LastReceivedAt, j.UpdatedAt, j.ReportedAt, j.ReportedEventType = now, now, now, ev.Type
	if j.FirstReceivedAt.IsZero() {
		j.FirstReceivedAt = now
	}
	if ev.State == event.StateUnknown {
		j.LastUnknownEvent = ev.Type
	} else {
		j.ReportedState = string(ev.State)
	}
	j.ReportedError = nil
	j.ReportedError = reportedError(ev.Data)
	if !seen || claimResetsCollection(&j) {
		j.CollectionState = CollectionPending
	}
	m.jobs[ev.JobID] = j
	return Claim{Outcome: OutcomePublish, Event: body, Lease: lease}, nil
}

// MarkPublished implements the same contract as [Store.MarkPublished].
func (m *Memory) MarkPublished(_ context.Context, webhookID, messageID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deliveries[webhookID]
	if !ok {
		return fmt.Errorf("memory ledger: delivery %s: %w", webhookID, ErrNotFound)
	}
	d.Status, d.MessageID, d.PublishedAt = StatusPublished, messageID, m.opts.Now().UTC()
	d.LeaseUntil, d.Lease = d.LeaseUntil.AddDate(-100, 0, 0), ""
	m.deliveries[webhookID] = d
	return nil
}

// ReleaseLease implements the same contract as [Store.ReleaseLease].
func (m *Memory) ReleaseLease(_ context.Context, webhookID, lease string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.deliveries[webhookID]; ok && d.Lease == lease {
		d.LeaseUntil, d.Lease = d.LeaseUntil.AddDate(-100, 0, 0), ""
		m.deliveries[webhookID] = d
	}
	return nil
}

// RecordInvalid implements the same contract as [Store.RecordInvalid].
func (m *Memory) RecordInvalid(_ context.Context, webhookID, scheme string, body []byte, reason string) error {
	return m.recordOnce(webhookID, invalidDelivery(m.opts, webhookID, scheme, body, reason))
}

// RecordPing implements the same contract as [Store.RecordPing].
func (m *Memory) RecordPing(_ context.Context, webhookID, scheme string, eventTime time.Time) error {
	return m.recordOnce(webhookID, pingDelivery(m.opts, webhookID, scheme, eventTime))
}

func (m *Memory) recordOnce(webhookID string, d Delivery) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.deliveries[webhookID]; ok {
		old.Attempts++
		m.deliveries[webhookID] = old
		return nil
	}
	d.Body = append([]byte(nil), d.Body...)
	m.deliveries[webhookID] = d
	return nil
}

// GetJob returns a job.
func (m *Memory) GetJob(_ context.Context, jobID string) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[jobID]
	if !ok {
		return Job{}, fmt.Errorf("memory ledger: job %s: %w", jobID, ErrNotFound)
	}
	return j, nil
}

// GetDelivery returns a delivery.
func (m *Memory) GetDelivery(_ context.Context, webhookID string) (Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deliveries[webhookID]
	if !ok {
		return Delivery{}, fmt.Errorf("memory ledger: delivery %s: %w", webhookID, ErrNotFound)
	}
	return d, nil
}
