package workflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/genai"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/submit"
	"github.com/geminihooks/geminihooks/shared/workflow/tools"
)

// Sentinel errors.
var (
	// ErrInFlight: another attempt holds the step's intent right now;
	// redeliver later (the function answers 409).
	ErrInFlight = errors.New("workflow step being advanced by another attempt (retry later)")
	// ErrUnknownWorkflow: no definition of that name is deployed.
	ErrUnknownWorkflow = errors.New("unknown workflow")
	// ErrNotRetryable: retry-step on a step that has not failed.
	ErrNotRetryable = errors.New("step cannot be retried now")
	// ErrInput: the run input is unusable; fix it.
	ErrInput = errors.New("invalid workflow input")
)

// Options configures a [Service].
type Options struct {
	// Firestore holds workflow_runs; Ledger the jobs (same database).
	Firestore *firestore.Client
	Ledger    *ledger.Store
	// GenAI submits jobs (through shared/submit) and continues interactions.
	GenAI *genai.Client
	// Catalog are the deployed definitions (runs keep their own copy).
	Catalog Catalog
	// Tools are the functions interactions may call. Default tools.Default().
	Tools *tools.Registry
	// IntentLease bounds how long a crashed attempt blocks a step before
	// another attempt reconciles it. Default 2m; Gemini calls are given
	// half of it.
	IntentLease time.Duration
	// MaxTemplateResults caps the batch results a template sees per step.
	// Default 1000.
	MaxTemplateResults int
	Now                func() time.Time
	Logger             *slog.Logger
}

// Service runs workflows. It is safe for concurrent use.
type Service struct {
	o    Options
	runs runs
	defs sync.Map // definition source → *Definition
}

