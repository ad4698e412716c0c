package receiver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/geminihooks/geminihooks/functions/receiver"
	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/config"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testJWTSigner is one RSA key per test binary: generating one is slow.
var jwtSignerOnce = sync.OnceValues(func() (*webhook.JWTSigner, error) { return webhook.NewJWTSigner("k1") })

func testJWTSigner(t *testing.T) *webhook.JWTSigner {
	t.Helper()
	s, err := jwtSignerOnce()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// flakyPublisher fails the next failures publishes, then delegates.
type flakyPublisher struct {
	bus.Publisher
	failures atomic.Int32
}

func (p *flakyPublisher) Publish(ctx context.Context, m bus.Message) (string, error) {
	if p.failures.Add(-1) >= 0 {
		return "", errors.New("injected publish failure")
	}
	return p.Publisher.Publish(ctx, m)
}

// flakyLedger fails Record while down is set.
type flakyLedger struct {
	*ledger.Store
	down atomic.Bool
}

func (l *flakyLedger) Record(ctx context.Context, ev event.JobEvent, scheme string) (ledger.Claim, error) {
	if l.down.Load() {
		return ledger.Claim{}, errors.New("injected firestore unavailable")
	}
	return l.Store.Record(ctx, ev, scheme)
}

type fixture struct {
	srv    *httptest.Server
	ps     *pstest.Server
	store  *ledger.Store
	led    *flakyLedger
	pub    *flakyPublisher
	signer *webhook.Signer
	jwt    *webhook.JWTSigner
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

const (
	oldSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	newSecret = "whsec_dGhpcyBpcyB0aGUgbmV3IHNlY3JldCBrZXk="
)

// newFixture starts a Receiver with both secrets and JWT deliveries on,
// audience https://receiver.test; mod adjusts its configuration.
func newFixture(t *testing.T, mod ...func(*config.Receiver)) *fixture {
	t.Helper()
	fs, project := testenv.Firestore(t)
	psc, ps := testenv.PubSub(t, project)
	topic := "projects/" + project + "/topics/events"
	if _, err := psc.TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	pp := bus.NewPubSubPublisher(psc, topic)
	t.Cleanup(pp.Stop)

	jwtSigner := testJWTSigner(t)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(jwtSigner.JWKS()) }))
	t.Cleanup(jwks.Close)

	cfg := config.Receiver{
		WebhookSecrets: []string{oldSecret, newSecret}, SignatureTolerance: config.DefaultSignatureTolerance,
		JWTEnabled: true, JWKSURL: jwks.URL, JWTAudience: "https://receiver.test",
	}
	for _, m := range mod {
		m(&cfg)
	}
	v, err := receiver.NewVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := ledger.New(fs, ledger.Options{})
	f := &fixture{ps: ps, store: store, led: &flakyLedger{Store: store}, pub: &flakyPublisher{Publisher: pp},
		jwt: jwtSigner, logs: &syncBuffer{}}
	f.signer, _ = webhook.NewSigner(newSecret)
	h := &receiver.Handler{
		Verifier:     v,
		Service:      &ingest.Service{Ledger: f.led, Publisher: f.pub},
		Logger:       logging.New(f.logs, slog.LevelDebug),
		MaxBodyBytes: 64 << 10,
		Project:      project,
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func envelope(typ, id string) []byte {
	return []byte(fmt.Sprintf(`{"type":%q,"version":"v1","timestamp":%q,"data":{"id":%q}}`, typ, time.Now().UTC().Format(time.RFC3339), id))
}

func (f *fixture) post(t *testing.T, body []byte, h http.Header) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL, bytes.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (f *fixture) signed(id string, body []byte) http.Header {
	return f.signer.Headers(id, time.Now(), body)
}

func (f *fixture) published() []*pstest.Message { return f.ps.Messages() }

func TestStatusMatrix(t *testing.T) {
	f := newFixture(t)
	body := envelope("batch.succeeded", "batches/m1")
	good := f.signed("msg_matrix", body)
	without := func(name string) http.Header { h := good.Clone(); h.Del(name); return h }
	with := func(name, v string) http.Header { h := good.Clone(); h.Set(name, v); return h }
	oldSigner, _ := webhook.NewSigner(oldSecret)
	strange, _ := webhook.NewSigner("whsec_" + "c29tZSBvdGhlciBzZWNyZXQsIDI0KyBieXRlcw==")

	tests := []struct {
		name string
		body []byte
		h    http.Header
		want int
	}{
		{"missing webhook-id", body, without("webhook-id"), 400},
		{"missing webhook-timestamp", body, without("webhook-timestamp"), 400},
		{"missing webhook-signature", body, without("webhook-signature"), 400},
		{"non-numeric timestamp", body, with("webhook-timestamp", "yesterday"), 400},
		{"malformed signature entry", body, with("webhook-signature", "garbage"), 400},
		{"unknown secret", body, strange.Headers("msg_matrix", time.Now(), body), 401},
		{"tampered body", append([]byte(" "), body...), good, 401},
		{"tampered id", body, with("webhook-id", "msg_other"), 401},
		{"too old", body, f.signer.Headers("msg_matrix", time.Now().Add(-6*time.Minute), body), 401},
		{"too new", body, f.signer.Headers("msg_matrix", time.Now().Add(6*time.Minute), body), 401},
		{"bad jwt", body, with("webhook-signature", "eyJhbGciOiJub25lIn0.eyJhIjoxfQ."), 401},
		{"body too large", bytes.Repeat([]byte("x"), 65<<10), f.signed("big", bytes.Repeat([]byte("x"), 65<<10)), 413},
		{"valid (rotated: previous secret)", body, oldSigner.Headers("msg_matrix", time.Now(), body), 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := f.post(t, tc.body, tc.h); got != tc.want {
				t.Errorf("status = %d, want %d", got, tc.want)
			}
		})
	}
	// Only the valid request reached the ledger and the topic.
	if n := len(f.published()); n != 1 {
		t.Errorf("published %d messages, want 1", n)
	}
	if _, err := f.store.GetDelivery(context.Background(), "big"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("oversized request was recorded: %v", err)
	}
	// Unverified requests leave only a reason in the logs.
	logs := f.logs.String()
	for _, secretish := range []string{good.Get("webhook-signature"), "batches/m1\"}", "eyJhbGciOiJub25lIn0", strings.TrimPrefix(newSecret, "whsec_")} {
		if strings.Contains(logs, secretish) {
			t.Errorf("logs contain %q", secretish)
		}
	}

	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(f.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET = %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
}

func TestAcceptedDuplicateAndEventMessage(t *testing.T) {
	f := newFixture(t)
	body := []byte(`{"type":"batch.failed","version":"v1","timestamp":"2026-11-29T10:00:00Z","data":{"id":"batches/x9","error_code":"INVALID_ARGUMENT","error_message":"bad file","user_metadata":{"k":"v"}}}`)
	code, res := f.post(t, body, f.signed("msg_dup", body))
	if code != 200 || res["status"] != "accepted" || res["job_id"] != "batch-x9" {
		t.Fatalf("first = %d %v", code, res)
	}
	code, res = f.post(t, body, f.signed("msg_dup", body))
	if code != 200 || res["status"] != "duplicate" {
		t.Fatalf("duplicate = %d %v", code, res)
	}
	msgs := f.published()
	if len(msgs) != 1 {
		t.Fatalf("published %d, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Attributes["event_type"] != "batch.failed" || m.Attributes["job_id"] != "batch-x9" || m.Attributes["webhook_id"] != "msg_dup" || m.OrderingKey != "batch-x9" {
		t.Errorf("attributes %v key %q", m.Attributes, m.OrderingKey)
	}
	var ev event.JobEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.SchemaVersion != "1" || ev.State != event.StateFailed || ev.GeminiName != "batches/x9" || ev.Data.ErrorMessage != "bad file" ||
		string(ev.Data.Extra["user_metadata"]) != `{"k":"v"}` || !ev.EventTime.Equal(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("event = %+v", ev)
	}
	d, _ := f.store.GetDelivery(context.Background(), "msg_dup")
	if d.Status != ledger.StatusPublished || d.Attempts != 2 || d.MessageID != m.ID {
		t.Errorf("delivery = %+v", d)
	}
	j, _ := f.store.GetJob(context.Background(), "batch-x9")
	// The claim is recorded, not believed: the Collector sets the state
	// from Gemini's API.
	if j.State != "" || j.Error != nil || j.ReportedState != "failed" || j.ReportedError == nil ||
		j.ReportedError.Code != "3" || j.ReportedError.Status != "INVALID_ARGUMENT" || j.Deliveries != 1 || j.CollectionState != ledger.CollectionPending {
		t.Errorf("job = %+v", j)
	}
}

func TestSignedButInvalidBody(t *testing.T) {
	f := newFixture(t)
	body := []byte(`{"type":"batch.succeeded","data":`)
	code, res := f.post(t, body, f.signed("msg_bad", body))
	if code != 200 || res["status"] != "invalid" {
		t.Fatalf("= %d %v", code, res)
	}
	d, err := f.store.GetDelivery(context.Background(), "msg_bad")
	if err != nil || d.Status != ledger.StatusInvalid || string(d.Body) != string(body) || d.Reason == "" {
		t.Errorf("delivery = %+v, %v", d, err)
	}
	if n := len(f.published()); n != 0 {
		t.Errorf("published %d, want 0", n)
	}
	if !strings.Contains(f.logs.String(), `"severity":"ERROR"`) {
		t.Error("no ERROR log line for an invalid signed body")
	}
}

func TestUnknownTypePublishedAsIs(t *testing.T) {
	f := newFixture(t)
	body := envelope("batch.paused", "batches/u1")
	if code, _ := f.post(t, body, f.signed("msg_unknown", body)); code != 200 {
		t.Fatalf("status %d", code)
	}
	msgs := f.published()
	if len(msgs) != 1 || msgs[0].Attributes["event_type"] != "batch.paused" {
		t.Fatalf("messages %v", msgs)
	}
	j, _ := f.store.GetJob(context.Background(), "batch-u1")
	if j.LastUnknownEvent != "batch.paused" {
		t.Errorf("job = %+v", j)
	}
}

func TestConcurrentSameDelivery(t *testing.T) {
	f := newFixture(t)
	body := envelope("video.generated", "models/veo/operations/c20")
	h := f.signed("msg_concurrent", body)
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _ := f.post(t, body, h)
			codes <- c
		}()
	}
	wg.Wait()
	close(codes)
	seen := map[int]int{}
	for c := range codes {
		seen[c]++
	}
	if seen[200] == 0 {
		t.Errorf("no attempt succeeded: %v", seen)
	}
	for c := range seen {
		if c != 200 && c != 409 && c != 503 {
			t.Errorf("unexpected status %d (%v)", c, seen)
		}
	}
	// Whatever the others were told, the sender's next retry is a no-op.
	if c, res := f.post(t, body, h); c != 200 || res["status"] != "duplicate" {
		t.Errorf("retry after the burst = %d %v\nlogs:\n%s", c, res, f.logs.String())
	}
	if n := len(f.published()); n != 1 {
		t.Errorf("published %d, want exactly 1 (statuses %v)", n, seen)
	}
}

