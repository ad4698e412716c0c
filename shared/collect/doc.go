// Package collect is the Collector's domain: for each JobEvent pushed from
// the events topic it reads the job from Gemini's API with the genai SDK
// (gemini.Client.ReadJob: one call), stores the API's state and what it
// collected in Firestore (jobs/{job_id} and jobs/{job_id}/results), and
// publishes one ResultsEvent on the results topic. The function package
// (functions/collector) only decodes the push and maps [Service.Handle]'s
// error to a status code.
//
// # A webhook is a claim
//
// The event's type is what the webhook claims; the state collected and
// announced is the one the API shows. The verdict on the claim
// (ledger.Verification: confirmed, contradicted, superseded, unverifiable)
// is written on the job and on the delivery. When the API shows a state
// with nothing to collect (submitted, running), the claim was premature or
// false: a young claim (within Options.ClaimGrace of its publication) is
// retried by redelivery, since the API may lag its own webhook; an older
// one is acknowledged. A job the API key cannot read (404, 403) changes
// nothing. A terminal state read from the API and collected is final:
// later claims are checked against it without calling Gemini.
//
// # What is collected per state
//
//   - batch succeeded: inline responses are taken from the job; an output
//     file (Dest.FileName from the API — never a webhook's pointer, which
//     could name another file this key can read) is streamed with
//     gemini.Client.OpenFile and read line
//     by line, so memory does not grow with the file; a line longer than
//     [MaxLineBytes] (32 MiB) is read past without being kept and stored
//     as an error result (code line_too_large). Each response becomes one document results/{index:%09d} with
//     key, index, metadata, text, finish_reason, tokens and a per-line
//     error. A text longer than [MaxTextBytes] is split into documents
//     {index}-p001, -p002, … carrying part/parts; nothing is dropped. A line
//     that is not JSON is stored as an error result (code invalid_line).
//     Every plausible line shape is accepted: no "key" (the metadata's
//     "key", else none), "metadata" as any JSON object (a protobuf Struct),
//     and an error as a google.rpc.Status, a Google HTTP error, an
//     Interactions error, a string, or a Status under "status".
//   - batch failed, expired or cancelled: no results. The job's error is the
//     API's (the SDK never fills BatchJob.Error, so ReadJob reads the raw
//     operation's error for a failed batch: a second call, only then).
//   - video: each video's URI, MIME
//     type and Gemini file name go to the job's output.videos; with a
//     [VideoStore] (VIDEO_BUCKET) the bytes are streamed to
//     gs://bucket/videos/<job_id>/<n>.mp4 and output.videos[n].gcs_uri set;
//     without one, the file's metadata is read (files.get) for its
//     expire_time. A video that failed or was filtered by safety is a
//     failed job with the reason (error code 13…, or rai_filtered with the
//     filter's reasons); Gemini sends no webhook for a failed one, so it is
//     found by whatever triggers a read (a sweep, a claim).
//   - interaction in a collectable state: output holds status, text, steps (JSON maps; an
//     array directly inside an array becomes {"values": […]} because
//     Firestore cannot store nested arrays) and, for requires_action, the
//     unanswered function calls as pending_calls [{id, name, arguments,
//     arguments_json}]: enough for a downstream step to create the follow-up
//     interaction. The text is also stored as results/000000000. The job
//     document stays under Firestore's 1 MiB: text over 256 KiB is left
//     out (text_in_results), steps over 320 KiB too (steps_omitted,
//     steps_bytes; steps_count always), pending calls over 160 KiB keep
//     only arguments_json, or are replaced by pending_calls_omitted,
//     pending_calls_count and pending_calls_bytes, and at most 32 errors
//     are kept (errors_count gives the total).
//   - an event of a family geminihooks does not collect: recorded as
//     last_unknown_event, acknowledged. An unknown event type of a known
//     family is a trigger like any other: the API says what happened.
//
// The job summary (collection_state, collected_state, counts, tokens,
// results_path, completed_at = Gemini's event time, collected_at,
// collect_latency_ms, collect_error, results_event_id) is written with the
// field names of ledger.Job.
//
// # Idempotency
//
// Result documents have deterministic ids and are written with Set, so a
// redelivery rewrites the same documents. The order of writes is: results,
// summary (clearing results_event_id), publish, then results_event_id.
// Hence a consumer of the results event always finds the summary, and:
//
//   - a redelivery that finds results_event_id set for the state the API
//     shows is acknowledged without refetching or re-publishing;
//   - one that finds the summary saved but results_event_id unset (the
//     previous attempt died before or while publishing) re-publishes from
//     the stored summary without refetching;
//   - concurrent deliveries of one event both write the same documents and
//     may both publish; the two messages carry the same event_id
//     (event.ResultsEventID), which consumers de-duplicate on.
//
// A summary is never overwritten by the collection of a lower-ranked state
// (two collections racing, the slower one reading an earlier state).
//
// # Errors and retries
//
// Gemini errors are classified by package gemini, by the HTTP status of
// the answer whatever its body says: reading the job, 404 and 403 make the
// claim unverifiable (see above); otherwise a 4xx is permanent except 401,
// 403, 408, 409, 425, 429 and 499, and so is 501; other 5xx, network
// errors and timeouts are transient. Firestore, Cloud Storage and Pub/Sub
// failures are transient. Every read of the job is bounded by
// Options.ReadTimeout and the whole handling by the function's deadline
// (topology.CollectorDeadline).
//
// Gemini's errors are stored as {code, status, message}: the canonical
// code as a number string and its status name, whatever the source shape
// (event.NormalizeError).
//
// An output the API names but will not serve (403 or 404 after this key
// just read the job) has expired once the job ended longer ago than
// Options.FileTTL (48 h): a permanent failure with code [CodeOutputExpired]
// whose message, for videos, says how VIDEO_BUCKET keeps them. Earlier, it
// is retried like a transient error (the API may lag).
//
//   - Transient: Handle returns the error, the function answers 503 and
//     Pub/Sub redelivers with backoff. On the last attempt
//     (Options.MaxDeliveryAttempts, from the push's deliveryAttempt) the
//     failure is also recorded on the job (collect_failed, collect_error
//     code retries_exhausted) before the non-2xx answer sends the message
//     to the dead-letter topic. No results event is published then: a
//     replay from the dead-letter topic may still succeed, and its event
//     would share the same event_id.
//   - Permanent, with the API's state known (an output file gone, unusable
//     data): recorded as collect_failed with collect_error, a ResultsEvent
//     with collection_state collect_failed is published for that state,
//     and the message is acknowledged.
//   - Permanent while reading the job (no state known): recorded as
//     collect_failed, acknowledged, nothing announced.
//   - A message that is not a JobEvent returns [ErrInvalidEvent] (400): it
//     can only dead-letter.
//
// The SDK's own retries are disabled for interactions (Pub/Sub's
// redelivery is the retry loop), and the classic client does not retry.
package collect
