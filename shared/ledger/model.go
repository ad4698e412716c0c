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
	WebhookID  string    `firestore:"webhook_id" json:"webhook_id"`
	Type       string    `firestore:"type" json:"type"`
	Status     string    `firestore:"status" json:"status"`
	JobID      string    `firestore:"job_id,omitempty" json:"job_id,omitzero"`
	GeminiName string    `firestore:"gemini_name,omitempty" json:"gemini_name,omitzero"`
	Scheme     string    `firestore:"scheme" json:"scheme"`
	EventTime  time.Time `firestore:"event_time,omitempty" json:"event_time,omitzero"`
	ReceivedAt time.Time `firestore:"received_at" json:"received_at"`
	// Attempts counts how often this delivery reached the Receiver.
	Attempts    int64     `firestore:"attempts" json:"attempts"`
	PublishedAt time.Time `firestore:"published_at,omitempty" json:"published_at,omitzero"`
	MessageID   string    `firestore:"message_id,omitempty" json:"message_id,omitzero"`
	// LeaseUntil guards publishing: only one attempt publishes at a time.
	LeaseUntil time.Time `firestore:"lease_until,omitempty" json:"lease_until,omitzero"`
	Lease      string    `firestore:"lease,omitempty" json:"lease,omitzero"`
	// Event is the JobEvent body published (or to be published).
	Event []byte `firestore:"event,omitempty" json:"event,omitzero"`
	// Body and Reason are kept for invalid deliveries only.
	Body          []byte `firestore:"body,omitempty" json:"body,omitzero"`
	BodyTruncated bool   `firestore:"body_truncated,omitempty" json:"body_truncated,omitzero"`
	Reason        string `firestore:"reason,omitempty" json:"reason,omitzero"`
	// ExpireAt drives the Firestore TTL policy.
	ExpireAt time.Time `firestore:"expire_at" json:"expire_at"`
}

// Job is the stored form of jobs/{job_id}. The Receiver writes the Gemini
// side (state, event, errors); the Collector writes the collection side.
type Job struct {
	JobID      string            `firestore:"job_id" json:"job_id"`
	Kind       string            `firestore:"kind" json:"kind"`
	GeminiName string            `firestore:"gemini_name" json:"gemini_name"`
	State      string            `firestore:"state" json:"state"`
	EventType  string            `firestore:"event_type,omitempty" json:"event_type,omitzero"`
	EventTime  time.Time         `firestore:"event_time,omitempty" json:"event_time,omitzero"`
	Labels     map[string]string `firestore:"labels,omitempty" json:"labels,omitzero"`
	Model      string            `firestore:"model,omitempty" json:"model,omitzero"`
	// Deliveries counts distinct webhook deliveries about this job.
	Deliveries       int64           `firestore:"deliveries" json:"deliveries"`
	Error            *event.JobError `firestore:"error,omitempty" json:"error,omitzero"`
	OutputURI        string          `firestore:"output_uri,omitempty" json:"output_uri,omitzero"`
	FileName         string          `firestore:"file_name,omitempty" json:"file_name,omitzero"`
	LastUnknownEvent string          `firestore:"last_unknown_event,omitempty" json:"last_unknown_event,omitzero"`
	SubmittedAt      time.Time       `firestore:"submitted_at,omitempty" json:"submitted_at,omitzero"`
	FirstReceivedAt  time.Time       `firestore:"first_received_at,omitempty" json:"first_received_at,omitzero"`
	LastReceivedAt   time.Time       `firestore:"last_received_at,omitempty" json:"last_received_at,omitzero"`
	StateChangedAt   time.Time       `firestore:"state_changed_at,omitempty" json:"state_changed_at,omitzero"`
	UpdatedAt        time.Time       `firestore:"updated_at" json:"updated_at"`

	CollectionState  string          `firestore:"collection_state,omitempty" json:"collection_state,omitzero"`
	CollectedState   string          `firestore:"collected_state,omitempty" json:"collected_state,omitzero"`
	ResultsPath      string          `firestore:"results_path,omitempty" json:"results_path,omitzero"`
	Counts           event.Counts    `firestore:"counts" json:"counts"`
	Tokens           event.Tokens    `firestore:"tokens" json:"tokens"`
	CompletedAt      time.Time       `firestore:"completed_at,omitempty" json:"completed_at,omitzero"`
	CollectedAt      time.Time       `firestore:"collected_at,omitempty" json:"collected_at,omitzero"`
	CollectLatencyMS int64           `firestore:"collect_latency_ms,omitempty" json:"collect_latency_ms,omitzero"`
	CollectError     *event.JobError `firestore:"collect_error,omitempty" json:"collect_error,omitzero"`
	ResultsEventID   string          `firestore:"results_event_id,omitempty" json:"results_event_id,omitzero"`
	// Output holds kind-specific collected data (video files, interaction
	// output, pending function calls).
	Output map[string]any `firestore:"output,omitempty" json:"output,omitzero"`
}

// JobPath is the Firestore path of a job document.
func JobPath(jobID string) string { return JobsCollection + "/" + jobID }

// ResultsPath is the Firestore path of a job's results collection.
func ResultsPath(jobID string) string { return JobPath(jobID) + "/" + ResultsCollection }

// StoredResultsEvent rebuilds the results event of the job's last
// collection from the summary stored on it: for a re-publish after a crash
// between saving and publishing, and for a consumer that missed the event.
func (j Job) StoredResultsEvent() event.ResultsEvent {
	state := event.State(j.CollectedState)
	re := event.ResultsEvent{
		SchemaVersion:   event.SchemaVersion,
		EventID:         event.ResultsEventID(j.JobID, state),
		Type:            j.EventType,
		JobID:           j.JobID,
		Kind:            event.Kind(j.Kind),
		GeminiName:      j.GeminiName,
		State:           state,
		CollectionState: j.CollectionState,
		JobPath:         JobPath(j.JobID),
		ResultsPath:     j.ResultsPath,
		Counts:          j.Counts,
		Tokens:          j.Tokens,
		Error:           j.CollectError,
		Labels:          j.Labels,
		EventTime:       j.CompletedAt,
		CollectedAt:     j.CollectedAt,
	}
	if re.Error == nil && state != event.StateSucceeded {
		re.Error = j.Error
	}
	return re
}
