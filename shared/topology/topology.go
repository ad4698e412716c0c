// Package topology is the single source of truth for the Pub/Sub topic and
// subscription names and push-delivery settings of geminihooks.
//
// The local stack (shared/localpush, shared/devstack) builds its topics and
// subscriptions from Default, and the Terraform variable defaults in
// terraform/variables.tf mirror the same values; a test in this package
// fails when the two drift apart.
package topology

import (
	"fmt"
	"time"
)

// DefaultPrefix is the name prefix used when Default is given "".
// It matches the Terraform variable name_prefix's default.
const DefaultPrefix = "geminihooks"

// Function entry points that receive push deliveries. They match the
// functions.HTTP registrations in functions/* and the entry_point values in
// Terraform.
const (
	FunctionCollector = "Collector"
	FunctionNotifier  = "Notifier"
	FunctionWorkflow  = "Workflow"
)

// Push and retry settings shared by Default and the Terraform defaults.
const (
	// CollectorAckDeadline is long because the Collector downloads batch
	// results and videos within one push request; Pub/Sub allows at most 600s.
	CollectorAckDeadline = 600 * time.Second
	// ConsumerAckDeadline applies to the results consumers, which only do
	// Firestore reads and small writes.
	ConsumerAckDeadline = 60 * time.Second
	// WorkflowAckDeadline covers the Workflow function's 110 s timeout: a
	// step submission holds its claim for 2 minutes and each Gemini call is
	// bounded at 60 s.
	WorkflowAckDeadline = 120 * time.Second
	// MinBackoff and MaxBackoff are the subscriptions' RETRY policy bounds.
	MinBackoff = 10 * time.Second
	MaxBackoff = 600 * time.Second
	// MaxDeliveryAttempts is the dead-letter policy's limit (Pub/Sub accepts
	// 5..100). Consumers read the same number from MAX_DELIVERY_ATTEMPTS.
	MaxDeliveryAttempts = 5
)

// Handler deadlines: each function bounds its own work by these, so it
// answers (with a status that makes the sender retry, when it ran out)
// before its platform timeout (Terraform locals.tf) and before its push
// subscription's ack deadline would make Pub/Sub redeliver a message still
// being handled.
const (
	// ReceiverDeadline keeps a webhook's answer within Gemini's "a few
	// seconds" and far below the Receiver's 30 s timeout, also when
	// Firestore or Pub/Sub hang.
	ReceiverDeadline = 8 * time.Second
	// CollectorDeadline is below the Collector's 540 s timeout and its
	// 600 s ack deadline.
	CollectorDeadline = 480 * time.Second
	// ConsumerDeadline is below the Notifier's 50 s timeout and 60 s ack deadline.
	ConsumerDeadline = 45 * time.Second
	// WorkflowDeadline is below the Workflow's 110 s timeout and 120 s ack
	// deadline, with room for recording a run's failure after it.
	WorkflowDeadline = 95 * time.Second
	// ReconcilerDeadline bounds one sweep, below the Reconciler's 300 s
	// timeout and Cloud Scheduler's 320 s attempt deadline (Terraform).
	ReconcilerDeadline = 240 * time.Second
)

// Topic is one Pub/Sub topic.
type Topic struct {
	// Name is the topic id (not the projects/P/topics/ path).
	Name string
	// DeadLetter marks a topic that only receives dead-lettered messages.
	DeadLetter bool
}

// Subscription is one push subscription and the function it delivers to.
type Subscription struct {
	// Name is the subscription id.
	Name string
	// Topic is the id of the topic the subscription reads.
	Topic string
	// Function is the entry point of the Cloud Function the push endpoint
	// targets (e.g. "Collector").
	Function string
	// Filter is a Pub/Sub subscription filter; empty means every message.
	Filter string
	// AckDeadline is how long the push endpoint has to answer.
	AckDeadline time.Duration
	// MinBackoff and MaxBackoff bound the exponential RETRY policy.
	MinBackoff, MaxBackoff time.Duration
	// MaxDeliveryAttempts is the dead-letter policy's limit; 0 means the
	// subscription has no dead-letter policy.
	MaxDeliveryAttempts int
	// DeadLetterTopic is the id of the dead-letter topic; empty when
	// MaxDeliveryAttempts is 0.
	DeadLetterTopic string
	// Ordered enables message ordering on the subscription.
	Ordered bool
}

// Topology is the complete set of topics and subscriptions of one deployment.
type Topology struct {
	// Prefix is the name prefix all names start with.
	Prefix string
	// Topics lists source topics first, then dead-letter topics.
	Topics []Topic
	// Subscriptions lists the push subscriptions.
	Subscriptions []Subscription
}

