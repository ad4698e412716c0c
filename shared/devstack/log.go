package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemsim"
	"github.com/geminihooks/geminihooks/shared/localpush"
	"github.com/geminihooks/geminihooks/shared/tracing"
)

// lineWriter serialises whole lines to Out; a nil writer discards.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: w} }

func (l *lineWriter) enabled() bool { return l != nil && l.w != nil }

func (l *lineWriter) printRaw(line string) {
	if !l.enabled() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, strings.TrimRight(line, "\n")+"\n")
}

// printf writes one time-stamped log line.
func (l *lineWriter) printf(format string, args ...any) {
	if !l.enabled() {
		return
	}
	l.printRaw(time.Now().Format("15:04:05") + " " + fmt.Sprintf(format, args...))
}

// logDelivery is the simulator's OnDelivery: one line per webhook attempt.
// It shows only the event type, job and outcome (never headers or bodies).
func (s *Stack) logDelivery(a gemsim.DeliveryAttempt) {
	if !s.out.enabled() {
		return
	}
	target := a.URL
	if a.URL == s.ReceiverURL {
		target = "Receiver"
	}
	outcome := fmt.Sprint(a.Status)
	switch {
	case a.Dropped:
		outcome = "dropped"
	case a.Status == 0 && a.Err != nil:
		outcome = "error: " + a.Err.Error()
	case a.Status == 0:
		outcome = "no response"
	}
	var notes []string
	if a.Attempt > 1 {
		notes = append(notes, fmt.Sprintf("attempt %d", a.Attempt))
	}
	if a.Duplicate {
		notes = append(notes, "duplicate")
	}
	if a.Dynamic {
		notes = append(notes, "dynamic/JWT")
	}
	if a.Final && (a.Status < 200 || a.Status > 299) {
		notes = append(notes, "gave up")
	} else if !a.Final && (a.Status < 200 || a.Status > 299) {
		notes = append(notes, "will retry")
	}
	suffix := ""
	if len(notes) > 0 {
		suffix = " (" + strings.Join(notes, ", ") + ")"
	}
	s.out.printf("webhook %s %s -> %s %s%s", a.EventType, a.DataID, target, outcome, suffix)
}

// logPush is the dispatcher's OnAttempt: one line per push attempt.
func (s *Stack) logPush(a localpush.Attempt) {
	if !s.out.enabled() {
		return
	}
	status := fmt.Sprint(a.StatusCode)
	if a.StatusCode == 0 {
		status = "no response"
	}
	line := fmt.Sprintf("push %s message %s -> %s %s %s (attempt %d, %s)",
		a.Subscription, a.MessageID, a.Function, status, a.Outcome, a.DeliveryAttempt, a.Latency.Round(time.Millisecond))
	if a.Outcome == localpush.Retried {
		line += fmt.Sprintf(", retry in %s", a.Backoff)
	}
	s.out.printf("%s%s", line, traceSuffix(a.TraceID))
}

// startTaps subscribes to the events and results topics (subscriptions of
// their own, invisible to the functions) to log job transitions.
func (s *Stack) startTaps(ctx context.Context) error {
	evSub, err := s.SubscribeEvents(ctx, "devstack-log-events")
	if err != nil {
		return err
	}
	resSub, err := s.SubscribeResults(ctx, "devstack-log-results")
	if err != nil {
		return err
	}
	s.bg.Go(func() {
		_ = evSub.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
			m.Ack()
			var e event.JobEvent
			if json.Unmarshal(m.Data, &e) != nil {
				return
			}
			state := string(e.State)
			if state == "" {
				state = "unchanged (unknown event)"
			}
			s.out.printf("receiver %s %s -> %s (event published)%s", e.JobID, e.Type, state, traceSuffix(tracing.TraceID(m.Attributes)))
		})
	})
	s.bg.Go(func() {
		_ = resSub.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
			m.Ack()
			var e event.ResultsEvent
			if json.Unmarshal(m.Data, &e) != nil {
				return
			}
			detail := fmt.Sprintf("%d results", e.Counts.Results)
			if e.Counts.Failed > 0 {
				detail += fmt.Sprintf(", %d failed", e.Counts.Failed)
			}
			if e.Error != nil {
				detail += ", error " + e.Error.Code
			}
			s.out.printf("collector %s %s: %s (results event %s)%s", e.JobID, e.CollectionState, detail, shortID(e.EventID), traceSuffix(tracing.TraceID(m.Attributes)))
		})
	})
	return nil
}

// traceSuffix shows the trace a line belongs to: one webhook keeps one trace
// id from the Receiver through the Collector to the Notifier and Workflow.
func traceSuffix(traceID string) string {
	if traceID == "" {
		return ""
	}
	return " trace=" + traceID
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
