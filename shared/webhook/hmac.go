package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of a Standard Webhooks delivery. Go canonicalises header keys,
// so http.Header.Get finds them whatever case the sender used.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is the accepted distance between webhook-timestamp and the
// receiver's clock (the value Gemini's docs and the Standard Webhooks
// libraries use).
const DefaultTolerance = 5 * time.Minute

// Scheme names how a delivery was authenticated.
type Scheme string

// Schemes.
const (
	SchemeHMAC Scheme = "hmac" // static webhooks: Standard Webhooks v1 HMAC-SHA256
	SchemeJWT  Scheme = "jwt"  // dynamic webhooks: RS256 JWT checked against a JWKS
)

// Delivery is what a successfully verified request yields.
type Delivery struct {
	// ID is the webhook-id header: the idempotency key, stable across
	// retries. For a JWT delivery without the header it is the token's "jti"
	// claim, or "" if there is none.
	ID string
	// Timestamp is webhook-timestamp (the time of this attempt). For a JWT
	// delivery without the header it is the token's "iat", or the zero time.
	Timestamp time.Time
	// Scheme tells which verifier accepted the request.
	Scheme Scheme
	// Claims are the verified JWT claims; nil for HMAC deliveries.
	Claims map[string]any
}

// Verifier authenticates a webhook request from its raw body and headers.
// body must be the bytes exactly as received: re-encoded JSON does not verify.
type Verifier interface {
	Verify(ctx context.Context, body []byte, h http.Header) (Delivery, error)
}

// SignatureEntry is one "version,value" item of a webhook-signature header.
type SignatureEntry struct {
	Version string // "v1" for HMAC-SHA256; other versions (e.g. "v1a") are ignored
	Value   string // base64 signature, compared as text like the reference libraries do
}

// ParseSignatureHeader splits a webhook-signature value into its
// space-separated "version,value" entries. Entries without a comma or with an
// empty version or value are skipped, so one valid entry can sit among
// garbage. It fails with [ErrMissingHeaders] for an empty value and with
// [ErrMalformedHeaders] when no entry is well-formed.
func ParseSignatureHeader(v string) ([]SignatureEntry, error) {
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("%w: %s is empty", ErrMissingHeaders, HeaderSignature)
	}
	var out []SignatureEntry
	for item := range strings.SplitSeq(v, " ") {
		version, value, ok := strings.Cut(item, ",")
		if !ok || version == "" || value == "" {
			continue
		}
		out = append(out, SignatureEntry{Version: version, Value: value})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s has no version,signature entry", ErrMalformedHeaders, HeaderSignature)
	}
	return out, nil
}

// HMACOptions configure an [HMACVerifier]. The zero value is ready to use.
type HMACOptions struct {
	// Tolerance is the maximum distance, either way, between
	// webhook-timestamp and Now. Defaults to DefaultTolerance (5m) when zero;
	// negative values are rejected.
	Tolerance time.Duration
	// Now is the receiver's clock. Defaults to time.Now.
	Now func() time.Time
}

// HMACVerifier verifies Standard Webhooks v1 signatures (Gemini static
// webhooks) against every secret of a [SecretSource]. It is safe for
// concurrent use.
type HMACVerifier struct {
	src       SecretSource
	tolerance time.Duration
	now       func() time.Time
}

