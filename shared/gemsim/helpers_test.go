package gemsim_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/geminihooks/geminihooks/shared/gemsim"
)

const testKey = "test-key"

// startSim starts a simulator on a loopback port and returns it with an SDK
// client pointed at it.
func startSim(t *testing.T, opts gemsim.Options) (*gemsim.Simulator, *genai.Client) {
	t.Helper()
	if opts.Durations.Batch == 0 && opts.Durations.Video == 0 && opts.Durations.Interaction == 0 && opts.Durations.Func == nil {
		opts.Durations = gemsim.Durations{Batch: 20 * time.Millisecond, Video: 20 * time.Millisecond, Interaction: 20 * time.Millisecond}
	}
	sim := gemsim.New(opts)
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	client, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: testKey, Backend: genai.BackendGeminiAPI, HTTPOptions: genai.HTTPOptions{BaseURL: url},
	})
	if err != nil {
		t.Fatalf("genai.NewClient: %v", err)
	}
	return sim, client
}

// withName is a batch config with the display name the API requires.
var withName = &genai.CreateBatchJobConfig{DisplayName: "test batch"}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or the test context times out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// received is one webhook request seen by a receiver.
type received struct {
	Header http.Header
	Body   []byte
	Status int
}

// receiver is an httptest server recording deliveries; statuses are
// returned in order (200 once exhausted).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []received
	statuses []int
	fallback int // status once statuses are exhausted (default 200)
	ch       chan received
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	rc := &receiver{statuses: statuses, ch: make(chan received, 1000)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		status := http.StatusOK
		if rc.fallback != 0 {
			status = rc.fallback
		}
		if len(rc.statuses) > 0 {
			status, rc.statuses = rc.statuses[0], rc.statuses[1:]
		}
		rec := received{Header: r.Header.Clone(), Body: body, Status: status}
		rc.got = append(rc.got, rec)
		rc.mu.Unlock()
		rc.ch <- rec
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// newFailingReceiver answers every delivery with status.
func newFailingReceiver(t *testing.T, status int) *receiver {
	rc := newReceiver(t)
	rc.mu.Lock()
	rc.fallback = status
	rc.mu.Unlock()
	return rc
}

// next waits for the next delivery.
func (rc *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-rc.ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("no webhook delivery received")
		return received{}
	}
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}
