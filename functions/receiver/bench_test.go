package receiver_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/functions/receiver"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

// benchRequests pre-signs n distinct deliveries so signing is not measured.
func benchRequests(b *testing.B, n int) ([][]byte, []http.Header) {
	signer, _ := webhook.NewSigner(newSecret)
	bodies, headers := make([][]byte, n), make([]http.Header, n)
	now := time.Now()
	for i := range n {
		bodies[i] = envelope("batch.succeeded", "batches/bench"+strconv.Itoa(i))
		headers[i] = signer.Headers("msg_bench_"+strconv.Itoa(i), now, bodies[i])
	}
	return bodies, headers
}

// BenchmarkReceiverInMemory is the Receiver's own cost: body read,
// verification with two secrets, parsing, ledger and publish through
// in-memory ports, JSON response. Compare with BenchmarkBareHandler.
func BenchmarkReceiverInMemory(b *testing.B) {
	src, _ := webhook.StaticSecrets(oldSecret, newSecret)
	hv, _ := webhook.NewHMACVerifier(src, webhook.HMACOptions{})
	h := &receiver.Handler{
		Verifier:     webhook.MultiVerifier{HMAC: hv},
		Service:      &ingest.Service{Ledger: ledger.NewMemory(ledger.Options{}), Publisher: &bus.MemoryPublisher{}},
		Logger:       logging.New(io.Discard, slog.LevelInfo),
		MaxBodyBytes: 1 << 20,
	}
	bodies, headers := benchRequests(b, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(bodies[i]))
		r.Header = headers[i]
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkBareHandler is the baseline: a net/http handler that reads the
// body, decodes it and answers JSON, with no verification or storage.
func BenchmarkBareHandler(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		var v map[string]any
		_ = json.Unmarshal(body, &v)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
	})
	bodies, headers := benchRequests(b, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(bodies[i]))
		r.Header = headers[i]
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
	}
}
