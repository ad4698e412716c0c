// Package event defines what flows through geminihooks: the thin webhook
// envelope Gemini sends, the identity and state of the job it points at, and
// the two versioned messages geminihooks publishes — [JobEvent] on the events
// topic (one per verified delivery) and [ResultsEvent] on the results topic
// (one per collected job state).
//
// # Tolerance
//
// Gemini's webhook API is in preview and its documented field names disagree
// between sources, so parsing is deliberately lenient: unknown fields and
// unknown event types are kept, never rejected. Only a body that is not a JSON
// object with a string "type" and a "data.id" is an error ([ErrInvalidEnvelope]).
//
// # Job identity
//
// [ParseRef] maps the event's data.id to a [JobRef]: the canonical Gemini
// resource name and a deterministic, Firestore-safe document id, so the same
// job reached through a bare id ("abc") or a resource name ("batches/abc")
// lands on one document.
//
// # States
//
// [State] has a rank; a job's state only moves up, and terminal states never
// change ([State.Supersedes]). This makes duplicate and out-of-order
// deliveries harmless.
package event
