// Package tracing carries one OpenTelemetry trace from a Gemini webhook to
// its results and notifications, across the Pub/Sub hops between functions.
//
// The Receiver's span continues the W3C trace context of its request
// (Cloud Run's traceparent). Publishing ([Inject], used by shared/bus) puts
// the publisher's span context into the message's googclient_traceparent
// attribute, the attribute cloud.google.com/go/pubsub/v2 itself uses. Our
// consumers are fed by push subscriptions, which deliver the attributes in
// the push body but no trace header of the publisher, so [Push] reads the
// context from the body before the handler runs and makes the consumer's
// span its child (the push request's own context becomes a link). Every log
// line written through shared/logging carries the span's trace id, so Cloud
// Logging shows one trace per webhook, in the functions' logs and in Cloud
// Trace.
//
// # Configuration (environment, read on the first request)
//
//	TRACE_EXPORTER      "" or "none": spans are created and propagated (and
//	                    logged) but not exported; "cloudtrace": exported
//	                    over OTLP to Cloud Trace (telemetry.googleapis.com,
//	                    the function's service account needs
//	                    roles/telemetry.tracesWriter); "stdout": written as
//	                    JSON to stderr, for debugging.
//	TRACE_SAMPLE_RATIO  share of traces exported, 0..1 (default 1). The
//	                    decision is a function of the trace id, so every
//	                    function keeps or drops the same traces; a parent
//	                    that is already sampled is always kept.
//	GOOGLE_CLOUD_PROJECT  the project spans are written to.
//
// With an exporter, each request's spans are flushed before its response
// completes: Cloud Run functions get CPU only while a request runs, so a
// background batch could otherwise wait for the next request.
package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/oauth"

	"github.com/geminihooks/geminihooks/shared/logging"
)

// Environment variables read by [Setup].
const (
	EnvExporter    = "TRACE_EXPORTER"
	EnvSampleRatio = "TRACE_SAMPLE_RATIO"
)

// Exporter names accepted in TRACE_EXPORTER.
const (
	ExporterNone       = "none"
	ExporterCloudTrace = "cloudtrace"
	ExporterStdout     = "stdout"
)

// AttributePrefix is prepended to the W3C header names when trace context
// travels in Pub/Sub message attributes (googclient_traceparent), as the
// Pub/Sub client library does.
const AttributePrefix = "googclient_"

// telemetryEndpoint is Cloud Trace's OTLP endpoint (the Telemetry API).
const telemetryEndpoint = "telemetry.googleapis.com:443"

// tracerName names our instrumentation scope.
const tracerName = "github.com/geminihooks/geminihooks/shared/tracing"

// Config is what [Setup] installs. The zero value creates and propagates
// spans without exporting them.
type Config struct {
	// Exporter is one of the Exporter* names; "" means none.
	Exporter string
	// SampleRatio is the share of root traces sampled, 0..1.
	SampleRatio float64
	// Project is the Google Cloud project spans are exported to.
	Project string
	// Service names the function in span resources (K_SERVICE on Cloud Run).
	Service string
	// SpanExporter, when set, replaces the exporter named by Exporter (tests,
	// benchmarks).
	SpanExporter sdktrace.SpanExporter
}

// ConfigFromEnv reads the configuration from getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Exporter:    strings.ToLower(strings.TrimSpace(getenv(EnvExporter))),
		SampleRatio: 1,
		Project:     getenv("GOOGLE_CLOUD_PROJECT"),
		Service:     getenv("K_SERVICE"),
	}
	if c.Service == "" {
		c.Service = getenv("FUNCTION_TARGET")
	}
	switch c.Exporter {
	case "", ExporterNone, ExporterCloudTrace, ExporterStdout:
	default:
		return c, fmt.Errorf("tracing config: %s=%q: want %s, %s or %s (a redeploy with a valid value is needed)", EnvExporter, c.Exporter, ExporterNone, ExporterCloudTrace, ExporterStdout)
	}
	if v := strings.TrimSpace(getenv(EnvSampleRatio)); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r > 1 {
			return c, fmt.Errorf("tracing config: %s=%q: want a number between 0 and 1", EnvSampleRatio, v)
		}
		c.SampleRatio = r
	}
	if c.Exporter == ExporterCloudTrace && c.Project == "" {
		return c, fmt.Errorf("tracing config: %s=%s needs GOOGLE_CLOUD_PROJECT", EnvExporter, c.Exporter)
	}
	return c, nil
}

// Provider is an installed tracer provider.
type Provider struct {
	tp        *sdktrace.TracerProvider
	exporting bool
}

