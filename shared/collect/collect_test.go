package collect_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/iterator"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/collect"
	"github.com/geminihooks/geminihooks/shared/collect/collecttest"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const resultsTopic = "results"

type env struct {
	t      testing.TB
	fs     *firestore.Client
	store  *ledger.Store
	ps     *pstest.Server
	gem    *collecttest.Gemini
	svc    *collect.Service
	topic  string
	videos *fakestorage.Server
	// pubDown makes every results publish fail, as a Pub/Sub outage would.
	pubDown atomic.Bool
}

// switchPublisher fails while down is set.
type switchPublisher struct {
	bus.Publisher
	down *atomic.Bool
}

func (p switchPublisher) Publish(ctx context.Context, m bus.Message) (string, error) {
	if p.down.Load() {
		return "", errors.New("injected: pubsub unavailable")
	}
	return p.Publisher.Publish(ctx, m)
}

type envOpts struct {
	bucket      string
	maxAttempts int
	readTimeout time.Duration
}

func newEnv(t *testing.T, o envOpts) *env { return newEnvTB(t, o) }

func newEnvTB(t testing.TB, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	fs, project := testenv.Firestore(t)
	pc, ps := testenv.PubSub(t, project)
	topic := "projects/" + project + "/topics/" + resultsTopic
	if _, err := pc.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	pub := bus.NewPubSubPublisher(pc, topic)
	t.Cleanup(pub.Stop)
	g := collecttest.New()
	t.Cleanup(g.Server.Close)
	gc, err := gemini.New(ctx, gemini.Config{APIKey: collecttest.APIKey, BaseURL: g.URL()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, fs: fs, store: ledger.New(fs, ledger.Options{}), ps: ps, gem: g, topic: topic}
	opts := collect.Options{Ledger: e.store, Gemini: gc, Publisher: switchPublisher{pub, &e.pubDown}, MaxDeliveryAttempts: o.maxAttempts, ReadTimeout: o.readTimeout,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if o.bucket != "" {
		srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Host: "127.0.0.1", Scheme: "http", NoListener: false})
		if err != nil {
			t.Fatalf("fake gcs: %v", err)
		}
		t.Cleanup(srv.Stop)
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: o.bucket})
		opts.Videos = collect.NewGCSVideos(srv.Client(), o.bucket)
		e.videos = srv
	}
	e.svc = collect.New(opts)
	return e
}

var eventTime = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

// record stores the event like the Receiver does and returns the push
// message the events subscription would deliver.
func (e *env) record(typ, dataID string, data event.Data, labels map[string]string) bus.PushMessage {
	e.t.Helper()
	ctx := context.Background()
	ref, err := event.ParseRef(typ, dataID)
	if err != nil {
		e.t.Fatal(err)
	}
	if labels != nil {
		if err := e.store.RecordSubmission(ctx, ledger.Submission{Ref: ref, Labels: labels}); err != nil {
			e.t.Fatal(err)
		}
	}
	state, _ := event.StateOf(typ)
	data.ID = dataID
	ev := event.JobEvent{
		SchemaVersion: event.SchemaVersion, WebhookID: "wh-" + typ + "-" + ref.ID, Type: typ,
		JobID: ref.ID, Kind: ref.Kind, GeminiName: ref.Name, State: state,
		EventTime: eventTime, ReceivedAt: eventTime.Add(time.Second), Data: data,
	}
	if _, err := e.store.Record(ctx, ev, "hmac"); err != nil {
		e.t.Fatal(err)
	}
	return bus.PushMessage{Data: event.Marshal(ev), Attributes: ev.Attributes(), MessageID: "m-" + ev.WebhookID,
		OrderingKey: ev.JobID, DeliveryAttempt: 1}
}