// New returns a Service; Firestore, Ledger and GenAI are required.
func New(o Options) *Service {
	if o.Tools == nil {
		o.Tools = tools.Default()
	}
	if o.IntentLease <= 0 {
		o.IntentLease = 2 * time.Minute
	}
	if o.MaxTemplateResults <= 0 {
		o.MaxTemplateResults = 1000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Catalog == nil {
		o.Catalog = Catalog{}
	}
	return &Service{o: o, runs: runs{c: o.Firestore}}
}

func (s *Service) now() time.Time { return s.o.Now().UTC() }

// Catalog returns the deployed definitions.
func (s *Service) Catalog() Catalog { return s.o.Catalog }

func (s *Service) def(r *Run) (*Definition, error) {
	if d, ok := s.defs.Load(r.Definition); ok {
		return d.(*Definition), nil
	}
	d, err := Parse([]byte(r.Definition), nil)
	if err != nil {
		return nil, fmt.Errorf("run %s: stored definition: %w", r.RunID, err)
	}
	s.defs.Store(r.Definition, d)
	return d, nil
}

// Start creates a run of workflow name with input and drives its first
// step. An empty runID gets a fresh one; an existing runID is not started
// twice (the existing run is driven instead).
func (s *Service) Start(ctx context.Context, name, runID string, input map[string]any) (string, error) {
	d, ok := s.o.Catalog[name]
	if !ok {
		return "", fmt.Errorf("%w %q (deployed: %s)", ErrUnknownWorkflow, name, strings.Join(s.o.Catalog.Names(), ", "))
	}
	if runID == "" {
		runID = name + "-" + newToken()[:12]
	}
	if !stepName.MatchString(runID) && !validRunID(runID) {
		return "", fmt.Errorf("%w: run id %q", ErrInput, runID)
	}
	if _, err := s.create(ctx, d, runID, input, nil); err != nil {
		return "", err
	}
	return runID, s.drive(ctx, runID)
}

func validRunID(id string) bool {
	return id != "" && len(id) <= 200 && event.EscapeDocID(id) == id
}

func (s *Service) create(ctx context.Context, d *Definition, runID string, input map[string]any, trig *TriggerRef) (bool, error) {
	now := s.now()
	r := &Run{RunID: runID, Workflow: d.Name, Status: RunRunning, Input: input, Trigger: trig,
		Definition: string(d.Source), CreatedAt: now, UpdatedAt: now}
	for _, st := range d.Steps {
		r.Steps = append(r.Steps, StepState{Name: st.Name, Kind: st.Kind, Status: StepPending, Attempt: 1})
	}
	return s.runs.create(ctx, r)
}

// Resume drives a run whose progress stalled: a step whose intent holder
// vanished is reconciled once its lease has run out (see [Service.Handle]),
// and a running step whose job was already collected (its results event
// lost or never labelled) takes that collection from the ledger.
func (s *Service) Resume(ctx context.Context, runID string) error {
	r, err := s.runs.get(ctx, runID)
	if err != nil {
		return err
	}
	if err := s.catchUp(ctx, runID, r.Current); err != nil {
		return err
	}
	return s.drive(ctx, runID)
}

// Get returns a run.
func (s *Service) Get(ctx context.Context, runID string) (*Run, error) { return s.runs.get(ctx, runID) }

// List returns the most recently updated runs.
func (s *Service) List(ctx context.Context, limit int) ([]*Run, error) {
	return s.runs.list(ctx, limit)
}

// Handle processes one results event: it advances the run named by the
// job's workflow labels, or starts the runs whose triggers match. A nil
// error means acknowledge; [ErrInFlight] means redeliver soon; any other
// error means redeliver later.
func (s *Service) Handle(ctx context.Context, ev event.ResultsEvent) (string, error) {
	if ev.Labels[LabelRun] != "" {
		return s.advance(ctx, ev)
	}
	return s.trigger(ctx, ev)
}

func (s *Service) trigger(ctx context.Context, ev event.ResultsEvent) (string, error) {
	var started []string
	for _, name := range s.o.Catalog.Names() {
		d := s.o.Catalog[name]
		if !d.matches(ev) {
			continue
		}
		// One run per (workflow, event): redeliveries find it created.
		runID := d.Name + "-" + ev.EventID[:min(16, len(ev.EventID))]
		trig := &TriggerRef{EventID: ev.EventID, Type: ev.Type, JobID: ev.JobID, State: string(ev.State), Labels: ev.Labels}
		if _, err := s.create(ctx, d, runID, nil, trig); err != nil {
			return "", err
		}
		if err := s.drive(ctx, runID); err != nil {
			return "", err
		}
		started = append(started, runID)
	}
	if len(started) == 0 {
		return "no workflow label or matching trigger", nil
	}
	return "started " + strings.Join(started, ","), nil
}

func (d *Definition) matches(ev event.ResultsEvent) bool {
	if ev.Labels[LabelRun] != "" || ev.CollectionState != ledger.CollectionDone {
		return false
	}
	for _, t := range d.On {
		if ok, _ := path.Match(t.EventType, ev.Type); !ok {
			continue
		}
		states := t.States
		if len(states) == 0 {
			states = []string{string(event.StateSucceeded)}
		}
		if !slices.Contains(states, string(ev.State)) {
			continue
		}
		all := true
		for k, v := range t.Label {
			if ev.Labels[k] != v {
				all = false
			}
		}
		if all {
			return true
		}
	}
	return false
}

// advance applies a workflow job's results event to its run.
func (s *Service) advance(ctx context.Context, ev event.ResultsEvent) (string, error) {
	note, err := s.apply(ctx, ev)
	if err != nil || note == "run not found" {
		return note, err
	}
	return note, s.drive(ctx, ev.Labels[LabelRun])
}

// apply records a results event on its step, once; see advance.
func (s *Service) apply(ctx context.Context, ev event.ResultsEvent) (string, error) {
	runID, stepN := ev.Labels[LabelRun], ev.Labels[LabelStep]
	attempt, _ := strconv.Atoi(ev.Labels[LabelAttempt])
	turn, _ := strconv.Atoi(ev.Labels[LabelTurn])
	note := "applied"
	err := s.runs.update(ctx, runID, func(r *Run) (bool, error) {
		note = "applied"
		if r.Terminal() {
			note = "run already " + r.Status
			return false, nil
		}
		st := r.Step(stepN)
		if st == nil {
			note = "unknown step"
			return false, nil
		}
		if st.Attempt != attempt {
			note = "event of an earlier attempt"
			return false, nil
		}
		d, err := s.def(r)
		if err != nil {
			return false, err
		}
		si := d.StepIndex(stepN)
		if si < 0 {
			note = "step not in the run's definition"
			return false, nil
		}
		sd := d.Steps[si]
		now := s.now()
		switch {
		case st.Status == StepRunning && st.JobID == ev.JobID:
		case (st.Status == StepSubmitting || st.Status == StepActing) && st.Intent != nil &&
			st.Intent.Key == intentKey(attempt, turn) && !slices.Contains(st.Jobs, ev.JobID):
			// The job was created and labelled but the attempt that
			// created it did not record it on the run: adopt it.
			s.adopt(st, ev.JobID, ev.GeminiName, turn, now)
			note = "adopted and applied"
		default:
			note = "duplicate or stale event (step " + st.Status + ")"
			return false, nil
		}
		st.State = string(ev.State)
		switch {
		case ev.CollectionState == ledger.CollectionFailed:
			s.failStep(r, st, sd, fmt.Sprintf("results of job %s could not be collected: %s", ev.JobID, errText(ev.Error)), now)
		case ev.State == event.StateSucceeded:
			st.Status, st.FinishedAt = StepSucceeded, now
		case ev.State.Terminal():
			s.failStep(r, st, sd, fmt.Sprintf("job %s %s: %s", ev.JobID, ev.State, errText(ev.Error)), now)
		case ev.State == event.StateRequiresAction && st.Kind == KindInteraction:
			if st.Turn >= sd.maxTurns() {
				s.failStep(r, st, sd, fmt.Sprintf("interaction %s still requires action after %d tool turns (max_turns %d)", ev.JobID, st.Turn, sd.maxTurns()), now)
			} else {
				st.Status, st.Intent = StepActing, nil
			}
		default:
			note = "state " + string(ev.State) + " does not advance the step"
			return false, nil
		}
		r.UpdatedAt = now
		return true, nil
	})
	if errors.Is(err, ErrRunNotFound) {
		return "run not found", nil
	}
	if err != nil {
		return "", err
	}
	return note, nil
}

// catchUp covers a job that finished and was collected before its
// submission (and so its workflow labels) was recorded: its results event
// carried no labels, the subscription filter kept it from us, and the step
// would wait forever. The ledger still holds the collection, so it is
// applied as the event the step waits for. When the labelled event does
// arrive, it is a duplicate.
func (s *Service) catchUp(ctx context.Context, runID string, idx int) error {
	r, err := s.runs.get(ctx, runID)
	if err != nil || idx >= len(r.Steps) || r.Steps[idx].Status != StepRunning {
		return nil
	}
	st := r.Steps[idx]
	j, err := s.o.Ledger.GetJob(ctx, st.JobID)
	if err != nil || j.CollectedState == "" ||
		(j.CollectionState != ledger.CollectionDone && j.CollectionState != ledger.CollectionFailed) {
		return nil // not collected yet: its results event will carry the labels
	}
	ev := j.StoredResultsEvent()
	ev.Labels = s.labels(runID, st, st.Turn)
	_, err = s.apply(ctx, ev)
	return err
}

func (s *Service) adopt(st *StepState, jobID, name string, turn int, now time.Time) {
	st.JobID, st.GeminiName, st.Turn, st.Status, st.Intent = jobID, name, turn, StepRunning, nil
	st.Jobs = append(st.Jobs, jobID)
	if st.SubmittedAt.IsZero() {
		st.SubmittedAt = now
	}
}

func errText(e *event.JobError) string {
	if e == nil {
		return "no error details"
	}
	return strings.TrimSpace(e.Code + " " + e.Message)
}

// failStep fails st and, unless the step allows failure, the run.
func (s *Service) failStep(r *Run, st *StepState, sd Step, reason string, now time.Time) {
	st.Status, st.Error, st.Intent, st.FinishedAt = StepFailed, reason, nil, now
	if !sd.AllowFailure {
		r.Status, r.Error, r.FinishedAt = RunFailed, "step "+st.Name+": "+reason, now
	}
	r.UpdatedAt = now
}

// action is a side effect drive decided on inside a transaction.
type action struct {
	kind      string // "submit", "act", "relabel"
	step      int
	token     string
	reconcile bool
}

// drive moves the run forward until it waits for a results event, ends,
// or a step is in flight elsewhere.
func (s *Service) drive(ctx context.Context, runID string) error {
	for range 64 {
		var act action
		err := s.runs.update(ctx, runID, func(r *Run) (bool, error) {
			act = action{}
			if r.Terminal() {
				return false, nil
			}
			d, err := s.def(r)
			if err != nil {
				return false, err
			}
			now := s.now()
			changed := false
			for r.Current < len(r.Steps) {
				st := r.Steps[r.Current]
				if st.Status == StepSucceeded || st.Status == StepSkipped || st.Status == StepFailed && d.Steps[r.Current].AllowFailure {
					r.Current++
					changed = true
					continue
				}
				break
			}
			if r.Current >= len(r.Steps) {
				r.Status, r.FinishedAt, r.UpdatedAt = RunSucceeded, now, now
				return true, nil
			}
			st := &r.Steps[r.Current]
			act.step = r.Current
			var key string
			switch st.Status {
			case StepFailed:
				r.Status, r.FinishedAt = RunFailed, now
				if r.Error == "" {
					r.Error = "step " + st.Name + ": " + st.Error
				}
				r.UpdatedAt = now
				return true, nil
			case StepRunning:
				if st.LabelsPending {
					act.kind = "relabel"
				}
				return changed, nil
			case StepPending, StepSubmitting:
				st.Status, act.kind, key = StepSubmitting, "submit", intentKey(st.Attempt, st.Turn)
			case StepActing:
				act.kind, key = "act", intentKey(st.Attempt, st.Turn+1)
			default:
				return changed, nil
			}
			last := ""
			if st.Intent != nil {
				last = st.Intent.LastError
				// A released intent (no token) created nothing: start afresh.
				if st.Intent.Key == key && st.Intent.Token != "" {
					if st.Intent.Until.After(now) {
						return false, ErrInFlight
					}
					act.reconcile = true
				}
			}
			act.token = newToken()
			st.Intent = &Intent{Key: key, Token: act.token, Until: now.Add(s.o.IntentLease), LastError: last}
			r.UpdatedAt = now
			return true, nil
		})
		if err != nil {
			if errors.Is(err, ErrRunNotFound) {
				return nil
			}
			return err
		}
		switch act.kind {
		case "":
			return nil
		case "relabel":
			return s.relabel(ctx, runID, act.step)
		}
		if err := s.perform(ctx, runID, act); err != nil {
			return err
		}
		if err := s.catchUp(ctx, runID, act.step); err != nil {
			return err
		}
	}
	return fmt.Errorf("run %s: drive did not settle after 64 rounds (a bug; retry may help)", runID)
}

// finish records the outcome of a side effect if this attempt still holds
// the intent (token); fn mutates the step.
func (s *Service) finish(ctx context.Context, runID string, idx int, token string, fn func(r *Run, st *StepState, sd Step, now time.Time)) error {
	return s.runs.update(ctx, runID, func(r *Run) (bool, error) {
		st := &r.Steps[idx]
		if st.Intent == nil || st.Intent.Token != token {
			// Another attempt took over after our lease ran out; it
			// decides. Nothing of ours is recorded.
			return false, nil
		}
		d, err := s.def(r)
		if err != nil {
			return false, err
		}
		now := s.now()
		fn(r, st, d.Steps[idx], now)
		r.UpdatedAt = now
		return true, nil
	})
}

// release gives up the intent after a failure that certainly created
// nothing at Gemini, so the redelivery tries again.
func (s *Service) release(ctx context.Context, runID string, idx int, token string, cause error) error {
	ferr := s.finish(ctx, runID, idx, token, func(_ *Run, st *StepState, _ Step, _ time.Time) {
		st.Intent = &Intent{Key: st.Intent.Key, LastError: cause.Error()}
	})
	return errors.Join(cause, ferr)
}

func (s *Service) labels(runID string, st StepState, turn int) map[string]string {
	return map[string]string{LabelRun: runID, LabelStep: st.Name, LabelAttempt: strconv.Itoa(st.Attempt), LabelTurn: strconv.Itoa(turn)}
}

func (s *Service) perform(ctx context.Context, runID string, act action) error {
	r, err := s.runs.get(ctx, runID)
	if err != nil {
		return err
	}
	if act.reconcile {
		return s.reconcile(ctx, r, act)
	}
	if act.kind == "act" {
		return s.toolTurn(ctx, r, act)
	}
	return s.submitStep(ctx, r, act)
}

// reconcile handles an intent whose holder vanished (crash, timeout): if
// the job it was creating is in the ledger (found by its labels), the step
// adopts it; otherwise nobody can tell whether Gemini created it, and the
// step fails with that reason instead of risking a second job.
func (s *Service) reconcile(ctx context.Context, r *Run, act action) error {
	st := r.Steps[act.step]
	turn := st.Turn
	if act.kind == "act" {
		turn++
	}
	want := s.labels(r.RunID, st, turn)
	q := s.o.Firestore.Collection(ledger.JobsCollection).Query
	for _, k := range []string{LabelRun, LabelStep, LabelAttempt, LabelTurn} {
		q = q.Where("labels."+k, "==", want[k])
	}
	snaps, err := q.Limit(1).Documents(ctx).GetAll()
	if err != nil {
		return fmt.Errorf("firestore query jobs by labels of %s/%s: %w (retryable)", r.RunID, st.Name, err)
	}
	return s.finish(ctx, r.RunID, act.step, act.token, func(r *Run, st *StepState, sd Step, now time.Time) {
		if len(snaps) == 1 {
			name, _ := snaps[0].DataAt("gemini_name")
			n, _ := name.(string)
			s.adopt(st, snaps[0].Ref.ID, n, turn, now)
			return
		}
		last := ""
		if st.Intent != nil && st.Intent.LastError != "" {
			last = " (last error: " + st.Intent.LastError + ")"
		}
		s.failStep(r, st, sd, fmt.Sprintf("submission outcome unknown: an attempt started submitting (%s) and did not record a job%s; check Gemini for an orphan job, then run: geminihooks workflow retry-step %s %s",
			intentKey(st.Attempt, turn), last, r.RunID, st.Name), now)
	})
}

func (s *Service) geminiCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.o.IntentLease/2)
}