// NewHMACVerifier returns a verifier for the secrets of src.
func NewHMACVerifier(src SecretSource, opts HMACOptions) (*HMACVerifier, error) {
	if src == nil {
		return nil, fmt.Errorf("new hmac verifier: %w", ErrNoSecrets)
	}
	if opts.Tolerance < 0 {
		return nil, fmt.Errorf("new hmac verifier: negative tolerance %v", opts.Tolerance)
	}
	if opts.Tolerance == 0 {
		opts.Tolerance = DefaultTolerance
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &HMACVerifier{src: src, tolerance: opts.Tolerance, now: opts.Now}, nil
}

// dot separates the parts of the signed content.
var dot = []byte{'.'}

// encodedMACLen is the length of a base64 (padded) SHA-256 MAC.
var encodedMACLen = base64.StdEncoding.EncodedLen(sha256.Size)

// Verify checks that some v1 entry of webhook-signature is the HMAC-SHA256,
// under one of the accepted secrets, of "<webhook-id>.<timestamp>.<body>",
// and then that the timestamp is within the tolerance. The timestamp is
// signed in its canonical decimal form, exactly like the reference
// libraries. Errors wrap the package sentinels and never contain the
// signature, the secrets or the body.
func (v *HMACVerifier) Verify(_ context.Context, body []byte, h http.Header) (Delivery, error) {
	id, tsText, sigText := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigText == "" {
		return Delivery{}, fmt.Errorf("verify hmac: %w (%s, %s and %s are required)",
			ErrMissingHeaders, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return Delivery{}, fmt.Errorf("verify hmac: %w: %s is not integer unix seconds", ErrMalformedHeaders, HeaderTimestamp)
	}
	entries, err := ParseSignatureHeader(sigText)
	if err != nil {
		return Delivery{}, fmt.Errorf("verify hmac: %w", err)
	}
	keys, err := v.src.Secrets()
	if err != nil {
		return Delivery{}, fmt.Errorf("verify hmac: load secrets: %w", err)
	}
	if len(keys) == 0 {
		return Delivery{}, fmt.Errorf("verify hmac: %w", ErrNoSecrets)
	}

	var tsBuf [20]byte
	canonTS := strconv.AppendInt(tsBuf[:0], ts, 10)
	var sum [sha256.Size]byte
	var want [44]byte // encodedMACLen
	matched := false
	idBytes := []byte(id)
	for _, key := range keys {
		mac := hmac.New(sha256.New, key)
		mac.Write(idBytes)
		mac.Write(dot)
		mac.Write(canonTS)
		mac.Write(dot)
		mac.Write(body)
		base64.StdEncoding.Encode(want[:], mac.Sum(sum[:0]))
		for _, e := range entries {
			// Every entry is compared (no early exit per entry), in constant
			// time per comparison.
			if e.Version == "v1" && hmac.Equal([]byte(e.Value), want[:]) {
				matched = true
			}
		}
		if matched {
			break
		}
	}
	if !matched {
		return Delivery{}, fmt.Errorf("verify hmac: %w", classifyMismatch(entries))
	}

	sent := time.Unix(ts, 0)
	switch age := v.now().Sub(sent); {
	case age > v.tolerance:
		return Delivery{}, fmt.Errorf("verify hmac: %w: %s is %v old, tolerance %v", ErrTimestampTooOld, HeaderTimestamp, age.Truncate(time.Second), v.tolerance)
	case age < -v.tolerance:
		return Delivery{}, fmt.Errorf("verify hmac: %w: %s is %v ahead, tolerance %v", ErrTimestampTooNew, HeaderTimestamp, (-age).Truncate(time.Second), v.tolerance)
	}
	return Delivery{ID: id, Timestamp: sent, Scheme: SchemeHMAC}, nil
}

// classifyMismatch tells a header whose v1 entries cannot be signatures at all
// (malformed, 400) from one that simply does not match (401). It only runs on
// the failure path.
func classifyMismatch(entries []SignatureEntry) error {
	sawV1 := false
	for _, e := range entries {
		if e.Version != "v1" {
			continue
		}
		sawV1 = true
		if len(e.Value) == encodedMACLen {
			if b, err := base64.StdEncoding.Strict().DecodeString(e.Value); err == nil && len(b) == sha256.Size {
				return ErrNoMatchingSignature
			}
		}
	}
	if sawV1 {
		return fmt.Errorf("%w: no v1 entry is a base64 SHA-256 MAC", ErrMalformedHeaders)
	}
	return fmt.Errorf("%w: no v1 entry (only other versions)", ErrNoMatchingSignature)
}

// Signer produces Standard Webhooks v1 signatures, for tests, the Gemini
// simulator and the CLI. With several secrets it emits one v1 entry per
// secret, like a sender in the middle of a secret rotation. It is safe for
// concurrent use.
type Signer struct {
	keys [][]byte
}

// NewSigner returns a Signer for the given "whsec_" secrets (each argument
// may be a list, see [SplitSecrets]).
func NewSigner(secrets ...string) (*Signer, error) {
	keys, err := parseSecretList(secrets...)
	if err != nil {
		return nil, fmt.Errorf("new signer: %w", err)
	}
	return &Signer{keys: keys}, nil
}

// Signature returns the webhook-signature value for a delivery:
// "v1,<base64>" per secret, space separated.
func (s *Signer) Signature(id string, ts time.Time, body []byte) string {
	var b strings.Builder
	canonTS := strconv.FormatInt(ts.Unix(), 10)
	for i, key := range s.keys {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write(dot)
		mac.Write([]byte(canonTS))
		mac.Write(dot)
		mac.Write(body)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return b.String()
}

// Headers returns webhook-id, webhook-timestamp (unix seconds) and
// webhook-signature for a delivery of body.
func (s *Signer) Headers(id string, ts time.Time, body []byte) http.Header {
	h := make(http.Header, 3)
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, s.Signature(id, ts, body))
	return h
}
