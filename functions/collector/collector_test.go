package collector

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/collect"
	"github.com/geminihooks/geminihooks/shared/collect/collecttest"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestCollectorOverHTTP(t *testing.T) {
	ctx := context.Background()
	fs, project := testenv.Firestore(t)
	pc, ps := testenv.PubSub(t, project)
	topic := "projects/" + project + "/topics/results"
	if _, err := pc.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	pub := bus.NewPubSubPublisher(pc, topic)
	defer pub.Stop()
	g := collecttest.New()
	defer g.Server.Close()
	gc, err := gemini.New(ctx, gemini.Config{APIKey: collecttest.APIKey, BaseURL: g.URL()})
	if err != nil {
		t.Fatal(err)
	}
	store := ledger.New(fs, ledger.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(&Handler{
		Service: collect.New(collect.Options{Ledger: store, Gemini: gc, Publisher: pub, Logger: log}),
		Logger:  log, Project: project,
	})
	defer srv.Close()

	g.Set("batches/h1", collecttest.Batch("batches/h1", "BATCH_STATE_SUCCEEDED", map[string]any{"inlinedResponses": map[string]any{
		"inlinedResponses": []any{map[string]any{"metadata": map[string]any{"key": "k"}, "response": collecttest.Response("hi", 1, 1)}}}}))
	ref, _ := event.ParseRef(event.TypeBatchSucceeded, "batches/h1")
	ev := event.JobEvent{SchemaVersion: event.SchemaVersion, WebhookID: "wh-h1", Type: event.TypeBatchSucceeded, JobID: ref.ID,
		Kind: ref.Kind, GeminiName: ref.Name, State: event.StateSucceeded, EventTime: time.Now().Add(-time.Second), ReceivedAt: time.Now()}
	if _, err := store.Record(ctx, ev, "hmac"); err != nil {
		t.Fatal(err)
	}
	msg := bus.PushMessage{Data: event.Marshal(ev), Attributes: ev.Attributes(), MessageID: "1", OrderingKey: ev.JobID,
		DeliveryAttempt: 1, PublishTime: time.Now(), Subscription: "projects/" + project + "/subscriptions/collector"}

	post := func(body []byte) int {
		t.Helper()
		res, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}

	g.FailNext("batches/h1", 1, http.StatusInternalServerError)
	if got := post(bus.EncodePushBody(msg)); got != http.StatusServiceUnavailable {
		t.Errorf("Gemini 500: status %d, want 503", got)
	}
	if got := post(bus.EncodePushBody(msg)); got != http.StatusNoContent {
		t.Errorf("success: status %d, want 204", got)
	}
	if j, err := store.GetJob(ctx, ref.ID); err != nil || j.CollectionState != ledger.CollectionDone || j.Counts.Results != 1 {
		t.Errorf("job = %+v, %v", j, err)
	}
	if n := len(ps.Messages()); n != 1 {
		t.Errorf("published %d results events, want 1", n)
	}
	if got := post([]byte(`{"message":{}}`)); got != http.StatusBadRequest {
		t.Errorf("invalid push: status %d, want 400", got)
	}
	bad := msg
	bad.Data = []byte("nope")
	if got := post(bus.EncodePushBody(bad)); got != http.StatusBadRequest {
		t.Errorf("invalid event: status %d, want 400", got)
	}
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d", res.StatusCode)
	}
}

func TestFromEnvRejectsMissingConfig(t *testing.T) {
	if _, err := FromEnv(context.Background(), func(string) string { return "" }); err == nil {
		t.Fatal("want error for empty environment")
	}
}
