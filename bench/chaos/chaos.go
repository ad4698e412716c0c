// Package chaos runs the geminihooks pipeline under adverse conditions and
// checks, from Firestore and the topics, that nothing was lost or done
// twice.
//
// The pipeline is the real one: the Gemini simulator (shared/gemsim) runs
// jobs of every kind and delivers their webhooks (static HMAC and dynamic
// RS256 JWT) with duplicates and random reordering; the Receiver handler
// (functions/receiver) writes to the Firestore emulator and publishes to
// pstest; the push dispatcher (shared/localpush) pushes the events topic to
// the Collector handler (functions/collector), which reads Gemini through
// the genai SDK and publishes results. The functions' Firestore and Pub/Sub
// clients go through a gRPC interceptor that fails a share of calls with
// codes.Unavailable (half before the call, half after it succeeded with
// the response lost), and the Receiver's HTTP server and handler instance
// (with fresh clients) are restarted midway.
//
// Afterwards [Run] checks: every job is in its expected state, collected,
// with exactly one delivery recorded and exactly one results event id; every
// webhook message has a published delivery and reached the events topic;
// the results topic has exactly one distinct event id per job; no message
// was abandoned by the simulator or dead-lettered.
package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"
	"google.golang.org/genai"
	gi "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/geminihooks/geminihooks/bench/internal/benchutil"
	"github.com/geminihooks/geminihooks/functions/collector"
	"github.com/geminihooks/geminihooks/functions/receiver"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/collect"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/gemsim"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/localpush"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/topology"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

// Options configures [Run]. Zero fields take the defaults in brackets.
type Options struct {
	// Project is the Firestore/Pub/Sub project id (required; use a fresh one
	// per run: the checks read whole collections).
	Project string
	// Jobs is how many Gemini jobs to run, spread round-robin over the nine
	// outcome kinds [200]. Each yields one webhook message, delivered
	// 1 + DuplicateRate times on average plus retries.
	Jobs int
	// DuplicateRate is the simulator's duplicate-delivery probability [0.3].
	DuplicateRate float64
	// Shuffle is the simulator's random delivery delay, sim-time [20s].
	Shuffle time.Duration
	// FailureRate is the share of the functions' Firestore and Pub/Sub RPCs
	// failed with Unavailable [0.2]; negative disables injection.
	FailureRate float64
	// TimeScale runs sim-time (Gemini's retry backoff, the shuffle window)
	// this much faster than wall time [100]. Processing time does not scale,
	// so a high scale makes retries relatively more aggressive than in
	// production (5 s initial backoff becomes 5 ms at 1000×).
	TimeScale float64
	// Restart restarts the Receiver once, after half the jobs' webhooks
	// were acknowledged [true; set NoRestart to disable].
	NoRestart bool
	// Timeout bounds the whole run [5m].
	Timeout time.Duration
	// Seed makes the simulator's and the injector's choices reproducible.
	Seed uint64
	// Logger gets progress lines [discard].
	Logger *slog.Logger
}

// Report is what a run did and the violations it found.
type Report struct {
	Jobs             int
	ByKind           map[string]int
	Messages         int64 // distinct webhook messages the simulator sent
	Attempts         int64 // delivery attempts (duplicates and retries included)
	Duplicates       int64 // duplicate deliveries sent
	FailedAttempts   int64 // attempts the Receiver did not acknowledge (or that could not connect)
	GaveUp           int64
	InjectedFaults   int64 // RPCs failed by the injector
	FaultedCalls     int64 // RPCs that passed the injector
	Restarts         int
	EventsMessages   int // messages on the events topic
	EventsDistinct   int // distinct webhook ids among them
	ResultsMessages  int // messages on the results topic
	ResultsDistinct  int // distinct event ids among them
	DeadLetters      int
	CollectorPushes  int64
	CollectorRetries int64
	Duration         time.Duration
	// Problems lists every violated invariant; empty means the run passed.
	Problems []string
}

// outcome kinds: what is submitted and which state the job must end in.
type kind struct {
	name  string
	state event.State
	jkind event.Kind
}

