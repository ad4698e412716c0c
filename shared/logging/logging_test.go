package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"
)

func TestCloudLoggingFields(t *testing.T) {
	tests := map[string]struct {
		header, value string
		wantTrace     string
		wantSpan      string
	}{
		"cloud trace": {"X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1", "projects/p/traces/105445aa7843bc8bf206b12000100000", "1"},
		"traceparent": {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "projects/p/traces/4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"},
		"none":        {"X-Other", "x", "", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			r := httptest.NewRequest("POST", "/", nil)
			r.Header.Set(tc.header, tc.value)
			ForRequest(New(&buf, slog.LevelInfo), r, "p").Warn("hello", "k", 1)
			var m map[string]any
			if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if m["severity"] != "WARNING" || m["message"] != "hello" || m["k"] != 1.0 {
				t.Errorf("line = %v", m)
			}
			if got, _ := m["logging.googleapis.com/trace"].(string); got != tc.wantTrace {
				t.Errorf("trace = %q, want %q", got, tc.wantTrace)
			}
			if got, _ := m["logging.googleapis.com/spanId"].(string); got != tc.wantSpan {
				t.Errorf("span = %q, want %q", got, tc.wantSpan)
			}
		})
	}
}
