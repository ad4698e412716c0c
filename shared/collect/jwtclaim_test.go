package collect_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/collect/collecttest"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

// TestJWTForgedBodyWithoutAudience: with JWT deliveries on and no audience
// configured, any token Gemini signed (for anyone) verifies, and the body
// is not covered by it. A valid token carrying a forged batch.failed body
// about a batch the API shows succeeded changes nothing: the batch is
// collected as succeeded, the claim is recorded as contradicted, and the
// genuine batch.succeeded afterwards publishes nothing more.
func TestJWTForgedBodyWithoutAudience(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.gem.Set("batches/jwt1", collecttest.Batch("batches/jwt1", "BATCH_STATE_SUCCEEDED", map[string]any{
		"inlinedResponses": map[string]any{"inlinedResponses": []any{
			map[string]any{"metadata": map[string]any{"key": "a"}, "response": collecttest.Response("hello", 2, 3)},
		}},
	}))

	signer, err := webhook.NewJWTSigner("k1")
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(signer.JWKS()) }))
	t.Cleanup(jwks.Close)
	jv, err := webhook.NewJWTVerifier(t.Context(), webhook.JWTOptions{JWKSURL: jwks.URL}) // no audience
	if err != nil {
		t.Fatal(err)
	}
	events := &bus.MemoryPublisher{}
	rcv := &ingest.Service{Ledger: e.store, Publisher: events}

	// deliver runs the Receiver's steps: verify, then ingest with the signed
	// event when the token carries one.
	deliver := func(tok string, body []byte) ingest.Result {
		t.Helper()
		h := http.Header{}
		h.Set(webhook.HeaderSignature, tok)
		d, err := jv.Verify(t.Context(), body, h)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		in := ingest.Delivery{WebhookID: d.ID, Scheme: string(d.Scheme), Body: body}
		if env, ok := d.SignedEvent(); ok {
			in.SignedEnvelope = env
		}
		res, err := rcv.Handle(t.Context(), in)
		if err != nil {
			t.Fatalf("ingest: %v", err)
		}
		return res
	}
	now := time.Now()
	// Someone else's valid token (foreign audience, no event in it).
	foreign, _ := signer.Sign(map[string]any{"aud": "https://someone-else.example", "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "jti": "jwt_foreign"})
	forgedBody := []byte(`{"type":"batch.failed","version":"v1","timestamp":"2026-11-29T10:00:00Z","data":{"id":"batches/jwt1","error_code":"INTERNAL","error_message":"lie"}}`)
	if res := deliver(foreign, forgedBody); res.Status != ingest.StatusAccepted || res.JobID != "batch-jwt1" {
		t.Fatalf("forged delivery = %+v", res)
	}
	// The genuine event, signed in its claims.
	genuine, _ := signer.Sign(map[string]any{"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "jwt_genuine",
		"event_type": "batch.succeeded", "data_id": "batches/jwt1"})
	if res := deliver(genuine, []byte(`{}`)); res.Status != ingest.StatusAccepted {
		t.Fatalf("genuine delivery = %+v", res)
	}

	msgs := events.Messages()
	if len(msgs) != 2 {
		t.Fatalf("events published = %d, want 2", len(msgs))
	}
	for i, m := range msgs {
		mustHandle(t, e, bus.PushMessage{Data: m.Data, Attributes: m.Attributes, MessageID: "m" + string(rune('0'+i)),
			OrderingKey: m.OrderingKey, DeliveryAttempt: 1})
	}
	j := e.job("batch-jwt1")
	if j.State != "succeeded" || j.StateSource != ledger.SourceAPI || j.Error != nil || j.CollectedState != "succeeded" {
		t.Fatalf("job = %+v; want succeeded per the API", j)
	}
	d, err := e.store.GetDelivery(context.Background(), "jwt_foreign")
	if err != nil || d.Scheme != "jwt" || d.Verification != ledger.VerdictContradicted || d.VerifiedState != "succeeded" {
		t.Fatalf("forged delivery = %+v, %v", d, err)
	}
	pub := e.published()
	if len(pub) != 1 || pub[0].State != event.StateSucceeded || pub[0].Error != nil {
		t.Fatalf("results published %+v; want one succeeded event", pub)
	}
}