var kinds = []kind{
	{"batch.succeeded", event.StateSucceeded, event.KindBatch},
	{"batch.failed", event.StateFailed, event.KindBatch},
	{"batch.expired", event.StateExpired, event.KindBatch},
	{"batch.cancelled", event.StateCancelled, event.KindBatch},
	{"video.generated", event.StateSucceeded, event.KindVideo},
	{"interaction.completed", event.StateSucceeded, event.KindInteraction},
	{"interaction.requires_action", event.StateRequiresAction, event.KindInteraction},
	{"interaction.failed", event.StateFailed, event.KindInteraction},
	{"interaction.cancelled", event.StateCancelled, event.KindInteraction},
}

type job struct {
	kind kind
	ref  event.JobRef
}

const apiKey = "chaos-sim-key"

// Run executes one chaos run against the Firestore emulator at
// FIRESTORE_EMULATOR_HOST and an in-process pstest. An error means the run
// could not be carried out; violations are in Report.Problems.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Project == "" {
		return Report{}, errors.New("chaos: Options.Project is required")
	}
	if o.Jobs <= 0 {
		o.Jobs = 200
	}
	if o.DuplicateRate == 0 {
		o.DuplicateRate = 0.3
	}
	if o.Shuffle == 0 {
		o.Shuffle = 20 * time.Second
	}
	if o.FailureRate == 0 {
		o.FailureRate = 0.2
	}
	if o.FailureRate < 0 {
		o.FailureRate = 0
	}
	if o.TimeScale <= 0 {
		o.TimeScale = 100
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r := &run{o: o, log: o.Logger, rep: Report{Jobs: o.Jobs, ByKind: map[string]int{}}, pending: map[string]bool{}}
	defer r.close()
	start := time.Now()
	if err := r.setup(ctx); err != nil {
		return r.rep, err
	}
	if err := r.submit(ctx); err != nil {
		return r.rep, err
	}
	if err := r.wait(ctx); err != nil {
		r.rep.Problems = append(r.rep.Problems, err.Error())
	}
	r.rep.Duration = time.Since(start)
	r.faults.Enabled.Store(false)
	vctx, vcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer vcancel()
	if err := r.verify(vctx); err != nil {
		return r.rep, err
	}
	return r.rep, nil
}

type run struct {
	o   Options
	log *slog.Logger
	rep Report

	sim      *gemsim.Simulator
	simURL   string
	gc       *genai.Client
	secret   string
	ps       *localpush.Emulator
	top      topology.Topology
	disp     *localpush.Dispatcher
	dispStop context.CancelFunc
	dispDone chan struct{}
	faults   *benchutil.FaultInjector
	check    *firestore.Client // fault-free, for verification

	recvMu   sync.Mutex
	recvLn   net.Listener
	recvAddr string
	recvSrv  *http.Server
	recvEnv  *fnEnv
	collSrv  *http.Server
	collEnv  *fnEnv

	eventsSub, resultsSub *pubsub.Subscriber
	subStop               context.CancelFunc
	subWG                 sync.WaitGroup
	mu                    sync.Mutex
	eventMsgs             map[string]int            // webhook id → messages on the events topic
	resultIDs             map[string]map[string]int // job id → event id → messages
	resultState           map[string]string         // event id → state
	jobs                  []job
	acked                 atomic.Int64
	pushes, retries       atomic.Int64
	// pending are events-topic messages waiting for a retry push: the run
	// is not settled while the Collector still owes them an answer.
	pending map[string]bool
	closers []func()
}

// fnEnv is one function instance's clients (a Cloud Functions instance).
type fnEnv struct {
	fs   *firestore.Client
	ps   *pubsub.Client
	pub  *bus.PubSubPublisher
	conn interface{ Close() error }
}

func (e *fnEnv) close() {
	if e == nil {
		return
	}
	e.pub.Stop()
	e.ps.Close()
	e.fs.Close()
	e.conn.Close()
}