// Setup builds a tracer provider for c and installs it (and the W3C
// propagator) as the OpenTelemetry globals, which the Google Cloud client
// libraries use for their own spans too.
func Setup(ctx context.Context, c Config) (*Provider, error) {
	exp := c.SpanExporter
	if exp == nil {
		var err error
		if exp, err = newExporter(ctx, c); err != nil {
			return nil, err
		}
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", orDefault(c.Service, "geminihooks")),
		attribute.String("gcp.project_id", c.Project),
	)
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio),
			// An upstream that decided not to sample (Cloud Run samples few
			// requests) does not decide for the pipeline: the same ratio
			// applies, and since it is a function of the trace id every
			// function agrees.
			sdktrace.WithRemoteParentNotSampled(sdktrace.TraceIDRatioBased(c.SampleRatio)))),
	}
	if exp != nil {
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	p := &Provider{tp: sdktrace.NewTracerProvider(opts...), exporting: exp != nil}
	otel.SetTracerProvider(p.tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	mu.Lock()
	global = p
	mu.Unlock()
	return p, nil
}

func newExporter(ctx context.Context, c Config) (sdktrace.SpanExporter, error) {
	switch c.Exporter {
	case ExporterCloudTrace:
		creds, err := oauth.NewApplicationDefault(ctx, "https://www.googleapis.com/auth/cloud-platform")
		if err != nil {
			return nil, fmt.Errorf("tracing: credentials for %s: %w (retryable)", telemetryEndpoint, err)
		}
		exp, err := otlptracegrpc.New(ctx,
			otlptracegrpc.WithEndpoint(telemetryEndpoint),
			otlptracegrpc.WithDialOption(grpc.WithPerRPCCredentials(creds)),
			otlptracegrpc.WithHeaders(map[string]string{"x-goog-user-project": c.Project}))
		if err != nil {
			return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", telemetryEndpoint, err)
		}
		return exp, nil
	case ExporterStdout:
		return &jsonExporter{w: os.Stderr}, nil
	}
	return nil, nil
}

// Flush exports the spans ended so far, within ctx's deadline. It does
// nothing without an exporter.
func (p *Provider) Flush(ctx context.Context) error {
	if p == nil || !p.exporting {
		return nil
	}
	return p.tp.ForceFlush(ctx)
}

// Shutdown flushes and stops the provider.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.Shutdown(ctx)
}

// ------------------------------------------------------------ process-wide

var (
	once     sync.Once
	mu       sync.Mutex
	global   *Provider
	setupErr error
	errOnce  sync.Once
)

// EnsureFromEnv installs the provider configured by the process environment,
// once per process (on the first request, never in init()), unless [Setup]
// already installed one (tests, benchmarks). After an invalid configuration
// the functions serve untraced and the error is logged once.
func EnsureFromEnv(ctx context.Context) (*Provider, error) {
	once.Do(func() {
		mu.Lock()
		done := global != nil
		mu.Unlock()
		if done {
			return
		}
		c, err := ConfigFromEnv(os.Getenv)
		if err == nil {
			_, err = Setup(context.WithoutCancel(ctx), c)
		}
		setupErr = err
	})
	if setupErr != nil {
		errOnce.Do(func() {
			logging.New(logging.Output(), slog.LevelInfo).ErrorContext(ctx, "tracing disabled", "error", setupErr.Error())
		})
		return nil, setupErr
	}
	mu.Lock()
	defer mu.Unlock()
	return global, nil
}

// ------------------------------------------------------------ middleware

// flushTimeout bounds the per-request export.
const flushTimeout = 2 * time.Second

// HTTP wraps a function fed by plain HTTP requests (the Receiver, a
// scheduler-triggered function): its span continues the request's W3C trace
// context.
func HTTP(name string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return &middleware{name: name, kind: trace.SpanKindServer, next: next}
	}
}

// Push wraps a Pub/Sub push consumer: its span is a child of the publisher's
// context found in the pushed message's attributes, and linked to the push
// request's own context.
func Push(name string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return &middleware{name: name, kind: trace.SpanKindConsumer, push: true, next: next}
	}
}

