package event

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// SchemaVersion is the version of the JSON messages geminihooks publishes.
// It changes only on incompatible changes; new fields may appear any time.
const SchemaVersion = "1"

// Pub/Sub attribute names set on every message geminihooks publishes, so
// subscriptions can filter without decoding the body.
const (
	AttrEventType     = "event_type"
	AttrJobID         = "job_id"
	AttrJobKind       = "job_kind"
	AttrWebhookID     = "webhook_id"
	AttrEventID       = "event_id"
	AttrSchemaVersion = "schema_version"
)

// JobEvent is published on the events topic once per verified delivery
// (more precisely: once per webhook-id; see the README for the guarantees).
type JobEvent struct {
	SchemaVersion string `json:"schema_version"`
	// WebhookID is Gemini's webhook-id; consumers de-duplicate on it.
	WebhookID string `json:"webhook_id"`
	// Type is the Gemini event type, possibly one geminihooks does not know.
	Type       string `json:"type"`
	JobID      string `json:"job_id"`
	Kind       Kind   `json:"kind"`
	GeminiName string `json:"gemini_name"`
	// State is the state the webhook claims ("" for unknown types). It is a
	// claim, not verified: the Collector reads the job from Gemini's API and
	// announces the verified state on the results topic.
	State State `json:"state,omitempty"`
	// EventTime is Gemini's event timestamp; ReceivedAt is when the Receiver got it.
	EventTime  time.Time `json:"event_time,omitzero"`
	ReceivedAt time.Time `json:"received_at"`
	// Data is the envelope's data object, unknown fields included.
	Data Data `json:"data"`
}

// Attributes returns the Pub/Sub attributes for the event.
func (e JobEvent) Attributes() map[string]string {
	return map[string]string{
		AttrEventType:     e.Type,
		AttrJobID:         e.JobID,
		AttrJobKind:       string(e.Kind),
		AttrWebhookID:     e.WebhookID,
		AttrSchemaVersion: SchemaVersion,
	}
}

// Counts summarises a job's collected results.
type Counts struct {
	Results int `json:"results" firestore:"results"`
	Failed  int `json:"failed" firestore:"failed"`
}

// Tokens sums token usage over a job's results.
type Tokens struct {
	Prompt     int64 `json:"prompt" firestore:"prompt"`
	Candidates int64 `json:"candidates" firestore:"candidates"`
	Total      int64 `json:"total" firestore:"total"`
}

// JobError is an error reported by Gemini or met while collecting. Code is
// the canonical google.rpc.Code as a decimal string ("3", "13") and Status
// its name ("INVALID_ARGUMENT", "INTERNAL"), whatever shape Gemini used
// ([NormalizeError]); a code geminihooks cannot map is kept verbatim with an
// empty Status. geminihooks' own errors use a word as Code
// ("output_expired", "rai_filtered", "retries_exhausted") and no Status.
type JobError struct {
	Code    string `json:"code,omitempty" firestore:"code,omitempty"`
	Status  string `json:"status,omitempty" firestore:"status,omitempty"`
	Message string `json:"message" firestore:"message"`
}

// ResultsEvent is published on the results topic once per collected job
// state. Delivery is at-least-once: de-duplicate on EventID.
type ResultsEvent struct {
	SchemaVersion string `json:"schema_version"`
	// EventID is stable for a job state: a re-collection republishes the same id.
	EventID    string `json:"event_id"`
	Type       string `json:"type"`
	JobID      string `json:"job_id"`
	Kind       Kind   `json:"kind"`
	GeminiName string `json:"gemini_name"`
	State      State  `json:"state"`
	// CollectionState is "collected" or "collect_failed".
	CollectionState string `json:"collection_state"`
	// JobPath and ResultsPath are Firestore document/collection paths.
	JobPath     string    `json:"job_path"`
	ResultsPath string    `json:"results_path,omitempty"`
	Counts      Counts    `json:"counts"`
	Tokens      Tokens    `json:"tokens"`
	Error       *JobError `json:"error,omitempty"`
	// Labels are the correlation labels stored on the job at submission.
	Labels      map[string]string `json:"labels,omitempty"`
	EventTime   time.Time         `json:"event_time,omitzero"`
	CollectedAt time.Time         `json:"collected_at"`
}

// LabelAttrPrefix prefixes a label's name in results events' attributes.
const LabelAttrPrefix = "label_"

// Attributes returns the Pub/Sub attributes for the event: the fixed ones
// and label_<k> for each label that fits Pub/Sub's limits. Submission
// rejects labels that do not fit; one written to Firestore by other means
// stays in the message body but is left out of the attributes (in key
// order, up to [MaxAttributes]), because a publish that can never succeed
// would dead-letter the event.
func (e ResultsEvent) Attributes() map[string]string {
	a := map[string]string{
		AttrEventType:     e.Type,
		AttrJobID:         e.JobID,
		AttrJobKind:       string(e.Kind),
		AttrEventID:       e.EventID,
		AttrSchemaVersion: SchemaVersion,
	}
	keys := make([]string, 0, len(e.Labels))
	for k := range e.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := e.Labels[k]
		if len(a) == MaxAttributes {
			break
		}
		if CheckText("label key", LabelAttrPrefix+k, MaxAttributeKeyBytes) != nil || !utf8.ValidString(v) || len(v) > MaxAttributeValueBytes {
			continue
		}
		a[LabelAttrPrefix+k] = v
	}
	return a
}

// ResultsEventID is the stable id of the results event for a job state.
func ResultsEventID(jobID string, s State) string {
	h := sha256.Sum256([]byte(jobID + "\x00" + string(s)))
	return hex.EncodeToString(h[:16])
}

// Encode encodes a message body. It fails only on values that cannot be
// JSON (a time outside the years 0000–9999), which the Receiver rejects at
// the edge ([ValidTimestamp]).
func Encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: encode message: %v", ErrLimit, err)
	}
	return b, nil
}

// Marshal encodes a message body known to be encodable (built by
// geminihooks itself, with validated times); it panics otherwise.
func Marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("event: marshal: " + err.Error())
	}
	return b
}
