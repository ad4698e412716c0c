package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"golang.org/x/sync/semaphore"

	"github.com/geminihooks/geminihooks/shared/event"
)

// Result is the stored form of jobs/{job_id}/results/{id}: one response of a
// job (one batch line, one inline response, one interaction output). A
// response too large for one document is stored as several parts.
type Result struct {
	// Key is the request's key (batch file "key", inline metadata "key").
	Key string `firestore:"key,omitempty" json:"key,omitzero"`
	// Index is the response's position in the job's output (0-based).
	Index int64 `firestore:"index" json:"index"`
	// Metadata is the request's metadata as the output carried it: any
	// JSON object (a protobuf Struct), strings for inline requests.
	Metadata     map[string]any `firestore:"metadata,omitempty" json:"metadata,omitzero"`
	Text         string         `firestore:"text,omitempty" json:"text,omitzero"`
	FinishReason string         `firestore:"finish_reason,omitempty" json:"finish_reason,omitzero"`
	ModelVersion string         `firestore:"model_version,omitempty" json:"model_version,omitzero"`
	Tokens       event.Tokens   `firestore:"tokens" json:"tokens"`
	// Error is the per-response error, if the request failed.
	Error *event.JobError `firestore:"error,omitempty" json:"error,omitzero"`
	// Part and Parts number the pieces of a split response (1-based); both
	// are zero for a response stored whole.
	Part  int `firestore:"part,omitempty" json:"part,omitzero"`
	Parts int `firestore:"parts,omitempty" json:"parts,omitzero"`
}

// ResultWriter writes a job's result documents. Write may return before the
// document is stored; Close waits for every write and returns the first error.
type ResultWriter interface {
	Write(id string, r Result) error
	Close() error
}

// Collection is the collection summary written on jobs/{job_id}.
type Collection struct {
	CollectionState  string
	CollectedState   event.State
	Counts           event.Counts
	Tokens           event.Tokens
	ResultsPath      string
	CompletedAt      time.Time
	CollectedAt      time.Time
	CollectLatencyMS int64
	// CollectError is nil on success; a nil value deletes a previous error.
	CollectError *event.JobError
	// Output replaces the job's output map when non-nil.
	Output map[string]any
	// Job identity, written so a collection for a job the ledger never saw
	// still yields a readable document.
	Kind       event.Kind
	GeminiName string
	// Verification is the read of the job from Gemini's API the collection
	// is based on; its state is CollectedState. Written in the same
	// transaction as the summary (see [Store.ApplyVerification]).
	Verification *Verification
	// Fence, when non-zero, is the collection lease the summary rests on
	// (a checkpointed collection): the summary is written only while the
	// job's lease carries it ([ErrFenced] otherwise), and it ends the
	// lease and the checkpoint. Progress is the final collection_progress.
	Fence    int64
	Progress *Progress
}

// Bulk write limits: a BulkWriter remembers every document path it wrote
// (to refuse two writes to one document), so it is replaced every
// resultWriterRotate writes to keep memory flat; in-flight bytes are
// bounded so a slow Firestore pushes back on the reader instead of queueing.
const (
	resultWriterRotate    = 5000
	resultWriterMaxFlight = 32 << 20
)

// OpenResults returns a writer for jobs/{jobID}/results backed by Firestore's
// BulkWriter. Writes are Sets, so writing the same results twice is harmless.
func (s *Store) OpenResults(ctx context.Context, jobID string) ResultWriter {
	w := &bulkResults{
		ctx:  ctx,
		c:    s.c,
		col:  s.c.Collection(JobsCollection).Doc(jobID).Collection(ResultsCollection),
		sem:  semaphore.NewWeighted(resultWriterMaxFlight),
		jobs: make(chan pendingWrite, 1024),
		done: make(chan struct{}),
	}
	go w.wait()
	return w
}

type pendingWrite struct {
	job  *firestore.BulkWriterJob
	id   string
	size int64
}

type bulkResults struct {
	ctx  context.Context
	c    *firestore.Client
	col  *firestore.CollectionRef
	bw   *firestore.BulkWriter
	n    int
	sem  *semaphore.Weighted
	jobs chan pendingWrite
	done chan struct{}

	mu     sync.Mutex
	err    error
	closed bool
}

func (w *bulkResults) setErr(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *bulkResults) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait collects write outcomes in order and releases their bytes.
func (w *bulkResults) wait() {
	defer close(w.done)
	for p := range w.jobs {
		if _, err := p.job.Results(); err != nil {
			w.setErr(fmt.Errorf("firestore bulk set %s/%s: %w (retryable)", w.col.Path, p.id, err))
		}
		w.sem.Release(p.size)
	}
}

func (w *bulkResults) Write(id string, r Result) error {
	if err := w.firstErr(); err != nil {
		return err
	}
	size := int64(len(r.Text)) + 1024
	if size > resultWriterMaxFlight {
		size = resultWriterMaxFlight
	}
	if err := w.sem.Acquire(w.ctx, size); err != nil {
		return fmt.Errorf("firestore bulk set %s/%s: %w (retryable)", w.col.Path, id, err)
	}
	if w.bw == nil || w.n >= resultWriterRotate {
		if w.bw != nil {
			w.bw.End()
		}
		w.bw, w.n = w.c.BulkWriter(w.ctx), 0
	}
	w.n++
	job, err := w.bw.Set(w.col.Doc(id), r)
	if err != nil {
		w.sem.Release(size)
		return fmt.Errorf("firestore bulk set %s/%s: %w (retryable)", w.col.Path, id, err)
	}
	w.jobs <- pendingWrite{job: job, id: id, size: size}
	return nil
}

