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
// # Checkpoints: outputs of any size
//
// One invocation streams at ~800 results/s into Firestore (less during
// Cloud Firestore's 500/50/5 ramp-up), so a batch output file of millions
// of lines cannot be collected within one push request (480 s handler
// deadline). With Options.Events (EVENTS_TOPIC) set, a file is collected
// in steps (resume.go, ledger/progress.go):
//
//   - Lease. The invocation takes the job's collect_lease in a
//     transaction; each grant increments its fence. Every checkpoint and
//     the final summary are written in a transaction that checks the fence,
//     so an invocation that lost the lease (a redelivery took over, or it
//     outlived Options.LeaseTTL) cannot move the checkpoint or write the
//     summary. A lease held by a live invocation is not taken; a
//     redelivery of the holder's own message (a higher delivery attempt)
//     is, since Pub/Sub redelivers only after that attempt ended.
//   - Checkpoint. collect_checkpoint holds the lines (result index) and
//     bytes consumed, the counts and tokens so far, and the file, state and
//     gemini name the summary needs. Before it moves, the result writer is
//     flushed (BulkWriter ended, every write acknowledged), so a checkpoint
//     never gets ahead of the stored results. One is written every
//     Options.CheckpointEvery (progress, less to redo after a crash) and
//     when the budget runs out.
//   - Budget. After Options.TimeBudget (COLLECT_TIME_BUDGET, default
//     300 s: with 60 s to flush and checkpoint it ends before the 480 s
//     deadline, the 540 s timeout and the 600 s ack deadline) the
//     invocation writes a checkpoint, releases the lease, publishes an
//     event.Continuation (ContinuationID deterministic per job and
//     checkpoint) on the events topic with the job id as ordering key, marks
//     the checkpoint handed_off and acknowledges its message.
//   - Resume. The continuation's invocation reads the checkpoint (not the
//     job from Gemini: the checkpoint has what it needs), asks for the file
//     from the checkpoint's byte with "Range: bytes=N-" and, when the server
//     answers 200 instead of 206, skips N bytes; the line index continues
//     from the checkpoint's, so result ids stay the same as in one pass.
//
// Why a continuation message and not a non-2xx answer and redelivery: a
// redelivery counts against the subscription's dead-letter limit (5), so
// a file needing more than five budgets would dead-letter although nothing
// failed; Pub/Sub's backoff (10 s … 600 s) would also stall the collection
// between steps. A continuation is a new message with its own attempt
// budget, delivered at once; failures within a step still get the usual
// redelivery and attempt budget.
//
// Why it cannot be lost: the checkpoint is written before the continuation
// is published, and the continuation before the message is acknowledged.
// A crash before the checkpoint redelivers the message, which resumes from
// the previous checkpoint (results after it are rewritten with the same
// ids). A crash after the checkpoint but before the publish redelivers a
// message that is behind the checkpoint; because the checkpoint is not
// marked handed_off, that message takes over instead of being dropped as
// stale. Only a message behind a handed-off checkpoint is stale and
// acknowledged without writing. A JobEvent (a new webhook, a replay)
// arriving while a chain is running is acknowledged (the holder's own
// message is the recovery path) unless the handed-off checkpoint is older
// than the lease TTL: then the chain is taken to be broken and the JobEvent
// resumes it.
//
// Why it cannot run twice in parallel: the lease. A duplicate delivery of
// a continuation while another invocation holds the lease writes nothing
// and answers 503; redelivered later it finds the checkpoint moved on and
// is acknowledged as stale.
//
// Exactly once at the end: the summary (counts and tokens from the
// checkpoint plus the last step) and the results event are written only by
// the invocation that reads the last line, under its fence; the summary
// deletes the checkpoint, and the results event's id is
// event.ResultsEventID as for any collection. Result document ids are the
// line index (ResultID), so a step redone after a crash rewrites the same
// documents and the count of documents equals counts.results.
//
// While a collection runs, collection_state is "collecting" and
// collection_progress {lines, bytes, total_bytes, invocations, updated_at}
// shows how far it got (geminihooks jobs show --wait draws a bar). Inline
// responses, videos and interactions are small and collected in one pass,
// as is a file when Events is not set.
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
