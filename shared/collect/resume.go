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
)

// Checkpointer is what a checkpointed collection needs from the job store
// besides [Ledger]; *ledger.Store implements it (shared/ledger/progress.go).
type Checkpointer interface {
	AcquireCollection(ctx context.Context, jobID string, req ledger.LeaseRequest) (ledger.LeaseGrant, error)
	SaveCheckpoint(ctx context.Context, jobID string, fence int64, cp ledger.Checkpoint, totalBytes int64, release bool, ttl time.Duration) error
	MarkHandedOff(ctx context.Context, jobID string, seq int64) error
}

// invocation is what one push delivery brings to a checkpointed collection.
type invocation struct {
	messageID string
	attempt   int
	start     time.Time
	// seq is a continuation's checkpoint, -1 for a JobEvent.
	seq int64
	// verify is the JobEvent's read of the job, applied to the job when the
	// collection is handed on (the summary carries it otherwise).
	verify *ledger.Verification
}

// Sentinels of a checkpointed collection that end an invocation without a
// summary; Handle maps them to acknowledge or redeliver.
var (
	// errHandedOff: the budget ran out; a checkpoint is stored and a
	// continuation published. Acknowledge.
	errHandedOff = errors.New("collection handed on to a continuation")
	// errStale: the message is behind the stored checkpoint. Acknowledge.
	errStale = errors.New("message is behind the collection's checkpoint")
	// errLeaseHeld: another live invocation is collecting the job.
	errLeaseHeld = errors.New("another invocation holds the collection lease (retryable)")
)

// checkpointer returns the ledger's Checkpointer when checkpointed
// collection is configured.
func (s *Service) checkpointer() Checkpointer {
	if s.o.Events == nil {
		return nil
	}
	c, _ := s.o.Ledger.(Checkpointer)
	return c
}

// collectFile collects a batch output file in checkpointed steps: it takes
// the job's collection lease, resumes from the stored checkpoint (a Range
// request, or skipping bytes), writes results until the file ends or the
// time budget runs out, and then either returns the totals (the caller
// writes the summary, fenced) or stores a checkpoint and publishes a
// continuation (errHandedOff).
func (s *Service) collectFile(ctx context.Context, cpl Checkpointer, jobID string, kind event.Kind, gj *gemini.Job, file string, inv invocation) (outcome, error) {
	log := logging.FromOr(ctx, s.o.Logger).With("job_id", jobID)
	g, err := cpl.AcquireCollection(ctx, jobID, ledger.LeaseRequest{
		State: gj.State, File: file, GeminiName: gj.Name, EndTime: gj.EndTime,
		MessageID: inv.messageID, Attempt: inv.attempt, Seq: inv.seq,
		TTL: s.o.LeaseTTL, Quiet: s.o.LeaseTTL,
	})
	if err != nil {
		return outcome{}, err
	}
	switch g.Outcome {
	case ledger.LeaseStale:
		return outcome{}, errStale
	case ledger.LeaseHeld:
		return outcome{}, errLeaseHeld
	}
	cur := g.From
	release := func() {
		// Best effort, so another message need not wait for the lease to
		// expire; a redelivery of this message takes it over anyway.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := cpl.SaveCheckpoint(rctx, jobID, g.Fence, cur, 0, true, s.o.LeaseTTL); err != nil {
			log.Warn("releasing the collection lease", "err", err.Error())
		}
	}
	dl, err := s.o.Gemini.OpenFileAt(ctx, file, cur.Bytes)
	if err != nil {
		release()
		return outcome{}, err
	}
	defer dl.Body.Close()
	log.Info("collecting output file", "file", file, "from_line", cur.Lines, "from_byte", cur.Bytes,
		"ranged", dl.Ranged, "seq", cur.Seq, "invocation", g.Invocations, "fence", g.Fence)

	lr := newLineReader(dl.Body)
	t := tally{counts: cur.Counts, tokens: cur.Tokens}
	index, off := cur.Lines, cur.Bytes
	w := s.o.Ledger.OpenResults(ctx, jobID)
	next := func() ledger.Checkpoint {
		return ledger.Checkpoint{State: cur.State, File: cur.File, GeminiName: cur.GeminiName, EndTime: cur.EndTime,
			Seq: cur.Seq + 1, Lines: index, Bytes: off, Counts: t.counts, Tokens: t.tokens}
	}
	fail := func(err error) (outcome, error) {
		w.Close()
		if !errors.Is(err, ledger.ErrFenced) {
			release()
		}
		return outcome{}, err
	}
	lastCP := s.o.Now()
	var n int64
	for {
		r, ok, size, err := lr.next(index)
		off += size
		if ok {
			if werr := writeResult(w, r); werr != nil {
				return fail(werr)
			}
			t.add(r)
			index++
			n++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		now := s.o.Now()
		over := n > 0 && now.Sub(inv.start) >= s.o.TimeBudget
		if !over && now.Sub(lastCP) < s.o.CheckpointEvery {
			continue
		}
		// Every result before the checkpoint is stored before it moves.
		if err := w.Close(); err != nil {
			return fail(err)
		}
		cp := next()
		if err := cpl.SaveCheckpoint(ctx, jobID, g.Fence, cp, dl.Size, over, s.o.LeaseTTL); err != nil {
			return fail(err)
		}
		cur = cp
		if over {
			return outcome{}, s.handOff(ctx, log, cpl, jobID, kind, cp, inv, n)
		}
		w, lastCP = s.o.Ledger.OpenResults(ctx, jobID), now
	}
	if err := w.Close(); err != nil {
		return fail(err)
	}
	return outcome{
		counts: t.counts, tokens: t.tokens, resultsPath: ledger.ResultsPath(jobID),
		fence:    g.Fence,
		progress: &ledger.Progress{Lines: index, Bytes: off, TotalBytes: max(dl.Size, 0)},
	}, nil
}

