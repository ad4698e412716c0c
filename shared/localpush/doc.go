// Package localpush makes an in-process pstest server behave like the
// production Pub/Sub push subscriptions geminihooks deploys with Terraform, so
// the local stack, end-to-end tests and benchmarks exercise the same delivery
// semantics the functions see in Google Cloud.
//
// # What production does
//
// Each subscription in shared/topology is a push subscription: Pub/Sub POSTs
// every message, wrapped in the JSON push envelope
//
//	{"message":{"data":"<base64>","attributes":{…},"messageId":"…","message_id":"…",
//	  "publishTime":"…","publish_time":"…","orderingKey":"…"},
//	 "subscription":"projects/P/subscriptions/S","deliveryAttempt":N}
//
// to the function's URL with Content-Type application/json. A 2xx answer
// within the ack deadline acknowledges the message; anything else (non-2xx,
// connection error, no answer within the deadline) is a failed attempt. The
// subscriptions' RETRY policy redelivers a failed message after an
// exponential backoff between the minimum and maximum backoff. With a
// dead-letter policy the envelope carries deliveryAttempt, and after
// MaxDeliveryAttempts failed attempts the message is republished to the
// dead-letter topic with the CloudPubSubDeadLetterSource* attributes and
// removed from the source subscription. With message ordering, later
// messages of the same ordering key wait until the earlier one is acked.
//
// # What pstest lacks
//
// pstest (cloud.google.com/go/pubsub/v2/pstest v2.9.0) has no push delivery
// at all and ignores the retry policy (a nack is redelivered at once). Its
// dead-letter forwarding is broken: it republishes the message to the
// dead-letter topic on every delivery tick and never removes it from the
// source subscription, which blocks its ordering key forever. It fills
// DeliveryAttempt only when a dead-letter policy exists and counts deliveries
// per message rather than per subscription. Its filters and ordering, on the
// other hand, behave like production. It also drops undelivered messages
// older than 10 minutes (production keeps them for 7 days).
//
// # Semantics here
//
// Setup creates every topic and, per topology subscription, a pull
// subscription with the same filter and ordering but WITHOUT a dead-letter
// policy, plus one "hold" pull subscription per dead-letter topic
// (DeadLetterHoldSubscription) so tests and the dev stack can inspect dead
// letters (DrainDeadLetters). Run receives from each subscription and POSTs
// the production envelope to Options.FunctionURL(sub.Function), with the
// subscription's ack deadline as the request timeout.
//
// The dispatcher counts delivery attempts itself, per subscription and
// message id. A failed attempt is retried by holding the message (its lease is
// extended by the client library) for the backoff min·2^(attempt-1), capped at
// max and multiplied by Options.TimeScale, and only then nacking it, which
// makes pstest redeliver it immediately. Holding instead of
// ack-and-republish keeps ordering right: while the message is outstanding
// pstest does not release later messages of its ordering key, just as
// production holds them during a retry, and the message keeps its id and
// publish time. After MaxDeliveryAttempts failed attempts the dispatcher
// publishes one copy (same data, attributes and ordering key) to the
// dead-letter topic with the four CloudPubSubDeadLetterSource* attributes,
// waits for the publish to succeed and then acks the original, so it is never
// delivered again. If that publish fails the message is retried like a failed
// attempt and dead-lettered on the next one.
//
// Differences that remain: deliveries are not rate-limited by a push window,
// a retry is held in the dispatcher's memory (a dispatcher restart forgets the
// attempt count), no OIDC token is attached, and the dead-letter copy keeps the
// ordering key. None of these changes what a function observes in a run.
package localpush
