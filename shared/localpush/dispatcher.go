package localpush

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/geminihooks/geminihooks/shared/topology"
	"github.com/geminihooks/geminihooks/shared/tracing"
)

// Attribute names production Pub/Sub adds to a dead-lettered message.
const (
	AttrDeadLetterDeliveryCount       = "CloudPubSubDeadLetterSourceDeliveryCount"
	AttrDeadLetterSubscription        = "CloudPubSubDeadLetterSourceSubscription"
	AttrDeadLetterSubscriptionProject = "CloudPubSubDeadLetterSourceSubscriptionProject"
	AttrDeadLetterTopicPublishTime    = "CloudPubSubDeadLetterSourceTopicPublishTime"
)

// userAgent is what production push requests carry.
const userAgent = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"

// ErrInvalidOptions is wrapped by New when Options or the topology cannot work.
var ErrInvalidOptions = errors.New("localpush: invalid options")

// Options configures a Dispatcher. The zero value of every field except
// FunctionURL has a usable default.
type Options struct {
	// Project is the project of all topics and subscriptions.
	// Default: the client's project.
	Project string
	// Topology lists the topics and push subscriptions to emulate.
	// Default: topology.Default("").
	Topology *topology.Topology
	// FunctionURL returns the push endpoint of a function entry point, e.g.
	// "http://127.0.0.1:8090/Collector". Required.
	FunctionURL func(function string) string
	// HTTPClient sends the push requests. Its own Timeout should be zero or
	// longer than every ack deadline, since the ack deadline is applied per
	// request. Default: a client with http.DefaultTransport and no timeout.
	HTTPClient *http.Client
	// Logger receives one record per failed attempt and dead letter.
	// Default: slog.Default().
	Logger *slog.Logger
	// OnAttempt, when set, is called after every push attempt, once the
	// outcome is decided (for Retried: before the backoff wait), from the
	// goroutine that handles the message, so calls for one message or
	// ordering key are sequential. It must not block for long.
	OnAttempt func(Attempt)
	// TimeScale multiplies every retry backoff, so tests can run the
	// production policy quickly (0.001 turns 10s into 10ms). The ack deadline
	// is not scaled; use a topology with short deadlines instead.
	// Default (0 or negative): 1.
	TimeScale float64
}

// Outcome is what the dispatcher did with a message after an attempt.
type Outcome int

const (
	// Acked: the function answered 2xx; the message is acknowledged.
	Acked Outcome = iota + 1
	// Retried: the attempt failed; the message is nacked after Attempt.Backoff.
	Retried
	// DeadLettered: the last allowed attempt failed; a copy went to the
	// dead-letter topic and the original was acknowledged.
	DeadLettered
	// Abandoned: the dispatcher stopped during the attempt; the message is
	// nacked at once and the attempt is not counted as a failure.
	Abandoned
)

