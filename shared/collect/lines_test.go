package collect

import (
	"strings"
	"testing"

	"github.com/geminihooks/geminihooks/shared/event"
)

// TestParseLineShapes pins every shape of a batch output line geminihooks
// accepts: key or no key, metadata as a Struct, and each error shape, all
// stored as {code, status, message}.
func TestParseLineShapes(t *testing.T) {
	resp := `"response":{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP"}]}`
	invalid := &event.JobError{Code: "3", Status: "INVALID_ARGUMENT", Message: "bad"}
	for _, tc := range []struct {
		name, line string
		key, text  string
		meta       map[string]any
		err        *event.JobError
	}{
		{"key and response", `{"key":"k1",` + resp + `}`, "k1", "hi", nil, nil},
		{"no key", `{` + resp + `}`, "", "hi", nil, nil},
		{"numeric key", `{"key":7,` + resp + `}`, "7", "hi", nil, nil},
		{"struct metadata", `{"metadata":{"key":"k2","n":3,"tags":["a","b"],"deep":{"x":true}},` + resp + `}`,
			"k2", "hi", map[string]any{"key": "k2", "n": float64(3), "tags": []any{"a", "b"}, "deep": map[string]any{"x": true}}, nil},
		{"metadata with a numeric key", `{"metadata":{"key":5},` + resp + `}`, "5", "hi", map[string]any{"key": float64(5)}, nil},
		{"metadata not an object", `{"metadata":"m",` + resp + `}`, "", "hi", map[string]any{"value": "m"}, nil},
		{"nested arrays made storable", `{"metadata":{"m":[[1,2]]},` + resp + `}`, "", "hi",
			map[string]any{"m": []any{map[string]any{"values": []any{float64(1), float64(2)}}}}, nil},
		{"rpc status error", `{"key":"e1","error":{"code":3,"message":"bad"}}`, "e1", "", nil, invalid},
		{"http error", `{"key":"e2","error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}`, "e2", "", nil, invalid},
		{"whole error body", `{"key":"e3","error":{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}}`, "e3", "", nil, invalid},
		{"interactions word", `{"key":"e4","error":{"code":"invalid_request","message":"bad"}}`, "e4", "", nil, invalid},
		{"string error", `{"key":"e5","error":"it broke"}`, "e5", "", nil, &event.JobError{Message: "it broke"}},
		{"status object", `{"key":"e6","status":{"code":13,"message":"boom"}}`, "e6", "", nil,
			&event.JobError{Code: "13", Status: "INTERNAL", Message: "boom"}},
		{"status word is no error", `{"key":"s1","status":"",` + resp + `}`, "s1", "hi", nil, nil},
		{"status OK is no error", `{"key":"s2","status":{"code":0},` + resp + `}`, "s2", "hi", nil, nil},
		{"response of the wrong type", `{"key":"r1","response":"text"}`, "r1", "", nil, &event.JobError{Code: "invalid_response"}},
		{"neither", `{"key":"n1"}`, "n1", "", nil, &event.JobError{Code: "empty", Message: "neither response nor error"}},
		{"not json", `{"key":`, "", "", nil, &event.JobError{Code: "invalid_line"}},
	} {
		r := parseLine(4, []byte(tc.line))
		if r.Index != 4 || r.Key != tc.key || r.Text != tc.text {
			t.Errorf("%s: index %d key %q text %q; want key %q text %q", tc.name, r.Index, r.Key, r.Text, tc.key, tc.text)
		}
		if !sameJSON(r.Metadata, tc.meta) {
			t.Errorf("%s: metadata %#v; want %#v", tc.name, r.Metadata, tc.meta)
		}
		switch {
		case (r.Error == nil) != (tc.err == nil):
			t.Errorf("%s: error %+v; want %+v", tc.name, r.Error, tc.err)
		case r.Error != nil && (r.Error.Code != tc.err.Code || r.Error.Status != tc.err.Status ||
			tc.err.Message != "" && r.Error.Message != tc.err.Message):
			t.Errorf("%s: error %+v; want %+v", tc.name, r.Error, tc.err)
		}
	}
}

func sameJSON(a, b map[string]any) bool {
	return string(event.Marshal(a)) == string(event.Marshal(b))
}

// BenchmarkParseLine parses a typical batch output line (a ~1 KiB
// response with usage and string metadata). Compare against the previous
// parser by running the same benchmark on the base commit.
func BenchmarkParseLine(b *testing.B) {
	line := []byte(`{"key":"request-000042","metadata":{"key":"request-000042","team":"search"},"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"` +
		strings.Repeat("lorem ipsum dolor sit amet ", 36) + `"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":250,"totalTokenCount":262},"modelVersion":"gemini-2.5-flash"}}`)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if r := parseLine(42, line); r.Text == "" || r.Key != "request-000042" {
			b.Fatalf("parsed %+v", r)
		}
	}
}
