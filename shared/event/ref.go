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
	// Name is the canonical Gemini resource name ("batches/abc",
	// "models/veo/operations/xyz", or the opaque interaction id).
	Name string
}

// KindOf returns the job family of an event type: the part before the first dot.
func KindOf(eventType string) Kind {
	k, _, _ := strings.Cut(eventType, ".")
	return Kind(k)
}

// ParseRef derives the job identity from an event type and its data.id.
// Batch ids are accepted bare ("abc") or as "batches/abc"; video operations
// are "models/<model>/operations/<id>"; interaction ids are opaque.
func ParseRef(eventType, dataID string) (JobRef, error) {
	if dataID == "" {
		return JobRef{}, fmt.Errorf("%w: empty job id", ErrInvalidEnvelope)
	}
	kind := KindOf(eventType)
	switch {
	case strings.HasPrefix(dataID, "batches/"):
		kind = KindBatch
	case strings.HasPrefix(dataID, "models/") && strings.Contains(dataID, "/operations/"):
		kind = KindVideo
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
		short = strings.TrimPrefix(dataID, "batches/")
		name = "batches/" + short
	case KindVideo:
		if i := strings.LastIndex(dataID, "/operations/"); i >= 0 {
			short = dataID[i+len("/operations/"):]
		}
	}
	if short == "" {
		return JobRef{}, fmt.Errorf("%w: empty job id in %q", ErrInvalidEnvelope, dataID)
	}
	id := escapeID(string(kind)) + "-" + escapeID(short)
	if len(id) > MaxJobIDBytes {
		return JobRef{}, fmt.Errorf("%w: job id of %d bytes (escaped) exceeds Pub/Sub's %d-byte ordering key", ErrInvalidEnvelope, len(id), MaxJobIDBytes)
	}
	return JobRef{ID: id, Kind: kind, Name: name}, nil
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
