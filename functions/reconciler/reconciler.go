// Package reconciler is the Reconciler Cloud Function: Cloud Scheduler
// calls it over HTTP (with an OIDC token only its own service account can
// mint) every few minutes, and it runs one bounded sweep of
// [reconcile.Service]: jobs whose webhook never arrived are found by
// reading Gemini's API and announced on the events topic exactly like a
// webhook.
//
//	200 the sweep ran (its report as JSON; per-job failures are listed and
//	    those jobs stay due)
//	405 not POST (a GET, such as a health probe, never starts a sweep)
//	503 Firestore or Gemini unavailable: Cloud Scheduler retries, and the
//	    next scheduled run does the work anyway
package reconciler

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/clients"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/lazy"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/reconcile"
	"github.com/geminihooks/geminihooks/shared/topology"
	"github.com/geminihooks/geminihooks/shared/tracing"
)

// EntryPoint is the function's name for the Functions Framework.
const EntryPoint = "Reconciler"

func init() {
	// Registration only: configuration and clients are built on first use.
	lazy.HTTP(EntryPoint, func(ctx context.Context) (http.Handler, error) { return FromEnv(ctx, os.Getenv) }, tracing.HTTP(EntryPoint))
}

// Handler is the Reconciler over its domain service.
type Handler struct {
	Service *reconcile.Service
	Logger  *slog.Logger
	// Project scopes trace ids in logs.
	Project string
	// Deadline bounds one sweep; zero means topology.ReconcilerDeadline.
	Deadline time.Duration
}

// FromEnv builds a Handler with real clients from the environment.
func FromEnv(ctx context.Context, getenv func(string) string) (*Handler, error) {
	cfg, err := reconcile.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	cl, err := clients.Open(ctx, clients.Options{Project: cfg.Project, Database: cfg.Database, PubSub: true, Gemini: &cfg.Gemini})
	if err != nil {
		return nil, err
	}
	gc, ps := cl.Gemini, cl.PubSub
	store := ledger.New(cl.Firestore, ledger.Options{Schedule: ledger.Schedule{First: cfg.FirstCheck}})
	log := logging.New(logging.Output(), slog.LevelInfo)
	return &Handler{
		Service: reconcile.New(reconcile.Options{
			Ledger:           store,
			Gemini:           reconcile.GenAI{Client: gc},
			Announcer:        &ingest.Service{Ledger: store, Publisher: bus.NewPubSubPublisher(ps, cfg.EventsTopic)},
			Limit:            cfg.Limit,
			Budget:           topology.ReconcilerDeadline - 20*time.Second,
			LookBack:         cfg.LookBack,
			StuckAfter:       cfg.StuckAfter,
			ReEnableWebhooks: cfg.ReEnableWebhooks,
			SkipBatchList:    cfg.SkipBatchList,
			Logger:           log,
		}),
		Logger:  log,
		Project: cfg.Project,
	}, nil
}

// ServeHTTP runs one sweep (?dry_run=true: report only).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := logging.ForRequest(h.Logger, r, h.Project)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), cmp.Or(h.Deadline, topology.ReconcilerDeadline))
	defer cancel()
	ctx = logging.WithLogger(ctx, log)
	rep, err := h.Service.Sweep(ctx, r.URL.Query().Get("dry_run") == "true")
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		log.Warn("sweep incomplete; the next run continues", "error", err.Error())
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(rep)
}
