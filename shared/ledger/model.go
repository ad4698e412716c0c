package ledger

import (
	"time"

	"github.com/geminihooks/geminihooks/shared/event"
)

// Collection names. They are part of geminihooks' public contract.
const (
	DeliveriesCollection = "deliveries"
	JobsCollection       = "jobs"
	ResultsCollection    = "results"
)

// Delivery statuses.
const (
	// StatusReceived: recorded, its event not yet published.
	StatusReceived = "received"
	// StatusPublished: its event is on the events topic.
	StatusPublished = "published"
	// StatusInvalid: signed but unparseable; kept for inspection, never published.
	StatusInvalid = "invalid"
)

// Collection states of a job.
const (
	CollectionPending = "pending"
	CollectionDone    = "collected"
	CollectionFailed  = "collect_failed"
)

// Delivery is the stored form of deliveries/{webhook_id}.
type Delivery struct {
	WebhookID  string    `firestore:"webhook_id"`
	Type       string    `firestore:"type"`
	Status     string    `firestore:"status"`
	JobID      string    `firestore:"job_id,omitempty"`
	GeminiName string    `firestore:"gemini_name,omitempty"`
	Scheme     string    `firestore:"scheme"`
	EventTime  time.Time `firestore:"event_time,omitempty"`
	ReceivedAt time.Time `firestore:"received_at"`
	// Attempts counts how often this delivery reached the Receiver.
	Attempts    int64     `firestore:"attempts"`
	PublishedAt time.Time `firestore:"published_at,omitempty"`
	MessageID   string    `firestore:"message_id,omitempty"`
	// LeaseUntil guards publishing: only one attempt publishes at a time.
	LeaseUntil time.Time `firestore:"lease_until,omitempty"`
	Lease      string    `firestore:"lease,omitempty"`
	// Event is the JobEvent body published (or to be published).
	Event []byte `firestore:"event,omitempty"`
	// Body and Reason are kept for invalid deliveries only.
	Body          []byte `firestore:"body,omitempty"`
	BodyTruncated bool   `firestore:"body_truncated,omitempty"`
	Reason        string `firestore:"reason,omitempty"`
	// ExpireAt drives the Firestore TTL policy.
	ExpireAt time.Time `firestore:"expire_at"`
}

// Job is the stored form of jobs/{job_id}. The Receiver writes the Gemini
// side (state, event, errors); the Collector writes the collection side.
type Job struct {
	JobID      string            `firestore:"job_id"`
	Kind       string            `firestore:"kind"`
	GeminiName string            `firestore:"gemini_name"`
	State      string            `firestore:"state"`
	EventType  string            `firestore:"event_type,omitempty"`
	EventTime  time.Time         `firestore:"event_time,omitempty"`
	Labels     map[string]string `firestore:"labels,omitempty"`
	Model      string            `firestore:"model,omitempty"`
	// Deliveries counts distinct webhook deliveries about this job.
	Deliveries       int64           `firestore:"deliveries"`
	Error            *event.JobError `firestore:"error,omitempty"`
	OutputURI        string          `firestore:"output_uri,omitempty"`
	FileName         string          `firestore:"file_name,omitempty"`
	LastUnknownEvent string          `firestore:"last_unknown_event,omitempty"`
	SubmittedAt      time.Time       `firestore:"submitted_at,omitempty"`
	FirstReceivedAt  time.Time       `firestore:"first_received_at,omitempty"`
	LastReceivedAt   time.Time       `firestore:"last_received_at,omitempty"`
	StateChangedAt   time.Time       `firestore:"state_changed_at,omitempty"`
	UpdatedAt        time.Time       `firestore:"updated_at"`

	CollectionState  string          `firestore:"collection_state,omitempty"`
	CollectedState   string          `firestore:"collected_state,omitempty"`
	ResultsPath      string          `firestore:"results_path,omitempty"`
	Counts           event.Counts    `firestore:"counts"`
	Tokens           event.Tokens    `firestore:"tokens"`
	CompletedAt      time.Time       `firestore:"completed_at,omitempty"`
	CollectedAt      time.Time       `firestore:"collected_at,omitempty"`
	CollectLatencyMS int64           `firestore:"collect_latency_ms,omitempty"`
	CollectError     *event.JobError `firestore:"collect_error,omitempty"`
	ResultsEventID   string          `firestore:"results_event_id,omitempty"`
	// Output holds kind-specific collected data (video files, interaction
	// output, pending function calls).
	Output map[string]any `firestore:"output,omitempty"`
}

// JobPath is the Firestore path of a job document.
func JobPath(jobID string) string { return JobsCollection + "/" + jobID }

// ResultsPath is the Firestore path of a job's results collection.
func ResultsPath(jobID string) string { return JobPath(jobID) + "/" + ResultsCollection }
