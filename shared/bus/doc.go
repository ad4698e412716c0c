// Package bus is geminihooks' messaging port: a narrow [Publisher] that the
// domain packages depend on, its Pub/Sub implementation ([PubSubPublisher]),
// and [DecodePush], which turns a Pub/Sub push request (plain push or an
// Eventarc CloudEvent) into a [PushMessage] for every consumer function —
// ours and the ones users write.
//
// # Delivery semantics
//
// Pub/Sub delivers at least once. A publish whose result is an error may
// still have been published (a timeout after the server accepted it), so every
// consumer must de-duplicate: geminihooks messages carry a stable id
// attribute (webhook_id on events, event_id on results) for that.
//
// # Retries
//
// A push consumer acknowledges with a 2xx response and asks for redelivery
// with anything else; the subscription's retry policy spaces the attempts and
// its dead-letter policy ends them. [PushMessage.DeliveryAttempt] tells a
// consumer when it is on its last attempt.
package bus
