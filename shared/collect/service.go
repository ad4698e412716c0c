package collect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// ErrInvalidEvent reports a message that is not a JobEvent. Redelivery
// cannot help; the message belongs in the dead-letter topic.
var ErrInvalidEvent = errors.New("invalid job event (retry cannot help)")

// errInvalidData marks Gemini data the Collector cannot use (a succeeded
// batch without output, say): recorded as collect_failed, not retried.
var errInvalidData = errors.New("unusable gemini data (retry cannot help)")

// Ledger is what the Collector needs from the job store; *ledger.Store
// implements it.
type Ledger interface {
	GetJob(ctx context.Context, jobID string) (ledger.Job, error)
	OpenResults(ctx context.Context, jobID string) ledger.ResultWriter
	SaveCollection(ctx context.Context, jobID string, c ledger.Collection) (ledger.Saved, error)
	MarkResultsPublished(ctx context.Context, jobID string, state event.State, eventID string) error
	NoteUnknownEvent(ctx context.Context, jobID, eventType string) error
}

// Gemini is what the Collector reads from Gemini; *gemini.Client implements
// it. Errors must wrap gemini.ErrPermanent or gemini.ErrTransient.
type Gemini interface {
	GetBatch(ctx context.Context, name string) (*genai.BatchJob, error)
	GetVideosOperation(ctx context.Context, name string) (*genai.GenerateVideosOperation, error)
	GetInteraction(ctx context.Context, id string) (*interactions.Interaction, error)
	OpenFile(ctx context.Context, ref string) (io.ReadCloser, error)
}

// VideoStore keeps copies of generated videos; [GCSVideos] implements it.
type VideoStore interface {
	// Put stores r as object and returns its URI (gs://bucket/object).
	Put(ctx context.Context, object, contentType string, r io.Reader) (uri string, err error)
}

// Options configures a [Service].
type Options struct {
	Ledger    Ledger
	Gemini    Gemini
	Publisher bus.Publisher
	// Videos, when set, receives a copy of every generated video.
	Videos VideoStore
	// MaxDeliveryAttempts is the subscription's dead-letter threshold; on
	// that attempt a transient failure is recorded on the job. Default 5.
	MaxDeliveryAttempts int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Service collects finished Gemini jobs. It is safe for concurrent use.
type Service struct {
	o Options
}

// New returns a Service. Ledger, Gemini and Publisher are required.
func New(o Options) *Service {
	if o.MaxDeliveryAttempts <= 0 {
		o.MaxDeliveryAttempts = DefaultMaxDeliveryAttempts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{o: o}
}

// outcome is what a collection produced.
type outcome struct {
	counts      event.Counts
	tokens      event.Tokens
	output      map[string]any
	resultsPath string
	// jobErr is Gemini's error for a job that failed at Gemini.
	jobErr *event.JobError
}

// Handle collects the job a pushed JobEvent is about. A nil error means
// acknowledge; [ErrInvalidEvent] means the message is unusable; any other
// error means "redeliver later".
func (s *Service) Handle(ctx context.Context, m bus.PushMessage) error {
	var ev event.JobEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return fmt.Errorf("%w: decode message %s: %v", ErrInvalidEvent, m.MessageID, err)
	}
	if ev.JobID == "" || ev.Type == "" {
		return fmt.Errorf("%w: message %s has no job_id or type", ErrInvalidEvent, m.MessageID)
	}
	log := s.o.Logger.With("job_id", ev.JobID, "event_type", ev.Type, "webhook_id", ev.WebhookID,
		"message_id", m.MessageID, "delivery_attempt", m.DeliveryAttempt)

	state, known := event.StateOf(ev.Type)
	if !known {
		log.Info("unknown event type recorded, nothing to collect")
		return s.o.Ledger.NoteUnknownEvent(ctx, ev.JobID, ev.Type)
	}
	if ev.GeminiName == "" {
		return fmt.Errorf("%w: message %s has no gemini_name", ErrInvalidEvent, m.MessageID)
	}

	job, err := s.o.Ledger.GetJob(ctx, ev.JobID)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		// The Receiver records before it publishes, so this is a job
		// removed by hand or an event replayed into a fresh database:
		// collect it anyway, the event carries everything needed.
		job = ledger.Job{JobID: ev.JobID}
	case err != nil:
		return err
	}

	if cur := event.State(job.State); cur != state && !state.Supersedes(cur) && cur != event.StateUnknown {
		// Stale: the job has moved on (requires_action after completed, or
		// a second, different terminal event). The event for the current
		// state is collected on its own delivery.
		log.Info("stale event skipped", "job_state", job.State)
		return nil
	}
	if job.CollectedState == string(state) {
		switch {
		case job.ResultsEventID != "":
			log.Info("already collected and published")
			return nil
		case job.CollectionState == ledger.CollectionDone:
			log.Info("already collected, publishing results event")
			return s.publishStored(ctx, ev, job)
		}
	}

	start := s.o.Now()
	out, err := s.collect(ctx, ev, state)
	if err != nil {
		permanent := gemini.IsPermanent(err) || errors.Is(err, errInvalidData)
		last := m.DeliveryAttempt > 0 && m.DeliveryAttempt >= s.o.MaxDeliveryAttempts
		if !permanent && !last {
			log.Warn("collection failed, will retry", "err", err.Error())
			return err
		}
		failed := outcome{}
		cerr := &event.JobError{Code: "permanent", Message: err.Error()}
		if !permanent {
			cerr.Code = "retries_exhausted"
		}
		log.Error("collection failed", "err", err.Error(), "permanent", permanent)
		if !permanent {
			// Record the failure for operators, but neither publish (a
			// replay from the dead-letter topic may still succeed, and its
			// event shares this state's event_id) nor acknowledge.
			if _, _, serr := s.save(ctx, ev, state, failed, cerr); serr != nil {
				log.Error("recording collection failure", "err", serr.Error())
			}
			return err
		}
		return s.finish(ctx, log, ev, state, job, failed, cerr)
	}
	log.Info("collected", "results", out.counts.Results, "failed", out.counts.Failed,
		"duration_ms", s.o.Now().Sub(start).Milliseconds())
	return s.finish(ctx, log, ev, state, job, out, nil)
}