func (s *Service) submitStep(ctx context.Context, r *Run, act action) error {
	d, err := s.def(r)
	if err != nil {
		return err
	}
	sd, st := d.Steps[act.step], r.Steps[act.step]
	data, err := s.templateData(ctx, r, d, act.step)
	if err != nil {
		return s.release(ctx, r.RunID, act.step, act.token, err)
	}
	failWith := func(reason string) error {
		return s.finish(ctx, r.RunID, act.step, act.token, func(r *Run, st *StepState, sd Step, now time.Time) {
			s.failStep(r, st, sd, reason, now)
		})
	}
	if sd.When != "" {
		out, err := render("when", sd.When, data)
		if err != nil {
			return failWith(err.Error())
		}
		if strings.TrimSpace(out) != "true" {
			return s.finish(ctx, r.RunID, act.step, act.token, func(_ *Run, st *StepState, _ Step, now time.Time) {
				st.Status, st.Intent, st.FinishedAt = StepSkipped, nil, now
			})
		}
	}
	labels := s.labels(r.RunID, st, st.Turn)
	if err := event.ValidateLabels(labels); err != nil {
		// Before anything exists at Gemini: a job whose results event
		// cannot carry its run's labels would never find its way back.
		return failWith("labels: " + err.Error())
	}
	gctx, cancel := s.geminiCtx(ctx)
	defer cancel()
	var ref event.JobRef
	switch sd.Kind {
	case KindBatch:
		req := submit.BatchRequest{Model: sd.Model, Labels: labels}
		list := []any{nil}
		if sd.Foreach != "" {
			out, err := render("foreach", sd.Foreach, data)
			if err != nil {
				return failWith(err.Error())
			}
			if list = items(out); len(list) == 0 {
				return failWith("foreach rendered no items")
			}
		}
		for i, it := range list {
			data.Item, data.Index = it, i
			p, err := render("prompt", sd.Prompt, data)
			if err != nil {
				return failWith(err.Error())
			}
			req.Prompts = append(req.Prompts, p)
		}
		if sd.DisplayName != "" {
			if req.DisplayName, err = render("display_name", sd.DisplayName, data); err != nil {
				return failWith(err.Error())
			}
		}
		if strings.TrimSpace(req.DisplayName) == "" {
			// Gemini requires one; this one names the run and step.
			req.DisplayName = event.Bound(fmt.Sprintf("geminihooks-%s-%s-a%s", labels[LabelRun], labels[LabelStep], labels[LabelAttempt]), 128)
		}
		ref, err = submit.Batch(gctx, s.o.GenAI, s.o.Ledger, req)
	case KindVideo:
		p, rerr := render("prompt", sd.Prompt, data)
		if rerr != nil {
			return failWith(rerr.Error())
		}
		ref, err = submit.Video(gctx, s.o.GenAI, s.o.Ledger, submit.VideoRequest{Model: sd.Model, Prompt: p, NumberOfVideos: sd.NumberOfVideos, Labels: labels})
	case KindInteraction:
		p, rerr := render("prompt", sd.Prompt, data)
		if rerr != nil {
			return failWith(rerr.Error())
		}
		ref, err = submit.Interaction(gctx, s.o.GenAI, s.o.Ledger, submit.InteractionRequest{Model: sd.Model, Input: p, Tools: sd.Tools, Labels: labels})
	}
	return s.afterCreate(ctx, r.RunID, act, ref, st.Turn, err)
}

