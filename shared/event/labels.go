package event

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Label limits. A job's labels are stored in its Firestore document and
// travel on its results event as Pub/Sub attributes label_<key> (which the
// Workflow's subscription filter and users' filters match on). A label that
// cannot be an attribute would be silently left off the event, so labels
// are checked where they enter: shared/submit, the CLI and workflow steps.
const (
	// reservedAttributes are the attributes geminihooks itself puts on a
	// results event: event_type, job_id, job_kind, event_id,
	// schema_version, and the trace context (googclient_traceparent,
	// googclient_tracestate).
	reservedAttributes = 7
	// MaxLabels is how many labels fit next to them in Pub/Sub's
	// [MaxAttributes] (100).
	MaxLabels = MaxAttributes - reservedAttributes
	// MaxLabelKeyBytes: label_<key> must fit Pub/Sub's attribute key limit.
	MaxLabelKeyBytes = MaxAttributeKeyBytes - len(LabelAttrPrefix)
	// MaxLabelValueBytes is Pub/Sub's attribute value limit.
	MaxLabelValueBytes = MaxAttributeValueBytes
)

// ValidateLabels reports the first label (in key order) that could not be
// published as a Pub/Sub attribute or stored as a Firestore field: more than
// [MaxLabels] labels, an empty key, a key over [MaxLabelKeyBytes] or a value
// over [MaxLabelValueBytes], text that is not valid UTF-8, control
// characters in a key, a key starting with "goog" (reserved by Pub/Sub) or
// of the form __name__ (reserved by Firestore). The error wraps
// [ErrLimit]; it names the key (bounded), never the value.
func ValidateLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return fmt.Errorf("%w: %d labels (max %d: Pub/Sub allows %d attributes per message, %d are geminihooks')",
			ErrLimit, len(labels), MaxLabels, MaxAttributes, reservedAttributes)
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := CheckText("label key", k, MaxLabelKeyBytes); err != nil {
			return err
		}
		if strings.HasPrefix(strings.ToLower(k), "goog") {
			return fmt.Errorf("%w: label key %q starts with \"goog\", which Pub/Sub reserves", ErrLimit, Bound(k, 64))
		}
		if len(k) >= 4 && strings.HasPrefix(k, "__") && strings.HasSuffix(k, "__") {
			return fmt.Errorf("%w: label key %q has the form __name__, which Firestore reserves", ErrLimit, Bound(k, 64))
		}
		v := labels[k]
		if len(v) > MaxLabelValueBytes {
			return fmt.Errorf("%w: label %q value of %d bytes (max %d)", ErrLimit, Bound(k, 64), len(v), MaxLabelValueBytes)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: label %q value is not valid UTF-8", ErrLimit, Bound(k, 64))
		}
	}
	return nil
}
