package webhook

import (
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable, goroutine-safe clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testSecret returns a deterministic whsec_ secret filled with b.
func testSecret(b byte) string {
	key := make([]byte, 32)
	for i := range key {
		key[i] = b + byte(i)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

var (
	secretOld   = testSecret(0x10)
	secretNew   = testSecret(0x50)
	secretOther = testSecret(0x90)
	testNow     = time.Unix(1_780_000_000, 0)
	testBody    = []byte(`{"type":"batch.succeeded","version":"v1","timestamp":"2026-05-04T12:00:00Z","data":{"id":"batches/8v0f3xk2p1","output_file_uri":"files/batch-8v0f3xk2p1"}}`)
)

const testID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"

func mustSigner(t testing.TB, secrets ...string) *Signer {
	t.Helper()
	s, err := NewSigner(secrets...)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

func mustHMACVerifier(t testing.TB, opts HMACOptions, secrets ...string) *HMACVerifier {
	t.Helper()
	src, err := StaticSecrets(secrets...)
	if err != nil {
		t.Fatalf("StaticSecrets: %v", err)
	}
	v, err := NewHMACVerifier(src, opts)
	if err != nil {
		t.Fatalf("NewHMACVerifier: %v", err)
	}
	return v
}

// knownSentinels are the errors Verify may wrap; anything else is a bug.
var knownSentinels = []error{ErrMissingHeaders, ErrMalformedHeaders, ErrNoMatchingSignature,
	ErrTimestampTooOld, ErrTimestampTooNew, ErrInvalidToken, ErrInvalidSecret, ErrNoSecrets}

func wrapsSentinel(err error) bool {
	for _, s := range knownSentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// checkErr asserts err against want (nil means success) and that the
// 400/401 split agrees with the sentinel.
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("got error %v, want success", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
	wantMalformed := want == ErrMissingHeaders || want == ErrMalformedHeaders
	if IsMalformed(err) != wantMalformed {
		t.Fatalf("IsMalformed(%v) = %v, want %v", err, IsMalformed(err), wantMalformed)
	}
}

func cloneHeader(h http.Header) http.Header { return h.Clone() }

func errorsIs(err, target error) bool { return errors.Is(err, target) }
