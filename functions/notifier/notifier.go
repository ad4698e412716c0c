// Package notifier is the Notifier Cloud Function, fed by a Pub/Sub push
// subscription on the results topic. It decodes the push request, hands the
// results event to [notify.Service] and answers:
//
//	200 every interested destination notified (now or before), or nothing to do
//	400 not a push request or not a results event (redelivery cannot help; it dead-letters)
//	409 another delivery of the same event is sending right now
//	503 a destination or Firestore failed (Pub/Sub retries, then dead-letters)
//
// Configuration: GOOGLE_CLOUD_PROJECT, FIRESTORE_DATABASE, and
// NOTIFIER_DESTINATION (or NOTIFIER_DESTINATION_FILE, a Secret Manager
// volume, since webhook URLs embed tokens) holding one URL or a JSON list of
// destinations (see [notify.Destination]).
package notifier

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/clients"
	"github.com/geminihooks/geminihooks/shared/config"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/lazy"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/notify"
	"github.com/geminihooks/geminihooks/shared/topology"
	"github.com/geminihooks/geminihooks/shared/tracing"
)

// EntryPoint is the function's name for the Functions Framework.
const EntryPoint = "Notifier"

func init() {
	lazy.HTTP(EntryPoint, func(ctx context.Context) (http.Handler, error) { return FromEnv(ctx, os.Getenv) }, tracing.Push(EntryPoint))
}

// Handler is the Notifier over its ports.
type Handler struct {
	Service *notify.Service
	Logger  *slog.Logger
	Project string
	// Deadline bounds the handling of one push, below the function timeout
	// and the ack deadline. Zero means topology.ConsumerDeadline.
	Deadline time.Duration
}

// FromEnv builds a Handler from the environment.
func FromEnv(ctx context.Context, getenv func(string) string) (*Handler, error) {
	e := config.NewEnv(getenv)
	common := e.Common()
	spec := e.Secret("NOTIFIER_DESTINATION")
	if err := e.Err("notifier"); err != nil {
		return nil, err
	}
	dests, err := notify.ParseDestinations(spec)
	if err != nil {
		return nil, fmt.Errorf("notifier config: NOTIFIER_DESTINATION(_FILE): %w", err)
	}
	cl, err := clients.Open(ctx, clients.Options{Project: common.Project, Database: common.Database})
	if err != nil {
		return nil, err
	}
	fs := cl.Firestore
	return &Handler{
		Service: &notify.Service{Destinations: dests, Log: &notify.FirestoreLog{Client: fs},
			// Destinations see the trace (traceparent) and it shows the send.
			HTTP: tracing.HTTPClient(10 * time.Second)},
		Logger:  logging.New(logging.Output(), slog.LevelInfo),
		Project: common.Project,
	}, nil
}

// ServeHTTP handles one push delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := logging.ForRequest(h.Logger, r, h.Project)
	m, err := bus.DecodePush(r)
	if err != nil {
		log.Error("not a push request", "error", err.Error())
		http.Error(w, "not a pub/sub push request", http.StatusBadRequest)
		return
	}
	var ev event.ResultsEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil || ev.EventID == "" {
		log.Error("push message is not a results event", "message_id", m.MessageID)
		http.Error(w, "not a results event", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), cmp.Or(h.Deadline, topology.ConsumerDeadline))
	defer cancel()
	out, err := h.Service.Handle(ctx, ev)
	switch {
	case errors.Is(err, notify.ErrInFlight) && !errors.Is(err, notify.ErrDestination) && !errors.Is(err, notify.ErrUnavailable):
		log.Info("notification in flight elsewhere", "event_id", ev.EventID)
		http.Error(w, "in flight", http.StatusConflict)
	case err != nil:
		log.Error("notification failed; Pub/Sub will retry", "event_id", ev.EventID, "attempt", m.DeliveryAttempt, "error", err.Error())
		http.Error(w, "destination failed", http.StatusServiceUnavailable)
	default:
		log.Info("notified", "event_id", ev.EventID, "job_id", ev.JobID, "outcomes", out)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"event_id": ev.EventID, "outcomes": out})
	}
}
