package webhook

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// DefaultJWKSURL is where Gemini publishes the keys of dynamic-webhook JWTs.
const DefaultJWKSURL = "https://generativelanguage.googleapis.com/.well-known/jwks.json"

// Defaults of [JWTOptions].
const (
	DefaultJWTLeeway        = 30 * time.Second
	DefaultJWKSRefresh      = time.Hour
	DefaultJWKSMinRefresh   = time.Minute
	DefaultJWKSFetchTimeout = 10 * time.Second
	maxJWKSBytes            = 1 << 20
	jwtAlgorithm            = "RS256"
)

// JWTOptions configure a [JWTVerifier]. The zero value verifies against
// Gemini's JWKS without an audience check.
type JWTOptions struct {
	// JWKSURL is the key set location. Defaults to DefaultJWKSURL.
	JWKSURL string
	// Audience, when non-empty, must appear in the token's "aud" claim (a
	// missing claim fails). Gemini's audience value is not documented yet, so
	// it is not enforced by default.
	Audience string
	// Issuer, when non-empty, must equal the token's "iss" claim.
	Issuer string
	// HTTPClient fetches the key set. Defaults to http.DefaultClient; every
	// fetch is bounded by FetchTimeout anyway.
	HTTPClient *http.Client
	// Now is the clock for exp/nbf and for the cache timers. Defaults to
	// time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed on exp and nbf. Defaults to
	// DefaultJWTLeeway (30s) when zero; use time.Nanosecond for
	// effectively none.
	Leeway time.Duration
	// RefreshInterval is how long a fetched key set is trusted before the
	// next Verify fetches it again. Defaults to DefaultJWKSRefresh (1h). If
	// that fetch fails the previous keys stay in use.
	RefreshInterval time.Duration
	// MinRefreshInterval rate-limits fetches that are not due to age: a token
	// with an unknown kid triggers at most one fetch per MinRefreshInterval
	// (so forged kids cannot turn the receiver into a JWKS flooder), and after
	// a failed fetch the next attempt waits this long. Requests arriving in
	// between fail fast instead of waiting. Defaults to
	// DefaultJWKSMinRefresh (1m).
	MinRefreshInterval time.Duration
	// FetchTimeout bounds one key set fetch. Defaults to
	// DefaultJWKSFetchTimeout (10s).
	FetchTimeout time.Duration
}

// JWTVerifier verifies dynamic-webhook deliveries: an RS256 JWT carried in
// webhook-signature, whose key is picked by "kid" from a JWKS. Only RS256 is
// accepted, which rules out "none" and HS256-with-the-public-key confusion.
// exp and nbf are enforced when present, aud/iss when configured.
//
// Keys are fetched lazily on first use (construction does no network I/O,
// so a cold start with the network down still succeeds), cached for
// RefreshInterval, and re-fetched early when an unknown kid shows up (rate
// limited by MinRefreshInterval). No background goroutine is started.
//
// The JWT does not sign the HTTP body (Gemini documents no body-hash claim),
// so only the claims are authenticated; treat the body as a hint and re-read
// job state from the Gemini API. It is safe for concurrent use.
type JWTVerifier struct {
	parser *jwt.Parser
	cache  *jwksCache
	kf     keyfunc.Keyfunc
}

// NewJWTVerifier builds a verifier. It validates opts but does not contact
// the JWKS endpoint; ctx is accepted for symmetry with other constructors and
// is not retained.
func NewJWTVerifier(_ context.Context, opts JWTOptions) (*JWTVerifier, error) {
	if opts.JWKSURL == "" {
		opts.JWKSURL = DefaultJWKSURL
	}
	if !strings.HasPrefix(opts.JWKSURL, "https://") && !strings.HasPrefix(opts.JWKSURL, "http://") {
		return nil, fmt.Errorf("new jwt verifier: jwks url %q is not http(s)", opts.JWKSURL)
	}
	for name, d := range map[string]time.Duration{"Leeway": opts.Leeway, "RefreshInterval": opts.RefreshInterval,
		"MinRefreshInterval": opts.MinRefreshInterval, "FetchTimeout": opts.FetchTimeout} {
		if d < 0 {
			return nil, fmt.Errorf("new jwt verifier: negative %s %v", name, d)
		}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Leeway == 0 {
		opts.Leeway = DefaultJWTLeeway
	}
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = DefaultJWKSRefresh
	}
	if opts.MinRefreshInterval == 0 {
		opts.MinRefreshInterval = DefaultJWKSMinRefresh
	}
	if opts.FetchTimeout == 0 {
		opts.FetchTimeout = DefaultJWKSFetchTimeout
	}
	cache := &jwksCache{
		MemoryJWKSet: jwkset.NewMemoryStorage(),
		url:          opts.JWKSURL,
		client:       opts.HTTPClient,
		now:          opts.Now,
		maxAge:       opts.RefreshInterval,
		minGap:       opts.MinRefreshInterval,
		timeout:      opts.FetchTimeout,
	}
	// keyfunc does the kid lookup, the JWK-alg/token-alg match and the "use"
	// check; an empty "use" is allowed because many JWKS omit it.
	kf, err := keyfunc.New(keyfunc.Options{Storage: cache, UseWhitelist: []jwkset.USE{jwkset.UseSig, ""}})
	if err != nil {
		return nil, fmt.Errorf("new jwt verifier: keyfunc: %w", err)
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwtAlgorithm}),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithTimeFunc(opts.Now),
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	return &JWTVerifier{parser: jwt.NewParser(popts...), cache: cache, kf: kf}, nil
}

