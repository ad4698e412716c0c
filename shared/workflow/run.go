package workflow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RunsCollection holds one document per workflow run.
const RunsCollection = "workflow_runs"

// Labels put on every job a workflow submits (see shared/submit); the
// Collector copies them to the results event as attributes label_<k>.
const (
	LabelRun     = "workflow_run"
	LabelStep    = "workflow_step"
	LabelAttempt = "workflow_attempt"
	LabelTurn    = "turn"
)

// Run statuses.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// Step statuses. pending → submitting → running [→ acting → running …] →
// succeeded | failed | skipped.
const (
	StepPending    = "pending"
	StepSubmitting = "submitting" // a submission is in progress (Intent)
	StepRunning    = "running"    // the job is at Gemini; waiting for its results event
	StepActing     = "acting"     // tools are running and the interaction is being continued (Intent)
	StepSucceeded  = "succeeded"
	StepFailed     = "failed"
	StepSkipped    = "skipped"
)

// Run is the stored form of workflow_runs/{run_id}.
type Run struct {
	RunID    string `firestore:"run_id" json:"run_id"`
	Workflow string `firestore:"workflow" json:"workflow"`
	Status   string `firestore:"status" json:"status"`
	// Error is why the run failed.
	Error string         `firestore:"error,omitempty" json:"error,omitempty"`
	Input map[string]any `firestore:"input,omitempty" json:"input,omitempty"`
	// Trigger is the results event that started the run, if one did.
	Trigger *TriggerRef `firestore:"trigger,omitempty" json:"trigger,omitempty"`
	// Current is the index of the step being worked on.
	Current int         `firestore:"current" json:"current"`
	Steps   []StepState `firestore:"steps" json:"steps"`
	// Definition is the YAML of the workflow at start.
	Definition string    `firestore:"definition" json:"-"`
	CreatedAt  time.Time `firestore:"created_at" json:"created_at"`
	UpdatedAt  time.Time `firestore:"updated_at" json:"updated_at"`
	FinishedAt time.Time `firestore:"finished_at,omitempty" json:"finished_at,omitzero"`
}

// TriggerRef identifies the results event that started a run.
type TriggerRef struct {
	EventID string            `firestore:"event_id" json:"event_id"`
	Type    string            `firestore:"type" json:"type"`
	JobID   string            `firestore:"job_id" json:"job_id"`
	State   string            `firestore:"state" json:"state"`
	Labels  map[string]string `firestore:"labels,omitempty" json:"labels,omitempty"`
}

// StepState is a step's progress inside a [Run].
type StepState struct {
	Name   string `firestore:"name" json:"name"`
	Kind   string `firestore:"kind" json:"kind"`
	Status string `firestore:"status" json:"status"`
	// JobID is the job whose results event advances the step: the latest
	// interaction of a tool loop. Jobs lists every job of the attempt.
	JobID string `firestore:"job_id,omitempty" json:"job_id,omitempty"`
	// GeminiName is JobID's Gemini resource name.
	GeminiName string   `firestore:"gemini_name,omitempty" json:"gemini_name,omitempty"`
	Jobs       []string `firestore:"jobs,omitempty" json:"jobs,omitempty"`
	// State is the Gemini state of JobID as last seen.
	State string `firestore:"state,omitempty" json:"state,omitempty"`
	// Attempt counts submissions (retry-step adds one); Turn counts tool
	// turns of the current attempt. Both are job labels.
	Attempt int `firestore:"attempt" json:"attempt"`
	Turn    int `firestore:"turn" json:"turn"`
	// Intent is the side effect in progress (submitting / acting).
	Intent *Intent `firestore:"intent,omitempty" json:"intent,omitempty"`
	// LabelsPending: the job was created but recording its labels in the
	// ledger failed; it is retried before anything else.
	LabelsPending bool   `firestore:"labels_pending,omitempty" json:"labels_pending,omitempty"`
	Error         string `firestore:"error,omitempty" json:"error,omitempty"`

	SubmittedAt time.Time `firestore:"submitted_at,omitempty" json:"submitted_at,omitzero"`
	FinishedAt  time.Time `firestore:"finished_at,omitempty" json:"finished_at,omitzero"`
}