func (e *env) job(id string) ledger.Job {
	e.t.Helper()
	j, err := e.store.GetJob(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

func (e *env) results(jobID string) map[string]ledger.Result {
	e.t.Helper()
	out := map[string]ledger.Result{}
	it := e.fs.Collection(ledger.JobsCollection).Doc(jobID).Collection(ledger.ResultsCollection).Documents(context.Background())
	defer it.Stop()
	for {
		s, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			e.t.Fatal(err)
		}
		var r ledger.Result
		if err := s.DataTo(&r); err != nil {
			e.t.Fatal(err)
		}
		out[s.Ref.ID] = r
	}
	return out
}

func (e *env) published() []event.ResultsEvent {
	e.t.Helper()
	var out []event.ResultsEvent
	for _, m := range e.ps.Messages() {
		if m.Topic != e.topic {
			continue
		}
		var re event.ResultsEvent
		if err := json.Unmarshal(m.Data, &re); err != nil {
			e.t.Fatal(err)
		}
		if m.Attributes[event.AttrEventID] != re.EventID || m.OrderingKey != re.JobID {
			e.t.Errorf("attributes %v / ordering key %q do not match event %s", m.Attributes, m.OrderingKey, re.EventID)
		}
		out = append(out, re)
	}
	return out
}

func (e *env) handle(m bus.PushMessage) error {
	return e.svc.Handle(context.Background(), m)
}

func mustHandle(t *testing.T, e *env, m bus.PushMessage) {
	t.Helper()
	if err := e.handle(m); err != nil {
		t.Fatalf("Handle: %v", err)
	}
}

func TestInlineBatch(t *testing.T) {
	e := newEnv(t, envOpts{})
	inline := []any{
		map[string]any{"metadata": map[string]any{"key": "a"}, "response": collecttest.Response("hello", 2, 3)},
		map[string]any{"metadata": map[string]any{"key": "b"}, "error": map[string]any{"code": 400, "message": "bad request"}},
		map[string]any{"metadata": map[string]any{"key": "c"}, "response": collecttest.Response("world", 4, 6)},
	}
	e.gem.Set("batches/inl1", collecttest.Batch("batches/inl1", "BATCH_STATE_SUCCEEDED",
		map[string]any{"inlinedResponses": map[string]any{"inlinedResponses": inline}}))
	m := e.record(event.TypeBatchSucceeded, "batches/inl1", event.Data{}, map[string]string{"team": "x"})
	mustHandle(t, e, m)

	res := e.results("batch-inl1")
	if len(res) != 3 {
		t.Fatalf("results = %d docs, want 3: %v", len(res), res)
	}
	if r := res["000000000"]; r.Key != "a" || r.Text != "hello" || r.FinishReason != "STOP" || r.Tokens.Total != 5 || r.Error != nil {
		t.Errorf("result 0 = %+v", r)
	}
	if r := res["000000001"]; r.Key != "b" || r.Error == nil || r.Error.Message != "bad request" || r.Error.Code != "3" || r.Error.Status != "INVALID_ARGUMENT" {
		t.Errorf("result 1 = %+v", r)
	}
	j := e.job("batch-inl1")
	if j.CollectionState != ledger.CollectionDone || j.CollectedState != "succeeded" || j.Counts != (event.Counts{Results: 3, Failed: 1}) ||
		j.Tokens != (event.Tokens{Prompt: 6, Candidates: 9, Total: 15}) || j.ResultsPath != "jobs/batch-inl1/results" {
		t.Errorf("job summary = %+v", j)
	}
	if !j.CompletedAt.Equal(eventTime) || j.CollectedAt.IsZero() || j.CollectLatencyMS <= 0 {
		t.Errorf("job times: completed %v collected %v latency %d", j.CompletedAt, j.CollectedAt, j.CollectLatencyMS)
	}
	wantID := event.ResultsEventID("batch-inl1", event.StateSucceeded)
	if j.ResultsEventID != wantID {
		t.Errorf("results_event_id = %q, want %q", j.ResultsEventID, wantID)
	}
	pub := e.published()
	if len(pub) != 1 {
		t.Fatalf("published %d results events, want 1", len(pub))
	}
	re := pub[0]
	if re.EventID != wantID || re.CollectionState != ledger.CollectionDone || re.Counts != j.Counts || re.Labels["team"] != "x" ||
		re.ResultsPath != "jobs/batch-inl1/results" || re.JobPath != "jobs/batch-inl1" || re.State != event.StateSucceeded {
		t.Errorf("results event = %+v", re)
	}

	// A redelivery after completion is acknowledged without refetching or re-publishing.
	hits := e.gem.HitCount("batches/inl1")
	mustHandle(t, e, m)
	if e.gem.HitCount("batches/inl1") != hits || len(e.published()) != 1 {
		t.Errorf("redelivery refetched (%d→%d) or republished (%d)", hits, e.gem.HitCount("batches/inl1"), len(e.published()))
	}
}

func TestFileBatch10k(t *testing.T) {
	e := newEnv(t, envOpts{})
	const n = 10000
	e.gem.SetFile("out10k", collecttest.File{Lines: n, Line: func(i int) []byte {
		return collecttest.Line(fmt.Sprintf("req-%d", i), fmt.Sprintf("answer %d", i))
	}})
	e.gem.Set("batches/f10k", collecttest.Batch("batches/f10k", "BATCH_STATE_SUCCEEDED", map[string]any{"responsesFile": "files/out10k"}))
	mustHandle(t, e, e.record(event.TypeBatchSucceeded, "batches/f10k", event.Data{}, nil))

	res := e.results("batch-f10k")
	if len(res) != n {
		t.Fatalf("results = %d docs, want %d", len(res), n)
	}
	for i := 0; i < n; i++ {
		r, ok := res[collect.ResultID(int64(i))]
		if !ok || r.Key != fmt.Sprintf("req-%d", i) || r.Text != fmt.Sprintf("answer %d", i) || r.Index != int64(i) {
			t.Fatalf("line %d: %+v (present %v)", i, r, ok)
		}
	}
	j := e.job("batch-f10k")
	if j.Counts != (event.Counts{Results: n}) || j.Tokens.Total != 8*n {
		t.Errorf("summary counts %+v tokens %+v", j.Counts, j.Tokens)
	}
}

func TestFileBatchLargeLineIsSplit(t *testing.T) {
	e := newEnv(t, envOpts{})
	big := strings.Repeat("é", 1<<20) // 2 MiB of 2-byte runes
	lines := [][]byte{collecttest.Line("small", "s"), collecttest.Line("big", big), []byte("not json"), {}}
	e.gem.SetFile("outbig", collecttest.File{Lines: len(lines), Line: func(i int) []byte { return lines[i] }})
	e.gem.Set("batches/big", collecttest.Batch("batches/big", "BATCH_STATE_SUCCEEDED", map[string]any{"responsesFile": "files/outbig"}))
	mustHandle(t, e, e.record(event.TypeBatchSucceeded, "batches/big", event.Data{}, nil))

	res := e.results("batch-big")
	var joined strings.Builder
	parts := 0
	for p := 1; ; p++ {
		r, ok := res[collect.PartID(1, p)]
		if !ok {
			break
		}
		parts++
		if r.Key != "big" || r.Part != p || r.Parts == 0 || len(r.Text) > collect.MaxTextBytes {
			t.Errorf("part %d = key %q part %d/%d len %d", p, r.Key, r.Part, r.Parts, len(r.Text))
		}
		joined.WriteString(r.Text)
	}
	if parts != 3 || joined.String() != big {
		t.Errorf("big response stored in %d parts, text intact %v", parts, joined.String() == big)
	}
	if r := res["000000002"]; r.Error == nil || r.Error.Code != "invalid_line" {
		t.Errorf("invalid line = %+v", r)
	}
	if _, ok := res["000000003"]; ok {
		t.Error("empty line stored")
	}
	if j := e.job("batch-big"); j.Counts != (event.Counts{Results: 3, Failed: 1}) {
		t.Errorf("counts = %+v", j.Counts)
	}
}

// A batch that did not succeed has no results: its state and error are the
// API's (read with one Batches.Get, plus one raw read for a failed batch's
// error, which the SDK does not decode), never the webhook's.
func TestFailedAndExpired(t *testing.T) {
	for _, tc := range []struct {
		typ      string
		apiState string
		apiError map[string]any
		data     event.Data
		state    event.State
		reads    int
		wantErr  *event.JobError
	}{
		{event.TypeBatchFailed, "BATCH_STATE_FAILED", map[string]any{"code": 3, "message": "bad input file"},
			event.Data{ErrorCode: "CLAIMED", ErrorMessage: "claimed message"}, event.StateFailed, 2,
			&event.JobError{Code: "3", Status: "INVALID_ARGUMENT", Message: "bad input file"}},
		{event.TypeBatchExpired, "BATCH_STATE_EXPIRED", nil, event.Data{}, event.StateExpired, 1, nil},
		{event.TypeBatchCancelled, "BATCH_STATE_CANCELLED", nil, event.Data{}, event.StateCancelled, 1, nil},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			b := collecttest.Batch("batches/x1", tc.apiState, nil)
			if tc.apiError != nil {
				b["error"] = tc.apiError
			}
			e.gem.Set("batches/x1", b)
			mustHandle(t, e, e.record(tc.typ, "batches/x1", tc.data, nil))
			if n := e.gem.HitCount("batches/x1"); n != tc.reads {
				t.Errorf("read %d times, want %d", n, tc.reads)
			}
			j := e.job("batch-x1")
			if j.State != string(tc.state) || j.CollectionState != ledger.CollectionDone || j.CollectedState != string(tc.state) ||
				j.CollectError != nil || j.Counts != (event.Counts{}) || fmt.Sprint(j.Error) != fmt.Sprint(tc.wantErr) ||
				j.Verification != ledger.VerdictConfirmed {
				t.Errorf("job = %+v (error %v)", j, j.Error)
			}
			pub := e.published()
			if len(pub) != 1 || pub[0].State != tc.state || pub[0].Type != tc.typ || fmt.Sprint(pub[0].Error) != fmt.Sprint(tc.wantErr) {
				t.Fatalf("published %+v", pub)
			}
		})
	}
}

