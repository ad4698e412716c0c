package localpush

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geminihooks/geminihooks/shared/topology"
)

const project = "lp-test"

// pushed is one request as the function saw it.
type pushed struct {
	ContentType string
	Raw         map[string]any
	Req         PushRequest
}

// fnHandler answers a push request; req is its decoded body.
type fnHandler func(w http.ResponseWriter, r *http.Request, req PushRequest)

// fixture is pstest + a dispatcher + one function endpoint "Fn".
type fixture struct {
	t    *testing.T
	emu  *Emulator
	d    *Dispatcher
	sub  topology.Subscription
	pub  *pubsub.Publisher
	stop func()

	mu       sync.Mutex
	pushes   []pushed
	attempts []Attempt
}

// testSub is a production-like subscription on topic "in" with a fast
// deadline; tests adjust it before newFixture.
func testSub() topology.Subscription {
	return topology.Subscription{
		Name: "in-push", Topic: "in", Function: "Fn",
		AckDeadline: 10 * time.Second, MinBackoff: 10 * time.Second, MaxBackoff: 600 * time.Second,
		MaxDeliveryAttempts: 5, DeadLetterTopic: "in-dlq",
	}
}

// newFixture starts everything; fn answers the push requests after they
// were recorded.
func newFixture(t *testing.T, sub topology.Subscription, fn fnHandler) *fixture {
	t.Helper()
	ctx := context.Background()
	emu, err := StartPubsub(ctx, "", project)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, emu: emu, sub: sub}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/Fn" || r.Method != http.MethodPost {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		p := pushed{ContentType: r.Header.Get("Content-Type")}
		if err := json.Unmarshal(body, &p.Raw); err != nil {
			t.Errorf("push body is not JSON: %v", err)
		}
		if err := json.Unmarshal(body, &p.Req); err != nil {
			t.Errorf("push body does not decode: %v", err)
		}
		f.mu.Lock()
		f.pushes = append(f.pushes, p)
		f.mu.Unlock()
		fn(w, r, p.Req)
	}))
	top := topology.Topology{
		Prefix:        "t",
		Topics:        []topology.Topic{{Name: "in"}, {Name: "in-dlq", DeadLetter: true}},
		Subscriptions: []topology.Subscription{sub},
	}
	f.d, err = New(emu.Client, Options{
		Topology:    &top,
		FunctionURL: func(fn string) string { return srv.URL + "/" + fn },
		TimeScale:   0.001,
		Logger:      slog.New(slog.NewTextHandler(t.Output(), nil)),
		OnAttempt: func(a Attempt) {
			f.mu.Lock()
			f.attempts = append(f.attempts, a)
			f.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.d.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	f.pub = emu.Client.Publisher("in")
	f.pub.EnableMessageOrdering = true
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.d.Run(runCtx) }()
	f.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		f.stop()
		f.stop = func() {}
		f.pub.Stop()
		srv.Close()
		emu.Close()
	})
	return f
}

func (f *fixture) publish(data string, attrs map[string]string, key string) string {
	f.t.Helper()
	id, err := f.pub.Publish(context.Background(), &pubsub.Message{Data: []byte(data), Attributes: attrs, OrderingKey: key}).Get(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) snapshot() ([]pushed, []Attempt) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.pushes), slices.Clone(f.attempts)
}