// Intent records, before Gemini is called, that a submission is under way.
// Key is deterministic (attempt and turn, also put on the job as labels),
// Token identifies the attempt holding it, Until ends its lease.
type Intent struct {
	Key   string    `firestore:"key" json:"key"`
	Token string    `firestore:"token" json:"token"`
	Until time.Time `firestore:"until" json:"until"`
	// LastError is the failure of the previous holder, if any.
	LastError string `firestore:"last_error,omitempty" json:"last_error,omitempty"`
}

func intentKey(attempt, turn int) string { return fmt.Sprintf("a%d/t%d", attempt, turn) }

// Step returns the state of step name, or nil.
func (r *Run) Step(name string) *StepState {
	for i := range r.Steps {
		if r.Steps[i].Name == name {
			return &r.Steps[i]
		}
	}
	return nil
}

// Terminal reports whether the run has finished.
func (r *Run) Terminal() bool { return r.Status != RunRunning }

// ErrRunNotFound reports a missing run document.
var ErrRunNotFound = errors.New("workflow run not found")

// runs is the Firestore access to workflow_runs.
type runs struct {
	c *firestore.Client
}

func (s runs) ref(id string) *firestore.DocumentRef { return s.c.Collection(RunsCollection).Doc(id) }

// create stores r unless a run with its id exists; created is false then.
func (s runs) create(ctx context.Context, r *Run) (created bool, err error) {
	_, err = s.ref(r.RunID).Create(ctx, r)
	if status.Code(err) == codes.AlreadyExists {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("firestore create %s/%s: %w (retryable)", RunsCollection, r.RunID, err)
	}
	return true, nil
}

func (s runs) get(ctx context.Context, id string) (*Run, error) {
	snap, err := s.ref(id).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, fmt.Errorf("%w: %s", ErrRunNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("firestore get %s/%s: %w (retryable)", RunsCollection, id, err)
	}
	var r Run
	if err := snap.DataTo(&r); err != nil {
		return nil, fmt.Errorf("decode %s/%s: %w", RunsCollection, id, err)
	}
	return &r, nil
}

// update runs fn on the run inside a transaction and stores the result if
// fn returns changed. fn may run several times (contention).
func (s runs) update(ctx context.Context, id string, fn func(r *Run) (changed bool, err error)) error {
	ref := s.ref(id)
	var fnErr error
	err := s.c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		fnErr = nil
		snap, err := tx.Get(ref)
		if status.Code(err) == codes.NotFound {
			return fmt.Errorf("%w: %s", ErrRunNotFound, id)
		}
		if err != nil {
			return err
		}
		var r Run
		if err := snap.DataTo(&r); err != nil {
			return fmt.Errorf("decode %s: %w", ref.Path, err)
		}
		changed, err := fn(&r)
		if err != nil {
			fnErr = err
			return err
		}
		if !changed {
			return nil
		}
		return tx.Set(ref, &r)
	})
	if err != nil && !errors.Is(err, ErrRunNotFound) && (fnErr == nil || !errors.Is(err, fnErr)) {
		return fmt.Errorf("firestore transaction %s: %w (retryable)", ref.Path, err)
	}
	return err
}

// list returns the most recently updated runs (single-field index).
func (s runs) list(ctx context.Context, limit int) ([]*Run, error) {
	q := s.c.Collection(RunsCollection).OrderBy("updated_at", firestore.Desc)
	if limit > 0 {
		q = q.Limit(limit)
	}
	it := q.Documents(ctx)
	defer it.Stop()
	var out []*Run
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("firestore query %s: %w (retryable)", RunsCollection, err)
		}
		var r Run
		if err := snap.DataTo(&r); err != nil {
			return nil, fmt.Errorf("decode %s: %w", snap.Ref.Path, err)
		}
		out = append(out, &r)
	}
}

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