func (r *run) close() {
	if r.subStop != nil {
		r.subStop()
		r.subWG.Wait()
	}
	if r.dispStop != nil {
		r.dispStop()
		<-r.dispDone
	}
	if r.sim != nil {
		r.sim.Close()
	}
	r.recvMu.Lock()
	if r.recvSrv != nil {
		r.recvSrv.Close()
	}
	r.recvEnv.close()
	r.recvMu.Unlock()
	if r.collSrv != nil {
		r.collSrv.Close()
	}
	r.collEnv.close()
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

func (r *run) newEnv(ctx context.Context, topic string) (*fnEnv, error) {
	dial := r.faults.DialOptions()
	fs, conn, err := benchutil.FirestoreEmulatorClient(ctx, r.o.Project, dial...)
	if err != nil {
		return nil, err
	}
	ps, err := benchutil.PubsubClient(ctx, r.o.Project, r.ps.Addr, dial...)
	if err != nil {
		fs.Close()
		conn.Close()
		return nil, err
	}
	return &fnEnv{fs: fs, ps: ps, pub: bus.NewPubSubPublisher(ps, topic), conn: conn}, nil
}

func (r *run) setup(ctx context.Context) error {
	r.faults = benchutil.NewFaultInjector(r.o.FailureRate, r.o.Seed)
	r.eventMsgs, r.resultIDs, r.resultState = map[string]int{}, map[string]map[string]int{}, map[string]string{}

	// Gemini simulator: jobs run 1–2 s of wall time, so cancels, issued
	// right after creation, almost always find them running; a cancel that
	// comes too late makes the job an ordinary completed one (see create).
	durRNG := rand.New(rand.NewPCG(r.o.Seed, 3))
	var durMu sync.Mutex
	r.sim = gemsim.New(gemsim.Options{
		APIKey: apiKey, Seed: int64(r.o.Seed),
		Faults: gemsim.Faults{DuplicateRate: r.o.DuplicateRate, Shuffle: r.o.Shuffle, TimeScale: r.o.TimeScale},
		// Gemini disables a static webhook after a run of failed attempts
		// (the simulator: 50 across all messages). A restart under load
		// fails that many concurrent attempts at once, so the threshold is
		// raised here: the run tests the pipeline, not the auto-disable.
		// The retry backoff is capped at 1 min of sim-time (Gemini's
		// schedule is undocumented; the simulator's default cap is 1 h), so
		// a message that fails many times in a row does not stretch the
		// run by minutes.
		Delivery: gemsim.DeliveryOptions{DisableAfter: 1 << 30, MaxBackoff: time.Minute},
		Durations: gemsim.Durations{Func: func(gemsim.Kind, string) time.Duration {
			durMu.Lock()
			defer durMu.Unlock()
			wall := time.Second + time.Duration(durRNG.Int64N(int64(time.Second)))
			return time.Duration(float64(wall) * r.o.TimeScale)
		}},
		OnDelivery: func(a gemsim.DeliveryAttempt) {
			if a.Status/100 == 2 && !a.Duplicate {
				r.acked.Add(1)
			}
		},
	})
	var err error
	if r.simURL, err = r.sim.Start("127.0.0.1:0"); err != nil {
		return err
	}
	if r.gc, err = genai.NewClient(ctx, &genai.ClientConfig{APIKey: apiKey, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: r.simURL}}); err != nil {
		return fmt.Errorf("chaos: genai client: %w", err)
	}

	// Pub/Sub: pstest, the topology with only the Collector pushed, and pull
	// subscriptions that observe both topics.
	if r.ps, err = localpush.StartPubsub(ctx, "", r.o.Project); err != nil {
		return err
	}
	r.closers = append(r.closers, func() { r.ps.Close() })
	r.top = topology.Default("chaos")
	var subs []topology.Subscription
	for _, s := range r.top.Subscriptions {
		if s.Function == topology.FunctionCollector {
			subs = append(subs, s)
		}
	}
	r.top.Subscriptions = subs

	// The Receiver's listener: its address must be known before the
	// webhook is registered.
	if r.recvLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return fmt.Errorf("chaos: listen: %w", err)
	}
	r.recvAddr = r.recvLn.Addr().String()
	receiverURL := "http://" + r.recvAddr + "/"
	events := make([]webhooks.WebhookSubscribedEvent, 0, len(gemsim.SubscribableEvents))
	for _, e := range gemsim.SubscribableEvents {
		events = append(events, webhooks.WebhookSubscribedEvent(e))
	}
	res, err := r.gc.Webhooks.Create(ctx, operations.CreateWebhookRequest{Body: webhooks.WebhookInput{
		Name: genai.Ptr("chaos"), URI: receiverURL, SubscribedEvents: events}})
	if err != nil {
		return fmt.Errorf("chaos: webhooks.create: %w", err)
	}
	if res.Webhook == nil || res.Webhook.GetNewSigningSecret() == nil {
		return errors.New("chaos: webhooks.create returned no signing secret")
	}
	r.secret = *res.Webhook.GetNewSigningSecret()

	// Collector.
	collLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("chaos: listen: %w", err)
	}
	if r.collEnv, err = r.newEnv(ctx, r.top.ResultsTopic()); err != nil {
		collLn.Close()
		return err
	}
	gem, err := gemini.New(ctx, gemini.Config{APIKey: apiKey, BaseURL: r.simURL})
	if err != nil {
		collLn.Close()
		return fmt.Errorf("chaos: gemini client: %w", err)
	}
	quiet := logging.New(io.Discard, slog.LevelError)
	coll := &collector.Handler{Service: collect.New(collect.Options{
		Ledger: ledger.New(r.collEnv.fs, ledger.Options{}), Gemini: gem, Publisher: r.collEnv.pub, Logger: quiet,
	}), Logger: quiet, Project: r.o.Project}
	r.collSrv = &http.Server{Handler: coll, ReadHeaderTimeout: 10 * time.Second}
	go r.collSrv.Serve(collLn)
	collectorURL := "http://" + collLn.Addr().String() + "/"

	// Dispatcher (fault-free: it plays the Pub/Sub service).
	r.disp, err = localpush.New(r.ps.Client, localpush.Options{
		Project: r.o.Project, Topology: &r.top,
		FunctionURL: func(string) string { return collectorURL },
		Logger:      slog.New(slog.DiscardHandler),
		TimeScale:   1 / r.o.TimeScale,
		OnAttempt: func(a localpush.Attempt) {
			r.pushes.Add(1)
			if a.Outcome != localpush.Acked {
				r.retries.Add(1)
			}
			r.mu.Lock()
			if a.Outcome == localpush.Retried {
				r.pending[a.MessageID] = true
			} else {
				delete(r.pending, a.MessageID)
			}
			r.mu.Unlock()
		},
	})
	if err != nil {
		return fmt.Errorf("chaos: dispatcher: %w", err)
	}
	if err := r.disp.Setup(ctx); err != nil {
		return fmt.Errorf("chaos: dispatcher setup: %w", err)
	}
	if r.eventsSub, err = r.observe(ctx, "chaos-observe-events", r.top.EventsTopic()); err != nil {
		return err
	}
	if r.resultsSub, err = r.observe(ctx, "chaos-observe-results", r.top.ResultsTopic()); err != nil {
		return err
	}
	dctx, dstop := context.WithCancel(context.WithoutCancel(ctx))
	r.dispStop, r.dispDone = dstop, make(chan struct{})
	go func() { defer close(r.dispDone); _ = r.disp.Run(dctx) }()
	sctx, sstop := context.WithCancel(context.WithoutCancel(ctx))
	r.subStop = sstop
	r.subWG.Go(func() { _ = r.eventsSub.Receive(sctx, r.onEvent) })
	r.subWG.Go(func() { _ = r.resultsSub.Receive(sctx, r.onResult) })

	// Verification client (no faults).
	if r.check, _, err = benchutil.FirestoreEmulatorClient(ctx, r.o.Project); err != nil {
		return err
	}
	r.closers = append(r.closers, func() { r.check.Close() })

	return r.startReceiver(ctx, r.recvLn)
}

