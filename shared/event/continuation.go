package event

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// TypeContinuation is the type of a [Continuation] on the events topic. It
// is geminihooks' own, not a Gemini event type: the Collector publishes it
// to itself.
const TypeContinuation = "geminihooks.collect.continue"

// AttrContinuationID is the attribute carrying Continuation.ContinuationID.
const AttrContinuationID = "continuation_id"

// Continuation hands the rest of a job's output to the next Collector
// invocation: published on the events topic (ordering key job_id) after a
// checkpoint is stored, when an invocation's time budget ran out. The next
// invocation resumes from checkpoint Seq as stored on the job; a
// continuation whose Seq is behind the stored checkpoint is stale and
// acknowledged.
type Continuation struct {
	SchemaVersion string `json:"schema_version"`
	// Type is TypeContinuation.
	Type string `json:"type"`
	// ContinuationID is deterministic per (job, checkpoint):
	// [ContinuationID]. Re-publishing after a crash repeats it.
	ContinuationID string    `json:"continuation_id"`
	JobID          string    `json:"job_id"`
	Kind           Kind      `json:"kind"`
	GeminiName     string    `json:"gemini_name"`
	State          State     `json:"state"`
	File           string    `json:"file"`
	Seq            int64     `json:"seq"`
	CreatedAt      time.Time `json:"created_at"`
}

// ContinuationID is the stable id of the continuation from checkpoint seq
// of a job.
func ContinuationID(jobID string, seq int64) string {
	h := sha256.Sum256([]byte(jobID + "\x00continuation\x00" + strconv.FormatInt(seq, 10)))
	return hex.EncodeToString(h[:16])
}

// Attributes returns the Pub/Sub attributes for the continuation.
func (c Continuation) Attributes() map[string]string {
	return map[string]string{
		AttrEventType:      TypeContinuation,
		AttrJobID:          c.JobID,
		AttrJobKind:        string(c.Kind),
		AttrContinuationID: c.ContinuationID,
		AttrSchemaVersion:  SchemaVersion,
	}
}
