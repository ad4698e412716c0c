package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/notify"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

// TestNoRedirects: a destination answering with a redirect fails (so the
// event is retried and finally dead-lettered, visibly) and the host it
// points at receives nothing: not the body, not the signature.
func TestNoRedirects(t *testing.T) {
	fs, _ := testenv.Firestore(t)
	var stolen atomic.Int64
	var stolenSig atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		stolenSig.Store(r.Header.Get("webhook-signature"))
	}))
	t.Cleanup(other.Close)
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		for _, format := range []string{notify.FormatWebhook, notify.FormatSlack, notify.FormatChat} {
			redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+"/steal", code)
			}))
			t.Cleanup(redirector.Close)
			for _, client := range []*http.Client{nil, http.DefaultClient} {
				svc := &notify.Service{
					Destinations: []notify.Destination{{Name: "d", URL: redirector.URL, Format: format, Secret: webhook.NewSecret()}},
					Log:          &notify.FirestoreLog{Client: fs},
					HTTP:         client,
				}
				ev := results("batch-redirect-"+format, event.StateSucceeded)
				_, err := svc.Handle(context.Background(), ev)
				if !errors.Is(err, notify.ErrDestination) || !strings.Contains(err.Error(), "redirects are not followed") {
					t.Fatalf("%d %s client=%v: err = %v, want ErrDestination (redirect refused)", code, format, client != nil, err)
				}
			}
		}
	}
	if n := stolen.Load(); n != 0 {
		t.Fatalf("the redirect target received %d requests (signature %q)", n, stolenSig.Load())
	}
	if http.DefaultClient.CheckRedirect != nil {
		t.Fatal("the caller's client was modified")
	}
}

// TestRenderEscapesMarkup: what Gemini or a model wrote reaches Slack and
// Google Chat as text, never as a mention, a disguised link or an entity;
// the generic webhook gets it verbatim in JSON.
func TestRenderEscapesMarkup(t *testing.T) {
	tests := []struct {
		name      string
		message   string
		wantChat  string // substring of the Slack/Chat text
		notInChat []string
		inWebhook string
	}{
		{name: "channel ping", message: "<!channel> wake up", wantChat: "&lt;!channel&gt; wake up", notInChat: []string{"<!channel>"}, inWebhook: "<!channel> wake up"},
		{name: "here and everyone", message: "<!here> <!everyone>", wantChat: "&lt;!here&gt; &lt;!everyone&gt;", notInChat: []string{"<!here>", "<!everyone>"}},
		{name: "chat all mention", message: "<users/all>", wantChat: "&lt;users/all&gt;", notInChat: []string{"<users/all>"}},
		{name: "disguised link", message: "see <https://evil.example/x|your results>", wantChat: "see &lt;https://evil.example/x|your results&gt;", notInChat: []string{"<https://evil.example"}},
		{name: "ampersand", message: "a & b &lt; c", wantChat: "a &amp; b &amp;lt; c"},
		{name: "bare angle brackets", message: "x < y > z", wantChat: "x &lt; y &gt; z"},
		{name: "plain text unchanged", message: "quota exceeded", wantChat: "RESOURCE_EXHAUSTED quota exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := results("batch-x", event.StateFailed)
			ev.Error = &event.JobError{Code: "RESOURCE_EXHAUSTED", Message: tc.message}
			for _, format := range []string{notify.FormatSlack, notify.FormatChat} {
				var msg map[string]string
				if err := json.Unmarshal(notify.Render(notify.Destination{Format: format}, ev), &msg); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(msg["text"], tc.wantChat) {
					t.Errorf("%s text %q does not contain %q", format, msg["text"], tc.wantChat)
				}
				for _, bad := range tc.notInChat {
					if strings.Contains(msg["text"], bad) {
						t.Errorf("%s text %q contains live markup %q", format, msg["text"], bad)
					}
				}
			}
			if tc.inWebhook != "" {
				var body struct {
					Text string `json:"text"`
				}
				if err := json.Unmarshal(notify.Render(notify.Destination{Format: notify.FormatWebhook}, ev), &body); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(body.Text, tc.inWebhook) {
					t.Errorf("webhook text %q does not contain %q verbatim", body.Text, tc.inWebhook)
				}
			}
		})
	}
	// A job id is Gemini's too.
	ev := results("batch-<!channel>", event.StateSucceeded)
	var msg map[string]string
	_ = json.Unmarshal(notify.Render(notify.Destination{Format: notify.FormatSlack}, ev), &msg)
	if strings.Contains(msg["text"], "<!channel>") {
		t.Errorf("job id markup live in %q", msg["text"])
	}
}
