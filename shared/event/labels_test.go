package event

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func manyLabels(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m["k"+strconv.Itoa(i)] = "v"
	}
	return m
}

func TestValidateLabels(t *testing.T) {
	tests := []struct {
		name    string
		labels  map[string]string
		wantErr string // substring; "" means valid
	}{
		{name: "none", labels: nil},
		{name: "typical", labels: map[string]string{"team": "search", "run": "r1", "pipeline": "nightly"}},
		{name: "empty value", labels: map[string]string{"flag": ""}},
		{name: "unicode", labels: map[string]string{"équipe": "recherche ✓"}},
		{name: "dots and slashes", labels: map[string]string{"a.b/c": "d"}},
		{name: "max labels", labels: manyLabels(MaxLabels)},
		{name: "one label too many", labels: manyLabels(MaxLabels + 1), wantErr: "labels (max 93"},
		{name: "longest key", labels: map[string]string{strings.Repeat("k", MaxLabelKeyBytes): "v"}},
		{name: "key one byte too long", labels: map[string]string{strings.Repeat("k", MaxLabelKeyBytes+1): "v"}, wantErr: "label key of 251 bytes"},
		{name: "key of 256 bytes (too long with label_)", labels: map[string]string{strings.Repeat("k", 256): "v"}, wantErr: "label key"},
		{name: "longest value", labels: map[string]string{"k": strings.Repeat("v", MaxLabelValueBytes)}},
		{name: "value too long", labels: map[string]string{"k": strings.Repeat("v", MaxLabelValueBytes+1)}, wantErr: "value of 1025 bytes"},
		{name: "empty key", labels: map[string]string{"": "v"}, wantErr: "empty label key"},
		{name: "goog prefix", labels: map[string]string{"goog_trace": "v"}, wantErr: "goog"},
		{name: "GOOG prefix", labels: map[string]string{"GoogX": "v"}, wantErr: "goog"},
		{name: "google-ish but fine", labels: map[string]string{"my_goog": "v"}},
		{name: "firestore reserved", labels: map[string]string{"__name__": "v"}, wantErr: "Firestore reserves"},
		{name: "underscores but fine", labels: map[string]string{"__x": "v", "y__": "v", "__": "v"}},
		{name: "invalid utf-8 key", labels: map[string]string{"k\xff": "v"}, wantErr: "not valid UTF-8"},
		{name: "invalid utf-8 value", labels: map[string]string{"k": "v\xff"}, wantErr: "not valid UTF-8"},
		{name: "control character in key", labels: map[string]string{"k\n": "v"}, wantErr: "control characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateLabels(tc.labels)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateLabels = %v, want ok", err)
				}
				return
			}
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ValidateLabels = %v, want ErrLimit mentioning %q", err, tc.wantErr)
			}
			for _, v := range tc.labels {
				if len(v) > 16 && strings.Contains(err.Error(), v) {
					t.Fatalf("error echoes a label value: %v", err)
				}
			}
		})
	}
}

// FuzzValidateLabels: whatever ValidateLabels accepts becomes attributes
// in full (every label, under Pub/Sub's key and value limits, with room for
// the trace context within MaxAttributes).
func FuzzValidateLabels(f *testing.F) {
	f.Add("team", "search", 1)
	f.Add("goog", "x", 1)
	f.Add("__name__", "", 2)
	f.Add(strings.Repeat("k", 250), strings.Repeat("v", 1024), 93)
	f.Add(strings.Repeat("k", 251), "v", 94)
	f.Add("k\xff", "v\x00", 3)
	f.Fuzz(func(t *testing.T, key, value string, n int) {
		if n < 0 || n > 200 {
			return
		}
		labels := map[string]string{key: value}
		for i := 1; i < n; i++ {
			labels[key+strconv.Itoa(i)] = value
		}
		if err := ValidateLabels(labels); err != nil {
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("error not ErrLimit: %v", err)
			}
			return
		}
		attrs := ResultsEvent{EventID: "e", Type: "batch.succeeded", JobID: "j", Kind: KindBatch, Labels: labels}.Attributes()
		if len(attrs)+2 > MaxAttributes { // + traceparent, tracestate
			t.Fatalf("%d attributes leave no room for the trace context", len(attrs))
		}
		for k, v := range labels {
			got, ok := attrs[LabelAttrPrefix+k]
			if !ok || got != v {
				t.Fatalf("accepted label %q is not an attribute", k)
			}
		}
		for k, v := range attrs {
			if len(k) > MaxAttributeKeyBytes || len(v) > MaxAttributeValueBytes || strings.HasPrefix(k, "goog") {
				t.Fatalf("attribute %q beyond Pub/Sub limits", k)
			}
		}
	})
}