// handOff publishes the continuation of checkpoint cp (already stored,
// lease released) and marks it published. A failure to publish is returned
// (redelivery: the message is then behind the checkpoint, but the
// checkpoint is not marked handed off, so it takes over); a failure to mark
// is only logged (the continuation is out, and it matches the checkpoint).
func (s *Service) handOff(ctx context.Context, log *slog.Logger, cpl Checkpointer, jobID string, kind event.Kind, cp ledger.Checkpoint, inv invocation, lines int64) error {
	if inv.verify != nil {
		// The first invocation of a JobEvent: record the API's state now,
		// not only with the summary at the end.
		if err := s.o.Ledger.ApplyVerification(ctx, jobID, kind, *inv.verify); err != nil {
			return err
		}
	}
	c := event.Continuation{
		SchemaVersion: event.SchemaVersion, Type: event.TypeContinuation,
		ContinuationID: event.ContinuationID(jobID, cp.Seq),
		JobID:          jobID, Kind: kind, GeminiName: cp.GeminiName, State: event.State(cp.State), File: cp.File,
		Seq: cp.Seq, CreatedAt: s.now(),
	}
	data, err := event.Encode(c)
	if err != nil {
		return err
	}
	if _, err := s.o.Events.Publish(ctx, bus.Message{Data: data, Attributes: c.Attributes(), OrderingKey: jobID}); err != nil {
		return fmt.Errorf("publish continuation %s of %s: %w", c.ContinuationID, jobID, err)
	}
	if err := cpl.MarkHandedOff(ctx, jobID, cp.Seq); err != nil {
		log.Warn("continuation published; marking it failed", "err", err.Error())
	}
	log.Info("time budget used; handed on", "lines", cp.Lines, "bytes", cp.Bytes, "lines_this_invocation", lines,
		"seq", cp.Seq, "continuation_id", c.ContinuationID, "duration_ms", s.o.Now().Sub(inv.start).Milliseconds())
	return errHandedOff
}

// endedEarly maps the sentinels of a checkpointed collection to Handle's
// answer; ok is false for any other error.
func endedEarly(log *slog.Logger, err error, continuation bool) (handled bool, answer error) {
	switch {
	case errors.Is(err, errHandedOff):
		return true, nil
	case errors.Is(err, errStale):
		log.Info("message is behind the collection's checkpoint; acknowledged as stale")
		return true, nil
	case errors.Is(err, ledger.ErrFenced):
		log.Warn("another invocation took over the collection; stopping", "err", err.Error())
		return true, nil
	case errors.Is(err, errLeaseHeld):
		if continuation {
			// Redeliver: by then the holder has moved the checkpoint (this
			// message is stale) or died (its lease expires).
			log.Info("another invocation is collecting the job; will look again")
			return true, err
		}
		// The holder's own message is the recovery path if it dies.
		log.Info("another invocation is collecting the job; acknowledged")
		return true, nil
	}
	return false, nil
}