func (r *run) observe(ctx context.Context, name, topic string) (*pubsub.Subscriber, error) {
	full := "projects/" + r.o.Project + "/subscriptions/" + name
	if _, err := r.ps.Client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: full, Topic: "projects/" + r.o.Project + "/topics/" + topic, AckDeadlineSeconds: 60,
	}); err != nil {
		return nil, fmt.Errorf("chaos: create subscription %s: %w", name, err)
	}
	return r.ps.Client.Subscriber(full), nil
}

func (r *run) onEvent(_ context.Context, m *pubsub.Message) {
	m.Ack()
	var ev event.JobEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return
	}
	r.mu.Lock()
	r.eventMsgs[ev.WebhookID]++
	r.mu.Unlock()
}

func (r *run) onResult(_ context.Context, m *pubsub.Message) {
	m.Ack()
	var re event.ResultsEvent
	if err := json.Unmarshal(m.Data, &re); err != nil {
		return
	}
	r.mu.Lock()
	if r.resultIDs[re.JobID] == nil {
		r.resultIDs[re.JobID] = map[string]int{}
	}
	r.resultIDs[re.JobID][re.EventID]++
	r.resultState[re.EventID] = string(re.State)
	r.mu.Unlock()
}

// startReceiver builds a new Receiver instance (fresh clients, as a new
// Cloud Functions instance would) and serves it on ln.
func (r *run) startReceiver(ctx context.Context, ln net.Listener) error {
	env, err := r.newEnv(ctx, r.top.EventsTopic())
	if err != nil {
		return err
	}
	src, err := webhook.StaticSecrets(r.secret)
	if err != nil {
		return err
	}
	hv, err := webhook.NewHMACVerifier(src, webhook.HMACOptions{})
	if err != nil {
		return err
	}
	jv, err := webhook.NewJWTVerifier(ctx, webhook.JWTOptions{JWKSURL: r.simURL + "/.well-known/jwks.json"})
	if err != nil {
		return err
	}
	h := &receiver.Handler{
		Verifier:     webhook.MultiVerifier{HMAC: hv, JWT: jv},
		Service:      &ingest.Service{Ledger: ledger.New(env.fs, ledger.Options{PublishLease: r.lease()}), Publisher: env.pub},
		Logger:       logging.New(io.Discard, slog.LevelError),
		MaxBodyBytes: 1 << 20,
		Project:      r.o.Project,
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	r.recvMu.Lock()
	r.recvSrv, r.recvEnv = srv, env
	r.recvMu.Unlock()
	go srv.Serve(ln)
	return nil
}

// lease scales the publish lease (wall time, 30 s in production) with
// sim-time, keeping its ratio to Gemini's retry schedule: an unreleased
// lease must not outlast most of the retry window. At least 1 s, so that a
// slow publish is not taken over by a concurrent attempt.
func (r *run) lease() time.Duration {
	return max(time.Duration(float64(30*time.Second)/r.o.TimeScale), time.Second)
}

// restartReceiver stops the Receiver's server (in-flight requests finish)
// and its clients, stays down briefly, then serves a new instance on the
// same address.
func (r *run) restartReceiver(ctx context.Context) error {
	r.recvMu.Lock()
	srv, env := r.recvSrv, r.recvEnv
	r.recvMu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_ = srv.Shutdown(sctx)
	cancel()
	env.close()
	time.Sleep(50 * time.Millisecond) // down: deliveries fail to connect and are retried
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", r.recvAddr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("chaos: relisten on %s: %w", r.recvAddr, err)
	}
	r.rep.Restarts++
	r.log.Info("chaos: receiver restarted", "acked", r.acked.Load())
	return r.startReceiver(ctx, ln)
}