func videoOp(name string, uris ...string) map[string]any {
	vids := []any{}
	for _, u := range uris {
		vids = append(vids, map[string]any{"video": map[string]any{"uri": u, "encoding": "video/mp4"}})
	}
	return map[string]any{"name": name, "done": true, "response": map[string]any{
		"@type":                 "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
		"generateVideoResponse": map[string]any{"generatedSamples": vids},
	}}
}

func TestVideo(t *testing.T) {
	const opName = "models/veo-3.1/operations/op1"
	for _, bucket := range []string{"", "vids"} {
		t.Run("bucket="+bucket, func(t *testing.T) {
			e := newEnv(t, envOpts{bucket: bucket})
			uri := e.gem.URL() + "/v1beta/files/vid1:download?alt=media"
			video := []byte(strings.Repeat("mp4!", 5000))
			e.gem.SetFile("vid1", collecttest.File{Data: video})
			e.gem.Set(opName, videoOp(opName, uri))
			mustHandle(t, e, e.record(event.TypeVideoGenerated, opName, event.Data{FileName: "files/vid1"}, nil))

			j := e.job("video-op1")
			vids, _ := j.Output["videos"].([]any)
			if j.CollectionState != ledger.CollectionDone || len(vids) != 1 || j.Counts.Results != 1 {
				t.Fatalf("job = %+v", j)
			}
			v := vids[0].(map[string]any)
			if v["uri"] != uri || v["mime_type"] != "video/mp4" || v["file_name"] != "files/vid1" {
				t.Errorf("video entry = %v", v)
			}
			if bucket == "" {
				if _, ok := v["gcs_uri"]; ok || e.gem.HitCount("files/vid1:download") != 0 {
					t.Errorf("copied without VIDEO_BUCKET: %v", v)
				}
				if _, ok := v["expire_time"].(time.Time); !ok {
					t.Errorf("no expire_time from files.get: %v", v)
				}
				return
			}
			want := "gs://vids/" + collect.VideoObject("video-op1", 0)
			if v["gcs_uri"] != want || v["bytes"] != int64(len(video)) {
				t.Errorf("video entry = %v, want gcs_uri %s", v, want)
			}
			obj, err := e.videos.GetObject("vids", collect.VideoObject("video-op1", 0))
			if err != nil || string(obj.Content) != string(video) || obj.ContentType != "video/mp4" {
				t.Errorf("stored object: err %v, %d bytes, type %q", err, len(obj.Content), obj.ContentType)
			}
		})
	}
}

