// Package gemsim simulates the part of the Gemini Developer API that
// geminihooks depends on, so the real google.golang.org/genai SDK (v1.77) can
// run against it in tests, benchmarks and the local dev stack, and it
// delivers Gemini-style webhooks the way the production service is
// documented to.
//
// Point the SDK at it with
//
//	sim := gemsim.New(gemsim.Options{})
//	url, _ := sim.Start("127.0.0.1:0")
//	defer sim.Close()
//	client, _ := genai.NewClient(ctx, &genai.ClientConfig{APIKey: "x",
//		Backend: genai.BackendGeminiAPI, HTTPOptions: genai.HTTPOptions{BaseURL: url}})
//
// # Surface
//
// Routes (method id used as the Stats.Requests key in parentheses; v1 and
// v1alpha are accepted as aliases of v1beta):
//
//	POST   /upload/v1beta/files                       resumable upload start (files.upload.start)
//	POST   /upload/v1beta/files?upload_id=…           upload / finalize chunks (files.upload.chunk)
//	GET    /v1beta/files                              (files.list)
//	GET    /v1beta/files/{id}                         (files.get)
//	DELETE /v1beta/files/{id}                         (files.delete)
//	GET    /v1beta/files/{id}:download?alt=media      streamed (files.download); also under /download/v1beta
//	POST   /v1beta/models/{model}:batchGenerateContent (batches.create)
//	GET    /v1beta/batches                            (batches.list)
//	GET    /v1beta/batches/{id}                       (batches.get)
//	POST   /v1beta/batches/{id}:cancel                (batches.cancel)
//	DELETE /v1beta/batches/{id}                       (batches.delete)
//	POST   /v1beta/models/{model}:predictLongRunning  (models.predictLongRunning)
//	GET    /v1beta/models/{model}/operations/{id}     (operations.get)
//	GET    /v1beta/operations/{id}                    the same operation without its model (operations.get)
//	POST   /v1beta/interactions                       (interactions.create)
//	GET    /v1beta/interactions/{id}                  (interactions.get)
//	POST   /v1beta/interactions/{id}/cancel           (interactions.cancel)
//	DELETE /v1beta/interactions/{id}                  (interactions.delete)
//	POST   /v1beta/webhooks                           (webhooks.create)
//	GET    /v1beta/webhooks?page_size=&page_token=    (webhooks.list)
//	GET    /v1beta/webhooks/{id}                      (webhooks.get)
//	PATCH  /v1beta/webhooks/{id}?update_mask=         (webhooks.update)
//	DELETE /v1beta/webhooks/{id}                      (webhooks.delete)
//	POST   /v1beta/webhooks/{id}:ping                 (webhooks.ping)
//	POST   /v1beta/webhooks/{id}:rotateSigningSecret  (webhooks.rotateSigningSecret)
//	GET    /.well-known/jwks.json                     public keys for dynamic-webhook JWTs (jwks; no API key)
//
// Every API route requires an API key in x-goog-api-key (or the key query
// parameter): missing → 403 PERMISSION_DENIED, wrong (when Options.APIKey is
// set) → 400 INVALID_ARGUMENT. Errors use the Google shape
// {"error":{"code":404,"message":"…","status":"NOT_FOUND"}}; interactions
// routes use the Interactions API shape, whose code is a lowercase word:
// {"error":{"code":"invalid_request","message":"…"}} for a 400, "not_found",
// "permission_denied", "rate_limit_exceeded", "internal_error". Unknown
// routes are 404. Unknown resource ids are 404 NOT_FOUND, except
// files.get/delete which answer 403 PERMISSION_DENIED like the real Files API.
//
// All minted ids are lowercase alphanumeric (the SDK extracts file ids from
// URIs with ^[a-z0-9]+); interaction ids are "v1_" + lowercase alphanumerics.
//
// # Files and URIs
//
// Resource URIs have the real API's form whatever the simulator listens
// on: a file's uri is https://generativelanguage.googleapis.com/v1beta/files/<id>
// and its downloadUri (also a generated video's uri and video.generated's
// output_file_uri/video_uri) …/files/<id>:download?alt=media
// (Options.URIBase changes the base). The Go and JS SDKs, like the
// Collector, take only the file id from such a URI and download from their
// configured base URL, so they work unchanged; [Simulator.Transport]
// resolves the public host to the simulator for a client that fetches a
// URI as it is. Resumable upload URLs point at the simulator itself.
//
// Files expire Options.FileTTL of sim-time after their creation (default
// [DefaultFileTTL], 48 h): uploads, batch output files and generated videos
// alike. An expired file is deleted: files.get answers 403
// PERMISSION_DENIED and a download 404 NOT_FOUND, as for an unknown id.
//
// With Options.RedirectDownloads, files.download answers 302 with a signed
// URL (valid 15 min of sim-time) on a second listener, another host:port,
// which serves the bytes without an API key; a request there that carries
// one is counted in Stats.KeyLeaks (Go's http.Client forwards custom
// headers such as x-goog-api-key on a cross-host redirect unless told not
// to; the Go SDK's own Files.Download does).
//
// # Job lifecycle
//
// Batches are BATCH_STATE_PENDING for the first half of their duration,
// BATCH_STATE_RUNNING for the second, then terminal. Videos and background
// interactions are in progress for their whole duration. Durations are
// sim-time ([Durations], default [DefaultJobDuration] = 200ms);
// [Simulator.FinishJob] ends a job immediately. Cancel (batches, background
// interactions) works only before the terminal state (else 400
// FAILED_PRECONDITION).
//
// # Deterministic outputs and triggers
//
// Batches (inline and file):
//   - A request's text is the "\n"-join of all contents[].parts[].text.
//   - Response: one candidate, role "model", text "echo: " + text,
//     finishReason STOP; usageMetadata promptTokenCount = Tokens(text),
//     candidatesTokenCount = Tokens(output), totalTokenCount = their sum,
//     where [Tokens] is ceil(bytes/4). modelVersion is the model id.
//   - A request whose text contains "FAIL_LINE" gets a per-request error, a
//     google.rpc.Status {"code":3,"message":…} (canonical code, no status
//     name) instead (inline: InlinedResponse.Error; file: an output line
//     {"key":…,"error":{…}}).
//   - batch.displayName is required (400 INVALID_ARGUMENT
//     "batch.display_name is required"), as the REST reference marks it.
//   - Model id starting with "fail" (e.g. "fail-model") or display name
//     starting with "FAIL" → BATCH_STATE_FAILED; the operation carries
//     error {code 13}, and batch.failed has error_code "INTERNAL".
//   - Display name starting with "EXPIRE" → BATCH_STATE_EXPIRED.
//   - Inline results keep each request's metadata. File results are a
//     generated JSONL file "files/<id>" (Dest.FileName), one line
//     {"key":…,"metadata":…,"response":{…}} per input line in input order:
//     "key" only when the input line had one, "metadata" (any JSON, e.g. a
//     Struct) echoed when it had one; an unparsable line yields
//     {"key":"line-<n>","error":{…}}.
//   - Cheap huge outputs: an input line {"key":"k","simulate_lines":N,
//     "line_bytes":M} expands to N output lines keyed "k-0"…"k-(N-1)", each
//     about M bytes (default 256) including the newline. Output files are
//     generated on the fly while streaming, never held in memory, so
//     {"simulate_lines":100000,"line_bytes":1024} gives a ~100 MB download
//     from a one-line input. The same input always yields the same bytes.
//   - Range downloads (assumed like Google's media downloads, which
//     advertise byte ranges): a single "Range: bytes=N-[M]" is answered 206
//     with Content-Range (416 past the end), also for generated files (the
//     skipped part is generated and discarded server-side, never sent).
//     Options.IgnoreRange (dev knob norange) answers 200 with the whole
//     file instead, like a server without range support.
//
// Videos (predictLongRunning): each of parameters.sampleCount (1–4, default
// 1) samples is a generated file "files/<id>" whose bytes are [FakeVideo]
// (prompt, index, Options.VideoBytes); generatedSamples[i].video.uri is
// "https://generativelanguage.googleapis.com/v1beta/files/<id>:download?alt=media"
// with encoding video/mp4. Model id starting with "fail" or a prompt
// containing "FAIL_VIDEO" ends the operation with error {"code":13,
// "message":…} and no event (the catalog has no video failure event). A
// prompt containing "RAI_FILTER" completes the operation (done, no error)
// with generateVideoResponse {raiMediaFilteredCount: sampleCount,
// raiMediaFilteredReasons: [[SimulatedRAIReason]]} and no samples, and sends
// video.generated with only the id.
//
// Interactions (the input text is the string input, or the text of Content
// items / user_input steps joined by "\n"; function results are
// function_result steps in the input):
//  1. model starting with "fail" or text containing "FAIL_INTERACTION" →
//     status failed, errors [{code "internal_error"}], event
//     interaction.failed (error_code "internal_error");
//     "INCOMPLETE_INTERACTION" → status incomplete with the output cut to
//     half the input's echo, event interaction.failed (error_code
//     "incomplete"); "BUDGET_EXCEEDED" → status budget_exceeded, errors
//     [{code "budget_exceeded"}], event interaction.failed (error_code
//     "budget_exceeded");
//  2. else, input with function_result steps → completed, output text
//     "function results: <name>=<result>[; …]" (name falls back to call_id);
//  3. else, tools declaring functions → requires_action, with one
//     function_call step (id "call_<hex>", arguments {"input": text}) for
//     every declared function whose name occurs in the text as a whole
//     word, or for the first declared function if none does; event
//     interaction.requires_action;
//  4. else → completed with text "echo: " + text.
//
// Completed interactions have one model_output step with that text (so the
// SDK's OutputText works) and usage total_input/output/total_tokens from
// [Tokens]. background: true starts in_progress and reaches the result after
// the duration (with an event); otherwise the result is returned at once and
// no event is sent. A background interaction whose text contains
// "REQUIRES_CONTINUATION" shows status requires_continuation with a
// continuation_token for the second half of its duration (no event: the
// server continues background interactions by itself), then completes. webhook_config requires background (400 otherwise);
// stream: true is rejected; an unknown previous_interaction_id is 404.
//
// # Webhooks
//
// Static webhooks (WebhookService) validate like the API: missing/invalid uri
// or empty/unknown subscribed_events → 400 INVALID_ARGUMENT; only the seven
// [SubscribableEvents] are accepted. Create returns new_signing_secret once;
// signing_secrets[] only shows truncated_secret ("whsec_...abcd") and
// expire_time. PATCH honours update_mask (name, uri, state,
// subscribed_events; absent mask = fields present in the body); state may
// only be set to enabled or disabled (enabled also clears the failure
// count). Rotation with revoke_previous_secrets_after_h24 (the default) keeps
// previous secrets signing for [RotationGrace] of sim-time, so
// webhook-signature carries one "v1," entry per live secret, newest first;
// revoke_previous_secrets_immediately drops them at once. Ping delivers
// {"type":"webhook.ping","data":{"id":"<webhook id>"}} to the webhook's uri
// regardless of its subscriptions and state.
//
// Events: on a terminal job state the simulator POSTs the thin envelope
// {"type","version":"v1","timestamp","data"} with
//
//	batch.succeeded        {id:"batches/<id>", output_file_uri:"files/<id>" (file batches only)}
//	batch.failed           {id, error_code:"INTERNAL", error_message}
//	batch.expired          {id}
//	batch.cancelled        {id}
//	video.generated        {id:"models/<m>/operations/<id>", output_file_uri and video_uri: download URL, file_name:"files/<id>"}
//	interaction.completed / interaction.requires_action {id}
//	interaction.failed     {id, error_code, error_message}
//	interaction.cancelled  {id}
//
// data.id has the form Options.EventIDs selects ([IDForm]): the SDK's names
// above (canonical, the default), bare ids ("<id>", "<op id>", "v1_…"),
// collection-prefixed ids ("batches/<id>", "operations/<op id>",
// "interactions/v1_…"), or a seeded random mix of the three per event.
//
// If the job had webhook_config.uris, the event goes to those URIs only
// (dynamic): webhook-signature is an RS256 JWT (kid [JWTKeyID], JWKS at
// /.well-known/jwks.json) with claims iss [JWTIssuer], aud = target URI, iat,
// exp = iat+5m, jti = webhook-id, event_type and data_id; webhook-id and
// webhook-timestamp are sent too. Otherwise it goes to every enabled static
// webhook subscribed to the type (so *.cancelled events only ever reach
// dynamic URIs), signed per Standard Webhooks with HMAC-SHA256.
//
// Delivery: webhook-id ("msg_…") is stable across retries and duplicates;
// webhook-timestamp is the wall-clock time of the attempt
// (DeliveryOptions.Now). Any non-2xx or transport error is retried with
// exponential backoff (DeliveryOptions: InitialBackoff 5s, ×2, MaxBackoff 1h,
// sim-time) until RetryWindow (24h sim-time) would be exceeded. A static
// webhook with DisableAfter (50) consecutive failed attempts — counted across
// all its messages, reset by any 2xx — becomes
// disabled_due_to_failed_deliveries; its pending and future events are
// dropped (not queued) until it is re-enabled. [Faults] adds duplicates,
// drops, events lost for good (LoseRate: every attempt of every delivery of
// the event dropped, as in a Receiver outage longer than the retry window),
// fixed delay, random delay (reordering) and time scaling, driven by
// the RNG seeded with Options.Seed. Every attempt is reported to
// Options.OnDelivery and counted in [Stats].
//
// # What the simulator's behaviour rests on
//
// Re-check the last two lists against a live delivery whenever one is at
// hand; the Collector is written to survive either answer.
//
// Documented by Google (the webhooks guide and REST reference, the SDK
// sources, the Files and Batch API references):
//   - routes, field names and enums (batch states; interaction statuses
//     including incomplete, budget_exceeded and requires_continuation); the
//     Google error body {"error":{"code":<HTTP>,"message","status"}};
//   - the event catalog, the thin envelope, Standard Webhooks signing, 24 h
//     of retries, webhook_config routing events to its URIs only;
//   - batch.displayName is required on batch creation;
//   - Operation.error and a batch request's error are google.rpc.Status
//     (canonical code, optional details, no status name);
//   - files expire 48 h after creation; a generated video's uri is
//     https://generativelanguage.googleapis.com/v1beta/files/<id>:download?alt=media;
//   - Veo responses carry generatedSamples or raiMediaFilteredCount and
//     raiMediaFilteredReasons (a safety filter completes the operation
//     without a video);
//   - requires_continuation means the decode stopped at the per-request
//     token limit; the server continues background interactions (SDK v1.77
//     continuation.go);
//   - an Interactions error's code is a string (SDK: "a URI that
//     identifies the error type").
//
// Observed in public reports, SDK sources and probes:
//   - Interactions errors such as {"error":{"code":"invalid_request",…}};
//   - an expired or deleted file: files.get answers 403 "…or it may not
//     exist", a download 404, so a late collection failed as transient or
//     permanent depending on the call;
//   - downloads may be answered with a redirect; Go's http.Client then
//     forwards x-goog-api-key to the other host;
//   - the Go SDK's Batches.Get never fills BatchJob.Error, and its
//     Files.Download (v1.77) returns an error body as the file's bytes
//     instead of an error;
//   - the JS SDK's files.download resolves only https:// URIs (an
//     http://127.0.0.1 URI becomes a broken path), and @google/genai 3.3.0's
//     models.generateVideos refuses the Gemini Developer API (the JS check
//     starts the operation with REST);
//   - video.generated's URI field is output_file_uri in the guide and
//     video_uri in the cookbook (both are sent).
//
// Assumptions (nothing public settles them):
//   - data.id's form in a real delivery (the guide's one example is a bare
//     "batch_123456"): hence [IDForm] and a receiver that accepts all;
//   - GET /v1beta/operations/{id} reads a Veo operation without its model.
//     The Collector uses it only for a video it knows by a bare or
//     "operations/" id (one geminihooks did not submit); if the real API
//     answers 404 the claim is recorded as unverifiable and nothing changes;
//   - a failed Veo operation sends no event (the catalog has none); a
//     safety-filtered one sends video.generated with only its id;
//   - incomplete and budget_exceeded interactions are announced as
//     interaction.failed with the status as error_code; requires_continuation
//     sends no event;
//   - the Interactions error words other than invalid_request, and
//     "internal_error" in a failed interaction's errors[];
//   - data.error_code: the status name for batches ("INTERNAL"), the
//     Interactions word for interactions;
//   - batch output lines echo the input line's metadata, omit "key" when
//     the input had none, and carry errors without a status name;
//   - batch output files and generated videos live 48 h from generation,
//     like uploads; an expired file answers exactly like an unknown one;
//   - a redirect goes to another host with a signed URL that needs no API
//     key.
package gemsim
