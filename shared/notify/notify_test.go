package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/notify"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestParseDestinations(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []notify.Destination
		wantErr bool
	}{
		"slack url":   {in: " https://hooks.slack.com/services/T/B/x\n", want: []notify.Destination{{Name: "slack", URL: "https://hooks.slack.com/services/T/B/x", Format: "slack"}}},
		"chat url":    {in: "https://chat.googleapis.com/v1/spaces/S/messages?key=k", want: []notify.Destination{{Name: "chat", URL: "https://chat.googleapis.com/v1/spaces/S/messages?key=k", Format: "chat"}}},
		"generic url": {in: "http://127.0.0.1:9/hook", want: []notify.Destination{{Name: "webhook", URL: "http://127.0.0.1:9/hook", Format: "webhook"}}},
		"json list":   {in: `[{"name":"ops","url":"https://x.test/h","events":["batch.*"],"states":["failed"]}]`, want: []notify.Destination{{Name: "ops", URL: "https://x.test/h", Format: "webhook", Events: []string{"batch.*"}, States: []string{"failed"}}}},
		"empty":       {in: "  ", wantErr: true},
		"not http":    {in: "ftp://x/y", wantErr: true},
		"bad json":    {in: `[{"url":`, wantErr: true},
		"bad format":  {in: `[{"url":"https://x.test","format":"pager"}]`, wantErr: true},
		"bad pattern": {in: `[{"url":"https://x.test","events":["["]}]`, wantErr: true},
		"bad secret":  {in: `[{"url":"https://x.test","secret":"whsec_%%%"}]`, wantErr: true},
		"dup names":   {in: `[{"url":"https://a.test"},{"url":"https://b.test"}]`, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := notify.ParseDestinations(tc.in)
			if tc.wantErr {
				if !errors.Is(err, notify.ErrConfig) {
					t.Fatalf("err = %v, want ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tc.want)
			if string(gj) != string(wj) {
				t.Errorf("got %s\nwant %s", gj, wj)
			}
		})
	}
}

func results(jobID string, st event.State) event.ResultsEvent {
	return event.ResultsEvent{SchemaVersion: "1", EventID: event.ResultsEventID(jobID, st), Type: "batch.succeeded",
		JobID: jobID, Kind: event.KindBatch, State: st, CollectionState: "collected", JobPath: "jobs/" + jobID,
		ResultsPath: "jobs/" + jobID + "/results", Counts: event.Counts{Results: 10, Failed: 2}, Tokens: event.Tokens{Total: 1234},
		CollectedAt: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
}

func TestWantsAndText(t *testing.T) {
	ev := results("batch-a", event.StateSucceeded)
	cases := []struct {
		d    notify.Destination
		want bool
	}{
		{notify.Destination{}, true},
		{notify.Destination{Events: []string{"batch.*"}}, true},
		{notify.Destination{Events: []string{"video.*"}}, false},
		{notify.Destination{States: []string{"failed", "collect_failed"}}, false},
		{notify.Destination{States: []string{"collected"}}, true},
	}
	for i, c := range cases {
		if got := c.d.Wants(ev); got != c.want {
			t.Errorf("case %d: Wants = %v", i, got)
		}
	}
	if got, want := notify.Text(ev), "✅ batch batch-a succeeded — 10 results (2 failed), 1234 tokens · results: jobs/batch-a/results"; got != want {
		t.Errorf("Text = %q\nwant %q", got, want)
	}
	failed := results("batch-b", event.StateFailed)
	failed.Counts, failed.Tokens, failed.ResultsPath = event.Counts{}, event.Tokens{}, ""
	failed.Error = &event.JobError{Code: "INVALID_ARGUMENT", Message: "bad file"}
	if got := notify.Text(failed); got != "❌ batch batch-b failed: INVALID_ARGUMENT bad file · job: jobs/batch-b" {
		t.Errorf("Text(failed) = %q", got)
	}
}

// sink is a destination that counts what it receives and can be made to fail.
type sink struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
	hdrs   []http.Header
	fail   atomic.Bool
	delay  time.Duration
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(s.delay)
		if s.fail.Load() {
			http.Error(w, "down", 500)
			return
		}
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies, s.hdrs = append(s.bodies, string(b)), append(s.hdrs, r.Header.Clone())
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.bodies) }

func TestServiceOncePerEvent(t *testing.T) {
	fs, _ := testenv.Firestore(t)
	ctx := context.Background()
	slack, hook := newSink(t), newSink(t)
	secret := webhook.NewSecret()
	svc := &notify.Service{
		Destinations: []notify.Destination{
			{Name: "slack", URL: slack.URL, Format: notify.FormatSlack},
			{Name: "hook", URL: hook.URL, Format: notify.FormatWebhook, Secret: secret, States: []string{"succeeded"}},
		},
		Log: &notify.FirestoreLog{Client: fs},
	}
	ev := results("batch-once", event.StateSucceeded)

	// The webhook destination is down: slack is notified, the call fails.
	hook.fail.Store(true)
	if _, err := svc.Handle(ctx, ev); !errors.Is(err, notify.ErrDestination) {
		t.Fatalf("err = %v, want ErrDestination", err)
	}
	// Redelivery after recovery: only the failed destination is sent to.
	hook.fail.Store(false)
	out, err := svc.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(out); got != `[{"destination":"slack","result":"duplicate"},{"destination":"hook","result":"sent"}]` {
		t.Errorf("outcomes = %s", got)
	}
	// And again: nothing is sent.
	svc.Handle(ctx, ev)
	if slack.count() != 1 || hook.count() != 1 {
		t.Fatalf("sends slack=%d hook=%d, want 1 and 1", slack.count(), hook.count())
	}
	var slackMsg map[string]string
	json.Unmarshal([]byte(slack.bodies[0]), &slackMsg)
	if !strings.HasPrefix(slackMsg["text"], "✅ batch batch-once succeeded") {
		t.Errorf("slack body = %s", slack.bodies[0])
	}
	// The generic webhook is signed with our Standard Webhooks signer.
	src, _ := webhook.StaticSecrets(secret)
	v, _ := webhook.NewHMACVerifier(src, webhook.HMACOptions{})
	d, err := v.Verify(ctx, []byte(hook.bodies[0]), hook.hdrs[0])
	if err != nil || d.ID != ev.EventID {
		t.Errorf("webhook signature: %+v %v", d, err)
	}

	// A failed job is not sent to the hook (state filter).
	out, _ = svc.Handle(ctx, results("batch-other", event.StateFailed))
	if mustJSON(out) != `[{"destination":"slack","result":"sent"},{"destination":"hook","result":"skipped"}]` {
		t.Errorf("outcomes = %s", mustJSON(out))
	}
}

func TestConcurrentRedeliveries(t *testing.T) {
	fs, _ := testenv.Firestore(t)
	s := newSink(t)
	s.delay = 200 * time.Millisecond
	svc := &notify.Service{Destinations: []notify.Destination{{Name: "w", URL: s.URL, Format: notify.FormatWebhook}},
		Log: &notify.FirestoreLog{Client: fs}}
	ev := results("batch-conc", event.StateSucceeded)
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); svc.Handle(context.Background(), ev) }()
	}
	wg.Wait()
	svc.Handle(context.Background(), ev)
	if s.count() != 1 {
		t.Errorf("sent %d times, want 1", s.count())
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