// Default returns the production topology for prefix; "" means DefaultPrefix.
func Default(prefix string) Topology {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	events := prefix + "-events"
	results := prefix + "-results"
	sub := func(name, topic, function string, ack time.Duration) Subscription {
		return Subscription{
			Name:                prefix + "-" + name,
			Topic:               topic,
			Function:            function,
			AckDeadline:         ack,
			MinBackoff:          MinBackoff,
			MaxBackoff:          MaxBackoff,
			MaxDeliveryAttempts: MaxDeliveryAttempts,
			DeadLetterTopic:     DeadLetterTopicFor(topic),
		}
	}
	return Topology{
		Prefix: prefix,
		Topics: []Topic{
			{Name: events},
			{Name: results},
			{Name: DeadLetterTopicFor(events), DeadLetter: true},
			{Name: DeadLetterTopicFor(results), DeadLetter: true},
		},
		Subscriptions: []Subscription{
			sub("collector", events, FunctionCollector, CollectorAckDeadline),
			sub("notifier", results, FunctionNotifier, ConsumerAckDeadline),
			withFilter(sub("workflow", results, FunctionWorkflow, WorkflowAckDeadline), WorkflowFilter),
		},
	}
}

// WorkflowFilter limits the Workflow subscription to results events of jobs
// a workflow submitted (label workflow_run) or that may trigger one (label
// pipeline); shared/workflow checks its triggers against it.
const WorkflowFilter = `attributes:label_workflow_run OR attributes:label_pipeline`

func withFilter(s Subscription, filter string) Subscription {
	s.Filter = filter
	return s
}

// DeadLetterTopicFor names the dead-letter topic of a source topic.
func DeadLetterTopicFor(topic string) string { return topic + "-dlq" }

// EventsTopic is the topic the Receiver publishes job events to.
func (t Topology) EventsTopic() string { return t.Prefix + "-events" }

// ResultsTopic is the topic the Collector publishes results events to.
func (t Topology) ResultsTopic() string { return t.Prefix + "-results" }

// Subscription returns the subscription that pushes to function.
func (t Topology) Subscription(function string) (Subscription, bool) {
	for _, s := range t.Subscriptions {
		if s.Function == function {
			return s, true
		}
	}
	return Subscription{}, false
}

// Topic returns the topic named name.
func (t Topology) Topic(name string) (Topic, bool) {
	for _, tp := range t.Topics {
		if tp.Name == name {
			return tp, true
		}
	}
	return Topic{}, false
}

// Validate reports the first inconsistency: a subscription whose topic or
// dead-letter topic is not declared, duplicate names, or settings Pub/Sub
// would reject (ack deadline outside 10s..600s, attempts outside 5..100,
// backoff outside 0..600s or min > max). Tests may build topologies with
// shorter deadlines for the local dispatcher; those fail Validate on purpose.
func (t Topology) Validate() error {
	seen := map[string]bool{}
	for _, tp := range t.Topics {
		if tp.Name == "" || seen["t/"+tp.Name] {
			return fmt.Errorf("topology: topic %q empty or duplicated", tp.Name)
		}
		seen["t/"+tp.Name] = true
	}
	for _, s := range t.Subscriptions {
		switch {
		case s.Name == "" || seen["s/"+s.Name]:
			return fmt.Errorf("topology: subscription %q empty or duplicated", s.Name)
		case !seen["t/"+s.Topic]:
			return fmt.Errorf("topology: subscription %s: topic %q not declared", s.Name, s.Topic)
		case s.AckDeadline < 10*time.Second || s.AckDeadline > 600*time.Second:
			return fmt.Errorf("topology: subscription %s: ack deadline %v outside 10s..600s", s.Name, s.AckDeadline)
		case s.MinBackoff < 0 || s.MaxBackoff > 600*time.Second || s.MinBackoff > s.MaxBackoff:
			return fmt.Errorf("topology: subscription %s: backoff %v..%v invalid", s.Name, s.MinBackoff, s.MaxBackoff)
		case s.MaxDeliveryAttempts != 0 && (s.MaxDeliveryAttempts < 5 || s.MaxDeliveryAttempts > 100):
			return fmt.Errorf("topology: subscription %s: max delivery attempts %d outside 5..100", s.Name, s.MaxDeliveryAttempts)
		case s.MaxDeliveryAttempts != 0 && !seen["t/"+s.DeadLetterTopic]:
			return fmt.Errorf("topology: subscription %s: dead-letter topic %q not declared", s.Name, s.DeadLetterTopic)
		}
		seen["s/"+s.Name] = true
	}
	return nil
}
