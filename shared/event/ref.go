package event

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Kind is the family of Gemini job an event is about.
type Kind string

// Job kinds geminihooks knows how to collect. Events of other families get
// the prefix of their type as kind.
const (
	KindBatch       Kind = "batch"
	KindVideo       Kind = "video"
	KindInteraction Kind = "interaction"
)

// JobRef identifies a Gemini job.
type JobRef struct {
	// ID is the Firestore document id under jobs/: "<kind>-<escaped id>".
	ID string
	// Kind is the job family.
	Kind Kind
	// Name is the Gemini resource name to read the job by: "batches/abc",
	// "models/veo/operations/xyz" (or "operations/xyz" when the model is
	// not known, see [ParseRef]), or the bare interaction id.
	Name string
}

// KindOf returns the job family of an event type: the part before the first dot.
func KindOf(eventType string) Kind {
	k, _, _ := strings.Cut(eventType, ".")
	return Kind(k)
}

// Resource-name prefixes Gemini uses, and geminihooks accepts, in data.id.
const (
	batchPrefix       = "batches/"
	operationsPrefix  = "operations/"
	interactionPrefix = "interactions/"
	modelsPrefix      = "models/"
	opsInfix          = "/operations/"
)

// ParseRef derives the job identity from an event type and its data.id.
// Every form Gemini may use for one job lands on one document and one name
// its API accepts:
//
//   - batches: "abc" or "batches/abc" → batch-abc, "batches/abc";
//   - videos: "models/<m>/operations/xyz" → video-xyz, the name as given;
//     "operations/xyz" or a bare "xyz" (with a video.* type) → video-xyz,
//     "operations/xyz" (the model is unknown: see [BetterName], and the
//     assumption in shared/gemsim's notes);
//   - interactions: "v1_…" or "interactions/v1_…" → interaction-v1_…, the
//     bare id (the Interactions API takes ids, not resource names).
//
// A resource-name prefix decides the kind even under an unexpected type.
func ParseRef(eventType, dataID string) (JobRef, error) {
	if dataID == "" {
		return JobRef{}, fmt.Errorf("%w: empty job id", ErrInvalidEnvelope)
	}
	kind := KindOf(eventType)
	switch {
	case strings.HasPrefix(dataID, batchPrefix):
		kind = KindBatch
	case strings.HasPrefix(dataID, modelsPrefix) && strings.Contains(dataID, opsInfix):
		kind = KindVideo
	case strings.HasPrefix(dataID, interactionPrefix):
		kind = KindInteraction
	}
	if kind == "" {
		kind = "unknown"
	}
	if !validKind(kind) {
		return JobRef{}, fmt.Errorf("%w: event family %q is not a plain word", ErrInvalidEnvelope, Bound(string(kind), 64))
	}
	name, short := dataID, dataID
	switch kind {
	case KindBatch:
		short = strings.TrimPrefix(dataID, batchPrefix)
		name = batchPrefix + short
	case KindVideo:
		switch {
		case strings.HasPrefix(dataID, modelsPrefix) && strings.Contains(dataID, opsInfix):
			short = dataID[strings.LastIndex(dataID, opsInfix)+len(opsInfix):]
		default:
			short = strings.TrimPrefix(dataID, operationsPrefix)
			name = operationsPrefix + short
		}
	case KindInteraction:
		short = strings.TrimPrefix(dataID, interactionPrefix)
		name = short
	}
	if short == "" {
		return JobRef{}, fmt.Errorf("%w: empty job id in %q", ErrInvalidEnvelope, Bound(dataID, 256))
	}
	id := escapeID(string(kind)) + "-" + escapeID(short)
	if len(id) > MaxJobIDBytes {
		return JobRef{}, fmt.Errorf("%w: job id of %d bytes (escaped) exceeds Pub/Sub's %d-byte ordering key", ErrInvalidEnvelope, len(id), MaxJobIDBytes)
	}
	return JobRef{ID: id, Kind: kind, Name: name}, nil
}

// BetterName returns the name to read a job by, given the one recorded on
// its document and one newly learned (from a webhook or a submission) for
// the same job: the recorded one, unless there is none or it is the
// model-less "operations/<id>" form of a video operation and the new one
// names the model. A recorded full name is never replaced, so a webhook
// cannot make the Collector read another model's operation, and a short
// form never replaces a full one.
func BetterName(recorded, learned string) string {
	if recorded == "" {
		return learned
	}
	if strings.HasPrefix(recorded, operationsPrefix) && strings.HasPrefix(learned, modelsPrefix) && strings.Contains(learned, opsInfix) {
		return learned
	}
	return recorded
}

// MaxDocIDBytes is Firestore's limit on a document id.
const MaxDocIDBytes = 1500

// maxKindBytes bounds the family part of an event type used as a kind.
const maxKindBytes = 32

// validKind accepts the family of an event type as a job kind only when it
// is a plain word starting with a letter: it prefixes document ids (which
// must not look like Firestore's reserved "__…__" ids) and is sent as an
// attribute.
func validKind(k Kind) bool {
	if len(k) == 0 || len(k) > maxKindBytes {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return true
}

// RefForName derives the identity of a job from the resource name returned
// when it was submitted, so the submission and its webhook meet on one document.
func RefForName(kind Kind, name string) (JobRef, error) {
	return ParseRef(string(kind)+".submitted", name)
}

// escapeID keeps [A-Za-z0-9_.-] and escapes every other byte as ~XX, which
// makes the mapping injective and every result a valid Firestore document id
// (no "/"). A job id is never "." or "..", nor reserved ("__…__"), because
// it starts with a kind, which starts with a letter ([validKind]).
func escapeID(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "~%02X", c)
		}
	}
	return b.String()
}

// EscapeDocID makes an arbitrary string (a webhook-id, say) a valid
// Firestore document id: injective for ids up to Firestore's size limit,
// a hash of longer ones.
func EscapeDocID(s string) string {
	e := escapeID(s)
	if len(e) > MaxDocIDBytes-1 {
		sum := sha256.Sum256([]byte(s))
		return "~h" + hex.EncodeToString(sum[:])
	}
	if e == "" || e == "." || e == ".." || (strings.HasPrefix(e, "__") && strings.HasSuffix(e, "__")) {
		return "~" + e
	}
	return e
}
