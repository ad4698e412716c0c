package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func spanCtx(t *testing.T, traceID, spanID string, sampled bool) context.Context {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(spanID)
	if err != nil {
		t.Fatal(err)
	}
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags}))
}

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// TestTraceOnEveryLine: the span of the request context wins over headers in
// ForRequest, and a plain logger adds the trace to lines logged with a
// context, once.
func TestTraceOnEveryLine(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "proj")
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	var buf bytes.Buffer
	l := New(&buf, slog.LevelInfo)

	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("X-Cloud-Trace-Context", "11111111111111111111111111111111/1;o=1")
	r = r.WithContext(spanCtx(t, tid, sid, true))
	ForRequest(l, r, "proj").InfoContext(r.Context(), "from ForRequest")
	l.InfoContext(spanCtx(t, tid, sid, false), "with context")
	l.Info("no context")

	got := lines(t, &buf)
	want := "projects/proj/traces/" + tid
	if got[0][keyTrace] != want || got[0][keySpanID] != sid || got[0][keyTraceSampled] != true {
		t.Errorf("ForRequest line: %v", got[0])
	}
	if strings.Count(buf.String(), `"`+keyTrace+`":`) != 2 {
		t.Errorf("trace field written %d times, want once on each of the first two lines:\n%s", strings.Count(buf.String(), `"`+keyTrace+`":`), buf.String())
	}
	if got[1][keyTrace] != want || got[1][keyTraceSampled] != false {
		t.Errorf("InfoContext line: %v", got[1])
	}
	if _, ok := got[2][keyTrace]; ok {
		t.Errorf("line without a context got a trace: %v", got[2])
	}
}
