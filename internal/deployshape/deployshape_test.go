package deployshape_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genai"

	"github.com/geminihooks/geminihooks/internal/deployshape"
	"github.com/geminihooks/geminihooks/internal/emulator"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/collect"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemsim"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/localpush"
	"github.com/geminihooks/geminihooks/shared/tracing"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

// requests is what production sends each entry point, in pipeline order: a
// request may use what an earlier one led to (the Collector is pushed the
// events the Receiver published). Terraform deploying an entry point that
// has no entry here fails the test: add one with the request its trigger
// sends (a Cloud Scheduler job, a push subscription, a webhook).
var requests = []request{
	{EntryPoint: "Receiver", Send: sendWebhooks},
	{EntryPoint: "Collector", Send: pushEvents},
	{EntryPoint: "Notifier", Send: pushResults},
	{EntryPoint: "Workflow", Send: pushResults},
	{EntryPoint: "Reconciler", Send: sweepOnce},
}

type request struct {
	EntryPoint string
	// Send makes the function's production request(s) and checks that it
	// answers as production needs (2xx for valid input) and does its work.
	Send func(t *testing.T, fx *fixture, fn *running)
}

// secretContents gives each mounted secret plausible contents, by the
// variable that names its file.
var secretContents = map[string]func(fx *fixture) string{
	"GEMINI_WEBHOOK_SECRETS_FILE": func(fx *fixture) string { return fx.webhookSecret },
	"GEMINI_API_KEY_FILE":         func(*fixture) string { return apiKey },
	"NOTIFIER_DESTINATION_FILE":   func(fx *fixture) string { return fx.sink.URL + "/notify" },
}

// standIns point the functions at local emulators instead of Google. They
// are the only variables the test adds to the planned environment, and
// Terraform must not set any of them itself.
var standIns = []string{"FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
	"GEMINI_BASE_URL", "GCE_METADATA_HOST", "JWKS_URL"}

const (
	apiKey        = "deploy-shape-gemini-key"
	pipelineLabel = "deploy-shape" // passes the Workflow subscription's filter, starts no workflow
	answerTimeout = 30 * time.Second
)

func TestMain(m *testing.M) {
	// Only the deploy-shape run needs Firestore; the unit tests do not.
	if os.Getenv("DEPLOY_SHAPE_PLANS") != "" && os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		f, err := emulator.StartFirestore(context.Background(), emulator.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "deployshape:", err)
			os.Exit(1)
		}
		os.Setenv("FIRESTORE_EMULATOR_HOST", f.Host)
		code := m.Run()
		f.Stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestDeployShape starts every function of each planned variable set the way