func (o Outcome) String() string {
	switch o {
	case Acked:
		return "acked"
	case Retried:
		return "retried"
	case DeadLettered:
		return "dead-lettered"
	case Abandoned:
		return "abandoned"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Attempt describes one push attempt.
type Attempt struct {
	Subscription    string // subscription id
	Function        string // entry point pushed to
	MessageID       string
	OrderingKey     string
	DeliveryAttempt int           // 1 on the first attempt for this subscription
	StatusCode      int           // HTTP status; 0 when no response arrived
	Err             error         // why the attempt failed; nil when acked
	Latency         time.Duration // time until the response or failure
	Outcome         Outcome
	// TraceID is the trace the message carries in its googclient_traceparent
	// attribute (shared/tracing), which production push delivers in the
	// body's attributes as this dispatcher does; "" when it has none.
	TraceID string
	// Backoff is the production (unscaled) delay before redelivery when
	// Outcome is Retried; the dispatcher waits Backoff×TimeScale.
	Backoff time.Duration
}

// SubscriptionStats counts what happened on one subscription.
type SubscriptionStats struct {
	Delivered      int64 // push requests sent
	Acked          int64 // messages acknowledged after a 2xx
	FailedAttempts int64 // attempts that failed (including the last one before dead-lettering)
	DeadLettered   int64 // messages forwarded to the dead-letter topic
}

// Dispatcher delivers messages from pstest subscriptions to functions the way
// production push subscriptions do. Create it with New, call Setup, then Run.
type Dispatcher struct {
	client *pubsub.Client
	opts   Options
	top    topology.Topology
	subs   []*worker

	dlqMu   sync.Mutex
	dlqPubs map[string]*pubsub.Publisher
}

type worker struct {
	d   *Dispatcher
	sub topology.Subscription

	mu       sync.Mutex
	attempts map[string]int // message id → attempts made so far

	delivered, acked, failed, deadLettered atomic.Int64
}

// New checks opts and returns a Dispatcher using client. It creates nothing
// in Pub/Sub; see Setup.
func New(client *pubsub.Client, opts Options) (*Dispatcher, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidOptions)
	}
	if opts.FunctionURL == nil {
		return nil, fmt.Errorf("%w: FunctionURL is required", ErrInvalidOptions)
	}
	if opts.Project == "" {
		opts.Project = client.Project()
	}
	top := topology.Default("")
	if opts.Topology != nil {
		top = *opts.Topology
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TimeScale <= 0 {
		opts.TimeScale = 1
	}
	d := &Dispatcher{client: client, opts: opts, top: top, dlqPubs: map[string]*pubsub.Publisher{}}
	seen := map[string]bool{}
	for _, s := range top.Subscriptions {
		switch {
		case s.Name == "" || s.Topic == "" || s.Function == "":
			return nil, fmt.Errorf("%w: subscription %+v needs Name, Topic and Function", ErrInvalidOptions, s)
		case seen[s.Name]:
			return nil, fmt.Errorf("%w: subscription %s listed twice", ErrInvalidOptions, s.Name)
		case s.AckDeadline <= 0:
			return nil, fmt.Errorf("%w: subscription %s: ack deadline must be positive", ErrInvalidOptions, s.Name)
		case s.MinBackoff < 0 || s.MaxBackoff < s.MinBackoff:
			return nil, fmt.Errorf("%w: subscription %s: backoff %v..%v", ErrInvalidOptions, s.Name, s.MinBackoff, s.MaxBackoff)
		case s.MaxDeliveryAttempts < 0 || (s.MaxDeliveryAttempts > 0 && s.DeadLetterTopic == ""):
			return nil, fmt.Errorf("%w: subscription %s: dead-letter policy needs attempts > 0 and a topic", ErrInvalidOptions, s.Name)
		}
		seen[s.Name] = true
		d.subs = append(d.subs, &worker{d: d, sub: s, attempts: map[string]int{}})
	}
	return d, nil
}

// DeadLetterHoldSubscription names the pull subscription Setup attaches to a
// dead-letter topic so dead letters are kept for inspection.
func DeadLetterHoldSubscription(deadLetterTopic string) string { return deadLetterTopic + "-hold" }

func (d *Dispatcher) topicPath(id string) string {
	return "projects/" + d.opts.Project + "/topics/" + id
}
func (d *Dispatcher) subPath(id string) string {
	return "projects/" + d.opts.Project + "/subscriptions/" + id
}

// deadLetterTopics lists the dead-letter topics in topology order.
func (d *Dispatcher) deadLetterTopics() []string {
	var out []string
	seen := map[string]bool{}
	add := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, t := range d.top.Topics {
		if t.DeadLetter {
			add(t.Name)
		}
	}
	for _, s := range d.top.Subscriptions {
		if s.MaxDeliveryAttempts > 0 {
			add(s.DeadLetterTopic)
		}
	}
	return out
}

// Setup creates every topic, subscription and dead-letter hold subscription
// that does not exist yet. Existing ones are left as they are, so Setup is
// idempotent; errors other than AlreadyExists are returned and retrying
// helps only if the server was unavailable.
func (d *Dispatcher) Setup(ctx context.Context) error {
	topics := map[string]bool{}
	var order []string
	for _, t := range d.top.Topics {
		order = append(order, t.Name)
	}
	for _, s := range d.top.Subscriptions {
		order = append(order, s.Topic)
	}
	order = append(order, d.deadLetterTopics()...)
	for _, t := range order {
		if topics[t] {
			continue
		}
		topics[t] = true
		_, err := d.client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: d.topicPath(t)})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("localpush: create topic %s: %w", t, err)
		}
	}
	for _, w := range d.subs {
		s := w.sub
		// No DeadLetterPolicy and no RetryPolicy: the dispatcher implements
		// both (see the package doc for pstest's dead-letter bug).
		err := d.createSubscription(ctx, &pubsubpb.Subscription{
			Name:                  d.subPath(s.Name),
			Topic:                 d.topicPath(s.Topic),
			Filter:                s.Filter,
			EnableMessageOrdering: s.Ordered,
			AckDeadlineSeconds:    pstestAckDeadline(s.AckDeadline),
		})
		if err != nil {
			return err
		}
	}
	for _, t := range d.deadLetterTopics() {
		err := d.createSubscription(ctx, &pubsubpb.Subscription{
			Name:                     d.subPath(DeadLetterHoldSubscription(t)),
			Topic:                    d.topicPath(t),
			AckDeadlineSeconds:       60,
			MessageRetentionDuration: durationpb.New(7 * 24 * time.Hour),
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *Dispatcher) createSubscription(ctx context.Context, s *pubsubpb.Subscription) error {
	_, err := d.client.SubscriptionAdminClient.CreateSubscription(ctx, s)
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("localpush: create subscription %s: %w", s.Name, err)
	}
	return nil
}

// pstestAckDeadline clamps to the 10..600s range Pub/Sub accepts; the
// dispatcher enforces the exact deadline on the HTTP request itself.
func pstestAckDeadline(d time.Duration) int32 {
	secs := int32(d / time.Second)
	return min(max(secs, 10), 600)
}

// Run calls Setup and then delivers messages until ctx is done. It returns
// nil after ctx is cancelled and every in-flight message has been acked or
// nacked, or the first error from Setup or a subscription's Receive (which
// stops the others too).
func (d *Dispatcher) Run(ctx context.Context) error {
	if err := d.Setup(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before delivery began
		}
		return err
	}
	defer d.stopPublishers()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(d.subs))
	var wg sync.WaitGroup
	for _, w := range d.subs {
		wg.Go(func() {
			sub := d.client.Subscriber(d.subPath(w.sub.Name))
			if err := sub.Receive(ctx, w.handle); err != nil {
				errs <- fmt.Errorf("localpush: receive %s: %w", w.sub.Name, err)
				cancel()
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when the channel is empty
}

func (d *Dispatcher) stopPublishers() {
	d.dlqMu.Lock()
	defer d.dlqMu.Unlock()
	for t, p := range d.dlqPubs {
		p.Stop()
		delete(d.dlqPubs, t)
	}
}

// Stats returns the counters per subscription id.
func (d *Dispatcher) Stats() map[string]SubscriptionStats {
	out := make(map[string]SubscriptionStats, len(d.subs))
	for _, w := range d.subs {
		out[w.sub.Name] = SubscriptionStats{
			Delivered:      w.delivered.Load(),
			Acked:          w.acked.Load(),
			FailedAttempts: w.failed.Load(),
			DeadLettered:   w.deadLettered.Load(),
		}
	}
	return out
}

// DrainDeadLetters pulls and acknowledges every message currently held for
// the dead-letter topic deadLetterTopic (an id) and returns them in pull
// order. Messages dead-lettered later stay held for the next call.
func (d *Dispatcher) DrainDeadLetters(ctx context.Context, deadLetterTopic string) ([]*pubsubpb.PubsubMessage, error) {
	sub := d.subPath(DeadLetterHoldSubscription(deadLetterTopic))
	var out []*pubsubpb.PubsubMessage
	for {
		// ReturnImmediately is deprecated for production use; against pstest it
		// is what lets a drain end instead of waiting for new messages.
		//lint:ignore SA1019 see above
		resp, err := d.client.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{
			Subscription: sub, MaxMessages: 1000, ReturnImmediately: true,
		})
		if err != nil {
			return out, fmt.Errorf("localpush: pull %s: %w", sub, err)
		}
		if len(resp.ReceivedMessages) == 0 {
			return out, nil
		}
		ackIDs := make([]string, 0, len(resp.ReceivedMessages))
		for _, rm := range resp.ReceivedMessages {
			out = append(out, rm.Message)
			ackIDs = append(ackIDs, rm.AckId)
		}
		err = d.client.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: ackIDs})
		if err != nil {
			return out, fmt.Errorf("localpush: acknowledge %s: %w", sub, err)
		}
	}
}

