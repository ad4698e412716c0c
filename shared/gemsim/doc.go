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
// routes use the Interactions API shape, whose code is a string:
// {"error":{"code":"NOT_FOUND","message":"…"}}. Unknown routes are 404.
// Unknown resource ids are 404 NOT_FOUND, except files.get/delete which answer
// 403 PERMISSION_DENIED like the real Files API.
//
// All minted ids are lowercase alphanumeric (the SDK extracts file ids from
// URIs with ^[a-z0-9]+); interaction ids are "v1_" + lowercase alphanumerics.
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
//   - A request whose text contains "FAIL_LINE" gets a per-request error
//     {"code":400,"status":"INVALID_ARGUMENT"} instead (inline:
//     InlinedResponse.Error; file: an output line {"key":…,"error":{…}}).
//   - Model id starting with "fail" (e.g. "fail-model") or display name
//     starting with "FAIL" → BATCH_STATE_FAILED; the operation carries
//     error {code 13}, and batch.failed has error_code "INTERNAL".
//   - Display name starting with "EXPIRE" → BATCH_STATE_EXPIRED.
//   - Inline results keep each request's metadata. File results are a
//     generated JSONL file "files/<id>" (Dest.FileName), one line
//     {"key":…,"response":{…}} per input line in input order; an unparsable
//     line yields {"key":"line-<n>","error":{…}}.
//   - Cheap huge outputs: an input line {"key":"k","simulate_lines":N,
//     "line_bytes":M} expands to N output lines keyed "k-0"…"k-(N-1)", each
//     about M bytes (default 256) including the newline. Output files are
//     generated on the fly while streaming, never held in memory, so
//     {"simulate_lines":100000,"line_bytes":1024} gives a ~100 MB download
//     from a one-line input.
//
// Videos (predictLongRunning): each of parameters.sampleCount (1–4, default
// 1) samples is a generated file "files/<id>" whose bytes are [FakeVideo]
// (prompt, index, Options.VideoBytes); generatedSamples[i].video.uri is
// "<base>/v1beta/files/<id>:download?alt=media" with encoding video/mp4.
// Model id starting with "fail" or a prompt containing "FAIL_VIDEO" ends the
// operation with error {code 13} and no event (the catalog has no video
// failure event).
//
// Interactions (the input text is the string input, or the text of Content
// items / user_input steps joined by "\n"; function results are
// function_result steps in the input):
//  1. model starting with "fail" or text containing "FAIL_INTERACTION" →
//     status failed, errors [{code "INTERNAL"}], event interaction.failed;
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
// no event is sent. webhook_config requires background (400 otherwise);
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
//	batch.failed           {id, error_code, error_message}
//	batch.expired          {id}
//	batch.cancelled        {id}
//	video.generated        {id:"models/<m>/operations/<id>", output_file_uri and video_uri: download URL, file_name:"files/<id>"}
//	interaction.completed / interaction.requires_action {id}
//	interaction.failed     {id, error_code, error_message}
//	interaction.cancelled  {id}
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
// drops, fixed delay, random delay (reordering) and time scaling, driven by
// the RNG seeded with Options.Seed. Every attempt is reported to
// Options.OnDelivery and counted in [Stats].
package gemsim
