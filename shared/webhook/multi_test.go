package webhook

import (
	"net/http"
	"testing"
)

func TestLooksLikeJWT(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", true},
		{" eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln ", true},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", true}, // unsigned: routed to JWT, rejected there
		{"a.b.c", true},
		{"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=", false},
		{"v1,a.b.c", false},
		{"a.b.c v1,abc", false},
		{"a.b", false},
		{"a.b.c.d", false},
		{".b.c", false},
		{"a..c", false},
		{"a.b+.c", false},
		{"a.b.c=", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := LooksLikeJWT(tc.in); got != tc.want {
				t.Fatalf("LooksLikeJWT(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestMultiVerifier(t *testing.T) {
	k1 := testJWTSigners()["k1"]
	srv := newJWKSServer(t, k1)
	clock := newFakeClock(testNow)
	hmacV := mustHMACVerifier(t, HMACOptions{Now: clock.Now}, secretOld, secretNew)
	jwtV := newTestJWTVerifier(t, srv.URL, clock, nil)
	hmacHeaders := mustSigner(t, secretNew).Headers(testID, testNow, testBody)
	jwtHeaders := jwtHeader(mustSign(t, k1, baseClaims()))
	noneHeaders := jwtHeader(b64url(map[string]any{"alg": "none", "kid": "k1"}) + "." + b64url(baseClaims()) + ".")

	full := MultiVerifier{HMAC: hmacV, JWT: jwtV}
	tests := []struct {
		name       string
		v          Verifier
		h          http.Header
		wantScheme Scheme
		wantErr    error
	}{
		{name: "hmac delivery", v: full, h: hmacHeaders, wantScheme: SchemeHMAC},
		{name: "jwt delivery", v: full, h: jwtHeaders, wantScheme: SchemeJWT},
		{name: "pointer receiver", v: &full, h: jwtHeaders, wantScheme: SchemeJWT},
		{name: "alg none goes to jwt and fails", v: full, h: noneHeaders, wantErr: ErrInvalidToken},
		{name: "jwt not configured", v: MultiVerifier{HMAC: hmacV}, h: jwtHeaders, wantErr: ErrInvalidToken},
		{name: "hmac not configured", v: MultiVerifier{JWT: jwtV}, h: hmacHeaders, wantErr: ErrNoSecrets},
		{name: "no signature header", v: full, h: http.Header{}, wantErr: ErrMissingHeaders},
		{name: "hmac delivery with bad entry", v: full, h: func() http.Header {
			h := hmacHeaders.Clone()
			h.Set(HeaderSignature, "nonsense")
			return h
		}(), wantErr: ErrMalformedHeaders},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.v.Verify(t.Context(), testBody, tc.h)
			checkErr(t, err, tc.wantErr)
			if err == nil && d.Scheme != tc.wantScheme {
				t.Fatalf("scheme = %q, want %q", d.Scheme, tc.wantScheme)
			}
		})
	}
}