func (d *Dispatcher) deadLetterPublisher(topic string) *pubsub.Publisher {
	d.dlqMu.Lock()
	defer d.dlqMu.Unlock()
	p, ok := d.dlqPubs[topic]
	if !ok {
		p = d.client.Publisher(d.topicPath(topic))
		p.EnableMessageOrdering = true
		d.dlqPubs[topic] = p
	}
	return p
}

// backoff is the production RETRY delay after the n-th failed attempt.
func backoff(s topology.Subscription, n int) time.Duration {
	b := s.MinBackoff
	for i := 1; i < n && b < s.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, s.MaxBackoff)
}

func (w *worker) nextAttempt(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts[id]++
	return w.attempts[id]
}

func (w *worker) forget(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.attempts, id)
}

// handle is the Receive callback: one push attempt per call.
func (w *worker) handle(ctx context.Context, m *pubsub.Message) {
	d, s := w.d, w.sub
	n := w.nextAttempt(m.ID)
	att := Attempt{Subscription: s.Name, Function: s.Function, MessageID: m.ID, OrderingKey: m.OrderingKey, DeliveryAttempt: n,
		TraceID: tracing.TraceID(m.Attributes)}
	report := func() {
		if d.opts.OnAttempt != nil {
			d.opts.OnAttempt(att)
		}
	}

	start := time.Now()
	att.StatusCode, att.Err = w.push(ctx, m, n)
	att.Latency = time.Since(start)
	w.delivered.Add(1)
	log := d.opts.Logger.With("subscription", s.Name, "function", s.Function, "message_id", m.ID, "delivery_attempt", n)

	if ctx.Err() != nil {
		// Shutting down: not the function's fault, so the attempt is not counted.
		w.mu.Lock()
		w.attempts[m.ID]--
		w.mu.Unlock()
		att.Outcome = Abandoned
		m.Nack()
		report()
		return
	}
	if att.Err == nil {
		w.forget(m.ID)
		w.acked.Add(1)
		att.Outcome = Acked
		m.Ack()
		report()
		return
	}
	w.failed.Add(1)

	if s.MaxDeliveryAttempts > 0 && n >= s.MaxDeliveryAttempts {
		err := w.deadLetter(ctx, m, n)
		if err == nil {
			w.forget(m.ID)
			w.deadLettered.Add(1)
			att.Outcome = DeadLettered
			log.Warn("localpush: message dead-lettered", "dead_letter_topic", s.DeadLetterTopic, "error", att.Err)
			m.Ack()
			report()
			return
		}
		// Like production's best-effort forwarding: keep retrying the
		// message and try to dead-letter it again after the next failure.
		log.Error("localpush: dead-letter publish failed; will retry the message", "dead_letter_topic", s.DeadLetterTopic, "error", err)
	}

	att.Outcome = Retried
	att.Backoff = backoff(s, n)
	log.Warn("localpush: push attempt failed", "status", att.StatusCode, "error", att.Err, "backoff", att.Backoff)
	report()
	// Hold the message for the backoff, then nack: pstest keeps later
	// messages of its ordering key back while it is outstanding.
	t := time.NewTimer(time.Duration(float64(att.Backoff) * d.opts.TimeScale))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	m.Nack()
}

