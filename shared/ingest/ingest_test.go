package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

type failingPublisher struct{ err error }

func (p failingPublisher) Publish(context.Context, bus.Message) (string, error) { return "", p.err }

// failingMark simulates a ledger whose publish mark fails after publishing.
type failingMark struct{ *ledger.Memory }

func (failingMark) MarkPublished(context.Context, string, string) error {
	return errors.New("injected")
}

func TestHandle(t *testing.T) {
	ctx := context.Background()
	body := []byte(`{"type":"batch.succeeded","version":"v1","timestamp":"2026-11-29T10:00:00Z","data":{"id":"batches/q"}}`)

	t.Run("accepted then duplicate", func(t *testing.T) {
		l, p := ledger.NewMemory(ledger.Options{}), &bus.MemoryPublisher{}
		s := &ingest.Service{Ledger: l, Publisher: p}
		r, err := s.Handle(ctx, ingest.Delivery{WebhookID: "w1", Scheme: "hmac", Body: body})
		if err != nil || r.Status != ingest.StatusAccepted || r.JobID != "batch-q" || r.MessageID != "1" {
			t.Fatalf("first = %+v, %v", r, err)
		}
		r, err = s.Handle(ctx, ingest.Delivery{WebhookID: "w1", Scheme: "hmac", Body: body})
		if err != nil || r.Status != ingest.StatusDuplicate {
			t.Fatalf("second = %+v, %v", r, err)
		}
		msgs := p.Messages()
		if len(msgs) != 1 || msgs[0].OrderingKey != "batch-q" || msgs[0].Attributes[event.AttrWebhookID] != "w1" {
			t.Fatalf("messages = %+v", msgs)
		}
		var ev event.JobEvent
		if err := json.Unmarshal(msgs[0].Data, &ev); err != nil || ev.State != event.StateSucceeded {
			t.Fatalf("event = %+v, %v", ev, err)
		}
	})

	t.Run("missing webhook id derives one from the body", func(t *testing.T) {
		s := &ingest.Service{Ledger: ledger.NewMemory(ledger.Options{}), Publisher: &bus.MemoryPublisher{}}
		a, _ := s.Handle(ctx, ingest.Delivery{Body: body})
		b, _ := s.Handle(ctx, ingest.Delivery{Body: body})
		if a.WebhookID == "" || a.WebhookID != b.WebhookID || b.Status != ingest.StatusDuplicate {
			t.Errorf("a=%+v b=%+v", a, b)
		}
	})

	t.Run("publish failure is retryable and releases the lease", func(t *testing.T) {
		l := ledger.NewMemory(ledger.Options{})
		s := &ingest.Service{Ledger: l, Publisher: failingPublisher{errors.New("down")}}
		if _, err := s.Handle(ctx, ingest.Delivery{WebhookID: "w2", Body: body}); !errors.Is(err, ingest.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		p := &bus.MemoryPublisher{}
		s.Publisher = p
		if r, err := s.Handle(ctx, ingest.Delivery{WebhookID: "w2", Body: body}); err != nil || r.Status != ingest.StatusAccepted {
			t.Fatalf("retry = %+v, %v (lease not released?)", r, err)
		}
		if len(p.Messages()) != 1 {
			t.Errorf("retry published %d", len(p.Messages()))
		}
	})

	t.Run("in flight", func(t *testing.T) {
		l := ledger.NewMemory(ledger.Options{})
		ev := event.JobEvent{WebhookID: "w3", Type: "batch.succeeded", JobID: "batch-q", State: event.StateSucceeded}
		if _, err := l.Record(ctx, ev, "hmac"); err != nil { // another attempt holds the lease
			t.Fatal(err)
		}
		s := &ingest.Service{Ledger: l, Publisher: &bus.MemoryPublisher{}}
		if _, err := s.Handle(ctx, ingest.Delivery{WebhookID: "w3", Body: body}); !errors.Is(err, ingest.ErrInFlight) {
			t.Fatalf("err = %v, want ErrInFlight", err)
		}
	})

	t.Run("mark failure after publish still succeeds", func(t *testing.T) {
		p := &bus.MemoryPublisher{}
		s := &ingest.Service{Ledger: failingMark{ledger.NewMemory(ledger.Options{})}, Publisher: p}
		if r, err := s.Handle(ctx, ingest.Delivery{WebhookID: "w4", Body: body}); err != nil || r.Status != ingest.StatusAccepted {
			t.Fatalf("= %+v, %v", r, err)
		}
	})

	t.Run("invalid bodies are recorded, not published", func(t *testing.T) {
		for name, b := range map[string]string{
			"not json": `{`, "no type": `{"data":{"id":"x"}}`, "empty id path": `{"type":"batch.succeeded","data":{"id":"batches/"}}`,
		} {
			l, p := ledger.NewMemory(ledger.Options{}), &bus.MemoryPublisher{}
			s := &ingest.Service{Ledger: l, Publisher: p}
			r, err := s.Handle(ctx, ingest.Delivery{WebhookID: "bad", Body: []byte(b)})
			if err != nil || r.Status != ingest.StatusInvalid {
				t.Errorf("%s: %+v, %v", name, r, err)
			}
			if d, err := l.GetDelivery(ctx, "bad"); err != nil || d.Status != ledger.StatusInvalid || string(d.Body) != b {
				t.Errorf("%s: delivery %+v, %v", name, d, err)
			}
			if len(p.Messages()) != 0 {
				t.Errorf("%s: published", name)
			}
		}
	})

	t.Run("clock is used for received_at", func(t *testing.T) {
		at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		p := &bus.MemoryPublisher{}
		s := &ingest.Service{Ledger: ledger.NewMemory(ledger.Options{}), Publisher: p, Now: func() time.Time { return at }}
		s.Handle(ctx, ingest.Delivery{WebhookID: "w5", Body: body})
		var ev event.JobEvent
		json.Unmarshal(p.Messages()[0].Data, &ev)
		if !ev.ReceivedAt.Equal(at) {
			t.Errorf("received_at = %v", ev.ReceivedAt)
		}
	})
}