func interaction(id, status string, steps ...any) map[string]any {
	return map[string]any{"id": id, "status": status, "steps": steps, "created": "2026-05-04T12:00:00Z", "updated": "2026-05-04T12:00:05Z",
		"usage": map[string]any{"total_input_tokens": 7, "total_output_tokens": 11, "total_tokens": 18}}
}

func TestInteractionCompleted(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.gem.Set("interactions/v1_abc", interaction("v1_abc", "completed",
		map[string]any{"type": "user_input", "content": []any{map[string]any{"type": "text", "text": "hi"}}},
		map[string]any{"type": "model_output", "content": []any{map[string]any{"type": "text", "text": "Hello there"}}},
	))
	mustHandle(t, e, e.record(event.TypeInteractionCompleted, "v1_abc", event.Data{}, nil))
	j := e.job("interaction-v1_abc")
	if j.Output["text"] != "Hello there" || j.Output["status"] != "completed" || j.CollectionState != ledger.CollectionDone {
		t.Errorf("output = %v", j.Output)
	}
	if steps, _ := j.Output["steps"].([]any); len(steps) != 2 || steps[1].(map[string]any)["type"] != "model_output" {
		t.Errorf("steps = %v", j.Output["steps"])
	}
	if j.Tokens != (event.Tokens{Prompt: 7, Candidates: 11, Total: 18}) {
		t.Errorf("tokens = %+v", j.Tokens)
	}
	if r := e.results("interaction-v1_abc")["000000000"]; r.Text != "Hello there" {
		t.Errorf("result = %+v", r)
	}
}

func TestInteractionRequiresAction(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.gem.Set("interactions/v1_act", interaction("v1_act", "requires_action",
		map[string]any{"type": "function_call", "id": "call-1", "name": "get_weather", "arguments": map[string]any{"city": "Paris", "grid": []any{[]any{1, 2}}}},
		map[string]any{"type": "function_call", "id": "call-0", "name": "done_already", "arguments": map[string]any{}},
		map[string]any{"type": "function_result", "call_id": "call-0", "result": "ok"},
	))
	mustHandle(t, e, e.record(event.TypeInteractionRequiresAction, "v1_act", event.Data{}, nil))
	j := e.job("interaction-v1_act")
	pending, _ := j.Output["pending_calls"].([]any)
	if len(pending) != 1 || j.CollectedState != string(event.StateRequiresAction) {
		t.Fatalf("pending_calls = %v (job %+v)", j.Output["pending_calls"], j)
	}
	pc := pending[0].(map[string]any)
	if pc["id"] != "call-1" || pc["name"] != "get_weather" || pc["arguments"].(map[string]any)["city"] != "Paris" ||
		pc["arguments_json"] != `{"city":"Paris","grid":[[1,2]]}` {
		t.Errorf("pending call = %v", pc)
	}
	if pub := e.published(); len(pub) != 1 || pub[0].State != event.StateRequiresAction {
		t.Errorf("published %+v", pub)
	}
}