// submit creates the jobs round-robin over the kinds (concurrently) and
// restarts the Receiver once half of them were acknowledged.
func (r *run) submit(ctx context.Context) error {
	r.jobs = make([]job, r.o.Jobs)
	restartDone := make(chan error, 1)
	if r.o.NoRestart {
		restartDone <- nil
	} else {
		go func() {
			for r.acked.Load() < int64(r.o.Jobs/2) {
				select {
				case <-ctx.Done():
					restartDone <- ctx.Err()
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			restartDone <- r.restartReceiver(ctx)
		}()
	}
	var (
		wg       sync.WaitGroup
		next     atomic.Int64
		errMu    sync.Mutex
		firstErr error
	)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= r.o.Jobs {
					return
				}
				k := kinds[i%len(kinds)]
				ref, k, err := r.create(ctx, i, k)
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("chaos: submit %s #%d: %w", k.name, i, err)
					}
					errMu.Unlock()
					next.Store(int64(r.o.Jobs))
					return
				}
				r.jobs[i] = job{kind: k, ref: ref}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	for _, j := range r.jobs {
		r.rep.ByKind[j.kind.name]++
	}
	r.log.Info("chaos: submitted", "jobs", r.o.Jobs)
	if err := <-restartDone; err != nil {
		return err
	}
	return nil
}

// lateCancel reports a cancel that found the job already finished.
func lateCancel(err error) bool {
	return err != nil && strings.Contains(err.Error(), "terminal state")
}

