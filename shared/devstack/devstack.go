package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geminihooks/geminihooks/internal/emulator"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemsim"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/localpush"
	"github.com/geminihooks/geminihooks/shared/topology"
)

// Defaults of Options.
const (
	DefaultProject = "geminihooks-dev"
	GeminiSim      = "sim"
	GeminiReal     = "real"
	// SimAPIKey is the only API key the simulator accepts; the Collector and
	// the stack's own genai client use it. It is not a secret.
	SimAPIKey = "devstack-sim-key"
)

// Options configures Start and Run. The zero value runs the simulator-backed
// stack for project DefaultProject.
type Options struct {
	Project   string       // default "geminihooks-dev"
	Demo      bool         // submit one job of each kind and show progress to "results in Firestore", then keep serving
	Gemini    string       // "sim" (default) or "real": the real API with GEMINI_API_KEY; its webhooks reach the Receiver through PublicURL
	PublicURL string       // public URL that forwards to the receiver, for Gemini=real
	Out       io.Writer    // the ready line and the human-readable delivery/transition log go here
	Log       *slog.Logger // diagnostics
	Faults    string       // simulator fault knobs (see ParseFaults), e.g. "dup=0.3,shuffle,delay=200ms,drop=0.1,timescale=3600"
	// SecretFile, if set, is where the receiver's signing secret is written
	// (mode 0600), so a local sender can sign test deliveries. The secret is
	// never printed.
	SecretFile string
	// CollectBudget, when positive, is the Collector's time budget per
	// invocation (COLLECT_TIME_BUDGET): a batch output that takes longer is
	// collected over several invocations, handed on by continuation
	// messages. Zero: the Collector's default (collect.DefaultTimeBudget).
	CollectBudget time.Duration
	// ReconcileEvery, when positive, runs the Reconciler's sweep every
	// ReconcileEvery (a POST to /Reconciler, as Cloud Scheduler does) and
	// makes jobs due for their first check ReconcileEvery after they were
	// submitted or first seen (RECONCILE_FIRST_CHECK, printed on the ready
	// line for the CLI): a job whose webhook never arrives is found within
	// about two periods.
	ReconcileEvery time.Duration
}

// Stack is a running local stack: Firestore emulator, pstest, the Gemini
// simulator, every function behind the Functions Framework and the push
// dispatcher. Create it with Start; Close stops everything.
type Stack struct {
	// Project is the Google Cloud project id of every client in the stack.
	Project string
	// ReceiverURL is where Gemini delivers webhooks (FunctionsURL/Receiver).
	ReceiverURL string
	// FunctionsURL serves every registered function at /<EntryPoint>.
	FunctionsURL string
	// GeminiURL is the simulator's base URL (empty for Gemini=real).
	GeminiURL string
	// FirestoreHost is the emulator's host:port (FIRESTORE_EMULATOR_HOST).
	FirestoreHost string
	// PubsubAddr is pstest's host:port (PUBSUB_EMULATOR_HOST).
	PubsubAddr string
	// WebhookID is the static webhook registered for ReceiverURL.
	WebhookID string
	// Topology lists the topics and the subscriptions the dispatcher pushes
	// (only those whose function is registered in this binary).
	Topology topology.Topology

	// Sim is the Gemini simulator (nil for Gemini=real).
	Sim *gemsim.Simulator
	// Gemini is a genai client for the stack's Gemini (simulator or real).
	Gemini *genai.Client
	// Firestore is a client on the emulator for Project.
	Firestore *firestore.Client
	// Ledger is the job store on Firestore.
	Ledger *ledger.Store
	// Pubsub is a client for Project on pstest.
	Pubsub *pubsub.Client
	// Dispatcher pushes the topology's subscriptions to the functions.
	Dispatcher *localpush.Dispatcher

	notifications atomic.Int64
	mu            sync.Mutex
	notified      map[string]int // job id → notifications received

	opts   Options
	log    *slog.Logger
	out    *lineWriter
	secret string
	gate   *gate

	fsEmu    *emulator.Firestore // nil when FIRESTORE_EMULATOR_HOST was reused
	psEmu    *localpush.Emulator
	funcsSrv *http.Server
	cancel   context.CancelFunc // stops the dispatcher and taps
	runCtx   context.Context    // lives until Close
	bg       sync.WaitGroup
	env      map[string]*string // previous values of the variables we set

	closeOnce sync.Once
	closeErr  error
}