func TestPublishFailureThenRetry(t *testing.T) {
	f := newFixture(t)
	body := envelope("interaction.completed", "v1_pubfail")
	f.pub.failures.Store(1)
	if code, _ := f.post(t, body, f.signed("msg_pf", body)); code != 503 {
		t.Fatalf("with publish down: %d, want 503", code)
	}
	d, _ := f.store.GetDelivery(context.Background(), "msg_pf")
	if d.Status != ledger.StatusReceived {
		t.Fatalf("delivery after failed publish = %+v", d)
	}
	if code, res := f.post(t, body, f.signed("msg_pf", body)); code != 200 || res["status"] != "accepted" {
		t.Fatalf("retry = %d %v", code, res)
	}
	if code, _ := f.post(t, body, f.signed("msg_pf", body)); code != 200 {
		t.Fatalf("second retry = %d", code)
	}
	if n := len(f.published()); n != 1 {
		t.Errorf("published %d, want 1", n)
	}
	if j, _ := f.store.GetJob(context.Background(), "interaction-v1_pubfail"); j.Deliveries != 1 || j.ReportedState != "succeeded" {
		t.Errorf("job = %+v", j)
	}
}

func TestFirestoreFailure(t *testing.T) {
	f := newFixture(t)
	body := envelope("batch.succeeded", "batches/fsdown")
	f.led.down.Store(true)
	if code, _ := f.post(t, body, f.signed("msg_fs", body)); code != 503 {
		t.Fatalf("status %d, want 503", code)
	}
	if n := len(f.published()); n != 0 {
		t.Fatalf("published %d with Firestore down, want 0", n)
	}
	f.led.down.Store(false)
	if code, _ := f.post(t, body, f.signed("msg_fs", body)); code != 200 {
		t.Fatalf("after recovery %d", code)
	}
	if n := len(f.published()); n != 1 {
		t.Errorf("published %d, want 1", n)
	}
}

