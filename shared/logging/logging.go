// Package logging builds the structured JSON logger every geminihooks
// function uses. Cloud Logging reads one JSON object per line on stdout and
// understands "severity", "message" and the trace fields, so log lines are
// grouped under the request that wrote them and linked to its trace in
// Cloud Trace.
//
// The trace comes from the OpenTelemetry span in the request's context
// (shared/tracing starts it; across Pub/Sub it continues the publisher's
// trace), else from the X-Cloud-Trace-Context or traceparent header. A
// logger from [ForRequest] carries it on every line; a logger from [New]
// adds it to lines logged with a context (InfoContext and friends).
package logging

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Cloud Logging's special JSON keys.
const (
	keyTrace        = "logging.googleapis.com/trace"
	keySpanID       = "logging.googleapis.com/spanId"
	keyTraceSampled = "logging.googleapis.com/trace_sampled"
)

// Output is where functions write their logs: stdout, which Cloud Logging
// collects, unless LOG_OUTPUT says "stderr" or "discard" (the local stack
// sends function logs to stderr so its readable log owns stdout).
func Output() io.Writer {
	switch os.Getenv("LOG_OUTPUT") {
	case "stderr":
		return os.Stderr
	case "discard":
		return io.Discard
	}
	return os.Stdout
}

// New returns a JSON logger for w that writes "severity" and "message"
// instead of slog's "level" and "msg".
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				return slog.String("severity", severity(a.Value.Any().(slog.Level)))
			case slog.MessageKey:
				a.Key = "message"
			case slog.TimeKey:
				a.Key = "time"
			}
			return a
		},
	})
	return slog.New(&traceHandler{Handler: h, project: os.Getenv("GOOGLE_CLOUD_PROJECT")})
}

// traceHandler adds the trace fields of the record's context, unless the
// logger already has them (from ForRequest).
type traceHandler struct {
	slog.Handler
	project  string
	hasTrace bool
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.hasTrace {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r = r.Clone()
			r.AddAttrs(spanAttrs(h.project, sc)...)
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h *traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	has := h.hasTrace
	for _, a := range as {
		has = has || a.Key == keyTrace
	}
	return &traceHandler{Handler: h.Handler.WithAttrs(as), project: h.project, hasTrace: has}
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	return &traceHandler{Handler: h.Handler.WithGroup(name), project: h.project, hasTrace: h.hasTrace}
}

func spanAttrs(project string, sc trace.SpanContext) []slog.Attr {
	return []slog.Attr{
		slog.String(keyTrace, "projects/"+project+"/traces/"+sc.TraceID().String()),
		slog.String(keySpanID, sc.SpanID().String()),
		slog.Bool(keyTraceSampled, sc.IsSampled()),
	}
}

func severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}

// ForRequest returns l with the request's trace attached: the OpenTelemetry
// span in r's context, else X-Cloud-Trace-Context ("TRACE_ID/SPAN_ID;o=1")
// or W3C traceparent.
func ForRequest(l *slog.Logger, r *http.Request, project string) *slog.Logger {
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
		as := spanAttrs(project, sc)
		return l.With(as[0], as[1], as[2])
	}
	traceID, spanID := traceOf(r)
	if traceID == "" {
		return l
	}
	attrs := []any{slog.String(keyTrace, "projects/"+project+"/traces/"+traceID)}
	if spanID != "" {
		attrs = append(attrs, slog.String(keySpanID, spanID))
	}
	return l.With(attrs...)
}

func traceOf(r *http.Request) (traceID, spanID string) {
	if h := r.Header.Get("X-Cloud-Trace-Context"); h != "" {
		t, rest, _ := strings.Cut(h, "/")
		s, _, _ := strings.Cut(rest, ";")
		return t, s
	}
	// traceparent: version-traceid-spanid-flags
	if parts := strings.Split(r.Header.Get("traceparent"), "-"); len(parts) == 4 {
		return parts[1], parts[2]
	}
	return "", ""
}

type ctxKey struct{}

// WithLogger stores l in ctx.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// From returns the logger stored in ctx, or slog.Default.
func From(ctx context.Context) *slog.Logger { return FromOr(ctx, slog.Default()) }

// FromOr returns the logger stored in ctx (the request's, with its trace),
// or fallback.
func FromOr(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return fallback
}
