// Package workflow is the Workflow function's domain: declarative
// multi-step pipelines of Gemini jobs, advanced by results events.
//
// # Definitions
//
// A workflow is a YAML file ([Definition]) in the repository's workflows/
// directory, embedded in the binary (package workflows) so the deployed
// function and the CLI see the same set; a run stores the YAML it started
// with, so a redeploy never changes a running workflow. Each step is a
// batch, video or interaction job whose prompt is a text/template over
// [TemplateData]: the run's input, the triggering job's results and every
// earlier step's results as the Collector stored them (batch result texts
// in input order, interaction text, video URIs). A batch step fans out with
// foreach (one request per item); the next step fans in over
// .Steps.<name>.Results. when skips a step, allow_failure lets a run go on
// after a failed job so later steps can test its state.
//
// A run starts from the CLI ([Service.Start]) or from a results event that
// matches a definition's trigger (on: event type, states, labels, which must
// include pipeline=…). The trigger's run id is derived from the event id, so
// redeliveries start one run. Events of workflow jobs never trigger runs.
//
// # Runs and exactly-once advancement
//
// workflow_runs/{run} ([Run]) holds the status, per-step status, job ids,
// attempt and tool-turn counters and timings. Every job a step submits goes
// through shared/submit with labels workflow_run, workflow_step,
// workflow_attempt and turn; the Collector copies them onto the results
// event, whose delivery [Service.Handle] applies in a transaction: only the
// event of the step's current job, in the step's "running" state, advances
// it; duplicates, stale attempts and reordered events change nothing.
//
// Submitting the next step is a side effect outside Firestore, so it is
// guarded by an [Intent]: one transaction moves the step to "submitting"
// with a deterministic key (attempt and turn, the same as the job's labels)
// and a lease, then Gemini is called, then a second transaction records the
// job id. A concurrent delivery finds the live intent and gets
// [ErrInFlight] (409). When the call fails with an answer from Gemini
// (nothing was created) the intent is released and the redelivery submits.
// When the outcome is unknown (timeout, crash between submit and record —
// the case shared/submit's ErrNotRecorded describes) the job is never
// submitted again blindly: its results event, carrying the intent's labels,
// is adopted; after the lease, the ledger is searched for a job with those
// labels and adopted; if there is none, the step fails with "submission
// outcome unknown" and "workflow retry-step" re-submits after a look at
// Gemini.
//
// A failed job (or results that could not be collected) fails the step
// and, unless allow_failure, the run with the reason. [Service.RetryStep]
// starts a new attempt of a failed step; events of older attempts are then
// ignored.
//
// # Tool loop (requires_action)
//
// An interaction step may declare tools from a [tools.Registry]. Its
// interaction.requires_action results event moves the step to "acting":
// the pending function calls the Collector stored (output.pending_calls)
// run through the registry, and the interaction is continued with a new
// background interaction (previous_interaction_id plus function_result
// steps), recorded with the same labels and turn+1, so its results event
// continues the loop. max_turns bounds it; a call to a tool the step does
// not declare or the registry does not know fails the step with an error
// naming it; a tool's own error goes back to the model as an is_error
// result. The loop runs only for interactions workflows started: other
// interactions with pending calls belong to whoever submitted them, and
// their events do not reach the function (subscription filter).
//
// # The end of a run, and notifications
//
// A run ends succeeded when its last step does; nothing extra is published.
// The last step's job publishes its own results event like every job, which
// the Notifier delivers (that is the "notify" of summarise-consolidate).
//
// # Limits
//
// A video whose generation fails sends no event (Gemini has none), so its
// step stays running; check "workflow show". Templates see at most
// Options.MaxTemplateResults batch results per step.
package workflow