func TestOutOfOrderClaimsAreAllPublished(t *testing.T) {
	f := newFixture(t)
	done := envelope("interaction.completed", "v1_ooo")
	late := envelope("interaction.requires_action", "v1_ooo")
	f.post(t, done, f.signed("msg_a", done))
	f.post(t, late, f.signed("msg_b", late))
	j, _ := f.store.GetJob(context.Background(), "interaction-v1_ooo")
	if j.State != "" || j.ReportedState != "requires_action" || j.Deliveries != 2 {
		t.Errorf("job = %+v", j)
	}
	if n := len(f.published()); n != 2 {
		t.Errorf("published %d, want 2 (every delivery is a trigger; the Collector reads the state from the API)", n)
	}
}

func TestDynamicJWTDelivery(t *testing.T) {
	f := newFixture(t)
	body := envelope("batch.succeeded", "batches/dyn")
	tok, err := f.jwt.Sign(map[string]any{"aud": "https://receiver.test", "iat": time.Now().Unix(),
		"exp": time.Now().Add(5 * time.Minute).Unix(), "jti": "jwt_1"})
	if err != nil {
		t.Fatal(err)
	}
	code, res := f.post(t, body, http.Header{"Webhook-Signature": {tok}})
	if code != 200 || res["status"] != "accepted" || res["webhook_id"] != "jwt_1" {
		t.Fatalf("= %d %v", code, res)
	}
	wrongAud, _ := f.jwt.Sign(map[string]any{"aud": "https://elsewhere", "exp": time.Now().Add(time.Minute).Unix()})
	if code, _ := f.post(t, body, http.Header{"Webhook-Signature": {wrongAud}}); code != 401 {
		t.Errorf("wrong audience = %d, want 401", code)
	}
	d, _ := f.store.GetDelivery(context.Background(), "jwt_1")
	if d.Scheme != "jwt" {
		t.Errorf("scheme = %q", d.Scheme)
	}
}

var _ = io.Discard