// handleContinuation resumes a checkpointed collection. The job is not read
// from Gemini again: the checkpoint holds what the summary needs.
func (s *Service) handleContinuation(ctx context.Context, m bus.PushMessage, start time.Time) error {
	var c event.Continuation
	if err := json.Unmarshal(m.Data, &c); err != nil || c.JobID == "" || c.File == "" {
		return fmt.Errorf("%w: continuation %s is not usable", ErrInvalidEvent, m.MessageID)
	}
	log := logging.FromOr(ctx, s.o.Logger).With("job_id", c.JobID, "event_type", c.Type, "continuation_id", c.ContinuationID,
		"seq", c.Seq, "message_id", m.MessageID, "delivery_attempt", m.DeliveryAttempt)
	cpl := s.checkpointer()
	if cpl == nil {
		return fmt.Errorf("continuation %s: the Collector has no events topic or checkpointing ledger (configuration; retry after fixing it)", m.MessageID)
	}
	job, err := s.o.Ledger.GetJob(ctx, c.JobID)
	if err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			log.Warn("continuation for a job that is not in the ledger; acknowledged")
			return nil
		}
		return err
	}
	if job.CollectedState == string(c.State) && (job.CollectionState == ledger.CollectionDone || job.CollectCheckpoint == nil) {
		if job.ResultsEventID == "" && job.CollectionState == ledger.CollectionDone {
			return s.publish(ctx, job.StoredResultsEvent())
		}
		log.Info("collection already finished; continuation acknowledged")
		return nil
	}
	cp := job.CollectCheckpoint
	if cp == nil || cp.State != string(c.State) || cp.File != c.File {
		log.Info("no matching checkpoint; continuation acknowledged as stale")
		return nil
	}
	gj := &gemini.Job{Kind: c.Kind, Name: cmpOr(cp.GeminiName, c.GeminiName), State: c.State, EndTime: cp.EndTime,
		Batch: &genai.BatchJob{Dest: &genai.BatchJobDestination{FileName: c.File}}}
	gj.Batch.Name = gj.Name
	out, err := s.collectFile(logging.WithLogger(ctx, log), cpl, c.JobID, c.Kind, gj, c.File,
		invocation{messageID: m.MessageID, attempt: m.DeliveryAttempt, start: start, seq: c.Seq})
	if handled, answer := endedEarly(log, err, true); handled {
		return answer
	}
	ev := event.JobEvent{JobID: c.JobID, Kind: c.Kind, GeminiName: gj.Name, EventTime: cp.EndTime}
	v := ledger.Verification{State: c.State, EndTime: cp.EndTime, At: s.now(), FileName: c.File}
	if err != nil {
		permanent := gemini.IsPermanent(err) || errors.Is(err, errInvalidData) || errors.Is(err, gemini.ErrFileGone)
		last := m.DeliveryAttempt > 0 && m.DeliveryAttempt >= s.o.MaxDeliveryAttempts
		if !permanent && !last {
			log.Warn("collection failed, will retry", "err", err.Error())
			return err
		}
		if !permanent {
			// As for a JobEvent: recorded for operators, not announced; the
			// checkpoint stays, so a replay from the dead-letter topic
			// resumes from it.
			log.Error("collection failed on the last delivery attempt", "err", err.Error())
			cerr := &event.JobError{Code: "retries_exhausted", Message: event.Bound(err.Error(), 4096)}
			if _, _, serr := s.save(ctx, ev, gj, outcome{}, cerr, v); serr != nil && !errors.Is(serr, errSuperseded) {
				log.Error("recording collection failure", "err", serr.Error())
			}
			return err
		}
		cerr := &event.JobError{Code: "permanent", Message: event.Bound(err.Error(), 4096)}
		if errors.Is(err, gemini.ErrFileGone) {
			cerr.Code = CodeOutputExpired
		}
		log.Error("collection failed", "err", err.Error())
		return s.finish(ctx, log, ev, gj, outcome{}, cerr, v)
	}
	log.Info("collected", "state", string(c.State), "results", out.counts.Results, "failed", out.counts.Failed,
		"duration_ms", s.o.Now().Sub(start).Milliseconds())
	return fencedOK(log, s.finish(ctx, log, ev, gj, out, nil, v))
}

// fencedOK acknowledges a summary refused because another invocation took
// the collection over: that one writes it.
func fencedOK(log *slog.Logger, err error) error {
	if errors.Is(err, ledger.ErrFenced) {
		log.Warn("another invocation took over the collection; it writes the summary", "err", err.Error())
		return nil
	}
	return err
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
