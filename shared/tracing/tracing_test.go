package tracing_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/logging"
	"github.com/geminihooks/geminihooks/shared/tracing"
)

// spans installs a provider exporting to memory, once for the package (the
// provider is process-wide, as in a function instance).
var spans = func() *tracetest.InMemoryExporter {
	exp := tracetest.NewInMemoryExporter()
	if _, err := tracing.Setup(context.Background(), tracing.Config{SampleRatio: 1, Project: "p", SpanExporter: exp}); err != nil {
		panic(err)
	}
	return exp
}()

func endedSpan(t *testing.T, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans.GetSpans() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no ended span %q among %d", name, len(spans.GetSpans()))
	return tracetest.SpanStub{}
}

// TestPushContinuesThePublishersTrace: a message published inside a trace
// and delivered by push (attributes in the body, no trace header) is handled
// in a child span of the publish, linked to the push request's own context;
// the handler still reads the untouched body and logs the trace id.
func TestPushContinuesThePublishersTrace(t *testing.T) {
	spans.Reset()
	ctx, root := otel.Tracer("test").Start(context.Background(), "receiver")
	pub := &bus.MemoryPublisher{}
	attrs := map[string]string{"job_id": "batch-1"}
	if _, err := pub.Publish(ctx, bus.Message{Data: []byte(`{"x":1}`), Attributes: attrs}); err != nil {
		t.Fatal(err)
	}
	root.End()
	if len(attrs) != 1 {
		t.Errorf("Publish changed the caller's attributes: %v", attrs)
	}
	msg := pub.Messages()[0]
	if got := tracing.TraceID(msg.Attributes); got != root.SpanContext().TraceID().String() {
		t.Fatalf("published trace %q, want %s (attributes %v)", got, root.SpanContext().TraceID(), msg.Attributes)
	}

	body := bus.EncodePushBody(bus.PushMessage{Data: msg.Data, Attributes: msg.Attributes, MessageID: "m1"})
	var logs bytes.Buffer
	var handled trace.SpanContext
	var decoded bus.PushMessage
	h := tracing.Push("Collector")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled = trace.SpanContextFromContext(r.Context())
		var err error
		if decoded, err = bus.DecodePush(r); err != nil {
			t.Errorf("handler could not decode the body after the peek: %v", err)
		}
		logging.ForRequest(logging.New(&logs, slog.LevelInfo), r, "proj").Info("collected")
		w.WriteHeader(http.StatusNoContent)
	}))
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	const pushHeader = "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01"
	req.Header.Set("traceparent", pushHeader) // the push request's own trace (Cloud Run)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	if rec.Code != http.StatusNoContent || string(decoded.Data) != `{"x":1}` || decoded.MessageID != "m1" {
		t.Fatalf("status %d, decoded %+v", rec.Code, decoded)
	}
	if handled.TraceID() != root.SpanContext().TraceID() {
		t.Errorf("consumer trace %s, want the publisher's %s", handled.TraceID(), root.SpanContext().TraceID())
	}
	consumer := endedSpan(t, "Collector")
	producer := endedSpan(t, "publish memory")
	if consumer.Parent.SpanID() != producer.SpanContext.SpanID() || consumer.SpanKind != trace.SpanKindConsumer {
		t.Errorf("consumer parent %s kind %v, want the publish span %s", consumer.Parent.SpanID(), consumer.SpanKind, producer.SpanContext.SpanID())
	}
	if len(consumer.Links) != 1 || consumer.Links[0].SpanContext.TraceID().String() != "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
		t.Errorf("consumer links %+v, want the push request's context", consumer.Links)
	}
	if want := `"logging.googleapis.com/trace":"projects/proj/traces/` + root.SpanContext().TraceID().String() + `"`; !strings.Contains(logs.String(), want) {
		t.Errorf("log line %s lacks %s", logs.String(), want)
	}
}