// setenv sets (or, for "", unsets) a variable the functions read and
// remembers its previous value for restoreEnv.
func (s *Stack) setenv(k, v string) {
	if _, done := s.env[k]; !done {
		if old, ok := os.LookupEnv(k); ok {
			s.env[k] = &old
		} else {
			s.env[k] = nil
		}
	}
	if v == "" {
		os.Unsetenv(k)
		return
	}
	os.Setenv(k, v)
}

func (s *Stack) restoreEnv() {
	for k, v := range s.env {
		if v == nil {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, *v)
		}
	}
}

// WebhookSecret returns the static webhook's signing secret (whsec_...), for
// tests that sign their own deliveries. Never log it.
func (s *Stack) WebhookSecret() string { return s.secret }

// SetReceiverDown makes ReceiverURL answer 503 (down=true) or serve normally
// again, to simulate a Receiver outage; Gemini retries meanwhile.
func (s *Stack) SetReceiverDown(down bool) { s.gate.down.Store(down) }

// SubscribeResults creates the pull subscription name (an id) on the results
// topic and returns a subscriber for it. Only messages published after this
// call are delivered to it.
func (s *Stack) SubscribeResults(ctx context.Context, name string) (*pubsub.Subscriber, error) {
	return s.subscribe(ctx, name, s.Topology.ResultsTopic())
}

// SubscribeEvents is SubscribeResults for the events topic.
func (s *Stack) SubscribeEvents(ctx context.Context, name string) (*pubsub.Subscriber, error) {
	return s.subscribe(ctx, name, s.Topology.EventsTopic())
}

func (s *Stack) subscribe(ctx context.Context, name, topic string) (*pubsub.Subscriber, error) {
	full := "projects/" + s.Project + "/subscriptions/" + name
	_, err := s.Pubsub.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: full, Topic: "projects/" + s.Project + "/topics/" + topic, AckDeadlineSeconds: 60,
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return nil, fmt.Errorf("devstack: create subscription %s: %w", name, err)
	}
	return s.Pubsub.Subscriber(full), nil
}

// Notifications is how many notifications the stack's own notification sink
// (the Notifier's default destination) has received.
func (s *Stack) Notifications() int64 { return s.notifications.Load() }

// NotificationsFor is how many of them were about jobID.
func (s *Stack) NotificationsFor(jobID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notified[jobID]
}

// serveNotifySink accepts the Notifier's webhook-format POSTs and logs them.
func (s *Stack) serveNotifySink(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	// The Notifier's "webhook" format: {"type","timestamp","text","data": results event}.
	var body struct {
		Text string             `json:"text"`
		Data event.ResultsEvent `json:"data"`
	}
	_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
	// The Notifier's client sends the trace it works in as traceparent.
	traceID := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))).TraceID()
	suffix := ""
	if traceID.IsValid() {
		suffix = traceSuffix(traceID.String())
	}
	// Logged before counting, so a caller that saw the count sees the line.
	s.out.printf("notifier %s %s -> notification sink: %s%s", orDash(body.Data.JobID), orDash(body.Data.CollectionState), body.Text, suffix)
	s.notifications.Add(1)
	s.mu.Lock()
	s.notified[body.Data.JobID]++
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Run starts the stack, prints the ready line to o.Out, optionally runs the
// demo, and serves until ctx is done; then it stops everything it started.
func Run(ctx context.Context, o Options) error {
	s, err := Start(ctx, o)
	if err != nil {
		return err
	}
	if o.Demo {
		s.bg.Go(func() {
			if err := s.Demo(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("devstack: demo failed", "error", err)
				s.out.printf("demo failed: %v", err)
			}
		})
	}
	<-ctx.Done()
	return s.Close()
}

