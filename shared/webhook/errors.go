package webhook

import "errors"

// Sentinel errors returned (wrapped) by the verifiers. Match them with
// errors.Is. ErrMissingHeaders and ErrMalformedHeaders describe a request that
// is not a well-formed webhook delivery (HTTP 400); every other error means the
// request could not be authenticated (HTTP 401). [IsMalformed] makes that split.
//
// None of these is cured by retrying the same request, except
// ErrJWKSUnavailable (the key set could not be fetched; a later attempt may
// succeed). Gemini retries every non-2xx delivery anyway.
var (
	// ErrMissingHeaders: webhook-id, webhook-timestamp or webhook-signature is
	// absent or empty (for JWT deliveries only webhook-signature is required).
	ErrMissingHeaders = errors.New("webhook: missing required headers")
	// ErrMalformedHeaders: a header is present but cannot be parsed (a
	// non-integer timestamp, a signature list without a single well-formed
	// entry, v1 entries that are not base64 of a SHA-256 MAC).
	ErrMalformedHeaders = errors.New("webhook: malformed headers")
	// ErrNoMatchingSignature: the headers are well-formed but no v1 entry
	// matches the body under any accepted secret.
	ErrNoMatchingSignature = errors.New("webhook: no matching signature")
	// ErrTimestampTooOld: the signature is valid but webhook-timestamp is older
	// than the tolerance (a replay, or a badly skewed clock).
	ErrTimestampTooOld = errors.New("webhook: timestamp too old")
	// ErrTimestampTooNew: the signature is valid but webhook-timestamp is
	// further in the future than the tolerance.
	ErrTimestampTooNew = errors.New("webhook: timestamp too new")
	// ErrInvalidToken: a JWT delivery failed verification: bad signature, an
	// algorithm other than RS256, a kid that is unknown even after a refresh,
	// no exp, exp/nbf outside the leeway, an iat older than MaxAge, a wrong
	// aud or iss, or JWT verification not configured (off). The wrapped chain keeps the jwt/v5 error
	// (errors.Is(err, jwt.ErrTokenExpired) works).
	ErrInvalidToken = errors.New("webhook: invalid token")
	// ErrJWKSUnavailable is wrapped together with ErrInvalidToken when the
	// key set could not be fetched and no earlier copy is cached. Retrying
	// later may help.
	ErrJWKSUnavailable = errors.New("webhook: jwks unavailable")
	// ErrInvalidSecret: a signing secret is empty, not base64, or decodes to
	// fewer than MinSecretBytes (24) bytes. Error texts never contain the secret itself.
	ErrInvalidSecret = errors.New("webhook: invalid secret")
	// ErrNoSecrets: no signing secret is configured (or the HMAC scheme is not
	// configured at all on a [MultiVerifier]).
	ErrNoSecrets = errors.New("webhook: no secrets configured")
)

// IsMalformed reports whether err means the request is not a well-formed
// delivery (answer 400 Bad Request) as opposed to one that failed
// authentication (answer 401 Unauthorized).
func IsMalformed(err error) bool {
	return errors.Is(err, ErrMissingHeaders) || errors.Is(err, ErrMalformedHeaders)
}
