package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/geminihooks/geminihooks/shared/webhook"
)

// A sender (the simulator, a test or `geminihooks` CLI) signs a delivery;
// the Receiver verifies it against the secrets it accepts during a rotation.
func Example_signAndVerify() {
	oldSecret, newSecret := webhook.NewSecret(), webhook.NewSecret()
	body := []byte(`{"type":"batch.succeeded","version":"v1","data":{"id":"batches/abc"}}`)
	sent := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

	// Sender side: Gemini signs with the new secret once rotated.
	signer, err := webhook.NewSigner(newSecret)
	if err != nil {
		panic(err)
	}
	req := httptest.NewRequest("POST", "/gemini", strings.NewReader(string(body)))
	for k, v := range signer.Headers("msg_1", sent, body) {
		req.Header[k] = v
	}

	// Receiver side: accept old and new for the 24h grace period.
	secrets, err := webhook.StaticSecrets(oldSecret + "," + newSecret)
	if err != nil {
		panic(err)
	}
	verifier, err := webhook.NewHMACVerifier(secrets, webhook.HMACOptions{
		Now: func() time.Time { return sent.Add(time.Minute) }, // a minute in transit
	})
	if err != nil {
		panic(err)
	}
	d, err := verifier.Verify(context.Background(), body, req.Header)
	fmt.Println(d.ID, d.Scheme, d.Timestamp.UTC().Format(time.RFC3339), err)

	// A tampered body is rejected; the error class picks the status code.
	_, err = verifier.Verify(context.Background(), []byte(`{"type":"batch.failed"}`), req.Header)
	fmt.Println(errors.Is(err, webhook.ErrNoMatchingSignature), webhook.IsMalformed(err))
	// Output:
	// msg_1 hmac 2026-05-04T12:00:00Z <nil>
	// true false
}