type middleware struct {
	name string
	kind trace.SpanKind
	push bool
	next http.Handler
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := EnsureFromEnv(r.Context())
	if err != nil {
		m.next.ServeHTTP(w, r) // serving matters more than tracing
		return
	}
	prop := propagation.TraceContext{}
	ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	opts := []trace.SpanStartOption{trace.WithSpanKind(m.kind), trace.WithAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("faas.trigger", map[bool]string{true: "pubsub", false: "http"}[m.push]),
	)}
	if m.push {
		if attrs, id, ok := peekPush(r); ok {
			if msgCtx := prop.Extract(r.Context(), AttributeCarrier(attrs)); trace.SpanContextFromContext(msgCtx).IsValid() {
				if hc := trace.SpanContextFromContext(ctx); hc.IsValid() {
					opts = append(opts, trace.WithLinks(trace.Link{SpanContext: hc}))
				}
				ctx = msgCtx
			}
			opts = append(opts, trace.WithAttributes(attribute.String("messaging.system", "gcp_pubsub"),
				attribute.String("messaging.message.id", id)))
		}
	}
	ctx, span := otel.Tracer(tracerName).Start(ctx, m.name, opts...)
	sw := &statusWriter{ResponseWriter: w}
	m.next.ServeHTTP(sw, r.WithContext(ctx))
	code := sw.code
	if code == 0 {
		code = http.StatusOK
	}
	span.SetAttributes(attribute.Int("http.response.status_code", code))
	if code >= 500 {
		span.SetStatus(codes.Error, http.StatusText(code))
	}
	span.End()
	if span.SpanContext().IsSampled() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), flushTimeout)
		_ = p.Flush(fctx) // a lost span must not fail the request
		cancel()
	}
}

// statusWriter remembers the status code for the span.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// maxPeekBytes bounds the body read to find the attributes; a larger body is
// left to the handler (which rejects it: Pub/Sub messages are at most 10 MB).
const maxPeekBytes = 14 << 20

// peekPush reads the push body, restores it for the handler and returns the
// message's attributes and id. Bodies it cannot decode are left for the
// handler to reject.
func peekPush(r *http.Request) (map[string]string, string, bool) {
	if r.Body == nil || r.Method != http.MethodPost {
		return nil, "", false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPeekBytes+1))
	rest := r.Body
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), rest), rest}
	if err != nil || len(body) > maxPeekBytes {
		return nil, "", false
	}
	var b struct {
		Message struct {
			Attributes map[string]string `json:"attributes"`
			MessageID  string            `json:"messageId"`
		} `json:"message"`
	}
	if json.Unmarshal(body, &b) != nil || b.Message.Attributes == nil {
		return nil, "", false
	}
	return b.Message.Attributes, b.Message.MessageID, true
}

// ------------------------------------------------------------ propagation

// AttributeCarrier is a propagation.TextMapCarrier over Pub/Sub message
// attributes, with the googclient_ prefix of the Pub/Sub client library.
type AttributeCarrier map[string]string

// Get returns the value of the prefixed key.
func (c AttributeCarrier) Get(key string) string { return c[AttributePrefix+key] }

// Set stores value under the prefixed key.
func (c AttributeCarrier) Set(key, value string) { c[AttributePrefix+key] = value }

// Keys lists the carrier's keys without the prefix.
func (c AttributeCarrier) Keys() []string {
	var out []string
	for k := range c {
		if s, ok := strings.CutPrefix(k, AttributePrefix); ok {
			out = append(out, s)
		}
	}
	return out
}

// Inject adds the trace context of ctx's span to attrs (which must be
// non-nil); it does nothing when ctx has no span.
func Inject(ctx context.Context, attrs map[string]string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagation.TraceContext{}.Inject(ctx, AttributeCarrier(attrs))
}

// TraceID returns the trace id carried by message attributes, or "".
func TraceID(attrs map[string]string) string {
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), AttributeCarrier(attrs)))
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// StartProducer starts a producer span for publishing to topic; callers
// inject its context into the message and end it when the publish returns.
func StartProducer(ctx context.Context, topic string) (context.Context, trace.Span) {
	return otel.Tracer(tracerName).Start(ctx, "publish "+topic, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "gcp_pubsub"), attribute.String("messaging.destination.name", topic)))
}

// HTTPClient returns a client whose requests are client spans of the
// caller's trace and carry its traceparent header.
func HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: otelhttp.NewTransport(http.DefaultTransport)}
}

// ------------------------------------------------------------ stdout exporter

// jsonExporter writes finished spans as one JSON object per line.
type jsonExporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (e *jsonExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, s := range spans {
		line := map[string]any{
			"span":     s.Name(),
			"trace_id": s.SpanContext().TraceID().String(),
			"span_id":  s.SpanContext().SpanID().String(),
			"kind":     s.SpanKind().String(),
			"start":    s.StartTime(),
			"ms":       float64(s.EndTime().Sub(s.StartTime()).Microseconds()) / 1000,
		}
		if s.Parent().IsValid() {
			line["parent_span_id"] = s.Parent().SpanID().String()
		}
		b, _ := json.Marshal(line)
		if _, err := e.w.Write(append(b, '\n')); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (e *jsonExporter) Shutdown(context.Context) error { return nil }

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