// afterCreate records a submission's outcome on the run.
func (s *Service) afterCreate(ctx context.Context, runID string, act action, ref event.JobRef, turn int, err error) error {
	record := func(pending bool) error {
		return s.finish(ctx, runID, act.step, act.token, func(_ *Run, st *StepState, _ Step, now time.Time) {
			st.JobID, st.GeminiName, st.Turn, st.Status, st.Intent, st.State, st.LabelsPending = ref.ID, ref.Name, turn, StepRunning, nil, string(event.StateSubmitted), pending
			st.Jobs = append(st.Jobs, ref.ID)
			if turn == 0 {
				st.SubmittedAt = now
			}
		})
	}
	switch {
	case err == nil:
		return record(false)
	case errors.Is(err, submit.ErrNotRecorded):
		// The job exists; keep it and retry its labels (relabel).
		if ferr := record(true); ferr != nil {
			return errors.Join(err, ferr)
		}
		return s.relabel(ctx, runID, act.step)
	case errors.Is(err, submit.ErrInvalidRequest), gemini.IsPermanent(err):
		return s.finish(ctx, runID, act.step, act.token, func(r *Run, st *StepState, sd Step, now time.Time) {
			s.failStep(r, st, sd, err.Error(), now)
		})
	case gemini.StatusCode(err) != 0:
		// Gemini answered with an error: nothing was created.
		return s.release(ctx, runID, act.step, act.token, err)
	default:
		// No answer (timeout, connection lost): the job may exist. Keep
		// the intent; after its lease the step is reconciled.
		return fmt.Errorf("submission outcome unknown, step kept in flight until reconciled: %w", err)
	}
}

