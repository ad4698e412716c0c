// Package collector is the Collector Cloud Function, fed by a Pub/Sub push
// subscription on the events topic. It decodes the push, hands the JobEvent
// to [collect.Service] and maps the outcome to a status Pub/Sub understands:
//
//	204 collected, recorded as collect_failed (permanent), stale, duplicate
//	    or unknown event type: acknowledge
//	400 not a push delivery, or not a JobEvent: redelivery cannot help, the
//	    message goes to the dead-letter topic (and stays there as evidence)
//	503 transient trouble (Gemini 429/5xx, network, Firestore, Pub/Sub):
//	    redeliver later
package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"cloud.google.com/go/storage"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/clients"
	"github.com/geminihooks/geminihooks/shared/collect"
	"github.com/geminihooks/geminihooks/shared/lazy"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/topology"
	"github.com/geminihooks/geminihooks/shared/tracing"
)

// EntryPoint is the function's name for the Functions Framework.
const EntryPoint = "Collector"

func init() {
	// Registration only: every function's init runs in every deployed
	// function, so configuration and clients are built on first use.
	lazy.HTTP(EntryPoint, func(ctx context.Context) (http.Handler, error) { return FromEnv(ctx, os.Getenv) }, tracing.Push(EntryPoint))
}

// Handler is the Collector over its domain service.
type Handler struct {
	Service *collect.Service
	Logger  *slog.Logger
	// Project scopes trace ids in logs.
	Project string
	// Deadline bounds the handling of one push, below the function timeout
	// and the subscription's ack deadline, so a hung dependency ends in a
	// 503 and a redelivery. Zero means topology.CollectorDeadline.
	Deadline time.Duration
}

// FromEnv builds a Handler with real clients from the environment.
func FromEnv(ctx context.Context, getenv func(string) string) (*Handler, error) {
	cfg, err := collect.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	cl, err := clients.Open(ctx, clients.Options{Project: cfg.Project, Database: cfg.Database, PubSub: true, Gemini: &cfg.Gemini})
	if err != nil {
		return nil, err
	}
	gc, fs, ps := cl.Gemini, cl.Firestore, cl.PubSub
	var videos collect.VideoStore
	if cfg.VideoBucket != "" {
		sc, err := storage.NewClient(context.WithoutCancel(ctx))
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("storage client: %w", err)
		}
		videos = collect.NewGCSVideos(sc, cfg.VideoBucket)
	}
	log := logging.New(logging.Output(), slog.LevelInfo)
	return &Handler{
		Service: collect.New(collect.Options{
			Ledger:              ledger.New(fs, ledger.Options{}),
			Gemini:              gc,
			Publisher:           bus.NewPubSubPublisher(ps, cfg.ResultsTopic),
			Events:              bus.NewPubSubPublisher(ps, cfg.EventsTopic),
			TimeBudget:          cfg.TimeBudget,
			Videos:              videos,
			MaxDeliveryAttempts: cfg.MaxDeliveryAttempts,
			Logger:              log,
		}),
		Logger:  log,
		Project: cfg.Project,
	}, nil
}

// ServeHTTP handles one push delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := logging.ForRequest(h.Logger, r, h.Project)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	m, err := bus.DecodePush(r)
	if err != nil {
		log.Warn("rejected push", "error", err.Error())
		http.Error(w, "invalid push request", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), cmp.Or(h.Deadline, topology.CollectorDeadline))
	defer cancel()
	ctx = logging.WithLogger(ctx, log)
	err = h.Service.Handle(ctx, m)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, collect.ErrInvalidEvent):
		log.Warn("rejected message", "message_id", m.MessageID, "error", err.Error())
		http.Error(w, "invalid job event", http.StatusBadRequest)
	default:
		log.Warn("collection will be retried", "message_id", m.MessageID, "error", err.Error())
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
	}
}
