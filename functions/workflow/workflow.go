// Package workflow is the Workflow Cloud Function, fed by a Pub/Sub push
// subscription on the results topic (filter:
// workflow.SubscriptionFilter). It decodes the push request, hands the
// results event to [workflow.Service.Handle] and answers:
//
//	200 applied, started a run, or nothing to do (duplicate, stale, unrelated)
//	400 not a push request or not a results event (redelivery cannot help; it dead-letters)
//	409 another delivery is advancing the same step right now
//	503 Firestore or Gemini failed (Pub/Sub retries, then dead-letters; on
//	    the last attempt the run is failed with the reason first)
//
// Configuration: GOOGLE_CLOUD_PROJECT, FIRESTORE_DATABASE, GEMINI_API_KEY or
// GEMINI_API_KEY_FILE, GEMINI_BASE_URL, MAX_DELIVERY_ATTEMPTS (see
// [workflow.Config]). Definitions are the ones embedded from workflows/.
package workflow

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/clients"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/lazy"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/topology"
	"github.com/geminihooks/geminihooks/shared/tracing"
	"github.com/geminihooks/geminihooks/shared/workflow"
	"github.com/geminihooks/geminihooks/shared/workflow/tools"
	"github.com/geminihooks/geminihooks/workflows"
)

// EntryPoint is the function's name for the Functions Framework.
const EntryPoint = "Workflow"

func init() {
	lazy.HTTP(EntryPoint, func(ctx context.Context) (http.Handler, error) { return FromEnv(ctx, os.Getenv) }, tracing.Push(EntryPoint))
}

// Handler is the Workflow function over its domain service.
type Handler struct {
	Service *workflow.Service
	Logger  *slog.Logger
	// Project scopes trace ids in logs.
	Project string
	// MaxDeliveryAttempts: see workflow.Config.
	MaxDeliveryAttempts int
	// Deadline bounds the handling of one push, below the function timeout
	// and the ack deadline. Zero means topology.WorkflowDeadline.
	Deadline time.Duration
}

// giveUpTimeout bounds recording a run's failure after the last attempt;
// it runs after the handling deadline may have passed, and together they
// stay below the function timeout.
const giveUpTimeout = 5 * time.Second

// FromEnv builds a Handler with real clients from the environment.
func FromEnv(ctx context.Context, getenv func(string) string) (*Handler, error) {
	cfg, err := workflow.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	reg := tools.Default()
	cat, err := workflow.LoadFS(workflows.FS, func(n string) bool { _, ok := reg.Lookup(n); return ok })
	if err != nil {
		return nil, err
	}
	cl, err := clients.Open(ctx, clients.Options{Project: cfg.Project, Database: cfg.Database, Gemini: &cfg.Gemini})
	if err != nil {
		return nil, err
	}
	gc, fs := cl.Gemini, cl.Firestore
	log := logging.New(logging.Output(), slog.LevelInfo)
	return &Handler{
		Service: workflow.New(workflow.Options{Firestore: fs, Ledger: ledger.New(fs, ledger.Options{}), GenAI: gc.GenAI,
			Catalog: cat, Tools: reg, Logger: log}),
		Logger: log, Project: cfg.Project, MaxDeliveryAttempts: cfg.MaxDeliveryAttempts,
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
	if err := json.Unmarshal(m.Data, &ev); err != nil || ev.EventID == "" || ev.JobID == "" {
		log.Error("push message is not a results event", "message_id", m.MessageID)
		http.Error(w, "not a results event", http.StatusBadRequest)
		return
	}
	log = log.With("event_id", ev.EventID, "job_id", ev.JobID, "event_type", ev.Type,
		"workflow_run", ev.Labels[workflow.LabelRun], "workflow_step", ev.Labels[workflow.LabelStep], "delivery_attempt", m.DeliveryAttempt)
	ctx, cancel := context.WithTimeout(r.Context(), cmp.Or(h.Deadline, topology.WorkflowDeadline))
	defer cancel()
	note, err := h.Service.Handle(ctx, ev)
	switch {
	case errors.Is(err, workflow.ErrInFlight):
		log.Info("step in flight elsewhere; redeliver later")
		http.Error(w, "in flight", http.StatusConflict)
	case err != nil:
		max := h.MaxDeliveryAttempts
		if max <= 0 {
			max = workflow.DefaultMaxDeliveryAttempts
		}
		run := ev.Labels[workflow.LabelRun]
		if run != "" && m.DeliveryAttempt >= max {
			gctx, gcancel := context.WithTimeout(context.WithoutCancel(ctx), giveUpTimeout)
			defer gcancel()
			if gerr := h.Service.GiveUp(gctx, run, err); gerr != nil {
				log.Error("could not record the failure on the run", "error", gerr.Error())
			}
		}
		log.Error("workflow step failed; Pub/Sub will retry", "error", err.Error())
		http.Error(w, "workflow unavailable", http.StatusServiceUnavailable)
	default:
		log.Info("workflow event handled", "outcome", note)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"event_id": ev.EventID, "outcome": note})
	}
}