func TestGemini500ThenSuccess(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.gem.SetFile("o5", collecttest.File{Lines: 50, Line: func(i int) []byte { return collecttest.Line(fmt.Sprint(i), "t") }})
	e.gem.Set("batches/r5", collecttest.Batch("batches/r5", "BATCH_STATE_SUCCEEDED", map[string]any{"responsesFile": "files/o5"}))
	m := e.record(event.TypeBatchSucceeded, "batches/r5", event.Data{}, nil)

	e.gem.FailNext("files/o5", 1, http.StatusInternalServerError)
	err := e.handle(m)
	if err == nil || gemini.IsPermanent(err) || errors.Is(err, collect.ErrInvalidEvent) {
		t.Fatalf("first attempt: err = %v, want a transient error", err)
	}
	if j := e.job("batch-r5"); j.CollectionState != ledger.CollectionPending || len(e.published()) != 0 {
		t.Fatalf("after failure: collection_state %q, %d published", j.CollectionState, len(e.published()))
	}
	e.gem.FailNext("batches/r5", 1, http.StatusTooManyRequests)
	if err := e.handle(m); err == nil || gemini.IsPermanent(err) {
		t.Fatalf("429: err = %v, want transient", err)
	}
	m.DeliveryAttempt = 3
	mustHandle(t, e, m)
	if res := e.results("batch-r5"); len(res) != 50 {
		t.Errorf("results = %d docs, want 50", len(res))
	}
	if j := e.job("batch-r5"); j.Counts.Results != 50 || j.CollectionState != ledger.CollectionDone {
		t.Errorf("job = %+v", j)
	}
	if pub := e.published(); len(pub) != 1 {
		t.Errorf("published %d, want 1", len(pub))
	}
}

// TestPublishFailureThenRedelivery: the results are saved but the results
// event cannot be published. The redelivery publishes the stored summary
// without fetching from Gemini again, and a further one does nothing.
func TestPublishFailureThenRedelivery(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.gem.SetFile("o7", collecttest.File{Lines: 3, Line: func(i int) []byte { return collecttest.Line(fmt.Sprint(i), "t") }})
	e.gem.Set("batches/p7", collecttest.Batch("batches/p7", "BATCH_STATE_SUCCEEDED", map[string]any{"responsesFile": "files/o7"}))
	m := e.record(event.TypeBatchSucceeded, "batches/p7", event.Data{}, map[string]string{"team": "a"})

	e.pubDown.Store(true)
	if err := e.handle(m); err == nil || gemini.IsPermanent(err) {
		t.Fatalf("publish down: err = %v, want a transient error", err)
	}
	j := e.job("batch-p7")
	if j.CollectionState != ledger.CollectionDone || j.ResultsEventID != "" || len(e.published()) != 0 {
		t.Fatalf("after failed publish: %+v, %d published", j, len(e.published()))
	}
	fetches := e.gem.HitCount("batches/p7") + e.gem.HitCount("files/o7")
	if fetches < 2 {
		t.Fatalf("first attempt made %d Gemini requests, want the batch and its file", fetches)
	}

	e.pubDown.Store(false)
	mustHandle(t, e, m)
	mustHandle(t, e, m)
	if n := e.gem.HitCount("batches/p7") + e.gem.HitCount("files/o7"); n != fetches {
		t.Errorf("Gemini fetched again on redelivery: %d requests, want %d", n, fetches)
	}
	pub := e.published()
	if len(pub) != 1 {
		t.Fatalf("published %d, want 1", len(pub))
	}
	re := pub[0]
	if re.EventID != event.ResultsEventID("batch-p7", event.StateSucceeded) || re.Counts.Results != 3 ||
		re.Labels["team"] != "a" || re.Type != event.TypeBatchSucceeded || re.CollectionState != ledger.CollectionDone {
		t.Errorf("re-published event = %+v", re)
	}
	if j := e.job("batch-p7"); j.ResultsEventID != re.EventID {
		t.Errorf("results_event_id = %q, want %q", j.ResultsEventID, re.EventID)
	}
}

