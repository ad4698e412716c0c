package webhook

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// RSA key generation is slow (especially under -race), so the test keys are
// made once per test binary.
var testJWTSigners = sync.OnceValue(func() map[string]*JWTSigner {
	out := map[string]*JWTSigner{}
	for _, kid := range []string{"k1", "k2", "attacker"} {
		s, err := NewJWTSigner(kid)
		if err != nil {
			panic(err)
		}
		out[kid] = s
	}
	return out
})

// jwksServer is an httptest JWKS endpoint whose content and health the test
// controls, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	body   []byte
	status int
	hits   atomic.Int64
}

func newJWKSServer(t *testing.T, signers ...*JWTSigner) *jwksServer {
	s := &jwksServer{body: JWKSOf(signers...), status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(signers ...*JWTSigner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = JWKSOf(signers...)
}

func (s *jwksServer) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

func newTestJWTVerifier(t *testing.T, url string, clock *fakeClock, mod func(*JWTOptions)) *JWTVerifier {
	t.Helper()
	opts := JWTOptions{JWKSURL: url, Now: clock.Now}
	if mod != nil {
		mod(&opts)
	}
	v, err := NewJWTVerifier(t.Context(), opts)
	if err != nil {
		t.Fatalf("NewJWTVerifier: %v", err)
	}
	return v
}

func jwtHeader(token string) http.Header {
	h := http.Header{}
	h.Set(HeaderSignature, token)
	return h
}

func mustSign(t *testing.T, s *JWTSigner, claims map[string]any) string {
	t.Helper()
	tok, err := s.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// baseClaims is what a plausible Gemini dynamic-webhook token carries.
func baseClaims() map[string]any {
	return map[string]any{
		"iss":  "https://generativelanguage.googleapis.com",
		"aud":  "https://hooks.example.com/gemini",
		"iat":  testNow.Unix(),
		"exp":  testNow.Add(5 * time.Minute).Unix(),
		"jti":  "evt_123",
		"type": "batch.succeeded",
		"data": map[string]any{"id": "batches/abc"},
	}
}

func b64url(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestJWTVerify(t *testing.T) {
	signers := testJWTSigners()
	k1, attacker := signers["k1"], signers["attacker"]
	srv := newJWKSServer(t, k1)

	withClaims := func(mod func(map[string]any)) func(*testing.T) string {
		return func(t *testing.T) string {
			c := baseClaims()
			mod(c)
			return mustSign(t, k1, c)
		}
	}
	valid := withClaims(func(map[string]any) {})
	pubDER, err := x509.MarshalPKIXPublicKey(&k1.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	tests := []struct {
		name    string
		token   func(*testing.T) string
		headers map[string]string // extra headers
		opts    func(*JWTOptions)
		wantErr error
		wantJWT error // jwt/v5 sentinel expected in the chain
		check   func(*testing.T, Delivery)
	}{
		{name: "valid", token: valid, check: func(t *testing.T, d Delivery) {
			if d.Scheme != SchemeJWT || d.ID != "evt_123" || !d.Timestamp.Equal(testNow) || d.Claims["type"] != "batch.succeeded" {
				t.Fatalf("delivery = %+v", d)
			}
		}},
		{name: "the token identifies the delivery, not the headers", token: valid,
			headers: map[string]string{HeaderID: "msg_1", HeaderTimestamp: strconv.FormatInt(testNow.Unix()+7, 10)},
			check: func(t *testing.T, d Delivery) {
				if d.ID != "evt_123" || !d.Timestamp.Equal(testNow) {
					t.Fatalf("delivery = %+v", d)
				}
			}},
		{name: "no jti, no iat: id is the token digest, timestamp the header", token: withClaims(func(c map[string]any) { delete(c, "jti"); delete(c, "iat") }),
			headers: map[string]string{HeaderID: "msg_1", HeaderTimestamp: strconv.FormatInt(testNow.Unix()+7, 10)},
			check: func(t *testing.T, d Delivery) {
				if !strings.HasPrefix(d.ID, "jwt_") || len(d.ID) != 4+32 || d.Timestamp.Unix() != testNow.Unix()+7 {
					t.Fatalf("delivery = %+v", d)
				}
			}},
		{name: "exp missing", token: withClaims(func(c map[string]any) { delete(c, "exp") }),
			wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenRequiredClaimMissing},
		{name: "iat older than the tolerance", token: withClaims(func(c map[string]any) { c["iat"] = testNow.Add(-6 * time.Minute).Unix() }),
			wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenInvalidClaims},
		{name: "iat 30 days old, exp far away", token: withClaims(func(c map[string]any) {
			c["iat"] = testNow.Add(-30 * 24 * time.Hour).Unix()
			c["exp"] = testNow.Add(365 * 24 * time.Hour).Unix()
		}), wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenInvalidClaims},
		{name: "iat within the tolerance", token: withClaims(func(c map[string]any) { c["iat"] = testNow.Add(-4 * time.Minute).Unix() })},
		{name: "iat older than a configured MaxAge", token: withClaims(func(c map[string]any) { c["iat"] = testNow.Add(-2 * time.Minute).Unix() }),
			opts: func(o *JWTOptions) { o.MaxAge = time.Minute }, wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenInvalidClaims},
		{name: "iat in the future", token: withClaims(func(c map[string]any) { c["iat"] = testNow.Add(2 * time.Minute).Unix() }),
			wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenUsedBeforeIssued},
		{name: "expired", token: withClaims(func(c map[string]any) { c["exp"] = testNow.Add(-time.Minute).Unix() }),
			wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenExpired},
		{name: "expired within leeway", token: withClaims(func(c map[string]any) { c["exp"] = testNow.Add(-10 * time.Second).Unix() })},
		{name: "expired just beyond the default leeway", token: withClaims(func(c map[string]any) { c["exp"] = testNow.Add(-31 * time.Second).Unix() }),
			wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenExpired},
		{name: "nbf in the future", token: withClaims(func(c map[string]any) { c["nbf"] = testNow.Add(2 * time.Minute).Unix() }),
			wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenNotValidYet},
		{name: "nbf within leeway", token: withClaims(func(c map[string]any) { c["nbf"] = testNow.Add(20 * time.Second).Unix() })},
		{name: "audience matches", token: valid, opts: func(o *JWTOptions) { o.Audience = "https://hooks.example.com/gemini" }},
		{name: "audience in list", token: withClaims(func(c map[string]any) { c["aud"] = []string{"x", "https://hooks.example.com/gemini"} }),
			opts: func(o *JWTOptions) { o.Audience = "https://hooks.example.com/gemini" }},
		{name: "bad audience", token: valid, opts: func(o *JWTOptions) { o.Audience = "https://other.example.com" },
			wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenInvalidAudience},
		{name: "audience missing when configured", token: withClaims(func(c map[string]any) { delete(c, "aud") }),
			opts: func(o *JWTOptions) { o.Audience = "https://hooks.example.com/gemini" }, wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenRequiredClaimMissing},
		{name: "audience not configured is not enforced", token: withClaims(func(c map[string]any) { c["aud"] = "https://anything" })},
		{name: "bad issuer", token: valid, opts: func(o *JWTOptions) { o.Issuer = "https://accounts.google.com" },
			wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenInvalidIssuer},
		{name: "alg none", token: func(*testing.T) string {
			return b64url(map[string]any{"alg": "none", "typ": "JWT", "kid": "k1"}) + "." + b64url(baseClaims()) + "."
		}, wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 keyed with the RSA public key (alg confusion)", token: func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(baseClaims()))
			tok.Header["kid"] = "k1"
			s, err := tok.SignedString(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 keyed with the JWKS document", token: func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(baseClaims()))
			tok.Header["kid"] = "k1"
			s, err := tok.SignedString(k1.JWKS())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenSignatureInvalid},
		{name: "RS512 with the right key", token: func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS512, jwt.MapClaims(baseClaims()))
			tok.Header["kid"] = "k1"
			s, err := tok.SignedString(k1.key)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenSignatureInvalid},
		{name: "forged with another key under a known kid", token: func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(baseClaims()))
			tok.Header["kid"] = "k1"
			s, err := tok.SignedString(attacker.key)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenSignatureInvalid},
		{name: "tampered payload", token: func(t *testing.T) string {
			parts := strings.Split(valid(t), ".")
			c := baseClaims()
			c["type"] = "batch.failed"
			parts[1] = b64url(c)
			return strings.Join(parts, ".")
		}, wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenSignatureInvalid},
		{name: "unknown kid", token: func(t *testing.T) string { return mustSign(t, attacker, baseClaims()) },
			wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenUnverifiable},
		{name: "garbage", token: func(*testing.T) string { return "aaaa.bbbb.cccc" }, wantErr: ErrInvalidToken, wantJWT: jwt.ErrTokenMalformed},
		{name: "missing signature header", token: func(*testing.T) string { return "" }, wantErr: ErrMissingHeaders},
		{name: "malformed webhook-timestamp", token: valid, headers: map[string]string{HeaderTimestamp: "yesterday"}, wantErr: ErrMalformedHeaders},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestJWTVerifier(t, srv.URL, newFakeClock(testNow), tc.opts)
			h := jwtHeader(tc.token(t))
			for k, val := range tc.headers {
				h.Set(k, val)
			}
			d, err := v.Verify(t.Context(), nil, h)
			checkErr(t, err, tc.wantErr)
			if tc.wantJWT != nil && !errors.Is(err, tc.wantJWT) {
				t.Fatalf("error %v does not wrap %v", err, tc.wantJWT)
			}
			if err == nil && tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

// TestJWTKeyRotation: a token with a new kid triggers a (rate-limited) JWKS
// refresh; a key dropped from the JWKS stops verifying once the cache ages.
func TestJWTKeyRotation(t *testing.T) {
	signers := testJWTSigners()
	k1, k2 := signers["k1"], signers["k2"]
	srv := newJWKSServer(t, k1)
	clock := newFakeClock(testNow)
	v := newTestJWTVerifier(t, srv.URL, clock, func(o *JWTOptions) {
		o.MinRefreshInterval, o.RefreshInterval = time.Minute, time.Hour
	})
	claims := func() map[string]any {
		c := baseClaims()
		c["iat"] = clock.Now().Unix()
		c["exp"] = clock.Now().Add(5 * time.Minute).Unix()
		return c
	}
	verify := func(s *JWTSigner) error {
		_, err := v.Verify(t.Context(), nil, jwtHeader(mustSign(t, s, claims())))
		return err
	}
	steps := []struct {
		name     string
		before   func()
		signer   *JWTSigner
		wantErr  error
		wantHits int64
	}{
		{name: "first use fetches lazily", signer: k1, wantHits: 1},
		{name: "cached", signer: k1, wantHits: 1},
		{name: "unknown kid within rate limit: no fetch", signer: k2, wantErr: ErrInvalidToken, wantHits: 1},
		{name: "new key published, still rate limited", before: func() { srv.serve(k1, k2) }, signer: k2, wantErr: ErrInvalidToken, wantHits: 1},
		{name: "rate limit over: refresh finds new kid", before: func() { clock.Advance(time.Minute) }, signer: k2, wantHits: 2},
		{name: "old key still valid", signer: k1, wantHits: 2},
		{name: "old key withdrawn, cache fresh", before: func() { srv.serve(k2) }, signer: k1, wantHits: 2},
		{name: "cache aged: refetch drops old key", before: func() { clock.Advance(time.Hour) }, signer: k1, wantErr: ErrInvalidToken, wantHits: 3},
		{name: "new key keeps working", signer: k2, wantHits: 3},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		err := verify(st.signer)
		if (st.wantErr == nil) != (err == nil) || (st.wantErr != nil && !errors.Is(err, st.wantErr)) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
		}
		if got := srv.hits.Load(); got != st.wantHits {
			t.Fatalf("%s: JWKS fetched %d times, want %d", st.name, got, st.wantHits)
		}
	}
}

func TestJWKSUnavailable(t *testing.T) {
	k1 := testJWTSigners()["k1"]
	token := mustSign(t, k1, baseClaims())

	t.Run("server down at first use", func(t *testing.T) {
		srv := newJWKSServer(t, k1)
		url := srv.URL
		srv.Close()
		v, err := NewJWTVerifier(t.Context(), JWTOptions{JWKSURL: url, Now: newFakeClock(testNow).Now})
		if err != nil {
			t.Fatalf("construction must not need the network: %v", err)
		}
		_, err = v.Verify(t.Context(), nil, jwtHeader(token))
		checkErr(t, err, ErrInvalidToken)
		if !errors.Is(err, ErrJWKSUnavailable) {
			t.Fatalf("err = %v, want ErrJWKSUnavailable in chain", err)
		}
	})

	t.Run("server errors then recovers", func(t *testing.T) {
		srv := newJWKSServer(t, k1)
		srv.setStatus(http.StatusInternalServerError)
		clock := newFakeClock(testNow)
		v := newTestJWTVerifier(t, srv.URL, clock, nil)
		for i := range 3 { // failures are remembered: one fetch, fast failures
			_, err := v.Verify(t.Context(), nil, jwtHeader(token))
			if !errors.Is(err, ErrJWKSUnavailable) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("attempt %d: err = %v", i, err)
			}
		}
		if got := srv.hits.Load(); got != 1 {
			t.Fatalf("JWKS fetched %d times during the back-off, want 1", got)
		}
		srv.setStatus(http.StatusOK)
		clock.Advance(DefaultJWKSMinRefresh)
		if _, err := v.Verify(t.Context(), nil, jwtHeader(token)); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	})

	t.Run("stale keys survive an outage", func(t *testing.T) {
		srv := newJWKSServer(t, k1)
		clock := newFakeClock(testNow)
		v := newTestJWTVerifier(t, srv.URL, clock, nil)
		if _, err := v.Verify(t.Context(), nil, jwtHeader(token)); err != nil {
			t.Fatal(err)
		}
		srv.setStatus(http.StatusServiceUnavailable)
		clock.Advance(2 * DefaultJWKSRefresh)
		c := baseClaims()
		c["iat"] = clock.Now().Unix()
		c["exp"] = clock.Now().Add(time.Minute).Unix()
		if _, err := v.Verify(t.Context(), nil, jwtHeader(mustSign(t, k1, c))); err != nil {
			t.Fatalf("stale keys not used: %v", err)
		}
		if got := srv.hits.Load(); got != 2 {
			t.Fatalf("JWKS fetched %d times, want 2", got)
		}
	})

	t.Run("invalid JWKS document", func(t *testing.T) {
		srv := newJWKSServer(t, k1)
		srv.mu.Lock()
		srv.body = []byte(`{"keys":[{"kty":"RSA","kid":"k1","n":"!!","e":"AQAB"}]}`)
		srv.mu.Unlock()
		v := newTestJWTVerifier(t, srv.URL, newFakeClock(testNow), nil)
		_, err := v.Verify(t.Context(), nil, jwtHeader(token))
		if !errors.Is(err, ErrJWKSUnavailable) {
			t.Fatalf("err = %v, want ErrJWKSUnavailable", err)
		}
	})

	t.Run("request context cancelled", func(t *testing.T) {
		srv := newJWKSServer(t, k1)
		v := newTestJWTVerifier(t, srv.URL, newFakeClock(testNow), nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := v.Verify(ctx, nil, jwtHeader(token))
		checkErr(t, err, ErrInvalidToken)
	})
}

// TestJWKSConcurrentColdStart: a burst of deliveries on a cold instance
// causes one JWKS fetch, not one per request.
func TestJWKSConcurrentColdStart(t *testing.T) {
	k1 := testJWTSigners()["k1"]
	srv := newJWKSServer(t, k1)
	v := newTestJWTVerifier(t, srv.URL, newFakeClock(testNow), nil)
	token := mustSign(t, k1, baseClaims())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := v.Verify(t.Context(), nil, jwtHeader(token))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", got)
	}
}

func TestJWTVerifierConfig(t *testing.T) {
	tests := []struct {
		name    string
		opts    JWTOptions
		wantErr bool
	}{
		{name: "zero value", opts: JWTOptions{}},
		{name: "not http", opts: JWTOptions{JWKSURL: "file:///etc/passwd"}, wantErr: true},
		{name: "https", opts: JWTOptions{JWKSURL: "https://keys.example.com/jwks.json"}},
		{name: "plain http to a remote host", opts: JWTOptions{JWKSURL: "http://keys.example.com/jwks.json"}, wantErr: true},
		{name: "plain http to an address that is not loopback", opts: JWTOptions{JWKSURL: "http://10.0.0.1/jwks.json"}, wantErr: true},
		{name: "plain http to a host named like loopback", opts: JWTOptions{JWKSURL: "http://127.0.0.1.evil.example/jwks.json"}, wantErr: true},
		{name: "plain http to 127.0.0.1", opts: JWTOptions{JWKSURL: "http://127.0.0.1:8080/jwks.json"}},
		{name: "plain http to [::1]", opts: JWTOptions{JWKSURL: "http://[::1]:8080/jwks.json"}},
		{name: "plain http to localhost", opts: JWTOptions{JWKSURL: "http://localhost:8080/jwks.json"}},
		{name: "no host", opts: JWTOptions{JWKSURL: "https:///jwks.json"}, wantErr: true},
		{name: "negative max age", opts: JWTOptions{MaxAge: -time.Second}, wantErr: true},
		{name: "negative leeway", opts: JWTOptions{Leeway: -time.Second}, wantErr: true},
		{name: "negative refresh", opts: JWTOptions{MinRefreshInterval: -time.Second}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewJWTVerifier(t.Context(), tc.opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}

func TestJWTSignerJWKS(t *testing.T) {
	s := testJWTSigners()
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(JWKSOf(s["k1"], s["k2"]), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 2 || doc.Keys[0]["kid"] != "k1" || doc.Keys[1]["kid"] != "k2" {
		t.Fatalf("keys = %v", doc.Keys)
	}
	for _, k := range doc.Keys {
		if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" || k["d"] != nil || k["p"] != nil {
			t.Fatalf("unexpected public JWK %v", k)
		}
	}
	if _, err := NewJWTSigner(""); err == nil {
		t.Fatal("empty kid accepted")
	}
}

// TestJWTOnlyRS256 pins the algorithm allow-list itself: many JWKS omit
// "alg", in which case keyfunc's JWK/token alg match cannot help and only
// jwt.WithValidMethods stops a token signed with another RSA algorithm.
func TestJWTOnlyRS256(t *testing.T) {
	k1 := testJWTSigners()["k1"]
	srv := newJWKSServer(t, k1)
	var doc map[string][]map[string]any
	if err := json.Unmarshal(k1.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc["keys"][0], "alg")
	srv.mu.Lock()
	srv.body, _ = json.Marshal(doc)
	srv.mu.Unlock()

	tests := []struct {
		name    string
		method  jwt.SigningMethod
		wantErr error
	}{
		{name: "RS256", method: jwt.SigningMethodRS256},
		{name: "RS384", method: jwt.SigningMethodRS384, wantErr: ErrInvalidToken},
		{name: "RS512", method: jwt.SigningMethodRS512, wantErr: ErrInvalidToken},
		{name: "PS256", method: jwt.SigningMethodPS256, wantErr: ErrInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := jwt.NewWithClaims(tc.method, jwt.MapClaims(baseClaims()))
			tok.Header["kid"] = "k1"
			s, err := tok.SignedString(k1.key)
			if err != nil {
				t.Fatal(err)
			}
			v := newTestJWTVerifier(t, srv.URL, newFakeClock(testNow), nil)
			_, err = v.Verify(t.Context(), nil, jwtHeader(s))
			checkErr(t, err, tc.wantErr)
		})
	}
}

// TestJWKSFetchSurvivesCancelledRequest: the first delivery on a cold
// instance starts the key set fetch and then hangs up. The fetch must not die
// with it, and its result (not the hung-up request's "context canceled")
// must serve the genuine deliveries that follow, without a second fetch and
// without the minute-long failure back-off.
func TestJWKSFetchSurvivesCancelledRequest(t *testing.T) {
	k1 := testJWTSigners()["k1"]
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		arrived <- struct{}{}
		<-release // slow key server; ignores the client going away
		_, _ = w.Write(k1.JWKS())
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	v := newTestJWTVerifier(t, srv.URL, newFakeClock(testNow), nil)
	token := mustSign(t, k1, baseClaims())

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, nil, jwtHeader(token))
		done <- err
	}()
	<-arrived // the fetch is under way
	cancel()  // the client drops its request
	if err := <-done; !errors.Is(err, ErrJWKSUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("dropped request: err = %v, want ErrJWKSUnavailable wrapping context.Canceled", err)
	}

	close(release)
	// Same instant on the clock, i.e. well within MinRefreshInterval.
	for i := range 3 {
		if _, err := v.Verify(t.Context(), nil, jwtHeader(token)); err != nil {
			t.Fatalf("genuine delivery %d after a dropped request: %v", i, err)
		}
	}
	if got := hits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times, want 1 (the dropped request's fetch is reused)", got)
	}
}