func (s *Service) collect(ctx context.Context, ev event.JobEvent, state event.State) (outcome, error) {
	switch ev.Type {
	case event.TypeBatchSucceeded:
		return s.collectBatch(ctx, ev)
	case event.TypeVideoGenerated:
		return s.collectVideo(ctx, ev)
	case event.TypeInteractionCompleted, event.TypeInteractionFailed, event.TypeInteractionRequiresAction:
		return s.collectInteraction(ctx, ev, state)
	default:
		// batch.failed, batch.expired, *.cancelled: Gemini's SDK does not
		// report batch errors (it never fills BatchJob.Error), so the
		// webhook's error fields are the whole story.
		return outcome{jobErr: eventError(ev)}, nil
	}
}

func eventError(ev event.JobEvent) *event.JobError {
	if ev.Data.ErrorCode == "" && ev.Data.ErrorMessage == "" {
		return nil
	}
	return &event.JobError{Code: ev.Data.ErrorCode, Message: ev.Data.ErrorMessage}
}

// save writes the collection summary and returns it with the job's labels
// as of that write.
func (s *Service) save(ctx context.Context, ev event.JobEvent, state event.State, out outcome, cerr *event.JobError) (ledger.Collection, map[string]string, error) {
	now := s.o.Now().UTC()
	c := ledger.Collection{
		CollectionState: ledger.CollectionDone,
		CollectedState:  state,
		Counts:          out.counts,
		Tokens:          out.tokens,
		ResultsPath:     out.resultsPath,
		CompletedAt:     ev.EventTime,
		CollectedAt:     now,
		CollectError:    cerr,
		Output:          out.output,
		Kind:            ev.Kind,
		GeminiName:      ev.GeminiName,
	}
	if cerr != nil {
		c.CollectionState = ledger.CollectionFailed
	}
	if !ev.EventTime.IsZero() {
		c.CollectLatencyMS = max(now.Sub(ev.EventTime).Milliseconds(), 0)
	}
	saved, err := s.o.Ledger.SaveCollection(ctx, ev.JobID, c)
	if err != nil {
		return c, nil, err
	}
	if !saved.Applied {
		return c, nil, errSuperseded
	}
	return c, saved.Labels, nil
}

var errSuperseded = errors.New("a later state was already collected")

// finish records the summary, publishes the results event and marks it
// published, in that order: a consumer of the event always finds the
// summary, and a crash after publishing only causes a re-publish with the
// same event_id.
func (s *Service) finish(ctx context.Context, log *slog.Logger, ev event.JobEvent, state event.State, job ledger.Job, out outcome, cerr *event.JobError) error {
	c, labels, err := s.save(ctx, ev, state, out, cerr)
	if errors.Is(err, errSuperseded) {
		log.Info("a later state was collected meanwhile; not publishing")
		return nil
	}
	if err != nil {
		return err
	}
	re := event.ResultsEvent{
		SchemaVersion:   event.SchemaVersion,
		EventID:         event.ResultsEventID(ev.JobID, state),
		Type:            ev.Type,
		JobID:           ev.JobID,
		Kind:            ev.Kind,
		GeminiName:      ev.GeminiName,
		State:           state,
		CollectionState: c.CollectionState,
		JobPath:         ledger.JobPath(ev.JobID),
		ResultsPath:     c.ResultsPath,
		Counts:          c.Counts,
		Tokens:          c.Tokens,
		Error:           cerr,
		Labels:          labels,
		EventTime:       ev.EventTime,
		CollectedAt:     c.CollectedAt,
	}
	if re.Error == nil {
		re.Error = out.jobErr
	}
	return s.publish(ctx, re)
}

// publishStored re-publishes the results event of a collection whose
// summary was saved by an earlier attempt that died before publishing
// (job.CollectedState is state).
func (s *Service) publishStored(ctx context.Context, ev event.JobEvent, job ledger.Job) error {
	re := job.StoredResultsEvent()
	// The delivery names the event precisely; the job may since show a
	// later event's type.
	re.Type, re.Kind, re.GeminiName, re.EventTime = ev.Type, ev.Kind, ev.GeminiName, ev.EventTime
	return s.publish(ctx, re)
}

func (s *Service) publish(ctx context.Context, re event.ResultsEvent) error {
	if _, err := s.o.Publisher.Publish(ctx, bus.Message{
		Data:        event.Marshal(re),
		Attributes:  re.Attributes(),
		OrderingKey: re.JobID,
	}); err != nil {
		return err
	}
	return s.o.Ledger.MarkResultsPublished(ctx, re.JobID, re.State, re.EventID)
}