// A job this key cannot read (404, 403) makes the claim unverifiable: no
// state changes, nothing is published, the message is acknowledged.
func TestNotReadableIsUnverifiable(t *testing.T) {
	for _, status := range []int{404, 403} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newEnv(t, envOpts{})
			ref, _ := event.RefForName(event.KindBatch, "batches/gone")
			if err := e.store.RecordSubmission(context.Background(), ledger.Submission{Ref: ref}); err != nil {
				t.Fatal(err)
			}
			if status == 403 {
				e.gem.Set("batches/gone", collecttest.Batch("batches/gone", "BATCH_STATE_SUCCEEDED", nil))
				e.gem.FailNext("batches/gone", 1, 403)
			}
			mustHandle(t, e, e.record(event.TypeBatchFailed, "batches/gone", event.Data{ErrorMessage: "claimed"}, nil))
			j := e.job("batch-gone")
			if j.State != "submitted" || j.Verification != ledger.VerdictUnverifiable || j.CollectionState != "" || j.Error != nil {
				t.Fatalf("job = %+v", j)
			}
			if pub := e.published(); len(pub) != 0 {
				t.Fatalf("published %+v", pub)
			}
		})
	}
}

// A read the API refuses for good (400) cannot establish a state: recorded
// as collect_failed, acknowledged, nothing announced.
func TestPermanentReadErrorIsRecorded(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.gem.Set("batches/bad", collecttest.Batch("batches/bad", "BATCH_STATE_SUCCEEDED", nil))
	e.gem.FailNext("batches/bad", 1, 400)
	mustHandle(t, e, e.record(event.TypeBatchSucceeded, "batches/bad", event.Data{}, nil))
	j := e.job("batch-bad")
	if j.CollectionState != ledger.CollectionFailed || j.CollectError == nil || j.CollectError.Code != "permanent" || j.State != "" {
		t.Fatalf("job = %+v", j)
	}
	if pub := e.published(); len(pub) != 0 {
		t.Fatalf("published %+v", pub)
	}
}

func TestLastAttemptRecordsTransientFailure(t *testing.T) {
	e := newEnv(t, envOpts{maxAttempts: 3})
	e.gem.Set("batches/lst", collecttest.Batch("batches/lst", "BATCH_STATE_SUCCEEDED", map[string]any{"responsesFile": "files/lst"}))
	e.gem.SetFile("lst", collecttest.File{Lines: 2, Line: func(i int) []byte { return collecttest.Line(fmt.Sprint(i), "t") }})
	m := e.record(event.TypeBatchSucceeded, "batches/lst", event.Data{}, nil)
	e.gem.FailNext("batches/lst", 10, http.StatusServiceUnavailable)
	m.DeliveryAttempt = 2
	if err := e.handle(m); err == nil {
		t.Fatal("want error")
	}
	if j := e.job("batch-lst"); j.CollectionState != ledger.CollectionPending {
		t.Fatalf("attempt 2 recorded %q", j.CollectionState)
	}
	m.DeliveryAttempt = 3
	if err := e.handle(m); err == nil {
		t.Fatal("want error on the last attempt too (so the message dead-letters)")
	}
	j := e.job("batch-lst")
	if j.CollectionState != ledger.CollectionFailed || j.CollectError == nil || j.CollectError.Code != "retries_exhausted" {
		t.Fatalf("job = %+v", j)
	}
	if len(e.published()) != 0 {
		t.Error("published a results event for a transient failure")
	}
	// A replay from the dead-letter topic collects for real.
	e.gem.FailNext("batches/lst", 0, 0)
	m.DeliveryAttempt = 1
	mustHandle(t, e, m)
	if j := e.job("batch-lst"); j.CollectionState != ledger.CollectionDone || j.CollectError != nil || j.Counts.Results != 2 {
		t.Fatalf("after replay job = %+v", j)
	}
}

func TestConcurrentDuplicateDelivery(t *testing.T) {
	e := newEnv(t, envOpts{})
	const n = 300
	e.gem.SetFile("dup", collecttest.File{Lines: n, Line: func(i int) []byte { return collecttest.Line(fmt.Sprint(i), "t") }})
	e.gem.Set("batches/dup", collecttest.Batch("batches/dup", "BATCH_STATE_SUCCEEDED", map[string]any{"responsesFile": "files/dup"}))
	m := e.record(event.TypeBatchSucceeded, "batches/dup", event.Data{}, nil)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = e.handle(m) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Handle: %v", err)
		}
	}
	if res := e.results("batch-dup"); len(res) != n {
		t.Errorf("results = %d docs, want %d", len(res), n)
	}
	j := e.job("batch-dup")
	if j.Counts.Results != n {
		t.Errorf("counts = %+v", j.Counts)
	}
	pub := e.published()
	if len(pub) < 1 || len(pub) > 2 {
		t.Fatalf("published %d events", len(pub))
	}
	for _, p := range pub {
		if p.EventID != j.ResultsEventID {
			t.Errorf("event id %s != %s", p.EventID, j.ResultsEventID)
		}
	}
}