// create submits one job of kind k and returns its ref and the kind it will
// really end as (a cancel that came too late leaves a completed job).
func (r *run) create(ctx context.Context, i int, k kind) (event.JobRef, kind, error) {
	text := fmt.Sprintf("chaos job %d", i)
	inline := &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{
		Contents: []*genai.Content{genai.NewContentFromText(text, genai.RoleUser)}}}}
	dynamic := []string{"http://" + r.recvAddr + "/"}
	interaction := func(body gi.CreateModelInteraction) (string, error) {
		body.Model = gi.Model("gemini-3-flash")
		body.Background = genai.Ptr(true)
		res, err := r.gc.Interactions.Create(ctx, operations.CreateInteractionRequest{Body: operations.NewCreateInteractionRequestBody(body)})
		if err != nil {
			return "", err
		}
		if res.Interaction == nil || res.Interaction.ID == nil {
			return "", errors.New("interactions.create returned no id")
		}
		return *res.Interaction.ID, nil
	}
	var name string
	switch k.name {
	case "batch.succeeded", "batch.failed", "batch.expired", "batch.cancelled":
		model, display := "gemini-2.5-flash", fmt.Sprintf("chaos-%d", i)
		cfg := &genai.CreateBatchJobConfig{DisplayName: display}
		switch k.name {
		case "batch.failed":
			model = "fail-model"
		case "batch.expired":
			cfg.DisplayName = "EXPIRE-" + display
		case "batch.cancelled":
			cfg.WebhookConfig = &genai.WebhookConfig{Uris: dynamic}
		}
		b, err := r.gc.Batches.Create(ctx, model, inline, cfg)
		if err != nil {
			return event.JobRef{}, k, err
		}
		name = b.Name
		if k.name == "batch.cancelled" {
			if err := r.gc.Batches.Cancel(ctx, name, nil); lateCancel(err) {
				k = kinds[0] // batch.succeeded
			} else if err != nil {
				return event.JobRef{}, k, err
			}
		}
	case "video.generated":
		op, err := r.gc.Models.GenerateVideosFromSource(ctx, "veo-3.1-generate-preview", &genai.GenerateVideosSource{Prompt: text}, nil)
		if err != nil {
			return event.JobRef{}, k, err
		}
		name = op.Name
	case "interaction.completed":
		id, err := interaction(gi.CreateModelInteraction{Input: genai.Ptr(gi.NewInteractionsInput(text))})
		if err != nil {
			return event.JobRef{}, k, err
		}
		name = id
	case "interaction.requires_action":
		id, err := interaction(gi.CreateModelInteraction{Input: genai.Ptr(gi.NewInteractionsInput("use get_weather for job " + text)),
			Tools: []gi.Tool{gi.NewTool(gi.Function{Name: genai.Ptr("get_weather")})}})
		if err != nil {
			return event.JobRef{}, k, err
		}
		name = id
	case "interaction.failed":
		id, err := interaction(gi.CreateModelInteraction{Input: genai.Ptr(gi.NewInteractionsInput("FAIL_INTERACTION " + text))})
		if err != nil {
			return event.JobRef{}, k, err
		}
		name = id
	case "interaction.cancelled":
		id, err := interaction(gi.CreateModelInteraction{Input: genai.Ptr(gi.NewInteractionsInput(text)),
			WebhookConfig: &gi.WebhookConfig{Uris: dynamic}})
		if err != nil {
			return event.JobRef{}, k, err
		}
		if _, err := r.gc.Interactions.Cancel(ctx, operations.CancelInteractionByIDRequest{ID: id}); lateCancel(err) {
			k = kinds[5] // interaction.completed
		} else if err != nil {
			return event.JobRef{}, k, err
		}
		name = id
	default:
		return event.JobRef{}, k, fmt.Errorf("unknown kind %s", k.name)
	}
	ref, err := event.RefForName(k.jkind, name)
	return ref, k, err
}

