package event

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of the systems an event passes through. A value beyond one of them
// can never be stored or published, so it is rejected where it enters
// (the Receiver records such a delivery once as invalid) instead of failing
// every retry.
const (
	// MaxAttributeValueBytes is Pub/Sub's limit on an attribute value and
	// on an ordering key (1024 bytes).
	MaxAttributeValueBytes = 1024
	// MaxAttributeKeyBytes is Pub/Sub's limit on an attribute key.
	MaxAttributeKeyBytes = 256
	// MaxAttributes is Pub/Sub's limit on attributes per message.
	MaxAttributes = 100
	// MaxTypeBytes bounds an event type. Gemini's longest is 27 bytes; the
	// bound keeps a hostile type far below every limit it ends up in.
	MaxTypeBytes = 128
	// MaxWebhookIDBytes bounds a webhook-id (Standard Webhooks ids are
	// short, e.g. "msg_2a9…"); it travels as an attribute.
	MaxWebhookIDBytes = 256
	// MaxJobIDBytes bounds a job document id: it is also the ordering key
	// and an attribute, whose limit is lower than Firestore's 1500 bytes.
	MaxJobIDBytes = MaxAttributeValueBytes
	// MaxReasonBytes bounds the reason stored with an invalid delivery.
	MaxReasonBytes = 512
)

// Firestore timestamps cover years 1 to 9999.
var (
	minTimestamp = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTimestamp = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// ValidTimestamp reports whether t can be stored in Firestore and encoded as
// RFC 3339 (years 0001 to 9999). The zero time means "absent" and is valid.
func ValidTimestamp(t time.Time) bool {
	return t.IsZero() || (!t.Before(minTimestamp) && !t.After(maxTimestamp))
}

// ErrLimit reports a value beyond what Firestore or Pub/Sub accept. Like
// [ErrInvalidEnvelope], a retry can never succeed.
var ErrLimit = errors.New("value beyond Firestore or Pub/Sub limits")

// CheckText validates a string that is stored in Firestore and sent as a
// Pub/Sub attribute: non-empty, valid UTF-8, no control characters, at most
// max bytes. what names the value in the error.
func CheckText(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrLimit, what)
	case len(s) > max:
		return fmt.Errorf("%w: %s of %d bytes (max %d)", ErrLimit, what, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrLimit, what)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: %s contains control characters", ErrLimit, what)
	}
	return nil
}

// Bound shortens s to at most max bytes of valid UTF-8, marking a cut with
// "…". It keeps untrusted text (an id echoed in an error, say) from
// overflowing a document or a log line.
func Bound(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	const ell = "…"
	cut := max - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}
