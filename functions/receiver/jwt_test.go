package receiver_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/shared/config"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// jwtClaims is a token Gemini could plausibly send to this Receiver.
func jwtClaims(jti string) map[string]any {
	now := time.Now()
	return map[string]any{"aud": "https://receiver.test", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": jti}
}

func (f *fixture) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	tok, err := f.jwt.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestJWTOffByDefault: a Receiver configured from an environment that does
// not set WEBHOOK_JWT_ENABLED answers 401 to a perfectly valid JWT delivery
// and records nothing, while static (HMAC) webhooks keep working.
func TestJWTOffByDefault(t *testing.T) {
	signer := testJWTSigner(t)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(signer.JWKS()) }))
	t.Cleanup(jwks.Close)
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT": "p", "EVENTS_TOPIC": "events", "GEMINI_WEBHOOK_SECRETS": newSecret,
		"JWKS_URL": jwks.URL, "JWT_AUDIENCE": "https://receiver.test",
	}
	cfg, err := config.LoadReceiver(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.JWTEnabled {
		t.Fatal("JWT deliveries are on by default")
	}
	f := newFixture(t, func(c *config.Receiver) { *c = cfg })

	body := envelope("batch.succeeded", "batches/off1")
	tok := f.token(t, jwtClaims("jwt_off"))
	if code, res := f.post(t, body, http.Header{"Webhook-Signature": {tok}}); code != 401 {
		t.Fatalf("JWT delivery with JWT off = %d %v, want 401", code, res)
	}
	if _, err := f.store.GetDelivery(context.Background(), "jwt_off"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("a rejected JWT delivery was recorded: %v", err)
	}
	if code, _ := f.post(t, body, f.signed("msg_hmac_on", body)); code != 200 {
		t.Fatalf("HMAC delivery = %d, want 200", code)
	}
	if n := len(f.published()); n != 1 {
		t.Fatalf("published %d, want 1 (the HMAC delivery only)", n)
	}
}

// TestJWTReplayIsOneDelivery: the token is the only authenticated part of a
// JWT delivery, so one token replayed under three webhook-ids (which it does
// not cover) is one delivery with one publish.
func TestJWTReplayIsOneDelivery(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims func() map[string]any
	}{
		{"with jti", func() map[string]any { return jwtClaims("jwt_replay") }},
		{"without jti", func() map[string]any { c := jwtClaims(""); delete(c, "jti"); return c }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tok := f.token(t, tc.claims())
			body := envelope("batch.succeeded", "batches/replay")
			var ids []string
			for i, wid := range []string{"msg_r1", "msg_r2", "msg_r3"} {
				h := http.Header{"Webhook-Signature": {tok}, "Webhook-Id": {wid}, "Webhook-Timestamp": {"1"}}
				code, res := f.post(t, body, h)
				want := "accepted"
				if i > 0 {
					want = "duplicate"
				}
				if code != 200 || res["status"] != want {
					t.Fatalf("post under %s = %d %v, want 200 %s", wid, code, res, want)
				}
				ids = append(ids, res["webhook_id"].(string))
			}
			if ids[0] != ids[1] || ids[1] != ids[2] || ids[0] == "msg_r1" {
				t.Fatalf("delivery ids %v: want one id from the token", ids)
			}
			if n := len(f.published()); n != 1 {
				t.Fatalf("published %d, want 1", n)
			}
			if j, _ := f.store.GetJob(context.Background(), "batch-replay"); j.Deliveries != 1 {
				t.Fatalf("job deliveries = %d, want 1", j.Deliveries)
			}
		})
	}
}

