// Package receiver is the Receiver Cloud Function: the public HTTPS endpoint
// Gemini delivers webhooks to. It caps and reads the body, verifies the
// signature, hands the delivery to [ingest.Service] and maps the outcome to
// a status code Gemini's retry logic understands:
//
//	200 accepted, duplicate, or signed-but-invalid (a retry cannot help)
//	400 missing or malformed signature headers
//	401 bad signature or timestamp outside the tolerance; a JWT-signed
//	    delivery while WEBHOOK_JWT_ENABLED is off; a token without exp, with
//	    an iat older than the tolerance or (JWT_AUDIENCE set) a foreign aud
//	405 not POST
//	409 the same delivery is being processed by a concurrent attempt
//	413 body over MAX_BODY_BYTES
//	503 Firestore, Pub/Sub or the JWKS endpoint unavailable (retry)
//
// Nothing from an unverified request is stored, and its log line carries
// only the reason.
package receiver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/clients"
	"github.com/geminihooks/geminihooks/shared/config"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/lazy"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/topology"
	"github.com/geminihooks/geminihooks/shared/tracing"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

// EntryPoint is the function's name for the Functions Framework.
const EntryPoint = "Receiver"

func init() {
	// Registration only: every function's init runs in every deployed
	// function, so configuration and clients are built on first use.
	lazy.HTTP(EntryPoint, func(ctx context.Context) (http.Handler, error) { return FromEnv(ctx, os.Getenv) }, tracing.HTTP(EntryPoint))
}

// Handler is the Receiver over its ports; [NewHandler] wires one.
type Handler struct {
	Verifier     webhook.Verifier
	Service      *ingest.Service
	Logger       *slog.Logger
	MaxBodyBytes int64
	// Project scopes trace ids in logs.
	Project string
	// Deadline bounds the handling of one delivery, so that Gemini gets a
	// 503 (and retries) instead of a hang when Firestore or Pub/Sub do not
	// answer. Zero means topology.ReceiverDeadline.
	Deadline time.Duration
}

// FromEnv builds a Handler with real clients from the environment.
func FromEnv(ctx context.Context, getenv func(string) string) (*Handler, error) {
	cfg, err := config.LoadReceiver(getenv)
	if err != nil {
		return nil, err
	}
	v, err := NewVerifier(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cl, err := clients.Open(ctx, clients.Options{Project: cfg.Project, Database: cfg.FirestoreDatabase, PubSub: true})
	if err != nil {
		return nil, err
	}
	fs, ps := cl.Firestore, cl.PubSub
	return &Handler{
		Verifier: v,
		Service: &ingest.Service{
			Ledger:    ledger.New(fs, ledger.Options{DeliveryTTL: cfg.DeliveryTTL}),
			Publisher: bus.NewPubSubPublisher(ps, cfg.EventsTopic).WithTimeout(topology.ReceiverDeadline),
		},
		Logger:       logging.New(logging.Output(), slog.LevelInfo),
		MaxBodyBytes: cfg.MaxBodyBytes,
		Project:      cfg.Project,
	}, nil
}

// NewVerifier builds the Receiver's verifier from its configuration: HMAC
// (static webhooks) always; JWT (dynamic webhooks) only when
// cfg.JWTEnabled, with exp required, iat within the same tolerance as the
// HMAC timestamp and aud enforced when cfg.JWTAudience is set. With JWT off,
// a JWT-signed delivery is answered 401.
func NewVerifier(ctx context.Context, cfg config.Receiver) (webhook.MultiVerifier, error) {
	var (
		src webhook.SecretSource
		err error
	)
	if cfg.WebhookSecretsFile != "" {
		src, err = webhook.FileSecrets(cfg.WebhookSecretsFile)
	} else {
		src, err = webhook.StaticSecrets(cfg.WebhookSecrets...)
	}
	if err != nil {
		return webhook.MultiVerifier{}, err
	}
	hv, err := webhook.NewHMACVerifier(src, webhook.HMACOptions{Tolerance: cfg.SignatureTolerance})
	if err != nil {
		return webhook.MultiVerifier{}, err
	}
	mv := webhook.MultiVerifier{HMAC: hv}
	if cfg.JWTEnabled {
		mv.JWT, err = webhook.NewJWTVerifier(ctx, webhook.JWTOptions{
			JWKSURL: cfg.JWKSURL, Audience: cfg.JWTAudience, MaxAge: cfg.SignatureTolerance,
		})
		if err != nil {
			return webhook.MultiVerifier{}, err
		}
	}
	return mv, nil
}

// ServeHTTP handles one webhook delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := logging.ForRequest(h.Logger, r, h.Project)
	ctx, cancel := context.WithTimeout(r.Context(), cmp.Or(h.Deadline, topology.ReceiverDeadline))
	defer cancel()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errBody("method not allowed"))
		return
	}
	if r.ContentLength > h.MaxBodyBytes {
		log.Warn("rejected delivery: body too large", "bytes", r.ContentLength)
		writeJSON(w, http.StatusRequestEntityTooLarge, errBody("body too large"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			log.Warn("rejected delivery: body too large", "limit", h.MaxBodyBytes)
			writeJSON(w, http.StatusRequestEntityTooLarge, errBody("body too large"))
			return
		}
		log.Warn("rejected delivery: body unreadable", "error", err.Error())
		writeJSON(w, http.StatusBadRequest, errBody("body unreadable"))
		return
	}

	d, err := h.Verifier.Verify(ctx, body, r.Header)
	if err != nil {
		code := http.StatusUnauthorized
		switch {
		case webhook.IsMalformed(err):
			code = http.StatusBadRequest
		case errors.Is(err, webhook.ErrJWKSUnavailable):
			code = http.StatusServiceUnavailable
		}
		// Only the reason: never the body, the signature or the secret.
		log.Warn("rejected delivery: verification failed", "status", code, "reason", reason(err))
		writeJSON(w, code, errBody(reason(err)))
		return
	}

	ctx = logging.WithLogger(ctx, log)
	in := ingest.Delivery{WebhookID: d.ID, Scheme: string(d.Scheme), Body: body}
	if env, ok := d.SignedEvent(); ok {
		// A JWT covers its claims, not the body: the claims are the event.
		in.SignedEnvelope = env
	}
	res, err := h.Service.Handle(ctx, in)
	switch {
	case errors.Is(err, ingest.ErrInFlight):
		w.Header().Set("Retry-After", "5")
		log.Info("delivery in flight in another attempt", "webhook_id", res.WebhookID)
		writeJSON(w, http.StatusConflict, errBody("delivery is being processed"))
	case err != nil:
		w.Header().Set("Retry-After", "10")
		log.Error("delivery not processed; sender will retry", "webhook_id", res.WebhookID, "error", err.Error())
		writeJSON(w, http.StatusServiceUnavailable, errBody("temporarily unavailable"))
	default:
		log.Info("delivery handled", "webhook_id", res.WebhookID, "status", string(res.Status),
			"job_id", res.JobID, "type", res.Type)
		writeJSON(w, http.StatusOK, res)
	}
}

// reason is the sentinel's text: it says what failed without echoing input.
func reason(err error) string {
	for _, s := range []error{webhook.ErrMissingHeaders, webhook.ErrMalformedHeaders, webhook.ErrNoMatchingSignature,
		webhook.ErrTimestampTooOld, webhook.ErrTimestampTooNew, webhook.ErrJWKSUnavailable, webhook.ErrInvalidToken, webhook.ErrNoSecrets} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "verification failed"
}

type errorResponse struct {
	Error string `json:"error"`
}

func errBody(msg string) errorResponse { return errorResponse{Error: msg} }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
