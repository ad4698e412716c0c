package webhook

import (
	"bytes"
	"context"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Both benchmarks verify the same delivery: a 1 KiB body, two accepted
// secrets (old, new), signed with the second one, as during a rotation.

func benchDelivery(b *testing.B) ([]byte, time.Time) {
	b.Helper()
	return bytes.Repeat([]byte("x"), 1024), time.Now()
}

func BenchmarkHMACVerify(b *testing.B) {
	body, now := benchDelivery(b)
	v := mustHMACVerifier(b, HMACOptions{Now: func() time.Time { return now }}, secretOld, secretNew)
	h := mustSigner(b, secretNew).Headers(testID, now, body)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, body, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStandardWebhooksVerify is the baseline: the reference library
// holds one key per instance, so a rotation means trying instances in turn.
func BenchmarkStandardWebhooksVerify(b *testing.B) {
	body, now := benchDelivery(b)
	var whs []*standardwebhooks.Webhook
	for _, s := range []string{secretOld, secretNew} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			b.Fatal(err)
		}
		whs = append(whs, wh)
	}
	h := mustSigner(b, secretNew).Headers(testID, now, body)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		for _, wh := range whs {
			if err = wh.Verify(body, h); err == nil {
				break
			}
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