func TestStaleEventSkipped(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.gem.Set("interactions/v1_st", interaction("v1_st", "completed",
		map[string]any{"type": "model_output", "content": []any{map[string]any{"type": "text", "text": "final"}}}))
	ra := e.record(event.TypeInteractionRequiresAction, "v1_st", event.Data{}, nil)
	done := e.record(event.TypeInteractionCompleted, "v1_st", event.Data{}, nil)
	mustHandle(t, e, done)
	mustHandle(t, e, ra) // arrives late
	j := e.job("interaction-v1_st")
	if j.CollectedState != string(event.StateSucceeded) || j.Output["text"] != "final" {
		t.Errorf("job = %+v", j)
	}
	if pub := e.published(); len(pub) != 1 || pub[0].State != event.StateSucceeded {
		t.Errorf("published %+v", pub)
	}
}

func TestUnknownAndInvalidEvents(t *testing.T) {
	e := newEnv(t, envOpts{})
	mustHandle(t, e, e.record("batch.paused", "batches/u1", event.Data{}, nil))
	if j := e.job("batch-u1"); j.LastUnknownEvent != "batch.paused" || j.CollectionState != "" {
		t.Errorf("job = %+v", j)
	}
	if len(e.published()) != 0 {
		t.Error("published for an unknown event")
	}
	for _, data := range []string{`not json`, `{"type":"batch.succeeded"}`} {
		err := e.handle(bus.PushMessage{Data: []byte(data), MessageID: "x"})
		if !errors.Is(err, collect.ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", data, err)
		}
	}
}

// Interface checks: the real adapters satisfy the ports.
var (
	_ collect.Ledger     = (*ledger.Store)(nil)
	_ collect.Gemini     = (*gemini.Client)(nil)
	_ collect.VideoStore = (*collect.GCSVideos)(nil)
)

func TestSaveCollectionKeepsHigherState(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	// Labels recorded while the collection ran are the ones returned.
	ref, _ := event.RefForName(event.KindInteraction, "z")
	if err := e.store.RecordSubmission(ctx, ledger.Submission{Ref: ref, Labels: map[string]string{"workflow_run": "r1"}}); err != nil {
		t.Fatal(err)
	}
	done := ledger.Collection{CollectionState: ledger.CollectionDone, CollectedState: event.StateSucceeded, Counts: event.Counts{Results: 2}}
	if saved, err := e.store.SaveCollection(ctx, "interaction-z", done); err != nil || !saved.Applied || saved.Labels["workflow_run"] != "r1" {
		t.Fatalf("save = %+v, %v; want applied with the job's labels", saved, err)
	}
	if err := e.store.MarkResultsPublished(ctx, "interaction-z", event.StateRequiresAction, "other"); err != nil {
		t.Fatal(err)
	}
	if j := e.job("interaction-z"); j.ResultsEventID != "" {
		t.Errorf("marked published for a state not collected: %q", j.ResultsEventID)
	}
	late := ledger.Collection{CollectionState: ledger.CollectionDone, CollectedState: event.StateRequiresAction}
	if saved, err := e.store.SaveCollection(ctx, "interaction-z", late); err != nil || saved.Applied {
		t.Fatalf("late save = %+v, %v; want not applied", saved, err)
	}
	if j := e.job("interaction-z"); j.CollectedState != string(event.StateSucceeded) || j.Counts.Results != 2 {
		t.Errorf("job = %+v", j)
	}
}

// TestFileBatchLineTooLarge: a line longer than MaxLineBytes (a runaway
// response) is recorded as an error result with code line_too_large, without
// being held in memory, and the lines after it are collected.
func TestFileBatchLineTooLarge(t *testing.T) {
	e := newEnv(t, envOpts{})
	huge := collecttest.Line("huge", strings.Repeat("x", collect.MaxLineBytes+1024))
	lines := [][]byte{collecttest.Line("before", "b"), huge, collecttest.Line("after", "a")}
	e.gem.SetFile("outhuge", collecttest.File{Lines: len(lines), Line: func(i int) []byte { return lines[i] }})
	e.gem.Set("batches/huge", collecttest.Batch("batches/huge", "BATCH_STATE_SUCCEEDED", map[string]any{"responsesFile": "files/outhuge"}))
	mustHandle(t, e, e.record(event.TypeBatchSucceeded, "batches/huge", event.Data{}, nil))

	res := e.results("batch-huge")
	if r := res[collect.ResultID(0)]; r.Key != "before" || r.Text != "b" {
		t.Errorf("line before = %+v", r)
	}
	r := res[collect.ResultID(1)]
	if r.Error == nil || r.Error.Code != "line_too_large" || r.Text != "" || !strings.Contains(r.Error.Message, "limit") {
		t.Errorf("oversized line = %+v", r)
	}
	if r := res[collect.ResultID(2)]; r.Key != "after" || r.Text != "a" || r.Index != 2 {
		t.Errorf("line after = %+v", r)
	}
	j := e.job("batch-huge")
	if j.State != "succeeded" || j.CollectionState != ledger.CollectionDone || j.Counts != (event.Counts{Results: 3, Failed: 1}) {
		t.Errorf("job = state %q collection %q counts %+v", j.State, j.CollectionState, j.Counts)
	}
}

