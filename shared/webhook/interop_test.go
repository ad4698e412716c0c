package webhook

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The Standard Webhooks reference library (v0.0.1) is the oracle for the
// HMAC scheme: what one signs, the other verifies, both ways. The reference
// verifier reads the wall clock, so these vectors use time.Now.

type interopVector struct {
	name string
	id   string
	body []byte
}

var interopVectors = []interopVector{
	{name: "gemini envelope", id: testID, body: testBody},
	{name: "empty body", id: "msg_empty", body: nil},
	{name: "binary body", id: "msg_bin", body: []byte{0, 1, 2, 0xff, '.', '\n'}},
	{name: "unicode id", id: "msg_ünï.cødé", body: []byte(`{"data":{"id":"batches/é"}}`)},
	{name: "large body", id: "msg_big", body: []byte(strings.Repeat(`{"k":"v"},`, 10_000))},
}

func mustRef(t *testing.T, secret string) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

func TestInteropOursSignReferenceVerifies(t *testing.T) {
	now := time.Now()
	for _, vec := range interopVectors {
		t.Run(vec.name, func(t *testing.T) {
			// Two secrets: the reference verifier holds one key per
			// instance, and each must accept the multi-signature header.
			h := mustSigner(t, secretOld, secretNew).Headers(vec.id, now, vec.body)
			for _, secret := range []string{secretOld, secretNew} {
				if err := mustRef(t, secret).Verify(vec.body, h); err != nil {
					t.Fatalf("reference rejects our signature: %v", err)
				}
			}
			if err := mustRef(t, secretOther).Verify(vec.body, h); err == nil {
				t.Fatal("reference accepts our signature under an unrelated secret")
			}
			// Single secret: byte-identical header value.
			ours := mustSigner(t, secretNew).Signature(vec.id, now, vec.body)
			ref, err := mustRef(t, secretNew).Sign(vec.id, now, vec.body)
			if err != nil || ours != ref {
				t.Fatalf("signature %q, reference %q (%v)", ours, ref, err)
			}
		})
	}
}

func TestInteropReferenceSignsOursVerifies(t *testing.T) {
	now := time.Now()
	v := mustHMACVerifier(t, HMACOptions{}, secretNew)
	for _, vec := range interopVectors {
		t.Run(vec.name, func(t *testing.T) {
			sigOld, err := mustRef(t, secretOld).Sign(vec.id, now, vec.body)
			if err != nil {
				t.Fatal(err)
			}
			sigNew, err := mustRef(t, secretNew).Sign(vec.id, now, vec.body)
			if err != nil {
				t.Fatal(err)
			}
			for name, value := range map[string]string{
				"single":          sigNew,
				"rotation header": sigOld + " " + sigNew,
				"new first":       sigNew + " " + sigOld,
			} {
				h := http.Header{}
				h.Set(HeaderID, vec.id)
				h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
				h.Set(HeaderSignature, value)
				if _, err := v.Verify(t.Context(), vec.body, h); err != nil {
					t.Fatalf("%s: we reject the reference signature: %v", name, err)
				}
			}
			// Only the old secret's entry: both must reject.
			h := http.Header{}
			h.Set(HeaderID, vec.id)
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
			h.Set(HeaderSignature, sigOld)
			_, err = v.Verify(t.Context(), vec.body, h)
			checkErr(t, err, ErrNoMatchingSignature)
			if err := mustRef(t, secretNew).Verify(vec.body, h); err == nil {
				t.Fatal("reference accepts a signature made with another secret")
			}
		})
	}
}
