package bus

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

const pushBodyExample = `{"message":{"attributes":{"event_type":"batch.succeeded"},"data":"aGVsbG8=",
"messageId":"123","message_id":"123","publishTime":"2026-11-29T20:00:00.123Z","publish_time":"2026-11-29T20:00:00.123Z",
"orderingKey":"batch-a"},"subscription":"projects/p/subscriptions/geminihooks-collector","deliveryAttempt":3}`

func TestDecodePush(t *testing.T) {
	want := PushMessage{Data: []byte("hello"), Attributes: map[string]string{"event_type": "batch.succeeded"},
		MessageID: "123", PublishTime: time.Date(2026, 11, 29, 20, 0, 0, 123e6, time.UTC), OrderingKey: "batch-a",
		DeliveryAttempt: 3, Subscription: "projects/p/subscriptions/geminihooks-collector"}
	tests := map[string]struct {
		ct, body string
		want     PushMessage
		wantErr  bool
	}{
		"plain push":          {ct: "application/json", body: pushBodyExample, want: want},
		"eventarc binary":     {ct: "application/json; charset=utf-8", body: pushBodyExample, want: want},
		"eventarc structured": {ct: "application/cloudevents+json", body: `{"specversion":"1.0","id":"123","data":` + pushBodyExample + `}`, want: want},
		"snake case only": {ct: "application/json",
			body: `{"message":{"data":"aGVsbG8=","message_id":"9","publish_time":"2026-11-29T20:00:00Z"}}`,
			want: PushMessage{Data: []byte("hello"), MessageID: "9", Attributes: map[string]string{}, PublishTime: time.Date(2026, 11, 29, 20, 0, 0, 0, time.UTC)}},
		"not json":          {ct: "application/json", body: `{`, wantErr: true},
		"no message id":     {ct: "application/json", body: `{"message":{"data":"aGVsbG8="}}`, wantErr: true},
		"bad base64":        {ct: "application/json", body: `{"message":{"data":"***","messageId":"1"}}`, wantErr: true},
		"bad publish time":  {ct: "application/json", body: `{"message":{"messageId":"1","publishTime":"noon"}}`, wantErr: true},
		"structured broken": {ct: "application/cloudevents+json", body: `{"data":`, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewBufferString(tc.body))
			r.Header.Set("Content-Type", tc.ct)
			got, err := DecodePush(r)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidPush) {
					t.Fatalf("err = %v, want ErrInvalidPush", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Data) != string(tc.want.Data) || got.MessageID != tc.want.MessageID || !got.PublishTime.Equal(tc.want.PublishTime) ||
				got.OrderingKey != tc.want.OrderingKey || got.DeliveryAttempt != tc.want.DeliveryAttempt ||
				got.Subscription != tc.want.Subscription || len(got.Attributes) != len(tc.want.Attributes) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	m := PushMessage{Data: []byte{0, 1, 2}, Attributes: map[string]string{"a": "b"}, MessageID: "m1",
		PublishTime: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), OrderingKey: "k", DeliveryAttempt: 2, Subscription: "s"}
	got, err := DecodePushBody(EncodePushBody(m))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data, m.Data) || got.Attributes["a"] != "b" || got.MessageID != "m1" || !got.PublishTime.Equal(m.PublishTime) ||
		got.OrderingKey != "k" || got.DeliveryAttempt != 2 || got.Subscription != "s" {
		t.Errorf("round trip: %+v", got)
	}
}

func FuzzDecodePushBody(f *testing.F) {
	f.Add([]byte(pushBodyExample))
	f.Add([]byte(`{"message":{"messageId":"1"}}`))
	f.Add([]byte(`{"message":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := DecodePushBody(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidPush) {
				t.Fatalf("error not ErrInvalidPush: %v", err)
			}
			return
		}
		if m.MessageID == "" || m.Attributes == nil {
			t.Fatalf("accepted push without id or attributes map: %+v", m)
		}
		again, err := DecodePushBody(EncodePushBody(m))
		if err != nil || again.MessageID != m.MessageID || !bytes.Equal(again.Data, m.Data) {
			t.Fatalf("re-encode unstable: %v", err)
		}
	})
}

// TestPublishLeavesFullAttributesAlone: the trace context never pushes a
// message over Pub/Sub's 100-attribute limit.
func TestPublishLeavesFullAttributesAlone(t *testing.T) {
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))
	for _, n := range []int{0, 99, 100} {
		attrs := map[string]string{}
		for i := range n {
			attrs["label_"+strconv.Itoa(i)] = "v"
		}
		p := &MemoryPublisher{}
		if _, err := p.Publish(ctx, Message{Attributes: attrs}); err != nil {
			t.Fatal(err)
		}
		got := p.Messages()[0].Attributes
		_, traced := got["googclient_traceparent"]
		if len(got) > 100 || traced != (n < 100) || len(attrs) != n {
			t.Errorf("%d attributes: published %d (traced %v), caller's map now %d", n, len(got), traced, len(attrs))
		}
	}
}
