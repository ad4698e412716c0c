package webhook

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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
	// JWKSURL is the key set location. Defaults to DefaultJWKSURL. It must
	// be https, except on a loopback host (the simulator, tests): keys
	// fetched over plain HTTP could be swapped by anyone on the path.
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
	// Leeway is the clock skew allowed on exp, nbf and iat. Defaults to
	// DefaultJWTLeeway (30s) when zero; use time.Nanosecond for
	// effectively none.
	Leeway time.Duration
	// MaxAge bounds how old a token's "iat" may be (plus Leeway), like the
	// HMAC scheme's timestamp tolerance: a captured token cannot be
	// replayed later even if its exp is far away. A token without iat is
	// judged by exp alone. Defaults to DefaultTolerance (5m) when zero.
	MaxAge time.Duration
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
// exp is required; iat, when present, must be within MaxAge of now (and not
// in the future); nbf is enforced when present, aud/iss when configured.
//
// Keys are fetched lazily on first use (construction does no network I/O,
// so a cold start with the network down still succeeds), cached for
// RefreshInterval, and re-fetched early when an unknown kid shows up (rate
// limited by MinRefreshInterval). A fetch runs in its own goroutine on its
// own FetchTimeout, detached from the request that started it: requests
// wait for it only as long as their own context allows, and a client that
// hangs up mid-fetch neither aborts the fetch nor leaves a "context
// canceled" failure cached for MinRefreshInterval, which would turn every
// genuine delivery into a 503 for that long.
//
// The JWT does not sign the HTTP body (Gemini documents no body-hash claim),
// so only the claims are authenticated; treat the body as a hint and re-read
// job state from the Gemini API. It is safe for concurrent use.
type JWTVerifier struct {
	parser *jwt.Parser
	cache  *jwksCache
	kf     keyfunc.Keyfunc
	now    func() time.Time
	maxAge time.Duration
	leeway time.Duration
}

// checkJWKSURL accepts https URLs, and http only for loopback hosts.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("jwks url does not parse: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("jwks url %q has no host", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("jwks url %q must be https (plain http only for loopback hosts)", raw)
	default:
		return fmt.Errorf("jwks url %q is not https", raw)
	}
}

// NewJWTVerifier builds a verifier. It validates opts but does not contact
// the JWKS endpoint; ctx is accepted for symmetry with other constructors and
// is not retained.
func NewJWTVerifier(_ context.Context, opts JWTOptions) (*JWTVerifier, error) {
	if opts.JWKSURL == "" {
		opts.JWKSURL = DefaultJWKSURL
	}
	if err := checkJWKSURL(opts.JWKSURL); err != nil {
		return nil, fmt.Errorf("new jwt verifier: %w", err)
	}
	for name, d := range map[string]time.Duration{"Leeway": opts.Leeway, "RefreshInterval": opts.RefreshInterval,
		"MinRefreshInterval": opts.MinRefreshInterval, "FetchTimeout": opts.FetchTimeout, "MaxAge": opts.MaxAge} {
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
	if opts.MaxAge == 0 {
		opts.MaxAge = DefaultTolerance
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
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	return &JWTVerifier{parser: jwt.NewParser(popts...), cache: cache, kf: kf,
		now: opts.Now, maxAge: opts.MaxAge, leeway: opts.Leeway}, nil
}

// Verify checks the JWT in webhook-signature.
//
// The token is the only authenticated part of the request, so the delivery
// is identified by it: Delivery.ID is the "jti" claim, or, without one, a
// digest of the token; webhook-id is ignored, so one token replayed under
// any number of webhook-ids is one delivery. Delivery.Timestamp is "iat",
// or webhook-timestamp when the token has none (a non-integer header is
// [ErrMalformedHeaders]).
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
	d := Delivery{Timestamp: ts, Scheme: SchemeJWT, Claims: claims}
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		if age := v.now().Sub(iat.Time); age > v.maxAge+v.leeway {
			return Delivery{}, fmt.Errorf("verify jwt: %w: %w: iat is %s old, more than %s", ErrInvalidToken,
				jwt.ErrTokenInvalidClaims, age.Truncate(time.Second), v.maxAge)
		}
		d.Timestamp = iat.Time
	}
	if jti, _ := claims["jti"].(string); jti != "" {
		d.ID = jti
	} else {
		sum := sha256.Sum256([]byte(raw))
		d.ID = "jwt_" + hex.EncodeToString(sum[:16])
	}
	return d, nil
}

