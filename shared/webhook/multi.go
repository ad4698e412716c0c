package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// MultiVerifier routes each request to the scheme its webhook-signature
// header uses: a value shaped like a compact JWT (see [LooksLikeJWT]) goes to
// JWT, anything else to HMAC. A nil field means that scheme is not accepted:
// such requests fail with [ErrInvalidToken] (JWT) or [ErrNoSecrets] (HMAC).
// Routing by shape is safe because each verifier still authenticates fully;
// an attacker choosing the shape only chooses which check to fail.
type MultiVerifier struct {
	HMAC *HMACVerifier
	JWT  *JWTVerifier
}

var _ Verifier = MultiVerifier{}

// Verify implements [Verifier].
func (m MultiVerifier) Verify(ctx context.Context, body []byte, h http.Header) (Delivery, error) {
	if LooksLikeJWT(h.Get(HeaderSignature)) {
		if m.JWT == nil {
			return Delivery{}, fmt.Errorf("verify: %w: JWT deliveries are not configured", ErrInvalidToken)
		}
		return m.JWT.Verify(ctx, body, h)
	}
	if m.HMAC == nil {
		return Delivery{}, fmt.Errorf("verify: %w: HMAC deliveries are not configured", ErrNoSecrets)
	}
	return m.HMAC.Verify(ctx, body, h)
}

// LooksLikeJWT reports whether a webhook-signature value has the shape of a
// compact JWS: three dot-separated base64url segments, the first two
// non-empty (the third may be empty, as in an unsigned "none" token, so that
// such a token is rejected as an invalid JWT rather than as a malformed HMAC
// header). A Standard Webhooks value always contains a comma, which is not a
// base64url character, so the two shapes cannot be confused.
func LooksLikeJWT(v string) bool {
	v = strings.TrimSpace(v)
	head, rest, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || head == "" || payload == "" {
		return false
	}
	return isBase64URL(head) && isBase64URL(payload) && isBase64URL(sig)
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
