package receiver_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/geminihooks/geminihooks/functions/receiver"
	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

// With Firestore or Pub/Sub down (stopped, not faked), a delivery gets a
// 503 within the Receiver's deadline instead of a hang; once they are back,
// the sender's retry is published exactly once.
func TestOutageAnswers503ThenPublishesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own Firestore emulator")
	}
	o := testenv.NewOutage(t)
	ctx := context.Background()
	topic := "projects/" + o.Project + "/topics/events"
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
	secrets, _ := webhook.StaticSecrets(newSecret)
	hv, _ := webhook.NewHMACVerifier(secrets, webhook.HMACOptions{})
	h := &receiver.Handler{
		Verifier:     webhook.MultiVerifier{HMAC: hv},
		Service:      &ingest.Service{Ledger: ledger.New(o.FS, ledger.Options{PublishLease: 3 * time.Second}), Publisher: pub},
		Logger:       logging.New(&syncBuffer{}, slog.LevelDebug),
		MaxBodyBytes: 64 << 10,
		Deadline:     deadline,
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv}
	f.signer, _ = webhook.NewSigner(newSecret)

	// The requirement is an answer within 10 s whatever hangs; the handler
	// deadline here is 2 s.
	const answerWithin = 10 * time.Second
	postExpect := func(t *testing.T, id string, body []byte, want int) {
		t.Helper()
		start := time.Now()
		code, res := f.post(t, body, f.signed(id, body))
		if took := time.Since(start); code != want || took > answerWithin {
			t.Fatalf("%s: %d %v after %v; want %d within %v", id, code, res, took.Round(time.Millisecond), want, answerWithin)
		}
	}
	// Like Gemini after an outage: retry until accepted. A freshly started
	// emulator on a loaded machine may need a few attempts.
	// 409 too: an attempt that timed out may still hold the publish lease.
	retryUntilOK := func(t *testing.T, id string, body []byte) {
		t.Helper()
		giveUp := time.Now().Add(2 * time.Minute)
		for attempt := 1; ; attempt++ {
			code, res := f.post(t, body, f.signed(id, body))
			if code == 200 {
				return
			}
			if (code != 503 && code != 409) || time.Now().After(giveUp) {
				t.Fatalf("%s after recovery: attempt %d answered %d %v", id, attempt, code, res)
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

	t.Run("firestore stopped", func(t *testing.T) {
		body := envelope("batch.succeeded", "batches/fsdown")
		o.StopFirestore()
		postExpect(t, "msg_fsdown", body, 503)
		o.StartFirestore()
		retryUntilOK(t, "msg_fsdown", body)
		postExpect(t, "msg_fsdown", body, 200) // a duplicate
		if n := published(); n != 1 {
			t.Errorf("published %d, want 1", n)
		}
	})

	t.Run("pubsub stopped", func(t *testing.T) {
		body := envelope("batch.succeeded", "batches/psdown")
		o.StopPubSub()
		postExpect(t, "msg_psdown", body, 503)
		// The delivery was recorded before the publish failed.
		if d, err := ledger.New(o.FS, ledger.Options{}).GetDelivery(ctx, "msg_psdown"); err != nil || d.Status != ledger.StatusReceived {
			t.Fatalf("delivery = %+v, %v", d, err)
		}
		time.Sleep(deadline / 2) // the abandoned background publish gives up
		o.StartPubSub()
		createTopic()
		retryUntilOK(t, "msg_psdown", body)
		postExpect(t, "msg_psdown", body, 200)
		if n := published(); n != 1 {
			t.Errorf("published %d after the restart, want exactly 1", n)
		}
	})
}
