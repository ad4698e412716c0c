package reconciler

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/genai"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/gemsim"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/reconcile"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestReconcilerOverHTTP: Cloud Scheduler's POST runs a sweep that finds a
// batch no webhook announced and publishes it on the events topic (200 with
// the report); a GET never sweeps (405); with Gemini unreachable the answer
// is 503 so Scheduler retries.
func TestReconcilerOverHTTP(t *testing.T) {
	ctx := context.Background()
	fs, project := testenv.Firestore(t)
	pc, _ := testenv.PubSub(t, project)
	topic := "projects/" + project + "/topics/events"
	if _, err := pc.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	pub := bus.NewPubSubPublisher(pc, topic)
	defer pub.Stop()
	sim := gemsim.New(gemsim.Options{APIKey: "k", Durations: gemsim.Durations{Batch: time.Hour}})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	gc, _ := gemini.New(ctx, gemini.Config{APIKey: "k", BaseURL: url})
	store := ledger.New(fs, ledger.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &Handler{Service: reconcile.New(reconcile.Options{Ledger: store, Gemini: reconcile.GenAI{Client: gc},
		Announcer: &ingest.Service{Ledger: store, Publisher: pub}, Logger: log}), Logger: log, Project: project}
	srv := httptest.NewServer(h)
	defer srv.Close()

	b, err := gc.GenAI.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
		{Contents: []*genai.Content{genai.NewContentFromText("x", genai.RoleUser)}}}}, &genai.CreateBatchJobConfig{DisplayName: "unknown"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.FinishJob(b.Name); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(srv.URL); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET = %v, %v; want 405", resp, err)
	}
	resp, err := http.Post(srv.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rep reconcile.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != http.StatusOK || rep.Discovered != 1 || rep.Missed != 1 {
		t.Fatalf("POST = %d %+v (%v)", resp.StatusCode, rep, err)
	}
	resp.Body.Close()
	ref, _ := event.RefForName(event.KindBatch, b.Name)
	d, err := store.GetDelivery(ctx, ingest.ReconcileID(ref.ID, event.StateSucceeded))
	if err != nil || d.Status != ledger.StatusPublished || d.MessageID == "" {
		t.Fatalf("announced delivery %+v, %v", d, err)
	}

	// Gemini unreachable: 503.
	dead, _ := gemini.New(ctx, gemini.Config{APIKey: "k", BaseURL: "http://127.0.0.1:1"})
	h.Service = reconcile.New(reconcile.Options{Ledger: store, Gemini: reconcile.GenAI{Client: dead},
		Announcer: &ingest.Service{Ledger: store, Publisher: pub}, Logger: log, ReadTimeout: 2 * time.Second})
	resp, err = http.Post(srv.URL, "", nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("POST with Gemini down = %v, %v; want 503", resp, err)
	}
	resp.Body.Close()
}