// Cloud Run would (the buildpack-built binary, FUNCTION_TARGET, PORT, exactly
// the planned environment, secrets as files) and sends it real requests.
// Run by scripts/deploy-shape.sh, which provides the plans and the binary.
func TestDeployShape(t *testing.T) {
	plansPath, bin := os.Getenv("DEPLOY_SHAPE_PLANS"), os.Getenv("DEPLOY_SHAPE_BIN")
	if plansPath == "" || bin == "" {
		t.Skip("run by scripts/deploy-shape.sh (DEPLOY_SHAPE_PLANS, DEPLOY_SHAPE_BIN)")
	}
	f, err := os.Open(plansPath)
	if err != nil {
		t.Fatal(err)
	}
	plans, err := deployshape.ReadPlans(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	for _, p := range plans {
		runs = append(runs, p.Run)
	}
	if !slices.Contains(runs, "defaults") || !slices.Contains(runs, "everything_on") {
		t.Fatalf("plans for runs %v; want defaults and everything_on", runs)
	}
	for _, p := range plans {
		t.Run(p.Run, func(t *testing.T) { runPlan(t, bin, p) })
	}
}

func runPlan(t *testing.T, bin string, p deployshape.Plan) {
	var missing []string
	for _, f := range p.Functions {
		if !slices.ContainsFunc(requests, func(r request) bool { return r.EntryPoint == f.EntryPoint }) {
			missing = append(missing, f.EntryPoint)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("Terraform deploys %v but internal/deployshape has no request for them: add an entry to requests", missing)
	}
	var names []string
	for _, f := range p.Functions {
		names = append(names, f.EntryPoint)
	}
	t.Logf("planned functions: %v; topics: %v", names, p.Topics)

	fx := newFixture(t, p)
	for _, f := range p.Functions {
		fx.start(t, f, bin)
	}
	for _, rq := range requests {
		f, ok := p.Function(rq.EntryPoint)
		if !ok {
			continue
		}
		fn := fx.running[f.Key]
		if !t.Run(rq.EntryPoint, func(t *testing.T) { rq.Send(t, fx, fn) }) {
			fn.dumpLog(t)
		}
	}
}

// ------------------------------------------------------------ fixture

type fixture struct {
	plan          deployshape.Plan
	project       string
	dir           string // root of the containers' file systems (secret volumes)
	ctx           context.Context
	fs            *firestore.Client
	ps            *localpush.Emulator
	sim           *gemsim.Simulator
	gemini        *genai.Client
	gcs           *fakestorage.Server // nil without a video bucket
	videoBucket   string
	sink          *httptest.Server
	webhookSecret string
	running       map[string]*running
	jwt           *webhook.JWTSigner // Gemini's dynamic-webhook key, served at jwksURL
	jwksURL       string

	mu           sync.Mutex
	deliveries   []gemsim.DeliveryAttempt
	events       []*pubsub.Message // published on the events topic
	results      []*pubsub.Message // published on the results topic
	notified     []string          // trace ids of the Notifier's requests to its destination
	submittedIDs []string          // job ids whose webhooks were sent
}

func newFixture(t *testing.T, p deployshape.Plan) *fixture {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fx := &fixture{plan: p, ctx: ctx, dir: t.TempDir(), running: map[string]*running{}}
	var jerr error
	if fx.jwt, jerr = webhook.NewJWTSigner("deploy-shape"); jerr != nil {
		t.Fatal(jerr)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(fx.jwt.JWKS()) }))
	t.Cleanup(jwks.Close)
	fx.jwksURL = jwks.URL
	for _, f := range p.Functions {
		for _, k := range standIns {
			if _, ok := f.Env[k]; ok {
				t.Fatalf("%s: Terraform sets %s, which the test uses to reach emulators", f.Name, k)
			}
		}
		pr := f.Env["GOOGLE_CLOUD_PROJECT"]
		if pr == "" || (fx.project != "" && pr != fx.project) {
			t.Fatalf("%s: GOOGLE_CLOUD_PROJECT=%q; every function needs the deployment's project", f.Name, pr)
		}
		fx.project = pr
		if b := f.Env["VIDEO_BUCKET"]; b != "" {
			fx.videoBucket = b
		}
	}

	// Firestore: the emulator, emptied for this project.
	host := os.Getenv("FIRESTORE_EMULATOR_HOST")
	req, _ := http.NewRequest(http.MethodDelete, "http://"+host+"/emulator/v1/projects/"+fx.project+"/databases/(default)/documents", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	var err error
	if fx.fs, err = firestore.NewClient(ctx, fx.project); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.fs.Close() })

	// Pub/Sub: pstest with the planned topics and an observing subscription
	// on each source topic.
	if fx.ps, err = localpush.StartPubsub(ctx, "", fx.project); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.ps.Close() })
	for _, topic := range p.Topics {
		if _, err := fx.ps.Client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + fx.project + "/topics/" + topic}); err != nil {
			t.Fatal(err)
		}
	}
	if rcv, ok := p.Function("Receiver"); ok {
		fx.observe(t, rcv.Env["EVENTS_TOPIC"], &fx.events)
	}
	if col, ok := p.Function("Collector"); ok {
		fx.observe(t, col.Env["RESULTS_TOPIC"], &fx.results)
	}

	// Gemini: the simulator, with the static webhook the deploy registers.
	fx.sim = gemsim.New(gemsim.Options{APIKey: apiKey, Seed: time.Now().UnixNano(),
		Durations: gemsim.Durations{Batch: time.Hour, Video: time.Hour, Interaction: time.Hour},
		OnDelivery: func(a gemsim.DeliveryAttempt) {
			fx.mu.Lock()
			fx.deliveries = append(fx.deliveries, a)
			fx.mu.Unlock()
		}})
	simURL, err := fx.sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.sim.Close() })
	if fx.gemini, err = genai.NewClient(ctx, &genai.ClientConfig{APIKey: apiKey, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: simURL}}); err != nil {
		t.Fatal(err)
	}

	if fx.videoBucket != "" {
		if fx.gcs, err = fakestorage.NewServerWithOptions(fakestorage.Options{Host: "127.0.0.1", Scheme: "http"}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fx.gcs.Stop)
		fx.gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: fx.videoBucket})
	}

	// The Notifier's destination.
	fx.sink = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		fx.mu.Lock()
		fx.notified = append(fx.notified, sc.TraceID().String())
		fx.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(fx.sink.Close)

	// Ports first: the webhook is registered for the Receiver's URL before
	// it starts, as scripts/deploy.sh does.
	for _, f := range p.Functions {
		fx.running[f.Key] = &running{Function: f, url: "http://" + freeAddr(t)}
	}
	if rcv, ok := p.Function("Receiver"); ok {
		if _, fx.webhookSecret, err = fx.sim.AddWebhook(fx.running[rcv.Key].url + "/"); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

func (fx *fixture) observe(t *testing.T, topic string, into *[]*pubsub.Message) {
	t.Helper()
	if topic == "" {
		t.Fatal("topic variable is empty")
	}
	sub := "deploy-shape-observe-" + topic
	if _, err := fx.ps.Client.SubscriptionAdminClient.CreateSubscription(fx.ctx, &pubsubpb.Subscription{
		Name: "projects/" + fx.project + "/subscriptions/" + sub, Topic: "projects/" + fx.project + "/topics/" + topic}); err != nil {
		t.Fatalf("subscribe to %s (is it a planned topic?): %v", topic, err)
	}
	go func() {
		_ = fx.ps.Client.Subscriber(sub).Receive(fx.ctx, func(_ context.Context, m *pubsub.Message) {
			m.Ack()
			fx.mu.Lock()
			*into = append(*into, m)
			fx.mu.Unlock()
		})
	}()
}

// waitFor polls cond until it holds or the answer timeout passes.
func (fx *fixture) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(answerTimeout)
	for {
		fx.mu.Lock()
		ok := cond()
		fx.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ------------------------------------------------------------ processes

type running struct {
	deployshape.Function
	url string
	log lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (r *running) dumpLog(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(r.log.String()), "\n")
	t.Logf("--- %s log (last %d lines):\n%s", r.Name, min(len(lines), 30), strings.Join(lines[max(0, len(lines)-30):], "\n"))
}

// start runs the function like Cloud Run: its own process of the buildpack
// binary, FUNCTION_TARGET and PORT, the planned environment and secret
// volumes (rooted under fx.dir), and nothing else but the emulator stand-ins.
func (fx *fixture) start(t *testing.T, f deployshape.Function, bin string) {
	t.Helper()
	r := fx.running[f.Key]
	files, err := f.FileEnv()
	if err != nil {
		t.Fatal(err)
	}
	for path, name := range files {
		contents, ok := secretContents[name]
		if !ok {
			t.Fatalf("%s mounts a secret as %s, which the test has no plausible contents for: add it to secretContents", f.Name, name)
		}
		local := filepath.Join(fx.dir, path)
		if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(local, []byte(contents(fx)), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(r.url, "http://"), ":")
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + fx.dir,
		// What Cloud Run and the buildpack set.
		"PORT=" + port, "K_SERVICE=" + f.Name, "K_REVISION=" + f.Name + "-00001-shp", "K_CONFIGURATION=" + f.Name,
		"FUNCTION_TARGET=" + f.EntryPoint, "FUNCTION_SIGNATURE_TYPE=http",
		// Stand-ins for Google.
		"FIRESTORE_EMULATOR_HOST=" + os.Getenv("FIRESTORE_EMULATOR_HOST"),
		"PUBSUB_EMULATOR_HOST=" + fx.ps.Addr,
		"GEMINI_BASE_URL=" + fx.sim.URL(),
		"GCE_METADATA_HOST=127.0.0.1:1", // no metadata server: nothing may need one
		"JWKS_URL=" + fx.jwksURL,
	}
	if fx.gcs != nil {
		env = append(env, "STORAGE_EMULATOR_HOST="+fx.gcs.URL())
	}
	for k, v := range f.Env {
		if _, ok := files[v]; ok && strings.HasSuffix(k, "_FILE") {
			v = filepath.Join(fx.dir, v) // the volume, rooted in the test's directory
		}
		if k == tracing.EnvExporter && v == tracing.ExporterCloudTrace {
			v = tracing.ExporterStdout // Cloud Trace's stand-in: spans on stderr
		}
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &r.log, &r.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", f.Name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// Serving: any HTTP answer (GET also builds the handler from its
	// configuration, the way the first request does).
	deadline := time.Now().Add(answerTimeout)
	for {
		resp, err := http.Get(r.url + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			r.dumpLog(t)
			t.Fatalf("%s did not answer HTTP within %s: %v", f.Name, answerTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// post sends body and returns the status and the response body.
func (r *running) post(t *testing.T, body []byte, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	client := &http.Client{Timeout: time.Duration(r.TimeoutSeconds) * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", r.Name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

// push delivers m as its push subscription would.
func (r *running) push(t *testing.T, fx *fixture, m *pubsub.Message, attempt int) (int, string) {
	t.Helper()
	body := bus.EncodePushBody(bus.PushMessage{Data: m.Data, Attributes: m.Attributes, MessageID: m.ID, PublishTime: m.PublishTime,
		OrderingKey: m.OrderingKey, DeliveryAttempt: attempt, Subscription: "projects/" + fx.project + "/subscriptions/" + r.Name})
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)")
	return r.post(t, body, h)
}

// ------------------------------------------------------------ requests

// sendWebhooks: the simulator delivers correctly signed webhooks for a
// finished batch (and, with a video bucket, a finished video) to the
// Receiver, which must accept them and publish one event each.
func sendWebhooks(t *testing.T, fx *fixture, fn *running) {
	ctx := fx.ctx
	var names []string
	batch, err := fx.gemini.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
		{Contents: []*genai.Content{genai.NewContentFromText("deploy shape", genai.RoleUser)}}}}, &genai.CreateBatchJobConfig{DisplayName: "deploy shape"})
	if err != nil {
		t.Fatal(err)
	}
	names = append(names, batch.Name)
	if fx.videoBucket != "" {
		op, err := fx.gemini.Models.GenerateVideosFromSource(ctx, "veo-3.1-generate-preview", &genai.GenerateVideosSource{Prompt: "deploy shape"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, op.Name)
	}
	store := ledger.New(fx.fs, ledger.Options{})
	for _, name := range names {
		kind := event.KindBatch
		if strings.Contains(name, "/operations/") {
			kind = event.KindVideo
		}
		ref, err := event.RefForName(kind, name)
		if err != nil {
			t.Fatal(err)
		}
		// As `geminihooks submit` records it; the label travels to the results event.
		if err := store.RecordSubmission(ctx, ledger.Submission{Ref: ref, Labels: map[string]string{"pipeline": pipelineLabel}}); err != nil {
			t.Fatal(err)
		}
		fx.submittedIDs = append(fx.submittedIDs, ref.ID)
		if err := fx.sim.FinishJob(name); err != nil {
			t.Fatal(err)
		}
	}
	fx.waitFor(t, "a final webhook delivery per job", func() bool {
		final := 0
		for _, a := range fx.deliveries {
			if a.Final {
				final++
			}
		}
		return final >= len(names)
	})
	fx.mu.Lock()
	for _, a := range fx.deliveries {
		if a.Status < 200 || a.Status > 299 {
			t.Errorf("webhook %s %s: Receiver answered %d (err %v); want 2xx", a.EventType, a.DataID, a.Status, a.Err)
		}
	}
	fx.mu.Unlock()
	sendJWT(t, fx, fn)
	fx.waitFor(t, "one event per job on "+fn.Env["EVENTS_TOPIC"], func() bool { return len(fx.events) >= len(names) })
	for _, m := range fx.events {
		if m.Attributes[event.AttrJobID] == "" || tracing.TraceID(m.Attributes) == "" {
			t.Errorf("event %s: attributes %v lack job_id or trace context", m.ID, m.Attributes)
		}
	}
}

// pushEvents: each event, pushed like the Collector's subscription does (and
// once more, as a redelivery), is collected: 2xx, one results event per job
// in the same trace, the video copied to the bucket.
func pushEvents(t *testing.T, fx *fixture, fn *running) {
	fx.mu.Lock()
	events := slices.Clone(fx.events)
	fx.mu.Unlock()
	if len(events) == 0 {
		t.Fatal("no events to push (the Receiver step failed)")
	}
	for _, m := range events {
		for attempt := 1; attempt <= 2; attempt++ {
			if code, body := fn.push(t, fx, m, attempt); code < 200 || code > 299 {
				t.Fatalf("push %s (attempt %d): %d %s; want 2xx", m.Attributes[event.AttrJobID], attempt, code, body)
			}
		}
	}
	fx.waitFor(t, "a results event per job on "+fn.Env["RESULTS_TOPIC"], func() bool { return len(fx.results) >= len(events) })
	fx.mu.Lock()
	defer fx.mu.Unlock()
	for _, ev := range events {
		job := ev.Attributes[event.AttrJobID]
		i := slices.IndexFunc(fx.results, func(m *pubsub.Message) bool { return m.Attributes[event.AttrJobID] == job })
		if i < 0 {
			t.Errorf("no results event for %s", job)
			continue
		}
		res := fx.results[i]
		if tracing.TraceID(res.Attributes) != tracing.TraceID(ev.Attributes) {
			t.Errorf("%s: results event trace %q, want the event's %q", job, tracing.TraceID(res.Attributes), tracing.TraceID(ev.Attributes))
		}
		if res.Attributes["label_pipeline"] != pipelineLabel {
			t.Errorf("%s: results attributes %v lack the job's label", job, res.Attributes)
		}
		if strings.HasPrefix(job, "video-") {
			obj, err := fx.gcs.GetObject(fx.videoBucket, collect.VideoObject(job, 0))
			if err != nil || len(obj.Content) == 0 {
				t.Errorf("%s: video not copied to gs://%s: %v", job, fx.videoBucket, err)
			}
		}
	}
}

// pushResults: each results event, pushed like a results subscription does,
// is handled with a 2xx; the Notifier also sends it to its destination in
// the same trace.
func pushResults(t *testing.T, fx *fixture, fn *running) {
	fx.mu.Lock()
	results := slices.Clone(fx.results)
	before := len(fx.notified)
	fx.mu.Unlock()
	if len(results) == 0 {
		t.Fatal("no results events to push (the Collector step failed)")
	}
	for _, m := range results {
		if code, body := fn.push(t, fx, m, 1); code < 200 || code > 299 {
			t.Fatalf("push results of %s: %d %s; want 2xx", m.Attributes[event.AttrJobID], code, body)
		}
	}
	if fn.EntryPoint != "Notifier" {
		return
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if got := len(fx.notified) - before; got != len(results) {
		t.Fatalf("destination got %d notifications for %d results events", got, len(results))
	}
	for i, m := range results {
		if want := tracing.TraceID(m.Attributes); fx.notified[before+i] != want {
			t.Errorf("notification %d in trace %s, want the results event's %s", i, fx.notified[before+i], want)
		}
	}
}

// sweepOnce: Cloud Scheduler's POST makes the Reconciler sweep: a batch
// whose only (per-job) webhook goes nowhere is found by listing Gemini's
// batches and announced on the events topic as reconcile:<job>:succeeded.
func sweepOnce(t *testing.T, fx *fixture, fn *running) {
	batch, err := fx.gemini.Batches.Create(fx.ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
		{Contents: []*genai.Content{genai.NewContentFromText("missed", genai.RoleUser)}}}},
		&genai.CreateBatchJobConfig{DisplayName: "deploy shape missed", WebhookConfig: &genai.WebhookConfig{Uris: []string{"https://127.0.0.1:1/nowhere"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.sim.FinishJob(batch.Name); err != nil {
		t.Fatal(err)
	}
	ref, err := event.RefForName(event.KindBatch, batch.Name)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("User-Agent", "Google-Cloud-Scheduler")
	code, body := fn.post(t, nil, h)
	if code != http.StatusOK || !strings.Contains(body, `"missed":1`) {
		t.Fatalf("sweep: %d %s; want 200 with one missed job", code, body)
	}
	topic := fn.Env["EVENTS_TOPIC"]
	fx.waitFor(t, "the found batch announced on "+topic, func() bool {
		return slices.ContainsFunc(fx.events, func(m *pubsub.Message) bool {
			return m.Attributes[event.AttrWebhookID] == "reconcile:"+ref.ID+":succeeded"
		})
	})
}

// ------------------------------------------------------------ unit tests

// TestEveryDeployableFunctionHasARequest reads the entry points Terraform can
// deploy (local.all_functions in terraform/locals.tf) and fails, in every
// `go test ./...`, for one the deploy-shape test could not exercise.
func TestEveryDeployableFunctionHasARequest(t *testing.T) {
	src, err := os.ReadFile("../../terraform/locals.tf")
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, "locals.tf", hclStart)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var found []string
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		a, ok := b.Body.Attributes["all_functions"]
		if b.Type != "locals" || !ok {
			continue
		}
		obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
		if !ok {
			t.Fatal("local.all_functions is not an object literal")
		}
		for _, item := range obj.Items {
			fn, ok := item.ValueExpr.(*hclsyntax.ObjectConsExpr)
			if !ok {
				t.Fatal("an all_functions entry is not an object literal")
			}
			for _, attr := range fn.Items {
				k, _ := attr.KeyExpr.Value(nil)
				if k.AsString() != "entry_point" {
					continue
				}
				v, d := attr.ValueExpr.Value(nil)
				if d.HasErrors() {
					t.Fatalf("entry_point is not a literal: %v", d)
				}
				found = append(found, v.AsString())
			}
		}
	}
	if len(found) < 4 {
		t.Fatalf("found entry points %v in locals.tf; want at least the four functions", found)
	}
	for _, ep := range found {
		if !slices.ContainsFunc(requests, func(r request) bool { return r.EntryPoint == ep }) {
			t.Errorf("terraform/locals.tf deploys %s, but internal/deployshape has no request for it: add one to requests", ep)
		}
	}
}

func TestReadPlans(t *testing.T) {
	const plans = `{"type":"version","terraform":"1.11.4"}
{"type":"test_plan","@testrun":"defaults","test_plan":{"resource_changes":[
 {"type":"google_pubsub_topic","index":"events","change":{"after":{"name":"gh-events"}}},
 {"type":"google_cloudfunctions2_function","index":"receiver","change":{"after":{"name":"gh-receiver",
  "build_config":[{"entry_point":"Receiver"}],
  "service_config":[{"timeout_seconds":30,"environment_variables":{"EVENTS_TOPIC":"gh-events","GEMINI_WEBHOOK_SECRETS_FILE":"/etc/secrets/webhook/secrets"},
   "secret_volumes":[{"mount_path":"/etc/secrets/webhook","secret":"gh-webhook-secret","versions":[{"path":"secrets","version":"latest"}]}]}]}}}]}}
{"type":"test_plan","@testrun":"validation_only","test_plan":{"resource_changes":[]}}
`
	// One JSON object per line; the indented lines continue the previous one.
	got, err := deployshape.ReadPlans(strings.NewReader(strings.ReplaceAll(plans, "\n ", "")))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Run != "defaults" || len(got[0].Functions) != 1 || !slices.Equal(got[0].Topics, []string{"gh-events"}) {
		t.Fatalf("plans = %+v", got)
	}
	f := got[0].Functions[0]
	if f.Key != "receiver" || f.Name != "gh-receiver" || f.EntryPoint != "Receiver" || f.TimeoutSeconds != 30 ||
		f.Env["EVENTS_TOPIC"] != "gh-events" || len(f.Secrets) != 1 || f.Secrets[0].Path != "/etc/secrets/webhook/secrets" {
		t.Errorf("function = %+v", f)
	}
	files, err := f.FileEnv()
	if err != nil || files["/etc/secrets/webhook/secrets"] != "GEMINI_WEBHOOK_SECRETS_FILE" {
		t.Errorf("FileEnv = %v, %v", files, err)
	}
	if _, err := deployshape.ReadPlans(strings.NewReader("not json\n")); err == nil {
		t.Error("ReadPlans accepted a non-JSON line")
	}
}

// TestFileEnvRejectsUnreadableSecrets: a *_FILE variable without a volume
// behind it, or a volume no variable names, would fail in production.
func TestFileEnvRejectsUnreadableSecrets(t *testing.T) {
	mount := deployshape.SecretFile{Path: "/etc/secrets/gemini/api-key", Secret: "key", Version: "latest"}
	for name, f := range map[string]deployshape.Function{
		"variable without volume": {Name: "c", Env: map[string]string{"GEMINI_API_KEY_FILE": "/etc/secrets/gemini/api-key"}},
		"volume without variable": {Name: "c", Env: map[string]string{}, Secrets: []deployshape.SecretFile{mount}},
		"variable beside volume":  {Name: "c", Env: map[string]string{"GEMINI_API_KEY_FILE": "/etc/secrets/gemini/key"}, Secrets: []deployshape.SecretFile{mount}},
	} {
		if _, err := f.FileEnv(); err == nil {
			t.Errorf("%s: FileEnv accepted %+v", name, f)
		}
	}
	ok := deployshape.Function{Name: "c", Env: map[string]string{"GEMINI_API_KEY_FILE": mount.Path}, Secrets: []deployshape.SecretFile{mount}}
	if _, err := ok.FileEnv(); err != nil {
		t.Errorf("FileEnv: %v", err)
	}
}

var hclStart = hcl.Pos{Line: 1, Column: 1}

// sendJWT: a dynamic-webhook (JWT-signed) delivery is accepted exactly when
// Terraform turned jwt_webhooks on, with the audience it configured. The
// token carries a ping, so it publishes nothing the later steps would see.
func sendJWT(t *testing.T, fx *fixture, fn *running) {
	now := time.Now()
	claims := map[string]any{"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "deploy-shape-jwt"}
	if aud := fn.Env["JWT_AUDIENCE"]; aud != "" {
		claims["aud"] = aud
	}
	tok, err := fx.jwt.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"webhook.ping","version":"v1","timestamp":"` + now.UTC().Format(time.RFC3339) + `","data":{"id":"deploy-shape"}}`)
	req, _ := http.NewRequestWithContext(fx.ctx, http.MethodPost, fn.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Webhook-Signature", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("JWT delivery: %v", err)
	}
	resp.Body.Close()
	want := http.StatusUnauthorized
	if fn.Env["WEBHOOK_JWT_ENABLED"] == "true" {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		t.Errorf("JWT delivery with WEBHOOK_JWT_ENABLED=%q: Receiver answered %d, want %d", fn.Env["WEBHOOK_JWT_ENABLED"], resp.StatusCode, want)
	}
}