// wait returns once every job has a results event and the simulator has no
// message left to deliver, then lets late duplicates land.
func (r *run) wait(ctx context.Context) error {
	lastResults, stableSince := -1, time.Now()
	for {
		st := r.sim.Stats().Deliveries
		r.mu.Lock()
		n := len(r.resultIDs)
		missing := 0
		for _, j := range r.jobs {
			if len(r.resultIDs[j.ref.ID]) == 0 {
				missing++
			}
		}
		r.mu.Unlock()
		settled := st.Messages >= int64(r.o.Jobs) && st.Succeeded+st.GaveUp >= st.Messages
		if n != lastResults {
			lastResults, stableSince = n, time.Now()
		}
		if settled && (missing == 0 || time.Since(stableSince) > 10*time.Second) {
			break // done, or what is missing will not come
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out: %d of %d jobs without a results event; simulator: %d messages, %d delivered, %d gave up",
				missing, r.o.Jobs, st.Messages, st.Succeeded, st.GaveUp)
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Duplicates are sent up to Shuffle (sim-time) after the original.
	settle := time.Duration(float64(r.o.Shuffle)/r.o.TimeScale) + 2*time.Second
	last := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(settle):
		}
		a := r.sim.Stats().Deliveries.Attempts + r.pushes.Load()
		r.mu.Lock()
		retrying := len(r.pending)
		r.mu.Unlock()
		if a == last && retrying == 0 {
			return nil
		}
		last = a
	}
}

func (r *run) problem(format string, args ...any) {
	if len(r.rep.Problems) < 50 {
		r.rep.Problems = append(r.rep.Problems, fmt.Sprintf(format, args...))
	} else if len(r.rep.Problems) == 50 {
		r.rep.Problems = append(r.rep.Problems, "… (more problems not listed)")
	}
}

func (r *run) verify(ctx context.Context) error {
	st := r.sim.Stats().Deliveries
	r.rep.Messages, r.rep.Attempts, r.rep.Duplicates = st.Messages, st.Attempts, st.Duplicates
	r.rep.FailedAttempts, r.rep.GaveUp = st.Failed, st.GaveUp
	r.rep.InjectedFaults, r.rep.FaultedCalls = r.faults.Injected(), r.faults.Calls()
	r.rep.CollectorPushes, r.rep.CollectorRetries = r.pushes.Load(), r.retries.Load()
	if st.GaveUp > 0 {
		r.problem("simulator abandoned %d webhook messages", st.GaveUp)
	}
	if st.Messages != int64(r.o.Jobs) {
		r.problem("simulator sent %d distinct messages for %d jobs (want one each)", st.Messages, r.o.Jobs)
	}

	// Deliveries: every one published, one per message.
	var deliveries []ledger.Delivery
	it := r.check.Collection(ledger.DeliveriesCollection).Documents(ctx)
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return fmt.Errorf("chaos: read deliveries: %w", err)
		}
		var d ledger.Delivery
		if err := snap.DataTo(&d); err != nil {
			return fmt.Errorf("chaos: decode delivery %s: %w", snap.Ref.ID, err)
		}
		deliveries = append(deliveries, d)
	}
	if int64(len(deliveries)) != st.Messages {
		r.problem("%d delivery documents for %d webhook messages", len(deliveries), st.Messages)
	}
	for _, d := range deliveries {
		if d.Status != ledger.StatusPublished {
			r.problem("delivery %s is %q, not published", d.WebhookID, d.Status)
		}
	}

	// Events topic: every delivery's event reached it.
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.EventsDistinct = len(r.eventMsgs)
	for _, n := range r.eventMsgs {
		r.rep.EventsMessages += n
	}
	for _, d := range deliveries {
		if r.eventMsgs[d.WebhookID] == 0 {
			r.problem("delivery %s (job %s) never reached the events topic", d.WebhookID, d.JobID)
		}
	}

	// Jobs: expected state, collected, one delivery, one results event id.
	want := map[string]job{}
	for _, j := range r.jobs {
		want[j.ref.ID] = j
	}
	var got []ledger.Job
	jit := r.check.Collection(ledger.JobsCollection).Documents(ctx)
	for {
		snap, err := jit.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return fmt.Errorf("chaos: read jobs: %w", err)
		}
		var j ledger.Job
		if err := snap.DataTo(&j); err != nil {
			return fmt.Errorf("chaos: decode job %s: %w", snap.Ref.ID, err)
		}
		got = append(got, j)
	}
	if len(got) != len(want) {
		r.problem("%d job documents for %d jobs", len(got), len(want))
	}
	for _, j := range got {
		w, ok := want[j.JobID]
		if !ok {
			r.problem("unexpected job document %s", j.JobID)
			continue
		}
		if j.State != string(w.kind.state) {
			r.problem("job %s (%s): state %q, want %q", j.JobID, w.kind.name, j.State, w.kind.state)
		}
		if j.CollectionState != ledger.CollectionDone {
			r.problem("job %s (%s): collection_state %q, want %q", j.JobID, w.kind.name, j.CollectionState, ledger.CollectionDone)
		}
		if j.Deliveries != 1 {
			r.problem("job %s (%s): %d deliveries recorded, want 1", j.JobID, w.kind.name, j.Deliveries)
		}
		ids := r.resultIDs[j.JobID]
		if len(ids) != 1 {
			r.problem("job %s (%s): %d distinct results event ids, want 1", j.JobID, w.kind.name, len(ids))
		}
		if _, ok := ids[j.ResultsEventID]; !ok || j.ResultsEventID == "" {
			r.problem("job %s (%s): results_event_id %q not among the results events seen", j.JobID, w.kind.name, j.ResultsEventID)
		}
		if w.kind.name == "batch.succeeded" && j.Counts.Results != 1 {
			r.problem("job %s: counts.results = %d, want 1", j.JobID, j.Counts.Results)
		}
	}
	for id, ids := range r.resultIDs {
		r.rep.ResultsDistinct += len(ids)
		for eid, n := range ids {
			r.rep.ResultsMessages += n
			if w, ok := want[id]; ok && r.resultState[eid] != string(w.kind.state) {
				r.problem("results event %s for job %s announces %q, want %q", eid, id, r.resultState[eid], w.kind.state)
			}
		}
		if _, ok := want[id]; !ok {
			r.problem("results event for unknown job %s", id)
		}
	}
	for _, j := range r.jobs {
		if len(r.resultIDs[j.ref.ID]) == 0 {
			r.problem("job %s (%s): lost (no results event)", j.ref.ID, j.kind.name)
		}
	}
	for topic, s := range r.disp.Stats() {
		_ = topic
		r.rep.DeadLetters += int(s.DeadLettered)
	}
	if r.rep.DeadLetters > 0 {
		r.problem("%d messages dead-lettered", r.rep.DeadLetters)
	}
	sort.Strings(r.rep.Problems)
	return nil
}