// push POSTs the envelope and returns the status code and, unless the
// function answered 2xx in time, why the attempt failed.
func (w *worker) push(ctx context.Context, m *pubsub.Message, n int) (int, error) {
	d, s := w.d, w.sub
	attempt := n
	if s.MaxDeliveryAttempts == 0 {
		attempt = 0 // production sends deliveryAttempt only with a dead-letter policy
	}
	body, err := Encode(m, d.subPath(s.Name), attempt)
	if err != nil {
		return 0, fmt.Errorf("encode push body: %w", err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.AckDeadline,
		fmt.Errorf("no response within the ack deadline %v", s.AckDeadline))
	defer cancel()
	url := d.opts.FunctionURL(s.Function)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("push request for %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := d.opts.HTTPClient.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return 0, fmt.Errorf("push to %s: %w", url, cause)
		}
		return 0, fmt.Errorf("push to %s: %w", url, err)
	}
	defer resp.Body.Close()
	// The response body is part of the request in production too: the
	// deadline covers reading it.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return resp.StatusCode, fmt.Errorf("push to %s: read response: %w", url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("push to %s: HTTP %d", url, resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// deadLetter publishes the production-shaped dead-letter copy of m and waits
// until the server has it.
func (w *worker) deadLetter(ctx context.Context, m *pubsub.Message, attempts int) error {
	d, s := w.d, w.sub
	attrs := make(map[string]string, len(m.Attributes)+4)
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	attrs[AttrDeadLetterDeliveryCount] = strconv.Itoa(attempts)
	attrs[AttrDeadLetterSubscription] = s.Name
	attrs[AttrDeadLetterSubscriptionProject] = d.opts.Project
	attrs[AttrDeadLetterTopicPublishTime] = m.PublishTime.UTC().Format(time.RFC3339Nano)
	p := d.deadLetterPublisher(s.DeadLetterTopic)
	_, err := p.Publish(ctx, &pubsub.Message{Data: m.Data, Attributes: attrs, OrderingKey: m.OrderingKey}).Get(ctx)
	if err != nil {
		if m.OrderingKey != "" {
			p.ResumePublish(m.OrderingKey)
		}
		return fmt.Errorf("publish dead letter to %s: %w", s.DeadLetterTopic, err)
	}
	return nil
}

// FunctionsAt returns an Options.FunctionURL for functions served together
// at base/<EntryPoint>, as funcframework does without FUNCTION_TARGET.
func FunctionsAt(base string) func(function string) string {
	base = strings.TrimSuffix(base, "/")
	return func(function string) string { return base + "/" + function }
}
