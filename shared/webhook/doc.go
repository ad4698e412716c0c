// Package webhook authenticates Gemini API webhook deliveries before the
// Receiver trusts a single byte of them, and signs deliveries for the
// simulator, the tests and the CLI.
//
// A [Verifier] takes the raw request body (exactly as received; re-encoded
// JSON never verifies) and the request headers, and returns a [Delivery]
// whose ID is the idempotency key to de-duplicate on.
//
// # Schemes
//
// Static webhooks (registered with the WebhookService) are signed with
// Standard Webhooks v1: webhook-signature holds space-separated
// "v1,<base64>" entries, each an HMAC-SHA256 of
// "<webhook-id>.<webhook-timestamp>.<body>" keyed with a decoded "whsec_"
// secret. [HMACVerifier] checks them against every accepted secret in
// constant time and enforces a timestamp tolerance (5 minutes by default)
// with an injectable clock. It is cross-checked against the reference
// library github.com/standard-webhooks/standard-webhooks in the tests, and
// never accepts what the reference would reject. [Signer] produces such
// signatures.
//
// Dynamic webhooks (webhook_config.uris on a job) carry an RS256 JWT in
// webhook-signature instead, verified by [JWTVerifier] against Gemini's JWKS
// ([DefaultJWKSURL], https or a loopback http URL). Only RS256 is accepted;
// exp is required and, like nbf, enforced with a small leeway; iat may be at
// most MaxAge old (the HMAC tolerance); aud and iss only when configured,
// since Gemini does not yet document their values. The token does not cover
// the body (or webhook-id), so only its claims are authenticated: the
// delivery id is its jti (else a digest of the token) and
// [Delivery.SignedEvent] returns the event its claims carry. [JWTSigner]
// plays Gemini's side in tests and in the simulator.
//
// [MultiVerifier] accepts both, routing on the shape of webhook-signature
// (see [LooksLikeJWT]).
//
// # Rotation
//
// Rotating a webhook's signing secret keeps the previous secret valid for 24
// hours, so a receiver must accept a list. A [SecretSource] provides it:
// [StaticSecrets] for a fixed list (e.g. GEMINI_WEBHOOK_SECRETS, comma or
// space separated), [FileSecrets] for a Secret Manager secret mounted as a
// file, which is re-read and compared by content every few seconds (size
// and mtime are not trusted to change), so a rotation needs no redeploy.
// Secrets shorter than [MinSecretBytes] (24) decoded bytes are refused.
// A request passes when any v1 entry matches any accepted secret.
//
// JWKS keys rotate too: a token with an unknown kid causes one early,
// rate-limited key-set fetch ([JWTOptions.MinRefreshInterval]); the cached
// set is also refetched after [JWTOptions.RefreshInterval]. Keys are fetched
// lazily, so a cold start never depends on the JWKS endpoint.
//
// # Errors
//
// Verifiers return errors wrapping one of the package sentinels, so callers
// use errors.Is. [IsMalformed] separates requests that are not deliveries at
// all ([ErrMissingHeaders], [ErrMalformedHeaders]: answer 400) from those
// that fail authentication (everything else: answer 401). Gemini retries
// non-2xx answers for 24 hours, which is what a receiver with a stale secret
// list wants. Error texts never contain secrets, signatures, tokens or
// bodies, so they are safe to log.
//
// # Testing
//
// Everything time-dependent takes a Now func; [FileSecretSource] and the JWKS
// cache use it for their recheck timers, so tests advance a fake clock
// instead of sleeping. Use [NewSecret] and [Signer.Headers] to build signed
// requests, and [NewJWTSigner] with [JWKSOf] behind an httptest server for JWT
// deliveries. ParseSignatureHeader and HMACVerifier.Verify have fuzz targets
// (FuzzParseSignatureHeader, FuzzHMACVerify) whose seed corpora run in every
// go test.
package webhook
