// Package devstack runs geminihooks locally, end to end, in one process:
// what `geminihooks dev` serves, and what the end-to-end tests and
// benchmarks drive.
//
// [Start] brings up, in order:
//
//  1. the gcloud Firestore emulator (or reuses FIRESTORE_EMULATOR_HOST), in
//     its own process group;
//  2. pstest on 127.0.0.1, exported as PUBSUB_EMULATOR_HOST for the
//     functions' own clients;
//  3. the Gemini simulator (shared/gemsim) with Options.Faults applied, and a
//     static webhook for the Receiver created through the genai SDK's
//     Webhooks.Create, exactly as in production; the one-time signing secret
//     becomes the Receiver's GEMINI_WEBHOOK_SECRETS, and the simulator's
//     JWKS its JWKS_URL, with WEBHOOK_JWT_ENABLED=true (for dynamic,
//     JWT-signed webhooks, which production accepts only when enabled);
//  4. every function registered with the Functions Framework, served by
//     funcframework's own mux at /<EntryPoint> on an http.Server the stack
//     controls (so it can be shut down), with a notification sink as the
//     Notifier's default destination;
//  5. the push dispatcher (shared/localpush) for the shared/topology
//     subscriptions whose function is registered;
//  6. with Options.ReconcileEvery, a loop that POSTs to /Reconciler every
//     period as Cloud Scheduler does (RECONCILE_FIRST_CHECK set to the same
//     period, so jobs are due that long after submission or first sight).
//
// It then writes one line "ready receiver_url=… gemini_url=… firestore=…
// pubsub=… project=… functions_url=… webhook_id=…" to Options.Out, followed
// by a readable log of every webhook attempt, push attempt, published job
// event, results event and notification. Secrets are never written.
//
// The functions read their configuration from the process environment on
// their first request and keep it for the life of the process, as a Cloud
// Functions instance does. Start therefore sets that environment (Close
// restores it) and can run only once per process ([ErrAlreadyStarted]); the
// end-to-end tests run each scenario in a child process.
package devstack
