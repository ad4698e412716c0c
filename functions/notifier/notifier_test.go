package notifier_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/functions/notifier"
	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/notify"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestNotifierOverHTTP(t *testing.T) {
	fs, _ := testenv.Firestore(t)
	var received atomic.Int32
	var down atomic.Bool
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(502)
			return
		}
		received.Add(1)
	}))
	defer dest.Close()
	h := &notifier.Handler{
		Service: &notify.Service{Destinations: []notify.Destination{{Name: "d", URL: dest.URL, Format: notify.FormatChat}},
			Log: &notify.FirestoreLog{Client: fs}},
		Logger: logging.New(io.Discard, slog.LevelInfo),
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	ev := event.ResultsEvent{EventID: event.ResultsEventID("video-v1", event.StateSucceeded), Type: "video.generated",
		JobID: "video-v1", Kind: event.KindVideo, State: event.StateSucceeded, CollectionState: "collected"}
	push := bus.EncodePushBody(bus.PushMessage{Data: event.Marshal(ev), Attributes: ev.Attributes(), MessageID: "m1",
		PublishTime: time.Now(), DeliveryAttempt: 1, Subscription: "projects/p/subscriptions/geminihooks-notifier"})
	post := func(body []byte) int {
		resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	down.Store(true)
	if c := post(push); c != 503 {
		t.Errorf("destination down: %d, want 503", c)
	}
	down.Store(false)
	for i, want := range []int{200, 200} { // redelivered: acked, not re-sent
		if c := post(push); c != want {
			t.Errorf("delivery %d: %d, want %d", i, c, want)
		}
	}
	if n := received.Load(); n != 1 {
		t.Errorf("destination received %d, want 1", n)
	}
	if c := post([]byte(`{"message":{}}`)); c != 400 {
		t.Errorf("bad push: %d, want 400", c)
	}
	notResults := bus.EncodePushBody(bus.PushMessage{Data: []byte(`{"x":1}`), MessageID: "m2"})
	if c := post(notResults); c != 400 {
		t.Errorf("not a results event: %d, want 400", c)
	}
}