// waitAttempts waits until cond holds for the recorded attempts; the bound
// only stops a broken dispatcher from hanging the test.
func (f *fixture) waitAttempts(what string, cond func([]Attempt) bool) []Attempt {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, as := f.snapshot()
		if cond(as) {
			return as
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s; attempts: %+v", what, as)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func count(as []Attempt, o Outcome) int {
	n := 0
	for _, a := range as {
		if a.Outcome == o {
			n++
		}
	}
	return n
}

func ok(w http.ResponseWriter, _ *http.Request, _ PushRequest) { w.WriteHeader(http.StatusNoContent) }

func TestDeliversProductionEnvelope(t *testing.T) {
	f := newFixture(t, testSub(), ok)
	id := f.publish("hello \x00 bytes", map[string]string{"kind": "batch.succeeded", "v": "1"}, "job-1")
	f.waitAttempts("ack", func(as []Attempt) bool { return count(as, Acked) == 1 })

	pushes, as := f.snapshot()
	if len(pushes) != 1 {
		t.Fatalf("%d pushes, want 1", len(pushes))
	}
	p := pushes[0]
	if p.ContentType != "application/json" {
		t.Errorf("Content-Type = %q", p.ContentType)
	}
	if keys := slices.Sorted(maps.Keys(p.Raw)); !slices.Equal(keys, []string{"deliveryAttempt", "message", "subscription"}) {
		t.Errorf("top-level keys = %v", keys)
	}
	msg := p.Raw["message"].(map[string]any)
	wantKeys := []string{"attributes", "data", "messageId", "message_id", "orderingKey", "publishTime", "publish_time"}
	if keys := slices.Sorted(maps.Keys(msg)); !slices.Equal(keys, wantKeys) {
		t.Errorf("message keys = %v, want %v", keys, wantKeys)
	}
	if got := msg["data"]; got != base64.StdEncoding.EncodeToString([]byte("hello \x00 bytes")) {
		t.Errorf("data = %v", got)
	}
	if p.Raw["deliveryAttempt"] != float64(1) {
		t.Errorf("deliveryAttempt = %v", p.Raw["deliveryAttempt"])
	}
	if p.Req.Subscription != "projects/"+project+"/subscriptions/in-push" {
		t.Errorf("subscription = %q", p.Req.Subscription)
	}
	m := p.Req.Message
	if m.MessageID != id || m.MessageIDSnake != id || m.OrderingKey != "job-1" ||
		!maps.Equal(m.Attributes, map[string]string{"kind": "batch.succeeded", "v": "1"}) {
		t.Errorf("message = %+v, want id %s", m, id)
	}
	pt, err := time.Parse(time.RFC3339Nano, m.PublishTime)
	if err != nil || m.PublishTimeSnake != m.PublishTime || !strings.HasSuffix(m.PublishTime, "Z") {
		t.Fatalf("publishTime %q / %q: %v", m.PublishTime, m.PublishTimeSnake, err)
	}
	if want := f.emu.Server.Message(id).PublishTime; !pt.Equal(want) {
		t.Errorf("publishTime = %v, want %v", pt, want)
	}
	if a := as[0]; a.StatusCode != http.StatusNoContent || a.Err != nil || a.DeliveryAttempt != 1 || a.MessageID != id || a.Function != "Fn" {
		t.Errorf("attempt = %+v", a)
	}
	if got := f.d.Stats()["in-push"]; got != (SubscriptionStats{Delivered: 1, Acked: 1}) {
		t.Errorf("stats = %+v", got)
	}
}

func TestNoDeadLetterPolicyOmitsDeliveryAttempt(t *testing.T) {
	sub := testSub()
	sub.MaxDeliveryAttempts, sub.DeadLetterTopic = 0, ""
	f := newFixture(t, sub, ok)
	f.publish("x", nil, "")
	f.waitAttempts("ack", func(as []Attempt) bool { return count(as, Acked) == 1 })
	pushes, _ := f.snapshot()
	if _, ok := pushes[0].Raw["deliveryAttempt"]; ok {
		t.Errorf("deliveryAttempt sent without a dead-letter policy: %v", pushes[0].Raw)
	}
	msg := pushes[0].Raw["message"].(map[string]any)
	for _, k := range []string{"attributes", "orderingKey"} {
		if _, ok := msg[k]; ok {
			t.Errorf("empty %s sent: %v", k, msg)
		}
	}
}

func TestFilterRespected(t *testing.T) {
	sub := testSub()
	sub.Filter = `attributes.kind = "keep"`
	f := newFixture(t, sub, ok)
	f.publish("a", map[string]string{"kind": "drop"}, "")
	keep1 := f.publish("b", map[string]string{"kind": "keep"}, "")
	f.publish("c", nil, "")
	keep2 := f.publish("d", map[string]string{"kind": "keep"}, "")
	as := f.waitAttempts("two acks", func(as []Attempt) bool { return count(as, Acked) == 2 })
	// Publish a last matching message: once it is acked, pstest has passed
	// every earlier message through the filter.
	keep3 := f.publish("e", map[string]string{"kind": "keep"}, "")
	as = f.waitAttempts("three acks", func(as []Attempt) bool { return count(as, Acked) == 3 })
	var ids []string
	for _, a := range as {
		ids = append(ids, a.MessageID)
	}
	slices.Sort(ids)
	want := []string{keep1, keep2, keep3}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("delivered %v, want only %v", ids, want)
	}
}

