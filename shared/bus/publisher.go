package bus

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"go.opentelemetry.io/otel/codes"

	"github.com/geminihooks/geminihooks/shared/tracing"
)

// Message is what a domain package publishes.
type Message struct {
	Data        []byte
	Attributes  map[string]string
	OrderingKey string
}

// Publisher publishes to one topic and returns the server-assigned message id
// once the server has accepted the message.
type Publisher interface {
	Publish(ctx context.Context, m Message) (id string, err error)
}

// PubSubPublisher is a [Publisher] for one Pub/Sub topic, with message
// ordering enabled. It is safe for concurrent use; create one per topic per
// instance and [PubSubPublisher.Stop] it on shutdown.
type PubSubPublisher struct {
	p    *pubsub.Publisher
	once sync.Once
}

// NewPubSubPublisher returns a publisher for topic (an id or a full
// "projects/P/topics/T" name). DelayThreshold is lowered from the library
// default because the Receiver publishes one message per request and waits
// for it.
func NewPubSubPublisher(c *pubsub.Client, topic string) *PubSubPublisher {
	p := c.Publisher(topic)
	p.EnableMessageOrdering = true
	p.PublishSettings.DelayThreshold = pubsub.DefaultPublishSettings.DelayThreshold / 10
	return &PubSubPublisher{p: p}
}

// Publish sends m and waits for the server's acknowledgement. An error may
// hide a message that was in fact published (retry is safe: consumers
// de-duplicate). After a failed publish with an ordering key, publishing on
// that key is resumed so the next attempt can go through.
//
// The message carries the trace context of a "publish" span in its
// googclient_traceparent attribute (shared/tracing), so the consumers'
// spans join the publisher's trace.
func (p *PubSubPublisher) Publish(ctx context.Context, m Message) (string, error) {
	ctx, span := tracing.StartProducer(ctx, p.p.ID())
	defer span.End()
	res := p.p.Publish(ctx, &pubsub.Message{Data: m.Data, Attributes: withTraceContext(ctx, m.Attributes), OrderingKey: m.OrderingKey})
	id, err := res.Get(ctx)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		if m.OrderingKey != "" {
			p.p.ResumePublish(m.OrderingKey)
		}
		return "", fmt.Errorf("pubsub publish to %s: %w (retryable)", p.p.String(), err)
	}
	return id, nil
}

// WithTimeout bounds how long the client keeps trying to publish a
// message in the background (PublishSettings.Timeout, 60 s by default).
// A caller that answers "retry later" when its own deadline passes sets it
// to that deadline, so the abandoned attempt cannot still land after the
// caller's retry published the message. Call it before the first Publish.
func (p *PubSubPublisher) WithTimeout(d time.Duration) *PubSubPublisher {
	p.p.PublishSettings.Timeout = d
	return p
}

// maxAttributes is Pub/Sub's limit on attributes per message.
const maxAttributes = 100

// withTraceContext returns a copy of attrs with ctx's trace context added
// (attrs itself may be shared by the caller). A message that already has
// the most attributes Pub/Sub accepts goes without: a publish that can never
// succeed would cost more than a broken trace.
func withTraceContext(ctx context.Context, attrs map[string]string) map[string]string {
	out := make(map[string]string, len(attrs)+1)
	maps.Copy(out, attrs)
	if len(out) < maxAttributes {
		tracing.Inject(ctx, out)
	}
	return out
}

// Stop flushes pending messages and stops the publisher's goroutines.
func (p *PubSubPublisher) Stop() { p.once.Do(p.p.Stop) }