// TestHTTPContinuesTheRequestTrace: the Receiver's span is a child of the
// request's W3C traceparent (Cloud Run's), and a new trace without one.
func TestHTTPContinuesTheRequestTrace(t *testing.T) {
	spans.Reset()
	var got trace.SpanContext
	h := tracing.HTTP("Receiver")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = trace.SpanContextFromContext(r.Context())
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || !got.IsSampled() {
		t.Errorf("span %s sampled=%v, want trace 0af7651916cd43dd8448eb211c80319c", got.TraceID(), got.IsSampled())
	}
	s := endedSpan(t, "Receiver")
	if s.Parent.SpanID().String() != "b7ad6b7169203331" || s.SpanKind != trace.SpanKindServer || s.Status.Code.String() != "Error" {
		t.Errorf("span parent %s kind %v status %v", s.Parent.SpanID(), s.SpanKind, s.Status)
	}

	got = trace.SpanContext{}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")))
	if !got.IsValid() || got.TraceID().String() == "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("without traceparent: span %v, want a new trace", got)
	}
}

// TestPushPassesBadBodiesThrough: bodies that are not push deliveries reach
// the handler unchanged (it answers 400), traced as a new trace.
func TestPushPassesBadBodiesThrough(t *testing.T) {
	for _, body := range []string{"", "{", `{"message":{"data":"aGk="}}`, strings.Repeat("x", 1<<16)} {
		var seen []byte
		h := tracing.Push("Notifier")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen, _ = io.ReadAll(r.Body)
			if !trace.SpanContextFromContext(r.Context()).IsValid() {
				t.Error("no span for a bad body")
			}
		}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
		if string(seen) != body {
			t.Errorf("handler saw %d bytes, want the %d sent", len(seen), len(body))
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := map[string]struct {
		env     map[string]string
		want    tracing.Config
		wantErr bool
	}{
		"defaults": {env: map[string]string{}, want: tracing.Config{SampleRatio: 1}},
		"cloud trace": {env: map[string]string{"TRACE_EXPORTER": "cloudtrace", "TRACE_SAMPLE_RATIO": "0.25", "GOOGLE_CLOUD_PROJECT": "p", "K_SERVICE": "gh-receiver"},
			want: tracing.Config{Exporter: "cloudtrace", SampleRatio: 0.25, Project: "p", Service: "gh-receiver"}},
		"service from target":         {env: map[string]string{"FUNCTION_TARGET": "Receiver"}, want: tracing.Config{SampleRatio: 1, Service: "Receiver"}},
		"unknown exporter":            {env: map[string]string{"TRACE_EXPORTER": "jaeger"}, wantErr: true},
		"ratio above 1":               {env: map[string]string{"TRACE_SAMPLE_RATIO": "2"}, wantErr: true},
		"ratio not a number":          {env: map[string]string{"TRACE_SAMPLE_RATIO": "half"}, wantErr: true},
		"cloud trace without project": {env: map[string]string{"TRACE_EXPORTER": "cloudtrace"}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tracing.ConfigFromEnv(func(k string) string { return tc.env[k] })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestSamplingFollowsTheTraceID: with a ratio below 1, a trace not sampled
// upstream is decided by its id, the same way in every function, so a
// pipeline keeps or drops whole traces; a sampled upstream stays sampled.
func TestSamplingFollowsTheTraceID(t *testing.T) {
	if _, err := tracing.Setup(context.Background(), tracing.Config{SampleRatio: 0.5, SpanExporter: tracetest.NewInMemoryExporter()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = tracing.Setup(context.Background(), tracing.Config{SampleRatio: 1, SpanExporter: spans})
	})
	sampled := func(traceparent string) bool {
		var got bool
		h := tracing.Push("Workflow")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = trace.SpanContextFromContext(r.Context()).IsSampled()
		}))
		body := bus.EncodePushBody(bus.PushMessage{MessageID: "m", Attributes: map[string]string{"googclient_traceparent": traceparent}})
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
		return got
	}
	// TraceIDRatioBased keeps ids whose low 63 bits fall below ratio × 2^63.
	const low = "00-00000000000000000000000000000001-0000000000000001-00"
	const high = "00-0000000000000000ffffffffffffffff-0000000000000001-00"
	const highSampled = "00-0000000000000000ffffffffffffffff-0000000000000001-01"
	for range 3 { // the same decision every time
		if !sampled(low) || sampled(high) {
			t.Fatal("ratio 0.5: want the low trace id kept and the high one dropped")
		}
	}
	if !sampled(highSampled) {
		t.Error("a sampled upstream must stay sampled")
	}
}