// relabel records the labels of a step's job again after ErrNotRecorded.
func (s *Service) relabel(ctx context.Context, runID string, idx int) error {
	r, err := s.runs.get(ctx, runID)
	if err != nil {
		return err
	}
	st := r.Steps[idx]
	if !st.LabelsPending || st.JobID == "" {
		return nil
	}
	ref := event.JobRef{ID: st.JobID, Kind: event.Kind(st.Kind), Name: st.GeminiName}
	if err := s.o.Ledger.RecordSubmission(ctx, ledger.Submission{Ref: ref, Labels: s.labels(runID, st, st.Turn)}); err != nil {
		return err
	}
	return s.runs.update(ctx, runID, func(r *Run) (bool, error) {
		if r.Steps[idx].JobID != st.JobID {
			return false, nil
		}
		r.Steps[idx].LabelsPending = false
		return true, nil
	})
}

// RetryStep re-submits a failed step (a new attempt) and resets the steps
// after it; the run is running again.
func (s *Service) RetryStep(ctx context.Context, runID, step string) error {
	err := s.runs.update(ctx, runID, func(r *Run) (bool, error) {
		idx := -1
		for i := range r.Steps {
			if r.Steps[i].Name == step {
				idx = i
			}
		}
		if idx < 0 {
			return false, fmt.Errorf("%w: run %s has no step %q", ErrNotRetryable, runID, step)
		}
		st := &r.Steps[idx]
		if st.Status != StepFailed {
			return false, fmt.Errorf("%w: step %s is %s, only a failed step can be retried", ErrNotRetryable, step, st.Status)
		}
		if !r.Terminal() && r.Current != idx {
			return false, fmt.Errorf("%w: run %s is running step %s", ErrNotRetryable, runID, r.Steps[r.Current].Name)
		}
		for i := idx; i < len(r.Steps); i++ {
			o := r.Steps[i]
			attempt := o.Attempt
			if i == idx || o.Status != StepPending {
				attempt++
			}
			r.Steps[i] = StepState{Name: o.Name, Kind: o.Kind, Status: StepPending, Attempt: attempt}
		}
		r.Current, r.Status, r.Error, r.FinishedAt, r.UpdatedAt = idx, RunRunning, "", time.Time{}, s.now()
		return true, nil
	})
	if err != nil {
		return err
	}
	return s.drive(ctx, runID)
}

// GiveUp fails a run after its last delivery attempt failed transiently,
// so the failure is visible on the run (the message dead-letters too).
func (s *Service) GiveUp(ctx context.Context, runID string, cause error) error {
	return s.runs.update(ctx, runID, func(r *Run) (bool, error) {
		if r.Terminal() {
			return false, nil
		}
		now := s.now()
		r.Status, r.Error, r.FinishedAt, r.UpdatedAt = RunFailed, "gave up after the last delivery attempt: "+cause.Error(), now, now
		if r.Current < len(r.Steps) {
			st := &r.Steps[r.Current]
			st.Status, st.Error, st.Intent, st.FinishedAt = StepFailed, r.Error, nil, now
		}
		return true, nil
	})
}