// TestInteractionOutputStaysUnderDocumentLimit: an interaction with huge
// text, steps, function-call arguments and errors, on a job carrying the
// most labels allowed, still fits its Firestore document (1 MiB): beyond
// their budgets the output records counts and sizes instead of bodies, and
// pending calls keep what a tool needs (arguments_json) as long as that fits.
func TestInteractionOutputStaysUnderDocumentLimit(t *testing.T) {
	labels := map[string]string{}
	for i := range event.MaxLabels {
		labels[fmt.Sprintf("%0*d", event.MaxLabelKeyBytes, i)] = strings.Repeat("v", event.MaxLabelValueBytes)
	}
	bigArgs := func(n int) map[string]any { return map[string]any{"blob": strings.Repeat("a", n)} }
	build := func(id string, calls, argBytes int) map[string]any {
		var steps []any
		for i := range 200 {
			steps = append(steps, map[string]any{"type": "model_output", "content": []any{map[string]any{"type": "text", "text": strings.Repeat("s", 4<<10) + fmt.Sprint(i)}}})
		}
		for i := range calls {
			steps = append(steps, map[string]any{"type": "function_call", "id": fmt.Sprint("call-", i), "name": "word_count", "arguments": bigArgs(argBytes)})
		}
		it := interaction(id, "requires_action", steps...)
		var errs []any
		for i := range 200 {
			errs = append(errs, map[string]any{"code": "internal", "message": strings.Repeat("e", 2000) + fmt.Sprint(i)})
		}
		it["errors"] = errs
		it["output_text"] = strings.Repeat("t", 600<<10)
		return it
	}
	tests := []struct {
		name        string
		calls, args int
		check       func(t *testing.T, out map[string]any)
	}{
		{name: "pending calls too large", calls: 100, args: 4 << 10, check: func(t *testing.T, out map[string]any) {
			if out["pending_calls_omitted"] != true || out["pending_calls_count"] != int64(100) || out["pending_calls_bytes"].(int64) < 400<<10 {
				t.Errorf("pending calls: omitted %v count %v bytes %v", out["pending_calls_omitted"], out["pending_calls_count"], out["pending_calls_bytes"])
			}
		}},
		{name: "pending calls kept as JSON only", calls: 30, args: 3 << 10, check: func(t *testing.T, out map[string]any) {
			pending, _ := out["pending_calls"].([]any)
			if len(pending) != 30 || out["pending_calls_omitted"] != nil {
				t.Fatalf("pending calls = %d, omitted %v", len(pending), out["pending_calls_omitted"])
			}
			pc := pending[7].(map[string]any)
			if pc["id"] != "call-7" || pc["arguments"] != nil || pc["arguments_json"] != `{"blob":"`+strings.Repeat("a", 3<<10)+`"}` {
				t.Errorf("pending call 7 = id %v, arguments kept %v", pc["id"], pc["arguments"] != nil)
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			id := fmt.Sprint("v1_big", i)
			e.gem.Set("interactions/"+id, build(id, tc.calls, tc.args))
			mustHandle(t, e, e.record(event.TypeInteractionRequiresAction, id, event.Data{}, labels))
			j := e.job("interaction-" + id)
			if j.CollectionState != ledger.CollectionDone || len(j.Labels) != event.MaxLabels {
				t.Fatalf("job collection %q labels %d", j.CollectionState, len(j.Labels))
			}
			out := j.Output
			if out["text_in_results"] != true || out["steps_omitted"] != true || out["steps_count"] != int64(200+tc.calls) {
				t.Errorf("text_in_results %v steps_omitted %v steps_count %v", out["text_in_results"], out["steps_omitted"], out["steps_count"])
			}
			if errs, _ := out["errors"].([]any); len(errs) != 32 || out["errors_count"] != int64(200) {
				t.Errorf("errors kept %d, errors_count %v", len(errs), out["errors_count"])
			}
			tc.check(t, out)
			// The whole document, encoded, with room to spare.
			doc, _ := json.Marshal(j)
			if len(doc) > 1<<20-64<<10 {
				t.Fatalf("job document is %d bytes encoded; Firestore's limit is %d", len(doc), 1<<20)
			}
			t.Logf("job document: %d bytes encoded", len(doc))
		})
	}
}
