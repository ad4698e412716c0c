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

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/topology"
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
	ApplyVerification(ctx context.Context, jobID string, kind event.Kind, v ledger.Verification) error
	RecordVerdict(ctx context.Context, jobID string, v ledger.Verification) error
	RecordCollectFailure(ctx context.Context, jobID string, cerr event.JobError) error
	MarkResultsPublished(ctx context.Context, jobID string, state event.State, eventID string) error
	NoteUnknownEvent(ctx context.Context, jobID, eventType string) error
}

// Gemini is what the Collector reads from Gemini; *gemini.Client implements
// it. Errors must wrap gemini.ErrPermanent or gemini.ErrTransient, and
// ReadJob's gemini.ErrNotReadable for a job the API key cannot read.
type Gemini interface {
	ReadJob(ctx context.Context, kind event.Kind, name string) (*gemini.Job, error)
	OpenFile(ctx context.Context, ref string) (io.ReadCloser, error)
	// OpenFileAt downloads a file from a byte offset (Range, or skipping).
	OpenFileAt(ctx context.Context, ref string, offset int64) (*gemini.Download, error)
	// FileInfo reads a file's metadata; a file the key cannot read wraps
	// gemini.ErrFileGone (as does OpenFile's error for one).
	FileInfo(ctx context.Context, ref string) (*genai.File, error)
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
	// ClaimGrace is how long after its publication a webhook's claim of a
	// finished job is retried while Gemini's API still shows the job
	// unfinished (the API may lag its own webhook). After it, the claim is
	// recorded as contradicted and acknowledged. Default 2 minutes.
	ClaimGrace time.Duration
	// ReadTimeout bounds one read of a job from Gemini's API. Default 30s.
	ReadTimeout time.Duration
	// FileTTL is how long Gemini keeps output files after the job ended
	// (default gemini.FileTTL, 48h). An output the API names but no longer
	// serves is output_expired (permanent) once the job ended longer ago;
	// before that it is retried as a lagging API.
	FileTTL time.Duration
	// Events receives event.Continuation messages (the events topic,
	// EVENTS_TOPIC). With Events set and a Ledger that implements
	// [Checkpointer], batch output files are collected in checkpointed
	// steps of TimeBudget (see "Checkpoints" in the package doc); without,
	// in one pass whatever it takes.
	Events bus.Publisher
	// TimeBudget is how long one invocation streams an output file before
	// it checkpoints and hands the rest on. Default DefaultTimeBudget.
	TimeBudget time.Duration
	// CheckpointEvery is how often a checkpoint is written within an
	// invocation (results flushed, progress visible, less to redo after a
	// crash). Default DefaultCheckpointEvery, at most TimeBudget.
	CheckpointEvery time.Duration
	// LeaseTTL is how long a collection lease lasts without a checkpoint
	// renewing it. Default topology.CollectorDeadline: no invocation
	// outlives it.
	LeaseTTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Defaults of [Options].
const (
	DefaultClaimGrace      = 2 * time.Minute
	DefaultReadTimeout     = 30 * time.Second
	DefaultCheckpointEvery = 30 * time.Second
)

// Service collects finished Gemini jobs. It is safe for concurrent use.
type Service struct {
	o Options
}

// New returns a Service. Ledger, Gemini and Publisher are required.
func New(o Options) *Service {
	if o.MaxDeliveryAttempts <= 0 {
		o.MaxDeliveryAttempts = DefaultMaxDeliveryAttempts
	}
	if o.ClaimGrace <= 0 {
		o.ClaimGrace = DefaultClaimGrace
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.FileTTL <= 0 {
		o.FileTTL = gemini.FileTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TimeBudget <= 0 {
		o.TimeBudget = DefaultTimeBudget
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	o.CheckpointEvery = min(o.CheckpointEvery, o.TimeBudget)
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = topology.CollectorDeadline
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
	// fence and progress come from a checkpointed collection: the
	// summary is written only under that lease.
	fence    int64
	progress *ledger.Progress
}

// errNotYet: the webhook claims a finished job that Gemini's API still
// shows unfinished, within the claim grace: redeliver.
var errNotYet = errors.New("gemini's API does not show the claimed state yet (retryable)")

// Handle verifies the claim of a pushed JobEvent against Gemini's API and
// collects the job in the state the API shows. A nil error means
// acknowledge; [ErrInvalidEvent] means the message is unusable; any other
// error means "redeliver later".
func (s *Service) Handle(ctx context.Context, m bus.PushMessage) error {
	start := s.o.Now()
	var ev event.JobEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return fmt.Errorf("%w: decode message %s: %v", ErrInvalidEvent, m.MessageID, err)
	}
	if ev.Type == event.TypeContinuation {
		return s.handleContinuation(ctx, m, start)
	}
	if ev.JobID == "" || ev.Type == "" {
		return fmt.Errorf("%w: message %s has no job_id or type", ErrInvalidEvent, m.MessageID)
	}
	// The request's logger (trace id) when the handler put one in ctx.
	log := logging.FromOr(ctx, s.o.Logger).With("job_id", ev.JobID, "event_type", ev.Type, "webhook_id", ev.WebhookID,
		"message_id", m.MessageID, "delivery_attempt", m.DeliveryAttempt)

	if !ev.Kind.Collected() {
		log.Info("event of a job family geminihooks does not collect; recorded")
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
		// collect it anyway, the event names the job.
		job = ledger.Job{JobID: ev.JobID}
	case err != nil:
		return err
	}
	v := ledger.Verification{WebhookID: ev.WebhookID, Claimed: ev.State}

	// A terminal state read from the API and collected is final: no claim
	// can change it, so it costs no Gemini call.
	collected := event.State(job.CollectedState)
	if job.StateSource == ledger.SourceAPI && collected.Terminal() && collected == event.State(job.State) {
		v.State, v.At = collected, s.now()
		switch {
		case job.ResultsEventID != "":
			s.logVerdict(log, v, "already collected and published")
			return s.o.Ledger.RecordVerdict(ctx, ev.JobID, v)
		case job.CollectionState == ledger.CollectionDone:
			s.logVerdict(log, v, "already collected; publishing the results event")
			if err := s.o.Ledger.RecordVerdict(ctx, ev.JobID, v); err != nil {
				return err
			}
			return s.publish(ctx, job.StoredResultsEvent())
		}
	}

	rctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	gj, err := s.o.Gemini.ReadJob(rctx, ev.Kind, geminiName(job.GeminiName, ev.GeminiName))
	cancel()
	switch {
	case gemini.IsNotReadable(err):
		// The claim may be about another project's job (anyone can sign a
		// per-job webhook token) or a job deleted since: it changes nothing.
		v.At, v.Detail = s.now(), err.Error()
		lvl := slog.LevelWarn
		if gemini.StatusCode(err) == 403 {
			lvl = slog.LevelError // also what a revoked or wrong API key looks like
		}
		log.Log(ctx, lvl, "claim unverifiable: the API key cannot read the job; no state changed",
			"claimed_state", string(ev.State), "err", err.Error())
		return s.o.Ledger.ApplyVerification(ctx, ev.JobID, ev.Kind, v)
	case err != nil:
		return s.failedRead(ctx, log, m, ev, err)
	}
	v.State, v.Error, v.EndTime, v.At = gj.State, gj.Error, gj.EndTime, s.now()
	if gj.Batch != nil && gj.Batch.Dest != nil {
		v.FileName = gj.Batch.Dest.FileName
	}

	if !gj.State.Collectable() {
		// Nothing to collect in this state: the claim was premature (the
		// API lags its webhook) or false.
		if err := s.o.Ledger.ApplyVerification(ctx, ev.JobID, ev.Kind, v); err != nil {
			return err
		}
		last := m.DeliveryAttempt > 0 && m.DeliveryAttempt >= s.o.MaxDeliveryAttempts
		if ev.State.Collectable() && !last && !m.PublishTime.IsZero() && s.now().Sub(m.PublishTime) < s.o.ClaimGrace {
			log.Info("claimed state not shown by the API yet; will look again", "claimed_state", string(ev.State), "api_state", string(gj.State))
			return errNotYet
		}
		s.logVerdict(log, v, "nothing to collect in the API's state")
		return nil
	}
	if collected == gj.State && job.StateSource == ledger.SourceAPI {
		switch {
		case job.ResultsEventID != "":
			s.logVerdict(log, v, "already collected and published")
			return s.o.Ledger.ApplyVerification(ctx, ev.JobID, ev.Kind, v)
		case job.CollectionState == ledger.CollectionDone:
			s.logVerdict(log, v, "already collected; publishing the results event")
			if err := s.o.Ledger.ApplyVerification(ctx, ev.JobID, ev.Kind, v); err != nil {
				return err
			}
			return s.publish(ctx, job.StoredResultsEvent())
		}
	}

	inv := invocation{messageID: m.MessageID, attempt: m.DeliveryAttempt, start: start, seq: -1, verify: &v}
	out, err := s.collect(ctx, ev, gj, inv)
	if handled, answer := endedEarly(log, err, false); handled {
		return answer
	}
	if err != nil {
		permanent := gemini.IsPermanent(err) || errors.Is(err, errInvalidData)
		last := m.DeliveryAttempt > 0 && m.DeliveryAttempt >= s.o.MaxDeliveryAttempts
		if !permanent && !last {
			log.Warn("collection failed, will retry", "err", err.Error())
			return err
		}
		cerr := &event.JobError{Code: "permanent", Message: event.Bound(err.Error(), 4096)}
		var expired *outputExpiredError
		switch {
		case errors.As(err, &expired):
			cerr.Code, cerr.Message = CodeOutputExpired, event.Bound(expired.msg, event.MaxErrorMessageBytes)
		case !permanent:
			cerr.Code = "retries_exhausted"
		}
		log.Error("collection failed", "err", err.Error(), "permanent", permanent, "api_state", string(gj.State))
		if !permanent {
			// Record the failure for operators, but neither publish (a
			// replay from the dead-letter topic may still succeed, and its
			// event shares this state's event_id) nor acknowledge.
			if _, _, serr := s.save(ctx, ev, gj, outcome{}, cerr, v); serr != nil && !errors.Is(serr, errSuperseded) {
				log.Error("recording collection failure", "err", serr.Error())
			}
			return err
		}
		return s.finish(ctx, log, ev, gj, outcome{}, cerr, v)
	}
	// latency_ms (job end → collected, as saved on the job) feeds the
	// dashboard's collection latency chart (terraform/dashboard.tf).
	completed := gj.EndTime
	if completed.IsZero() {
		completed = ev.EventTime
	}
	log.Info("collected", "state", string(gj.State), "verification", v.Verdict(), "results", out.counts.Results,
		"failed", out.counts.Failed, "duration_ms", s.o.Now().Sub(start).Milliseconds(),
		"latency_ms", max(s.o.Now().Sub(completed).Milliseconds(), 0))
	return fencedOK(log, s.finish(ctx, log, ev, gj, out, nil, v))
}

// geminiName is the name to read the job by: the one recorded when the job
// was submitted (the full form the API accepts) unless only the event's
// names the model (event.BetterName).
func geminiName(recorded, fromEvent string) string {
	return event.BetterName(recorded, fromEvent)
}

func (s *Service) now() time.Time { return s.o.Now().UTC() }

// logVerdict logs the verdict on a claim; a contradicted one is a warning
// (a lagging API or a forged webhook: either is worth a look).
func (s *Service) logVerdict(log *slog.Logger, v ledger.Verification, msg string) {
	args := []any{"claimed_state", string(v.Claimed), "api_state", string(v.State), "verification", v.Verdict()}
	if v.Verdict() == ledger.VerdictContradicted {
		log.Warn(msg+"; the webhook's claim contradicts Gemini's API", args...)
		return
	}
	log.Info(msg, args...)
}

// failedRead handles an error reading the job from Gemini's API: no state
// is known, so no results event can be published. Transient errors are
// retried by redelivery; on the last attempt, and for permanent errors,
// the failure is recorded on the job (collect_failed).
func (s *Service) failedRead(ctx context.Context, log *slog.Logger, m bus.PushMessage, ev event.JobEvent, err error) error {
	permanent := gemini.IsPermanent(err)
	last := m.DeliveryAttempt > 0 && m.DeliveryAttempt >= s.o.MaxDeliveryAttempts
	if !permanent && !last {
		log.Warn("reading the job from Gemini failed, will retry", "err", err.Error())
		return err
	}
	cerr := event.JobError{Code: "retries_exhausted", Message: event.Bound(err.Error(), 4096)}
	if permanent {
		cerr.Code = "permanent"
	}
	log.Error("reading the job from Gemini failed; recorded as collect_failed", "err", err.Error(), "permanent", permanent)
	if rerr := s.o.Ledger.RecordCollectFailure(ctx, ev.JobID, cerr); rerr != nil {
		return rerr
	}
	if permanent {
		return nil
	}
	return err
}

func (s *Service) collect(ctx context.Context, ev event.JobEvent, gj *gemini.Job, inv invocation) (out outcome, err error) {
	defer func() {
		if errors.Is(err, gemini.ErrFileGone) {
			err = s.goneOutput(ev, gj, err)
		}
	}()
	switch {
	case gj.Batch != nil && gj.State == event.StateSucceeded:
		return s.collectBatch(ctx, ev, gj, inv)
	case gj.Video != nil:
		return s.collectVideo(ctx, ev, gj.Video)
	case gj.Interaction != nil:
		return s.collectInteraction(ctx, ev, gj.Interaction, gj.State, gj.Error)
	}
	// A batch that failed, expired or was cancelled has no results: the
	// API's error (on the job) is the whole story.
	return outcome{}, nil
}

// CodeOutputExpired is collect_error.code for an output Gemini no longer
// serves (its files live gemini.FileTTL): a permanent failure.
const CodeOutputExpired = "output_expired"

// outputExpiredError is a permanent collection failure: the output the API
// names is gone. msg is what the job's collect_error says.
type outputExpiredError struct {
	msg string
	err error
}

func (e *outputExpiredError) Error() string { return e.msg + ": " + e.err.Error() }
func (e *outputExpiredError) Unwrap() []error {
	return []error{e.err, gemini.ErrPermanent}
}

// goneOutput decides what a file the API names but will not serve (403 or
// 404, after this key just read the job) means. Once the job ended longer
// ago than Gemini keeps files, it expired: permanent, with a message that
// says so (and, for videos, how VIDEO_BUCKET keeps them). Earlier, the API
// is lagging or flaky: transient, so redelivery retries it (and the last
// attempt records retries_exhausted). When the end time is unknown the
// file the API itself named is gone, so it is taken as expired too.
func (s *Service) goneOutput(ev event.JobEvent, gj *gemini.Job, err error) error {
	ended := gj.EndTime
	if ended.IsZero() {
		ended = ev.EventTime
	}
	endNote := "end time unknown"
	if !ended.IsZero() {
		age := s.now().Sub(ended)
		if age < s.o.FileTTL {
			return fmt.Errorf("%s; the job ended %s ago, within Gemini's %s file lifetime, so the API may be lagging: %w",
				err.Error(), age.Round(time.Second), s.o.FileTTL, gemini.ErrTransient)
		}
		endNote = "the job ended " + ended.UTC().Format(time.RFC3339)
	}
	what := "the output file"
	hint := "the results can no longer be collected"
	if ev.Kind == event.KindVideo {
		what = "the generated video"
		hint = "set VIDEO_BUCKET so the Collector copies videos to Cloud Storage as soon as they are generated"
		if s.o.Videos != nil {
			hint = "it expired before the Collector could copy it to VIDEO_BUCKET"
		}
	}
	msg := fmt.Sprintf("%s is no longer available: Gemini deletes files %s after creating them (%s); %s",
		what, s.o.FileTTL, endNote, hint)
	return &outputExpiredError{msg: msg, err: err}
}

// save writes the collection summary, with the verification it rests on,
// and returns it with the job's labels as of that write.
func (s *Service) save(ctx context.Context, ev event.JobEvent, gj *gemini.Job, out outcome, cerr *event.JobError, v ledger.Verification) (ledger.Collection, map[string]string, error) {
	now := s.now()
	completed := gj.EndTime
	if completed.IsZero() {
		completed = ev.EventTime
	}
	c := ledger.Collection{
		CollectionState: ledger.CollectionDone,
		CollectedState:  gj.State,
		Counts:          out.counts,
		Tokens:          out.tokens,
		ResultsPath:     out.resultsPath,
		CompletedAt:     completed,
		CollectedAt:     now,
		CollectError:    cerr,
		Output:          out.output,
		Kind:            ev.Kind,
		GeminiName:      gj.Name,
		Verification:    &v,
		Fence:           out.fence,
		Progress:        out.progress,
	}
	if cerr != nil {
		c.CollectionState = ledger.CollectionFailed
	}
	if !completed.IsZero() {
		c.CollectLatencyMS = max(now.Sub(completed).Milliseconds(), 0)
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
// same event_id. The event announces the state Gemini's API showed,
// whatever the webhook claimed.
func (s *Service) finish(ctx context.Context, log *slog.Logger, ev event.JobEvent, gj *gemini.Job, out outcome, cerr *event.JobError, v ledger.Verification) error {
	c, labels, err := s.save(ctx, ev, gj, out, cerr, v)
	if errors.Is(err, errSuperseded) {
		log.Info("a later state was collected meanwhile; not publishing")
		return nil
	}
	if err != nil {
		return err
	}
	s.logVerdict(log, v, "results saved")
	re := event.ResultsEvent{
		SchemaVersion:   event.SchemaVersion,
		EventID:         event.ResultsEventID(ev.JobID, gj.State),
		Type:            event.TypeFor(ev.Kind, gj.State),
		JobID:           ev.JobID,
		Kind:            ev.Kind,
		GeminiName:      gj.Name,
		State:           gj.State,
		CollectionState: c.CollectionState,
		JobPath:         ledger.JobPath(ev.JobID),
		ResultsPath:     c.ResultsPath,
		Counts:          c.Counts,
		Tokens:          c.Tokens,
		Error:           cerr,
		Labels:          labels,
		EventTime:       c.CompletedAt,
		CollectedAt:     c.CollectedAt,
	}
	if re.Error == nil {
		re.Error = gj.Error
	}
	return s.publish(ctx, re)
}

func (s *Service) publish(ctx context.Context, re event.ResultsEvent) error {
	data, err := event.Encode(re)
	if err != nil {
		return err
	}
	if _, err := s.o.Publisher.Publish(ctx, bus.Message{
		Data:        data,
		Attributes:  re.Attributes(),
		OrderingKey: re.JobID,
	}); err != nil {
		return err
	}
	return s.o.Ledger.MarkResultsPublished(ctx, re.JobID, re.State, re.EventID)
}