// Verify checks the JWT in webhook-signature. webhook-id and
// webhook-timestamp are optional for JWT deliveries; when present they fill
// Delivery.ID/Timestamp (a non-integer timestamp is [ErrMalformedHeaders]),
// otherwise the "jti" and "iat" claims do. The timestamp is not checked
// against a tolerance because it is not covered by the token; exp is.
func (v *JWTVerifier) Verify(ctx context.Context, _ []byte, h http.Header) (Delivery, error) {
	raw := strings.TrimSpace(h.Get(HeaderSignature))
	if raw == "" {
		return Delivery{}, fmt.Errorf("verify jwt: %w: %s is empty", ErrMissingHeaders, HeaderSignature)
	}
	var ts time.Time
	if t := h.Get(HeaderTimestamp); t != "" {
		sec, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return Delivery{}, fmt.Errorf("verify jwt: %w: %s is not integer unix seconds", ErrMalformedHeaders, HeaderTimestamp)
		}
		ts = time.Unix(sec, 0)
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, v.kf.KeyfuncCtx(ctx)); err != nil {
		return Delivery{}, fmt.Errorf("verify jwt: %w: %w", ErrInvalidToken, err)
	}
	d := Delivery{ID: h.Get(HeaderID), Timestamp: ts, Scheme: SchemeJWT, Claims: claims}
	if d.ID == "" {
		d.ID, _ = claims["jti"].(string)
	}
	if d.Timestamp.IsZero() {
		if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
			d.Timestamp = iat.Time
		}
	}
	return d, nil
}

// Refresh fetches the key set now, ignoring the rate limit. Call it in the
// background at start-up to warm the cache; Verify does not need it.
func (v *JWTVerifier) Refresh(ctx context.Context) error {
	v.cache.mu.Lock()
	defer v.cache.mu.Unlock()
	return v.cache.fetchLocked(ctx)
}

// jwksCache is a jwkset.Storage that fills itself from url on demand. The
// embedded memory storage provides every Storage method; only the two read
// paths keyfunc uses are wrapped. keyfunc's own HTTP storage was not used
// because it fetches synchronously at construction, waits (up to a minute by
// default) on its unknown-kid rate limiter inside the request, and runs on the
// wall clock, which tests cannot drive.
type jwksCache struct {
	*jwkset.MemoryJWKSet

	url     string
	client  *http.Client
	now     func() time.Time
	maxAge  time.Duration
	minGap  time.Duration
	timeout time.Duration

	mu        sync.Mutex // serialises fetches and guards the fields below
	loaded    bool
	fetchedAt time.Time // last successful fetch
	attempted time.Time // last fetch attempt, successful or not
	lastErr   error
}

func (c *jwksCache) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	if err := c.ensure(ctx); err != nil {
		return jwkset.JWK{}, err
	}
	jwk, err := c.MemoryJWKSet.KeyRead(ctx, kid)
	if !errors.Is(err, jwkset.ErrKeyNotFound) {
		return jwk, err
	}
	if c.refreshForUnknownKID(ctx) {
		jwk, err = c.MemoryJWKSet.KeyRead(ctx, kid)
	}
	if err != nil {
		return jwkset.JWK{}, fmt.Errorf("kid %q not in key set: %w", kid, err)
	}
	return jwk, nil
}

