package receiver_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// A signed delivery that can never be processed is answered 2xx once,
// recorded as invalid with a bounded reason, and never published: a 5xx
// would make Gemini retry it for 24 hours, a panic likewise.
func TestNeverLoopOnTheImpossible(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("a", 40<<10)
	tests := []struct {
		name, webhookID, body string
	}{
		{"timestamp before year 1", "msg_ts0", `{"type":"batch.succeeded","timestamp":"0000-01-01T00:00:00+01:00","data":{"id":"batches/t0"}}`},
		{"timestamp after year 9999", "msg_ts1", `{"type":"batch.succeeded","timestamp":"9999-12-31T23:59:59-01:00","data":{"id":"batches/t1"}}`},
		{"job id beyond the ordering key limit", "msg_longid", `{"type":"batch.succeeded","data":{"id":"batches/` + long + `"}}`},
		{"event type beyond limits", "msg_longtype", `{"type":"batch.` + strings.Repeat("x", 200) + `","data":{"id":"b"}}`},
		{"event type with control characters", "msg_ctl", `{"type":"batch.succeeded\u0000","data":{"id":"b"}}`},
		{"family that is not a word", "msg_kind", `{"type":"__x.y","data":{"id":"__"}}`},
		{"family with slashes", "msg_kind2", `{"type":"a/b.c","data":{"id":"x"}}`},
		{"webhook-id beyond limits", strings.Repeat("w", 300), `{"type":"batch.succeeded","data":{"id":"batches/w1"}}`},
		{"webhook-id not UTF-8", "msg_\xff\xfe", `{"type":"batch.succeeded","data":{"id":"batches/w2"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			for attempt := 1; attempt <= 2; attempt++ {
				code, res := f.post(t, body, f.signed(tc.webhookID, body))
				if code != 200 || res["status"] != "invalid" {
					t.Fatalf("attempt %d: %d %v, want 200 invalid", attempt, code, res)
				}
			}
			d, err := f.store.GetDelivery(context.Background(), tc.webhookID)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != ledger.StatusInvalid || d.Attempts != 2 || d.Reason == "" || len(d.Reason) > event.MaxReasonBytes ||
				!utf8.ValidString(d.Reason) || !utf8.ValidString(d.WebhookID) || len(d.WebhookID) > event.MaxWebhookIDBytes {
				t.Errorf("delivery = status %q attempts %d reason %q (%d bytes)", d.Status, d.Attempts, event.Bound(d.Reason, 80), len(d.Reason))
			}
		})
	}
	if n := len(f.published()); n != 0 {
		t.Errorf("published %d messages, want 0", n)
	}
}

// A webhook.ping proves the endpoint works; it is recorded, never a job
// and never published.
func TestPingIsRecordedNotAJob(t *testing.T) {
	f := newFixture(t)
	body := []byte(`{"type":"webhook.ping","data":{"id":"k0h9q38f6ejj1g9j7cgcdsauadmbewegl79f"}}`)
	code, res := f.post(t, body, f.signed("msg_ping", body))
	if code != 200 || res["status"] != "ping" {
		t.Fatalf("ping = %d %v", code, res)
	}
	if d, err := f.store.GetDelivery(context.Background(), "msg_ping"); err != nil || d.Status != ledger.StatusPing {
		t.Errorf("delivery = %+v, %v", d, err)
	}
	if jobs, _ := f.store.ListJobs(context.Background(), "", 10); len(jobs) != 0 {
		t.Errorf("ping created jobs: %+v", jobs)
	}
	if n := len(f.published()); n != 0 {
		t.Errorf("published %d messages, want 0", n)
	}
}