// Refresh fetches the key set now, ignoring the rate limit (or joins a
// fetch already running). Call it in the background at start-up to warm the
// cache; Verify does not need it.
func (v *JWTVerifier) Refresh(ctx context.Context) error {
	v.cache.mu.Lock()
	f := v.cache.startLocked()
	v.cache.mu.Unlock()
	return v.cache.wait(ctx, f)
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

	mu        sync.Mutex // guards the fields below
	loaded    bool
	fetchedAt time.Time // last successful fetch
	attempted time.Time // start of the last fetch, successful or not
	lastErr   error
	inflight  *jwksFetch // the running fetch, nil when none
}

// jwksFetch is one key set download; done is closed when err is set.
type jwksFetch struct {
	done chan struct{}
	err  error
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
	now := c.now()
	if c.loaded && now.Sub(c.fetchedAt) < c.maxAge {
		c.mu.Unlock()
		return nil
	}
	if c.inflight == nil && !c.attempted.IsZero() && now.Sub(c.attempted) < c.minGap {
		loaded, err := c.loaded, c.lastErr
		c.mu.Unlock()
		if loaded {
			return nil
		}
		return err
	}
	f := c.startLocked()
	loaded := c.loaded
	c.mu.Unlock()
	if err := c.wait(ctx, f); err != nil && !loaded {
		return err
	}
	return nil
}

// refreshForUnknownKID fetches again unless a fetch started within minGap
// (a running fetch is joined). It reports whether a fetch succeeded.
func (c *jwksCache) refreshForUnknownKID(ctx context.Context) bool {
	c.mu.Lock()
	if c.inflight == nil && c.now().Sub(c.attempted) < c.minGap {
		c.mu.Unlock()
		return false
	}
	f := c.startLocked()
	c.mu.Unlock()
	return c.wait(ctx, f) == nil
}

// startLocked returns the running fetch or starts one. c.mu must be held.
// The fetch runs on a context of its own, bounded by c.timeout: it must not
// die with the request that happened to start it.
func (c *jwksCache) startLocked() *jwksFetch {
	if c.inflight != nil {
		return c.inflight
	}
	f := &jwksFetch{done: make(chan struct{})}
	c.inflight = f
	c.attempted = c.now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		keys, err := c.download(ctx)
		if err == nil {
			if serr := c.MemoryJWKSet.KeyReplaceAll(ctx, keys); serr != nil {
				err = fmt.Errorf("store keys: %w", serr)
			}
		}
		c.mu.Lock()
		if err != nil {
			c.lastErr = fmt.Errorf("%w: %w", ErrJWKSUnavailable, err)
		} else {
			c.loaded, c.fetchedAt, c.lastErr = true, c.attempted, nil
		}
		f.err = c.lastErr
		c.inflight = nil
		c.mu.Unlock()
		close(f.done)
	}()
	return f
}

// wait waits for f as long as ctx allows. A request that gives up leaves
// the fetch running; its result is cached for the next request.
func (c *jwksCache) wait(ctx context.Context, f *jwksFetch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: waiting for the key set: %w", ErrJWKSUnavailable, err)
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for the key set: %w", ErrJWKSUnavailable, ctx.Err())
	}
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

// SignedEvent returns the webhook envelope carried by a JWT delivery's
// claims, as JSON, when the token carries one; ok is false for HMAC
// deliveries and for tokens without an event. Two claim shapes are read:
//
//   - the envelope itself ("type", "data" with "id", optional "version" and
//     "timestamp"), which Gemini's documented handlers suggest by treating
//     the decoded claims as the event;
//   - "event_type" and "data_id" (the simulator's shape), with "iat" as
//     the event time.
//
// The token does not cover the body, so these claims are the only event a
// JWT delivery authenticates: callers use them instead of the body.
func (d Delivery) SignedEvent() (env []byte, ok bool) {
	if d.Scheme != SchemeJWT || d.Claims == nil {
		return nil, false
	}
	c := d.Claims
	out := map[string]any{}
	if typ, _ := c["type"].(string); typ != "" {
		data, _ := c["data"].(map[string]any)
		if id, _ := data["id"].(string); id == "" {
			return nil, false
		}
		out["type"], out["data"] = typ, data
		for _, k := range []string{"version", "timestamp"} {
			if v, ok := c[k]; ok {
				out[k] = v
			}
		}
	} else if typ, _ := c["event_type"].(string); typ != "" {
		id, _ := c["data_id"].(string)
		if id == "" {
			return nil, false
		}
		out["type"], out["data"] = typ, map[string]any{"id": id}
		if iat, err := jwt.MapClaims(c).GetIssuedAt(); err == nil && iat != nil {
			out["timestamp"] = iat.UTC().Format(time.RFC3339)
		}
	} else {
		return nil, false
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, false
	}
	return b, true
}
