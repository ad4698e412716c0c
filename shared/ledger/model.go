package ledger

import (
	"cmp"
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
	// StatusInvalid: signed but unusable (unparseable, or beyond Firestore
	// or Pub/Sub limits); kept for inspection, never published.
	StatusInvalid = "invalid"
	// StatusPing: a webhook.ping; recorded, never a job, never published.
	StatusPing = "ping"
)

// Verdicts of checking a webhook's claim against Gemini's API.
const (
	// VerdictConfirmed: the API shows the claimed state.
	VerdictConfirmed = "confirmed"
	// VerdictContradicted: the API shows another state; the job shows the
	// API's.
	VerdictContradicted = "contradicted"
	// VerdictUnverifiable: this project's API key cannot read the job (404
	// or 403); the claim changed nothing.
	VerdictUnverifiable = "unverifiable"
)

// State sources: who established a job's state.
const (
	// SourceAPI: read from Gemini's API.
	SourceAPI = "api"
	// SourceSubmission: recorded by geminihooks when it submitted the job.
	SourceSubmission = "submission"
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
	// ReportedState is the state the webhook claims ("" for unknown types).
	ReportedState string `firestore:"reported_state,omitempty" json:"reported_state,omitzero"`
	// Verification is the verdict on the claim once the Collector has read
	// the job from Gemini's API, VerifiedState what the API showed.
	Verification  string    `firestore:"verification,omitempty" json:"verification,omitzero"`
	VerifiedState string    `firestore:"verified_state,omitempty" json:"verified_state,omitzero"`
	VerifiedAt    time.Time `firestore:"verified_at,omitempty" json:"verified_at,omitzero"`
	// Body and Reason are kept for invalid deliveries only.
	Body          []byte `firestore:"body,omitempty" json:"body,omitzero"`
	BodyTruncated bool   `firestore:"body_truncated,omitempty" json:"body_truncated,omitzero"`
	Reason        string `firestore:"reason,omitempty" json:"reason,omitzero"`
	// ExpireAt drives the Firestore TTL policy.
	ExpireAt time.Time `firestore:"expire_at" json:"expire_at"`
}

// Job is the stored form of jobs/{job_id}. The Receiver writes what
// webhooks claim (reported_*) and delivery bookkeeping; state and error are
// only ever written from Gemini's API (by the Collector) or by geminihooks
// when it submits the job.
type Job struct {
	JobID      string `firestore:"job_id" json:"job_id"`
	Kind       string `firestore:"kind" json:"kind"`
	GeminiName string `firestore:"gemini_name" json:"gemini_name"`
	// State is the job's state as Gemini's API last showed it ("" until it
	// has been read, "submitted" when geminihooks submitted it).
	State string `firestore:"state" json:"state"`
	// StateSource is SourceAPI or SourceSubmission; VerifiedAt the last read
	// of the job from Gemini's API.
	StateSource string    `firestore:"state_source,omitempty" json:"state_source,omitzero"`
	VerifiedAt  time.Time `firestore:"verified_at,omitempty" json:"verified_at,omitzero"`
	// Verification is the verdict on the latest webhook claim checked.
	Verification string `firestore:"verification,omitempty" json:"verification,omitzero"`
	// EventType is the event type of State for the job's kind
	// (event.TypeFor); EventTime when Gemini reached it, if known.
	EventType string    `firestore:"event_type,omitempty" json:"event_type,omitzero"`
	EventTime time.Time `firestore:"event_time,omitempty" json:"event_time,omitzero"`
	// ReportedState, ReportedEventType, ReportedAt and ReportedError are the
	// latest webhook's claim: what it said, when it arrived, and the error
	// it carried. They are never taken as the job's state.
	ReportedState     string            `firestore:"reported_state,omitempty" json:"reported_state,omitzero"`
	ReportedEventType string            `firestore:"reported_event_type,omitempty" json:"reported_event_type,omitzero"`
	ReportedAt        time.Time         `firestore:"reported_at,omitempty" json:"reported_at,omitzero"`
	ReportedError     *event.JobError   `firestore:"reported_error,omitempty" json:"reported_error,omitzero"`
	Labels            map[string]string `firestore:"labels,omitempty" json:"labels,omitzero"`
	Model             string            `firestore:"model,omitempty" json:"model,omitzero"`
	// Deliveries counts distinct webhook deliveries about this job.
	Deliveries int64 `firestore:"deliveries" json:"deliveries"`
	// Error is Gemini's error for a failed job, as its API reports it.
	Error *event.JobError `firestore:"error,omitempty" json:"error,omitzero"`
	// OutputURI and FileName point at the job's output as its API reports it.
	OutputURI        string    `firestore:"output_uri,omitempty" json:"output_uri,omitzero"`
	FileName         string    `firestore:"file_name,omitempty" json:"file_name,omitzero"`
	LastUnknownEvent string    `firestore:"last_unknown_event,omitempty" json:"last_unknown_event,omitzero"`
	SubmittedAt      time.Time `firestore:"submitted_at,omitempty" json:"submitted_at,omitzero"`
	FirstReceivedAt  time.Time `firestore:"first_received_at,omitempty" json:"first_received_at,omitzero"`
	LastReceivedAt   time.Time `firestore:"last_received_at,omitempty" json:"last_received_at,omitzero"`
	StateChangedAt   time.Time `firestore:"state_changed_at,omitempty" json:"state_changed_at,omitzero"`
	UpdatedAt        time.Time `firestore:"updated_at" json:"updated_at"`

	// Reconciliation (schedule.go, sweep.go): when the Reconciler reads the
	// job next (absent once terminal), how often it has, how the latest
	// claimed state was learned, and its re-drives of a stuck collection.
	NextCheckAt   time.Time `firestore:"next_check_at,omitempty" json:"next_check_at,omitzero"`
	Checks        int64     `firestore:"checks,omitempty" json:"checks,omitzero"`
	LastCheckAt   time.Time `firestore:"last_check_at,omitempty" json:"last_check_at,omitzero"`
	Source        string    `firestore:"source,omitempty" json:"source,omitzero"`
	SourceAt      time.Time `firestore:"source_at,omitempty" json:"source_at,omitzero"`
	Redrives      int64     `firestore:"redrives,omitempty" json:"redrives,omitzero"`
	LastRedriveAt time.Time `firestore:"last_redrive_at,omitempty" json:"last_redrive_at,omitzero"`

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

	// CollectionProgress, CollectCheckpoint and CollectLease belong to a
	// checkpointed collection of a batch output file (progress.go).
	CollectionProgress *Progress   `firestore:"collection_progress,omitempty" json:"collection_progress,omitzero"`
	CollectCheckpoint  *Checkpoint `firestore:"collect_checkpoint,omitempty" json:"collect_checkpoint,omitzero"`
	CollectLease       *Lease      `firestore:"collect_lease,omitempty" json:"collect_lease,omitzero"`
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
		Type:            cmp.Or(event.TypeFor(event.Kind(j.Kind), state), j.EventType),
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