func TestInvalidFilterFailsSetup(t *testing.T) {
	emu, err := StartPubsub(context.Background(), "", project)
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	sub := testSub()
	sub.Filter = `attributes.kind = `
	top := topology.Topology{Topics: []topology.Topic{{Name: "in"}}, Subscriptions: []topology.Subscription{sub}}
	d, err := New(emu.Client, Options{Topology: &top, FunctionURL: func(string) string { return "http://127.0.0.1:1/" }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Setup(context.Background()); status.Code(errors.Unwrap(err)) != codes.InvalidArgument {
		t.Errorf("Setup with a bad filter: %v, want InvalidArgument", err)
	}
}

func TestSetupIdempotentAndWithoutPstestDeadLetterPolicy(t *testing.T) {
	sub := testSub()
	sub.Ordered = true
	sub.Filter = `attributes.kind = "keep"`
	f := newFixture(t, sub, ok)
	ctx := context.Background()
	if err := f.d.Setup(ctx); err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	got, err := f.emu.Client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: "projects/" + project + "/subscriptions/in-push"})
	if err != nil {
		t.Fatal(err)
	}
	if got.DeadLetterPolicy != nil || !got.EnableMessageOrdering || got.Filter != sub.Filter ||
		got.Topic != "projects/"+project+"/topics/in" || got.AckDeadlineSeconds != 10 {
		t.Errorf("subscription = %v", got)
	}
	hold, err := f.emu.Client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: "projects/" + project + "/subscriptions/in-dlq-hold"})
	if err != nil || hold.Topic != "projects/"+project+"/topics/in-dlq" {
		t.Errorf("hold subscription = %v, %v", hold, err)
	}
}