// Start brings the stack up and returns once every part is serving (the
// ready line has been written to o.Out). Start sets the process environment
// the functions read (GOOGLE_CLOUD_PROJECT, FIRESTORE_EMULATOR_HOST,
// PUBSUB_EMULATOR_HOST, topics, secrets, Gemini endpoint); Close restores it.
// Only one stack can run per process, ever: see ErrAlreadyStarted.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Project == "" {
		o.Project = DefaultProject
	}
	if o.Gemini == "" {
		o.Gemini = GeminiSim
	}
	if o.Gemini != GeminiSim && o.Gemini != GeminiReal {
		return nil, fmt.Errorf("devstack: Gemini=%q: want %q or %q", o.Gemini, GeminiSim, GeminiReal)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	faults, err := ParseFaults(o.Faults)
	if err != nil {
		return nil, err
	}
	if o.Gemini == GeminiReal {
		if os.Getenv("GEMINI_API_KEY") == "" || o.PublicURL == "" {
			return nil, errors.New("devstack: Gemini=real needs GEMINI_API_KEY in the environment and a PublicURL that forwards to the receiver")
		}
	}
	if startedOnce.Load() {
		return nil, ErrAlreadyStarted
	}

	s := &Stack{
		Project:  o.Project,
		opts:     o,
		log:      o.Log,
		out:      newLineWriter(o.Out),
		env:      map[string]*string{},
		notified: map[string]int{},
		Topology: topology.Default(""),
	}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	// 1. Firestore.
	if h := os.Getenv("FIRESTORE_EMULATOR_HOST"); h != "" {
		s.FirestoreHost = h
		s.log.Info("devstack: reusing Firestore emulator", "host", h)
	} else {
		f, err := emulator.StartFirestore(ctx, emulator.Options{})
		if err != nil {
			return nil, fmt.Errorf("devstack: start Firestore emulator: %w", err)
		}
		s.fsEmu = f
		s.FirestoreHost = f.Host
		s.setenv("FIRESTORE_EMULATOR_HOST", f.Host)
	}
	s.setenv("GOOGLE_CLOUD_PROJECT", o.Project)
	if os.Getenv("LOG_OUTPUT") == "" {
		// The readable log owns Out; the functions' JSON logs go to stderr.
		s.setenv("LOG_OUTPUT", "stderr")
	}

	// 2. Pub/Sub.
	s.psEmu, err = localpush.StartPubsub(ctx, "", o.Project)
	if err != nil {
		return nil, fmt.Errorf("devstack: start pstest: %w", err)
	}
	s.PubsubAddr, s.Pubsub = s.psEmu.Addr, s.psEmu.Client
	s.setenv("PUBSUB_EMULATOR_HOST", s.PubsubAddr)
	s.setenv("EVENTS_TOPIC", s.Topology.EventsTopic())
	s.setenv("RESULTS_TOPIC", s.Topology.ResultsTopic())
	if o.CollectBudget > 0 {
		s.setenv("COLLECT_TIME_BUDGET", o.CollectBudget.String())
	} else {
		s.setenv("COLLECT_TIME_BUDGET", "")
	}
	if o.ReconcileEvery > 0 {
		s.setenv(ledger.FirstCheckEnv, o.ReconcileEvery.String())
		if os.Getenv("RECONCILE_STUCK_AFTER") == "" {
			s.setenv("RECONCILE_STUCK_AFTER", max(time.Minute, 15*o.ReconcileEvery).String())
		}
	}

	// The functions' address is needed before the webhook can be registered.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("devstack: listen for functions: %w", err)
	}
	s.FunctionsURL = "http://" + ln.Addr().String()
	s.ReceiverURL = s.FunctionsURL + "/Receiver"
	mux, served, err := functionsHandler(functionNames(s.Topology))
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.gate = &gate{path: "/Receiver", next: mux, sink: http.HandlerFunc(s.serveNotifySink)}
	if os.Getenv("NOTIFIER_DESTINATION") == "" && os.Getenv("NOTIFIER_DESTINATION_FILE") == "" {
		s.setenv("NOTIFIER_DESTINATION", `[{"name":"devstack","format":"webhook","url":"`+s.FunctionsURL+NotifySinkPath+`"}]`)
	}
	s.funcsSrv = &http.Server{Handler: s.gate, ReadHeaderTimeout: 10 * time.Second}

	// 3. Gemini.
	if err := s.startGemini(ctx, faults); err != nil {
		ln.Close()
		return nil, err
	}

	// 4. Functions (configuration is complete: they read it on first request).
	if !startedOnce.CompareAndSwap(false, true) {
		ln.Close()
		return nil, ErrAlreadyStarted
	}
	go func() {
		if err := s.funcsSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("devstack: functions server", "error", err)
		}
	}()

	// 5. Firestore client, push dispatcher and the log taps.
	s.Firestore, err = firestore.NewClient(context.WithoutCancel(ctx), o.Project)
	if err != nil {
		return nil, fmt.Errorf("devstack: firestore client: %w", err)
	}
	s.Ledger = ledger.New(s.Firestore, ledger.Options{})
	if err := s.startDispatcher(ctx, served, faults.Sim.TimeScale); err != nil {
		return nil, err
	}

	// 6. Ready.
	if o.SecretFile != "" && s.secret != "" {
		if err := os.WriteFile(o.SecretFile, []byte(s.secret+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("devstack: write secret file: %w", err)
		}
		_ = os.Chmod(o.SecretFile, 0o600) // WriteFile keeps an existing file's mode
	}
	if o.ReconcileEvery > 0 {
		s.bg.Go(func() { s.reconcileLoop(runCtxOf(s), o.ReconcileEvery) })
	}
	s.out.printRaw(s.readyLine())
	return s, nil
}