func (c *jwksCache) KeyReadAll(ctx context.Context) ([]jwkset.JWK, error) {
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	return c.MemoryJWKSet.KeyReadAll(ctx)
}

// ensure loads the key set if it was never loaded or is older than maxAge.
// A failed refresh of an existing set is not an error: stale keys beat
// rejecting every delivery while the endpoint is unreachable.
func (c *jwksCache) ensure(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.loaded && now.Sub(c.fetchedAt) < c.maxAge {
		return nil
	}
	if !c.attempted.IsZero() && now.Sub(c.attempted) < c.minGap {
		if c.loaded {
			return nil
		}
		return c.lastErr
	}
	if err := c.fetchLocked(ctx); err != nil && !c.loaded {
		return err
	}
	return nil
}

// refreshForUnknownKID fetches again unless a fetch happened within minGap.
// It reports whether a fetch succeeded.
func (c *jwksCache) refreshForUnknownKID(ctx context.Context) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.attempted) < c.minGap {
		return false
	}
	return c.fetchLocked(ctx) == nil
}

// fetchLocked replaces the key set with the one at c.url. c.mu must be held.
func (c *jwksCache) fetchLocked(ctx context.Context) error {
	c.attempted = c.now()
	keys, err := c.download(ctx)
	if err != nil {
		c.lastErr = fmt.Errorf("%w: %w", ErrJWKSUnavailable, err)
		return c.lastErr
	}
	if err := c.MemoryJWKSet.KeyReplaceAll(ctx, keys); err != nil {
		c.lastErr = fmt.Errorf("%w: store keys: %w", ErrJWKSUnavailable, err)
		return c.lastErr
	}
	c.loaded, c.fetchedAt, c.lastErr = true, c.attempted, nil
	return nil
}

func (c *jwksCache) download(ctx context.Context) ([]jwkset.JWK, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", c.url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("get %s: status %s", c.url, resp.Status)
	}
	var set jwkset.JWKSMarshal
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(&set); err != nil {
		return nil, fmt.Errorf("decode %s: %w", c.url, err)
	}
	keys := make([]jwkset.JWK, 0, len(set.Keys))
	for _, m := range set.Keys {
		// Private: false drops any private members a misconfigured
		// endpoint might publish; we only ever need public keys.
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if errors.Is(err, jwkset.ErrUnsupportedKey) {
			continue // e.g. a future key type; tokens using it fail with unknown kid
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s: key %q: %w", c.url, m.KID, err)
		}
		keys = append(keys, jwk)
	}
	return keys, nil
}

// JWTSigner signs RS256 JWTs with a fresh RSA key and publishes the matching
// JWKS: the Gemini simulator plays the dynamic-webhook sender with it and
// tests serve its JWKS from httptest. It is safe for concurrent use.
type JWTSigner struct {
	kid string
	key *rsa.PrivateKey
}

// NewJWTSigner generates an RSA-2048 key identified by kid.
func NewJWTSigner(kid string) (*JWTSigner, error) {
	if kid == "" {
		return nil, errors.New("new jwt signer: empty kid")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("new jwt signer: generate rsa key: %w", err)
	}
	return &JWTSigner{kid: kid, key: key}, nil
}

// KID returns the key id placed in every token header and in the JWKS.
func (s *JWTSigner) KID() string { return s.kid }

// Sign returns a compact RS256 JWT with the given claims and the signer's
// kid. Claims are copied as given: set "exp", "iat", "aud", "jti" yourself.
func (s *JWTSigner) Sign(claims map[string]any) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(claims))
	tok.Header["kid"] = s.kid
	out, err := tok.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("jwt sign: %w", err)
	}
	return out, nil
}

// JWKS returns {"keys":[...]} with this signer's public key.
func (s *JWTSigner) JWKS() []byte { return JWKSOf(s) }

// JWKSOf returns one JWKS document holding the public keys of all signers,
// e.g. old and new during a key rotation.
func JWKSOf(signers ...*JWTSigner) []byte {
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, s := range signers {
		jwk, err := jwkset.NewJWKFromKey(&s.key.PublicKey, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: s.kid, ALG: jwkset.AlgRS256, USE: jwkset.UseSig},
		})
		if err != nil {
			// An RSA-2048 public key generated by NewJWTSigner always
			// marshals; reaching this is a programming error.
			panic(fmt.Sprintf("webhook: marshal jwk %q: %v", s.kid, err))
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(fmt.Sprintf("webhook: marshal jwks: %v", err))
	}
	return b
}
