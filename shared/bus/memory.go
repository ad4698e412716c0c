package bus

import (
	"context"
	"strconv"
	"sync"

	"github.com/geminihooks/geminihooks/shared/tracing"
)

// MemoryPublisher is an in-process [Publisher] that keeps what it is given:
// for unit tests and for benchmarks of the code around publishing. It is safe
// for concurrent use.
type MemoryPublisher struct {
	mu   sync.Mutex
	msgs []Message
}

// Publish records m and returns a sequential id.
func (p *MemoryPublisher) Publish(ctx context.Context, m Message) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	// Like PubSubPublisher: a publish span whose context the message carries.
	ctx, span := tracing.StartProducer(ctx, "memory")
	defer span.End()
	m.Attributes = withTraceContext(ctx, m.Attributes)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, m)
	return strconv.Itoa(len(p.msgs)), nil
}

// Messages returns a copy of everything published so far.
func (p *MemoryPublisher) Messages() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Message(nil), p.msgs...)
}