func functionNames(t topology.Topology) []string {
	names := []string{"Receiver"}
	for _, sub := range t.Subscriptions {
		names = append(names, sub.Function)
	}
	return names
}

func (s *Stack) readyLine() string {
	line := fmt.Sprintf("ready receiver_url=%s gemini_url=%s firestore=%s pubsub=%s project=%s functions_url=%s webhook_id=%s",
		s.ReceiverURL, orDash(s.GeminiURL), s.FirestoreHost, s.PubsubAddr, s.Project, s.FunctionsURL, orDash(s.WebhookID))
	if s.Sim != nil {
		// The simulator's fixed key is not a secret; the CLI needs it
		// (--api-key) to submit jobs to the simulator.
		line += " gemini_api_key=" + SimAPIKey
	}
	if s.opts.ReconcileEvery > 0 {
		// Export as RECONCILE_FIRST_CHECK for the CLI, so a job it submits
		// is due for its first check as soon as the stack's own are.
		line += " reconcile_first_check=" + s.opts.ReconcileEvery.String()
	}
	return line
}

func orDash(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

// startGemini starts the simulator (or points at the real API), registers the
// static webhook for the receiver through the genai SDK and wires its secret
// into the Receiver's and the Collector's environment.
func (s *Stack) startGemini(ctx context.Context, faults Faults) error {
	webhookURI := s.ReceiverURL
	apiKey := SimAPIKey
	if s.opts.Gemini == GeminiSim {
		s.Sim = gemsim.New(gemsim.Options{
			APIKey:     SimAPIKey,
			Faults:     faults.Sim,
			Durations:  faults.simDurations(),
			Seed:       time.Now().UnixNano(),
			Logger:     s.log.With("component", "gemsim"),
			OnDelivery: s.logDelivery,
			EventIDs:   faults.IDs,
			FileTTL:    faults.FileTTL,

			RedirectDownloads: faults.Redirect,
			IgnoreRange:       faults.NoRange,
		})
		url, err := s.Sim.Start("127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("devstack: start Gemini simulator: %w", err)
		}
		s.GeminiURL = url
		s.setenv("GEMINI_BASE_URL", url)
		s.setenv("JWKS_URL", url+"/.well-known/jwks.json")
		// The simulator signs dynamic webhooks; production keeps them off
		// unless WEBHOOK_JWT_ENABLED (Terraform jwt_webhooks) turns them on.
		s.setenv("WEBHOOK_JWT_ENABLED", "true")
	} else {
		apiKey = os.Getenv("GEMINI_API_KEY")
		webhookURI = s.opts.PublicURL
		s.setenv("GEMINI_BASE_URL", "")
		s.setenv("JWKS_URL", "")
	}
	s.setenv("GEMINI_API_KEY", apiKey)
	s.setenv("GEMINI_API_KEY_FILE", "")

	cfg := &genai.ClientConfig{APIKey: apiKey, Backend: genai.BackendGeminiAPI}
	if s.GeminiURL != "" {
		cfg.HTTPOptions = genai.HTTPOptions{BaseURL: s.GeminiURL}
	}
	gc, err := genai.NewClient(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return fmt.Errorf("devstack: genai client: %w", err)
	}
	s.Gemini = gc

	events := make([]webhooks.WebhookSubscribedEvent, 0, len(gemsim.SubscribableEvents))
	for _, e := range gemsim.SubscribableEvents {
		events = append(events, webhooks.WebhookSubscribedEvent(e))
	}
	res, err := gc.Webhooks.Create(ctx, operations.CreateWebhookRequest{Body: webhooks.WebhookInput{
		Name: genai.Ptr("geminihooks-dev"), URI: webhookURI, SubscribedEvents: events}})
	if err != nil {
		return fmt.Errorf("devstack: webhooks.create for %s: %w", webhookURI, err)
	}
	if res.Webhook == nil || res.Webhook.ID == nil || res.Webhook.GetNewSigningSecret() == nil {
		return errors.New("devstack: webhooks.create returned no id or signing secret")
	}
	s.WebhookID, s.secret = *res.Webhook.ID, *res.Webhook.GetNewSigningSecret()
	s.setenv("GEMINI_WEBHOOK_SECRETS", s.secret)
	s.setenv("GEMINI_WEBHOOK_SECRETS_FILE", "")
	return nil
}

// startDispatcher creates the topics and subscriptions and starts pushing.
// Subscriptions of functions this binary does not register are left out
// (pushing to a 404 would only fill the dead-letter topic).
func (s *Stack) startDispatcher(ctx context.Context, served map[string]bool, timeScale float64) error {
	top := s.Topology
	top.Subscriptions = nil
	for _, sub := range s.Topology.Subscriptions {
		if served[sub.Function] {
			top.Subscriptions = append(top.Subscriptions, sub)
		} else {
			s.log.Warn("devstack: function not registered; its subscription is not pushed", "function", sub.Function, "subscription", sub.Name)
		}
	}
	s.Topology = top
	pushScale := 1.0
	if timeScale > 0 {
		pushScale = 1 / timeScale
	}
	d, err := localpush.New(s.Pubsub, localpush.Options{
		Project:     s.Project,
		Topology:    &top,
		FunctionURL: localpush.FunctionsAt(s.FunctionsURL),
		Logger:      s.log.With("component", "localpush"),
		OnAttempt:   s.logPush,
		TimeScale:   pushScale,
	})
	if err != nil {
		return fmt.Errorf("devstack: dispatcher: %w", err)
	}
	if err := d.Setup(ctx); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.Dispatcher = d
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel, s.runCtx = cancel, runCtx
	s.bg.Go(func() {
		if err := d.Run(runCtx); err != nil {
			s.log.Error("devstack: dispatcher stopped", "error", err)
		}
	})
	if s.out.enabled() {
		if err := s.startTaps(runCtx); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the dispatcher, the functions server, the simulator, pstest
// and the Firestore emulator (only if Start started it), and restores the
// environment. It is idempotent and safe to call on a partly started stack.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.cancel != nil {
			s.cancel()
		}
		if s.funcsSrv != nil {
			// net/http closes a connection that was opened but never sent a
			// request (a client's spare dial) only once it is 5 s old, so a
			// shutdown deadline of 5 s raced with it; handlers themselves
			// return quickly because the dispatcher's requests are cancelled.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.funcsSrv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("devstack: stop functions server: %w", err))
				_ = s.funcsSrv.Close()
			}
			cancel()
		}
		if s.Sim != nil {
			if err := s.Sim.Close(); err != nil {
				errs = append(errs, fmt.Errorf("devstack: stop simulator: %w", err))
			}
		}
		s.bg.Wait() // dispatcher, taps and demo have returned
		if s.Gemini != nil && s.Sim == nil && s.WebhookID != "" {
			// Real Gemini: remove the webhook we registered for this run.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := s.Gemini.Webhooks.Delete(ctx, operations.DeleteWebhookRequest{ID: s.WebhookID}); err != nil {
				errs = append(errs, fmt.Errorf("devstack: webhooks.delete %s: %w", s.WebhookID, err))
			}
			cancel()
		}
		if s.Firestore != nil {
			_ = s.Firestore.Close()
		}
		if s.psEmu != nil {
			if err := s.psEmu.Close(); err != nil && !strings.Contains(err.Error(), "already closed") {
				errs = append(errs, fmt.Errorf("devstack: stop pstest: %w", err))
			}
		}
		if s.fsEmu != nil {
			s.fsEmu.Stop()
		}
		s.restoreEnv()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