func (w *bulkResults) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return w.firstErr()
	}
	w.closed = true
	w.mu.Unlock()
	if w.bw != nil {
		w.bw.End()
	}
	close(w.jobs)
	<-w.done
	return w.firstErr()
}

// Saved is the outcome of [Store.SaveCollection].
type Saved struct {
	// Applied reports whether the summary was written.
	Applied bool
	// Labels are the job's labels as read in the same transaction. The
	// results event must carry these, not labels read before collection
	// started: a submission recorded meanwhile (a fast job) would otherwise
	// be announced without its correlation labels and never reach the
	// workflow waiting for it.
	Labels map[string]string
}

// SaveCollection writes a collection summary on jobs/{jobID}, together with
// the verification it is based on (the API's state, the verdict on the
// delivery that triggered it), unless the job already holds the summary of
// a higher-ranked state (a late collection of an earlier state must not
// hide a later one). results_event_id is cleared: [Store.MarkResultsPublished]
// sets it once the results event is out.
func (s *Store) SaveCollection(ctx context.Context, jobID string, c Collection) (saved Saved, err error) {
	ref := s.c.Collection(JobsCollection).Doc(jobID)
	now := s.opts.Now().UTC()
	err = s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		saved = Saved{}
		old, err := getJobTx(tx, ref)
		if err != nil {
			return err
		}
		var dref *firestore.DocumentRef
		if c.Verification != nil {
			if dref, err = s.deliveryToVerify(tx, *c.Verification); err != nil {
				return err
			}
		}
		fields := map[string]any{
			"job_id":             jobID,
			"collection_state":   c.CollectionState,
			"collected_state":    string(c.CollectedState),
			"counts":             c.Counts,
			"tokens":             c.Tokens,
			"results_path":       c.ResultsPath,
			"collected_at":       c.CollectedAt,
			"collect_latency_ms": c.CollectLatencyMS,
			"results_event_id":   firestore.Delete,
			"updated_at":         now,
		}
		if !c.CompletedAt.IsZero() {
			fields["completed_at"] = c.CompletedAt
		}
		if c.CollectError != nil {
			fields["collect_error"] = *c.CollectError
		} else {
			fields["collect_error"] = firestore.Delete
		}
		if c.Output != nil {
			fields["output"] = c.Output
		}
		if c.Fence != 0 {
			if err := finishFields(old, c, now, fields); err != nil {
				return err
			}
		}
		if old != nil {
			saved.Labels = old.Labels
			if event.State(old.CollectedState).Supersedes(c.CollectedState) {
				// Still record what the API said and the verdict.
				if c.Verification != nil {
					if err := tx.Set(ref, verificationFields(old, c.Kind, *c.Verification), firestore.MergeAll); err != nil {
						return err
					}
					return updateDelivery(tx, dref, *c.Verification)
				}
				return nil
			}
		} else {
			fields["kind"] = string(c.Kind)
			fields["gemini_name"] = c.GeminiName
			fields["deliveries"] = 0
		}
		if c.Verification != nil {
			for k, v := range verificationFields(old, c.Kind, *c.Verification) {
				fields[k] = v
			}
		}
		if old == nil {
			removeDeletes(fields)
		}
		saved.Applied = true
		if err := tx.Set(ref, fields, firestore.MergeAll); err != nil {
			return err
		}
		if c.Verification != nil {
			return updateDelivery(tx, dref, *c.Verification)
		}
		return nil
	})
	if errors.Is(err, ErrFenced) {
		return Saved{}, fmt.Errorf("firestore save collection %s (fence %d): %w", ref.Path, c.Fence, err)
	}
	if err != nil {
		return Saved{}, fmt.Errorf("firestore save collection %s: %w (retryable)", ref.Path, err)
	}
	return saved, nil
}

// RecordCollectFailure records on jobs/{jobID} that collection failed for
// a reason retries did not fix (or cannot fix) before any state could be
// collected: collection_state collect_failed with cerr. The collected
// summary of an earlier state, if any, is left as it is.
func (s *Store) RecordCollectFailure(ctx context.Context, jobID string, cerr event.JobError) error {
	ref := s.c.Collection(JobsCollection).Doc(jobID)
	now := s.opts.Now().UTC()
	_, err := ref.Set(ctx, map[string]any{
		"job_id":           jobID,
		"collection_state": CollectionFailed,
		"collect_error":    cerr,
		"updated_at":       now,
	}, firestore.MergeAll)
	if err != nil {
		return fmt.Errorf("firestore set %s: %w (retryable)", ref.Path, err)
	}
	return nil
}

// MarkResultsPublished records that the results event eventID for state is
// on the results topic. It is a no-op when the job has since collected
// another state.
func (s *Store) MarkResultsPublished(ctx context.Context, jobID string, state event.State, eventID string) error {
	ref := s.c.Collection(JobsCollection).Doc(jobID)
	err := s.runTx(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		if cs, _ := snap.DataAt("collected_state"); cs != string(state) {
			return nil
		}
		return tx.Update(ref, []firestore.Update{
			{Path: "results_event_id", Value: eventID},
			{Path: "updated_at", Value: s.opts.Now().UTC()},
		})
	})
	if err != nil {
		return fmt.Errorf("firestore mark results published %s: %w (retryable)", ref.Path, err)
	}
	return nil
}

// NoteUnknownEvent records an event type geminihooks does not interpret.
func (s *Store) NoteUnknownEvent(ctx context.Context, jobID, eventType string) error {
	ref := s.c.Collection(JobsCollection).Doc(jobID)
	_, err := ref.Set(ctx, map[string]any{
		"job_id":             jobID,
		"last_unknown_event": eventType,
		"updated_at":         s.opts.Now().UTC(),
	}, firestore.MergeAll)
	if err != nil {
		return fmt.Errorf("firestore set %s: %w (retryable)", ref.Path, err)
	}
	return nil
}
