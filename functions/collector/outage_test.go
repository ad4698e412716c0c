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

// With Firestore stopped, or Pub/Sub stopped after the results are saved,
// a push gets a non-2xx answer within the Collector's deadline (so Pub/Sub
// redelivers instead of the push timing out); after recovery the
// redelivery publishes one results event.
func TestOutageAnswersBeforeTheDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own Firestore emulator")
	}
	o := testenv.NewOutage(t)
	ctx := context.Background()
	topic := "projects/" + o.Project + "/topics/results"
	createTopic := func() {
		t.Helper()
		if _, err := o.PS.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
			t.Fatal(err)
		}
	}
	createTopic()
	const deadline = 2 * time.Second
	pub := bus.NewPubSubPublisher(o.PS, topic).WithTimeout(deadline / 2)
	t.Cleanup(pub.Stop)
	g := collecttest.New()
	t.Cleanup(g.Server.Close)
	gc, err := gemini.New(ctx, gemini.Config{APIKey: collecttest.APIKey, BaseURL: g.URL()})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(&Handler{
		Service:  collect.New(collect.Options{Ledger: ledger.New(o.FS, ledger.Options{}), Gemini: gc, Publisher: pub, Logger: log}),
		Logger:   log,
		Deadline: deadline,
	})
	t.Cleanup(srv.Close)
	g.Set("batches/o1", collecttest.Batch("batches/o1", "BATCH_STATE_SUCCEEDED", map[string]any{"inlinedResponses": map[string]any{
		"inlinedResponses": []any{map[string]any{"metadata": map[string]any{"key": "k"}, "response": collecttest.Response("hi", 1, 1)}}}}))
	ref, _ := event.ParseRef(event.TypeBatchSucceeded, "batches/o1")
	ev := event.JobEvent{SchemaVersion: event.SchemaVersion, WebhookID: "wh-o1", Type: event.TypeBatchSucceeded, JobID: ref.ID,
		Kind: ref.Kind, GeminiName: ref.Name, State: event.StateSucceeded, ReceivedAt: time.Now()}
	body := bus.EncodePushBody(bus.PushMessage{Data: event.Marshal(ev), MessageID: "1", DeliveryAttempt: 1, PublishTime: time.Now()})
	push := func() (int, time.Duration) {
		t.Helper()
		start := time.Now()
		res, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, time.Since(start)
	}
	post := func(want int) {
		t.Helper()
		// Well below the 600 s ack deadline; the handler deadline is 2 s.
		if code, took := push(); code != want || took > 10*time.Second {
			t.Fatalf("status %d after %v, want %d", code, took.Round(time.Millisecond), want)
		}
	}
	// Like Pub/Sub after an outage: redeliver until acknowledged (a
	// restarted emulator on a loaded machine may need a few attempts).
	redeliverUntilAck := func() {
		t.Helper()
		giveUp := time.Now().Add(2 * time.Minute)
		for attempt := 1; ; attempt++ {
			code, _ := push()
			if code == http.StatusNoContent {
				return
			}
			if code != http.StatusServiceUnavailable || time.Now().After(giveUp) {
				t.Fatalf("after recovery: attempt %d answered %d", attempt, code)
			}
			time.Sleep(deadline / 4)
		}
	}
	published := func() int {
		n := 0
		for _, m := range o.PubSubServer().Messages() {
			if m.Topic == topic {
				n++
			}
		}
		return n
	}

	o.StopFirestore()
	post(http.StatusServiceUnavailable)
	o.StartFirestore()

	o.StopPubSub()
	post(http.StatusServiceUnavailable) // results saved, the event not published
	time.Sleep(deadline / 2)
	o.StartPubSub()
	createTopic()
	redeliverUntilAck()
	post(http.StatusNoContent)
	if n := published(); n != 1 {
		t.Errorf("published %d results events, want 1", n)
	}
}