func TestOrderingHeldWhileRetried(t *testing.T) {
	sub := testSub()
	sub.Ordered = true
	f := newFixture(t, sub, func(w http.ResponseWriter, _ *http.Request, req PushRequest) {
		if req.Message.Attributes["n"] == "k1" && req.DeliveryAttempt <= 2 {
			http.Error(w, "transient", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	for _, n := range []string{"k1", "k2", "k3"} {
		f.publish(n, map[string]string{"n": n}, "k")
	}
	f.publish("o1", map[string]string{"n": "o1"}, "other")
	f.waitAttempts("four acks", func(as []Attempt) bool { return count(as, Acked) == 4 })

	pushes, _ := f.snapshot()
	var onK []string
	for _, p := range pushes {
		if p.Req.Message.OrderingKey == "k" {
			onK = append(onK, p.Req.Message.Attributes["n"]+"#"+itoa(p.Req.DeliveryAttempt))
		}
	}
	if want := []string{"k1#1", "k1#2", "k1#3", "k2#1", "k3#1"}; !slices.Equal(onK, want) {
		t.Errorf("deliveries on key k = %v, want %v", onK, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRetryWithGrowingBackoffThenSuccess(t *testing.T) {
	f := newFixture(t, testSub(), func(w http.ResponseWriter, _ *http.Request, req PushRequest) {
		if req.DeliveryAttempt <= 2 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	id := f.publish("x", nil, "")
	as := f.waitAttempts("ack", func(as []Attempt) bool { return count(as, Acked) == 1 })

	pushes, _ := f.snapshot()
	var got []int
	for _, p := range pushes {
		got = append(got, p.Req.DeliveryAttempt)
	}
	if !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("deliveryAttempt in bodies = %v, want [1 2 3]", got)
	}
	type step struct {
		n       int
		outcome Outcome
		status  int
		backoff time.Duration
	}
	var steps []step
	for _, a := range as {
		if a.MessageID != id {
			t.Errorf("attempt for unexpected message %+v", a)
		}
		steps = append(steps, step{a.DeliveryAttempt, a.Outcome, a.StatusCode, a.Backoff})
	}
	want := []step{
		{1, Retried, 500, 10 * time.Second},
		{2, Retried, 500, 20 * time.Second},
		{3, Acked, 200, 0},
	}
	if !slices.Equal(steps, want) {
		t.Errorf("attempts = %+v, want %+v", steps, want)
	}
	if got := f.d.Stats()["in-push"]; got != (SubscriptionStats{Delivered: 3, Acked: 1, FailedAttempts: 2}) {
		t.Errorf("stats = %+v", got)
	}
}

func TestBackoffSchedule(t *testing.T) {
	s := testSub()
	var got []time.Duration
	for n := 1; n <= 8; n++ {
		got = append(got, backoff(s, n))
	}
	sec := time.Second
	want := []time.Duration{10 * sec, 20 * sec, 40 * sec, 80 * sec, 160 * sec, 320 * sec, 600 * sec, 600 * sec}
	if !slices.Equal(got, want) {
		t.Errorf("backoff = %v, want %v", got, want)
	}
	s.MinBackoff, s.MaxBackoff = 0, 0
	if b := backoff(s, 3); b != 0 {
		t.Errorf("backoff without a retry policy = %v", b)
	}
}

func TestDeadLetterAfterMaxAttempts(t *testing.T) {
	f := newFixture(t, testSub(), func(w http.ResponseWriter, _ *http.Request, req PushRequest) {
		if req.Message.Attributes["poison"] == "1" {
			http.Error(w, "permanent", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	id := f.publish("poison-data", map[string]string{"poison": "1"}, "job-7")
	as := f.waitAttempts("dead letter", func(as []Attempt) bool { return count(as, DeadLettered) == 1 })

	var got []string
	for _, a := range as {
		got = append(got, itoa(a.DeliveryAttempt)+":"+a.Outcome.String())
	}
	want := []string{"1:retried", "2:retried", "3:retried", "4:retried", "5:dead-lettered"}
	if !slices.Equal(got, want) {
		t.Errorf("attempts = %v, want %v", got, want)
	}

	ctx := context.Background()
	dead, err := f.d.DrainDeadLetters(ctx, "in-dlq")
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1: %v", len(dead), dead)
	}
	orig := f.emu.Server.Message(id)
	wantAttrs := map[string]string{
		"poison":                          "1",
		AttrDeadLetterDeliveryCount:       "5",
		AttrDeadLetterSubscription:        "in-push",
		AttrDeadLetterSubscriptionProject: project,
		AttrDeadLetterTopicPublishTime:    orig.PublishTime.UTC().Format(time.RFC3339Nano),
	}
	if dl := dead[0]; string(dl.Data) != "poison-data" || dl.OrderingKey != "job-7" || !maps.Equal(dl.Attributes, wantAttrs) {
		t.Errorf("dead letter = %v, want data, key and attributes %v", dl, wantAttrs)
	}
	// The client library sends acks in the background; wait for it.
	for deadline := time.Now().Add(15 * time.Second); f.emu.Server.Message(id).Acks == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("original never acked after dead-lettering")
		}
	}

	// A later message passes through; by then a redelivery of the original
	// would have been recorded.
	f.publish("fine", nil, "")
	as = f.waitAttempts("ack of a later message", func(as []Attempt) bool { return count(as, Acked) == 1 })
	n := 0
	for _, a := range as {
		if a.MessageID == id {
			n++
		}
	}
	if n != 5 {
		t.Errorf("original attempted %d times, want 5", n)
	}
	if acks := f.emu.Server.Message(id).Acks; acks != 1 {
		t.Errorf("original acked %d times, want 1", acks)
	}
	if more, err := f.d.DrainDeadLetters(ctx, "in-dlq"); err != nil || len(more) != 0 {
		t.Errorf("second drain = %v, %v; want none", more, err)
	}
	if got := f.d.Stats()["in-push"]; got != (SubscriptionStats{Delivered: 6, Acked: 1, FailedAttempts: 5, DeadLettered: 1}) {
		t.Errorf("stats = %+v", got)
	}
}

func TestSlowFunctionCountsAsFailure(t *testing.T) {
	sub := testSub()
	sub.AckDeadline = 100 * time.Millisecond
	f := newFixture(t, sub, func(w http.ResponseWriter, r *http.Request, req PushRequest) {
		if req.DeliveryAttempt == 1 {
			select { // outlive the push deadline
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	f.publish("slow", nil, "")
	as := f.waitAttempts("ack", func(as []Attempt) bool { return count(as, Acked) == 1 })
	if len(as) != 2 {
		t.Fatalf("attempts = %+v, want 2", as)
	}
	a := as[0]
	if a.Outcome != Retried || a.StatusCode != 0 || a.Err == nil || !strings.Contains(a.Err.Error(), "ack deadline") {
		t.Errorf("slow attempt = %+v, want a retried deadline failure", a)
	}
	if as[1].DeliveryAttempt != 2 || as[1].Outcome != Acked {
		t.Errorf("second attempt = %+v", as[1])
	}
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	emu, err := StartPubsub(context.Background(), "", project)
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	url := func(string) string { return "http://127.0.0.1:1/" }
	bad := func(mut func(*topology.Subscription)) *topology.Topology {
		s := testSub()
		mut(&s)
		return &topology.Topology{Subscriptions: []topology.Subscription{s}}
	}
	cases := map[string]Options{
		"no FunctionURL":       {},
		"no name":              {FunctionURL: url, Topology: bad(func(s *topology.Subscription) { s.Name = "" })},
		"no deadline":          {FunctionURL: url, Topology: bad(func(s *topology.Subscription) { s.AckDeadline = 0 })},
		"backoff min > max":    {FunctionURL: url, Topology: bad(func(s *topology.Subscription) { s.MinBackoff = time.Hour })},
		"dead letter no topic": {FunctionURL: url, Topology: bad(func(s *topology.Subscription) { s.DeadLetterTopic = "" })},
	}
	for name, o := range cases {
		if _, err := New(emu.Client, o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: New = %v, want ErrInvalidOptions", name, err)
		}
	}
	d, err := New(emu.Client, Options{FunctionURL: url})
	if err != nil {
		t.Fatal(err)
	}
	if d.opts.Project != project || d.top.Prefix != topology.DefaultPrefix || len(d.subs) != 3 || d.opts.TimeScale != 1 {
		t.Errorf("defaults not applied: %+v", d.opts)
	}
}

func TestStartPubsub(t *testing.T) {
	ctx := context.Background()
	if _, err := StartPubsub(ctx, "", ""); err == nil {
		t.Error("StartPubsub accepted an empty project")
	}
	emu, err := StartPubsub(ctx, "", project)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(emu.Addr, "127.0.0.1:") || emu.Client.Project() != project {
		t.Errorf("Addr %q project %q", emu.Addr, emu.Client.Project())
	}
	if _, err := emu.Client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/x"}); err != nil {
		t.Fatal(err)
	}
	if err := emu.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestSetupDefaultTopology(t *testing.T) {
	ctx := context.Background()
	emu, err := StartPubsub(ctx, "", project)
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	d, err := New(emu.Client, Options{FunctionURL: FunctionsAt("http://127.0.0.1:1/")})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.opts.FunctionURL("Collector"); got != "http://127.0.0.1:1/Collector" {
		t.Errorf("FunctionsAt = %q", got)
	}
	if err := d.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	top := topology.Default("")
	want := map[string]string{ // subscription → topic
		"geminihooks-events-dlq-hold":  "geminihooks-events-dlq",
		"geminihooks-results-dlq-hold": "geminihooks-results-dlq",
	}
	for _, s := range top.Subscriptions {
		want[s.Name] = s.Topic
	}
	got := map[string]string{}
	it := emu.Client.SubscriptionAdminClient.ListSubscriptions(ctx, &pubsubpb.ListSubscriptionsRequest{Project: "projects/" + project})
	for {
		s, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[strings.TrimPrefix(s.Name, "projects/"+project+"/subscriptions/")] = strings.TrimPrefix(s.Topic, "projects/"+project+"/topics/")
		if strings.HasSuffix(s.Name, "-collector") && s.AckDeadlineSeconds != 600 {
			t.Errorf("collector ack deadline = %d", s.AckDeadlineSeconds)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("subscriptions = %v, want %v", got, want)
	}
}