// Summary renders the report as Markdown.
func (rep Report) Summary(w io.Writer) {
	kinds := make([]string, 0, len(rep.ByKind))
	for k, n := range rep.ByKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	t := benchutil.Table{Header: []string{"quantity", "value"}}
	t.Add("jobs (by expected event)", fmt.Sprintf("%d (%s)", rep.Jobs, strings.Join(kinds, ", ")))
	t.Add("webhook messages / delivery attempts", fmt.Sprintf("%d / %d", rep.Messages, rep.Attempts))
	t.Add("duplicate deliveries sent", rep.Duplicates)
	t.Add("attempts not acknowledged (503/409/connection refused; retried)", rep.FailedAttempts)
	t.Add("Firestore/Pub/Sub RPCs failed by injection", fmt.Sprintf("%d of %d (%.1f %%)", rep.InjectedFaults, rep.FaultedCalls, 100*float64(rep.InjectedFaults)/float64(max(rep.FaultedCalls, 1))))
	t.Add("Receiver restarts", rep.Restarts)
	t.Add("Collector push attempts / not acked (retried)", fmt.Sprintf("%d / %d", rep.CollectorPushes, rep.CollectorRetries))
	t.Add("events topic: messages / distinct webhook ids", fmt.Sprintf("%d / %d", rep.EventsMessages, rep.EventsDistinct))
	t.Add("results topic: messages / distinct event ids", fmt.Sprintf("%d / %d", rep.ResultsMessages, rep.ResultsDistinct))
	t.Add("dead-lettered / abandoned by Gemini", fmt.Sprintf("%d / %d", rep.DeadLetters, rep.GaveUp))
	t.Add("wall time", rep.Duration.Round(time.Millisecond))
	t.Add("invariant violations", len(rep.Problems))
	t.Write(w)
	for _, p := range rep.Problems {
		fmt.Fprintln(w, "- VIOLATION:", p)
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintln(w)
	}
}
