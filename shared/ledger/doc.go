// Package ledger is geminihooks' Firestore record of what happened: one
// document per webhook delivery (deliveries/{webhook_id}) and one per Gemini
// job (jobs/{job_id}, results under jobs/{job_id}/results).
//
// # Exactly one publish per delivery
//
// [Store.Record] makes one atomic commit that creates the delivery, upserts
// the job and hands out a short publish lease; preconditions on both
// documents make it an optimistic transaction. Only the holder of the lease
// publishes; it then calls [Store.MarkPublished]. A retry of a delivery whose
// publish failed finds it recorded but unpublished and, once the lease is
// released or expired, takes it over. Concurrent attempts of the same
// delivery see the lease and are told to come back later ([OutcomeInFlight]).
//
// # Monotonic job state
//
// A job's state changes only when the new state outranks the stored one
// ([event.State.Supersedes]); late, duplicate and reordered events leave the
// newest state in place.
//
// # Checkpointed collection
//
// A batch output too large for one Collector invocation is collected in
// steps (progress.go): [Store.AcquireCollection] grants collect_lease with a
// fencing token that grows with every grant, [Store.SaveCheckpoint] moves
// collect_checkpoint and collection_progress only while the caller's fence
// is the job's, and [Store.SaveCollection] with Collection.Fence writes the
// summary under the same check and ends the checkpoint. The decisions are
// pure functions on [Job] ([TakeLease], [MoveCheckpoint]), so an in-memory
// ledger can share them.
//
// # Cost
//
// A new delivery costs three Firestore RPCs: one read of both documents,
// the commit, and the publish mark.
package ledger