// TestJWTSignedEvent: when the token's claims carry the event, they are the
// event; the body, which the token does not cover, is ignored.
func TestJWTSignedEvent(t *testing.T) {
	f := newFixture(t)
	forgedBody := []byte(`{"type":"batch.failed","version":"v1","timestamp":"2026-11-29T10:00:00Z","data":{"id":"batches/victim","error_code":"INTERNAL","error_message":"lie"}}`)
	tests := []struct {
		name   string
		claims map[string]any
		jobID  string
		state  string
	}{
		{name: "envelope claims", jobID: "batch-sig1", state: "succeeded", claims: map[string]any{
			"type": "batch.succeeded", "version": "v1", "timestamp": "2026-11-29T10:00:00Z",
			"data": map[string]any{"id": "batches/sig1", "output_file_uri": "files/out1"}}},
		{name: "simulator claims", jobID: "interaction-v1_sig2", state: "succeeded", claims: map[string]any{
			"event_type": "interaction.completed", "data_id": "v1_sig2"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := jwtClaims("jwt_signed_" + tc.jobID)
			for k, v := range tc.claims {
				c[k] = v
			}
			code, res := f.post(t, forgedBody, http.Header{"Webhook-Signature": {f.token(t, c)}})
			if code != 200 || res["status"] != "accepted" || res["job_id"] != tc.jobID {
				t.Fatalf("= %d %v, want accepted for %s", code, res, tc.jobID)
			}
			j, err := f.store.GetJob(context.Background(), tc.jobID)
			if err != nil || j.ReportedState != tc.state || j.ReportedError != nil {
				t.Fatalf("job = %+v, %v", j, err)
			}
			if n := len(f.published()); n != i+1 {
				t.Fatalf("published %d, want %d", n, i+1)
			}
		})
	}
	if _, err := f.store.GetJob(context.Background(), "batch-victim"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("the unsigned body's job was recorded: %v", err)
	}
}

// TestJWTForgeryRejected: with an audience configured, a token minted for
// someone else, without exp, or issued 30 days ago is refused however many
// webhook-ids it is replayed under, and nothing is recorded or published.
func TestJWTForgeryRejected(t *testing.T) {
	f := newFixture(t)
	body := envelope("batch.failed", "batches/forged")
	old := time.Now().Add(-30 * 24 * time.Hour)
	tests := []struct {
		name string
		mod  func(map[string]any)
	}{
		{"foreign aud", func(c map[string]any) { c["aud"] = "https://someone-else.example" }},
		{"no exp", func(c map[string]any) { delete(c, "exp") }},
		{"30-day-old iat", func(c map[string]any) { c["iat"] = old.Unix() }},
		{"all three", func(c map[string]any) {
			c["aud"] = "https://someone-else.example"
			delete(c, "exp")
			c["iat"] = old.Unix()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := jwtClaims("jwt_forged")
			tc.mod(c)
			tok := f.token(t, c)
			for _, wid := range []string{"msg_f1", "msg_f2", "msg_f3"} {
				h := http.Header{"Webhook-Signature": {tok}, "Webhook-Id": {wid}, "Webhook-Timestamp": {"1"}}
				if code, res := f.post(t, body, h); code != 401 {
					t.Fatalf("replay under %s = %d %v, want 401", wid, code, res)
				}
			}
		})
	}
	if n := len(f.published()); n != 0 {
		t.Fatalf("published %d, want 0", n)
	}
	for _, id := range []string{"jwt_forged", "msg_f1"} {
		if _, err := f.store.GetDelivery(context.Background(), id); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("delivery %s recorded: %v", id, err)
		}
	}
	if _, err := f.store.GetJob(context.Background(), "batch-forged"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("job recorded: %v", err)
	}
}

// TestJWKSFetchSurvivesCancelledRequestReceiver: a client that hangs up
// while the cold Receiver fetches the JWKS does not make the genuine
// deliveries after it fail with 503.
func TestJWKSFetchSurvivesCancelledRequestReceiver(t *testing.T) {
	signer := testJWTSigner(t)
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Write(signer.JWKS())
	}))
	t.Cleanup(jwks.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	f := newFixture(t, func(c *config.Receiver) { c.JWKSURL = jwks.URL })
	body := envelope("batch.succeeded", "batches/cold")

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL, bytes.NewReader(body))
	req.Header.Set("Webhook-Signature", f.token(t, jwtClaims("jwt_dropped")))
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-arrived
	cancel()
	<-done
	close(release)
	for _, jti := range []string{"jwt_genuine1", "jwt_genuine2"} {
		if code, res := f.post(t, body, http.Header{"Webhook-Signature": {f.token(t, jwtClaims(jti))}}); code != 200 {
			t.Fatalf("genuine delivery %s after a dropped request = %d %v, want 200", jti, code, res)
		}
	}
}
