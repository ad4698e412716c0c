package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseEnvelope(t *testing.T) {
	tests := map[string]struct {
		body    string
		want    Envelope
		wantErr bool
	}{
		"batch succeeded": {
			body: `{"type":"batch.succeeded","version":"v1","timestamp":"2026-05-04T12:00:00Z","data":{"id":"batches/abc","output_file_uri":"files/batch-abc"}}`,
			want: Envelope{Type: "batch.succeeded", Version: "v1", Timestamp: time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC),
				Data: Data{ID: "batches/abc", OutputFileURI: "files/batch-abc"}},
		},
		"failed with numeric error code": {
			body: `{"type":"batch.failed","version":"v1","timestamp":"2026-05-04T12:00:00.5+02:00","data":{"id":"b","error_code":3,"error_message":"bad"}}`,
			want: Envelope{Type: "batch.failed", Version: "v1", Timestamp: time.Date(2026, 5, 4, 10, 0, 0, 5e8, time.UTC),
				Data: Data{ID: "b", ErrorCode: "3", ErrorMessage: "bad"}},
		},
		"video with both uri fields": {
			body: `{"type":"video.generated","data":{"id":"models/veo/operations/x","video_uri":"https://v","file_name":"files/x"}}`,
			want: Envelope{Type: "video.generated", Data: Data{ID: "models/veo/operations/x", VideoURI: "https://v", FileName: "files/x"}},
		},
		"unknown type and fields kept": {
			body: `{"type":"batch.paused","version":"v2","extra":1,"timestamp":"yesterday","data":{"id":"b","user_metadata":{"k":"v"}}}`,
			want: Envelope{Type: "batch.paused", Version: "v2", Data: Data{ID: "b",
				Extra: map[string]json.RawMessage{"user_metadata": json.RawMessage(`{"k":"v"}`)}}},
		},
		"not json":           {body: `{"type":`, wantErr: true},
		"array":              {body: `[]`, wantErr: true},
		"missing type":       {body: `{"data":{"id":"x"}}`, wantErr: true},
		"type not a string":  {body: `{"type":5,"data":{"id":"x"}}`, wantErr: true},
		"missing data":       {body: `{"type":"batch.succeeded"}`, wantErr: true},
		"missing data.id":    {body: `{"type":"batch.succeeded","data":{}}`, wantErr: true},
		"data.id not scalar": {body: `{"type":"batch.succeeded","data":{"id":{"a":1}}}`, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseEnvelope([]byte(tc.body))
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidEnvelope) {
					t.Fatalf("err = %v, want ErrInvalidEnvelope", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tc.want)
			if string(gj) != string(wj) || !got.Timestamp.Equal(tc.want.Timestamp) {
				t.Errorf("got  %s\nwant %s", gj, wj)
			}
		})
	}
}

func TestDataRoundTrip(t *testing.T) {
	in := `{"error_code":"E","id":"x","custom":[1,2],"video_uri":"u"}`
	var d Data
	if err := json.Unmarshal([]byte(in), &d); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(d)
	var a, b map[string]any
	json.Unmarshal([]byte(in), &a)
	json.Unmarshal(out, &b)
	if ja, jb := mustJSON(a), mustJSON(b); ja != jb {
		t.Errorf("round trip changed data: %s -> %s", ja, jb)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestParseRef(t *testing.T) {
	tests := []struct {
		typ, id string
		want    JobRef
	}{
		{"batch.succeeded", "batches/abc", JobRef{ID: "batch-abc", Kind: KindBatch, Name: "batches/abc"}},
		{"batch.succeeded", "abc", JobRef{ID: "batch-abc", Kind: KindBatch, Name: "batches/abc"}},
		{"batch.expired", "batch_123456", JobRef{ID: "batch-batch_123456", Kind: KindBatch, Name: "batches/batch_123456"}},
		{"video.generated", "models/veo-3.1-generate-preview/operations/abc123",
			JobRef{ID: "video-abc123", Kind: KindVideo, Name: "models/veo-3.1-generate-preview/operations/abc123"}},
		{"interaction.completed", "v1_ChdXb+/=", JobRef{ID: "interaction-v1_ChdXb~2B~2F~3D", Kind: KindInteraction, Name: "v1_ChdXb+/="}},
		{"custom.thing", "a b", JobRef{ID: "custom-a~20b", Kind: "custom", Name: "a b"}},
		{"notype", "x", JobRef{ID: "notype-x", Kind: "notype", Name: "x"}},
		// A resource name decides the kind even under an unexpected type.
		{"something.else", "batches/q", JobRef{ID: "batch-q", Kind: KindBatch, Name: "batches/q"}},
	}
	for _, tc := range tests {
		got, err := ParseRef(tc.typ, tc.id)
		if err != nil || got != tc.want {
			t.Errorf("ParseRef(%q, %q) = %+v, %v; want %+v", tc.typ, tc.id, got, err, tc.want)
		}
	}
	if id := EscapeDocID(strings.Repeat("x", 2000)); len(id) > MaxDocIDBytes || id == EscapeDocID(strings.Repeat("x", 2001)) {
		t.Errorf("long webhook ids must hash to distinct short ids: %q", id)
	}
	for _, bad := range []string{"", "batches/", strings.Repeat("é", 400)} {
		if _, err := ParseRef("batch.succeeded", bad); err == nil {
			t.Errorf("ParseRef(%q) succeeded", bad)
		}
	}
}

func TestStateSupersedes(t *testing.T) {
	order := []State{StateUnknown, StateSubmitted, StateRunning, StateRequiresAction, StateSucceeded}
	for i, a := range order {
		for j, b := range order {
			if got := b.Supersedes(a); got != (j > i) {
				t.Errorf("%q.Supersedes(%q) = %v", b, a, got)
			}
		}
	}
	for _, term := range []State{StateSucceeded, StateFailed, StateExpired, StateCancelled} {
		for _, other := range []State{StateSucceeded, StateFailed, StateExpired, StateCancelled, StateRequiresAction} {
			if other.Supersedes(term) {
				t.Errorf("%q supersedes terminal %q", other, term)
			}
		}
	}
}

func TestResultsEventID(t *testing.T) {
	a := ResultsEventID("batch-a", StateSucceeded)
	if a != ResultsEventID("batch-a", StateSucceeded) || a == ResultsEventID("batch-a", StateFailed) || a == ResultsEventID("batch-b", StateSucceeded) {
		t.Error("event ids must be stable per (job, state) and differ otherwise")
	}
}

func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"type":"batch.succeeded","version":"v1","timestamp":"2026-05-04T12:00:00Z","data":{"id":"batches/abc","output_file_uri":"files/x"}}`,
		`{"type":"batch.failed","data":{"id":"b","error_code":3}}`,
		`{"type":"x","data":{"id":"models/m/operations/","k":null}}`,
		`{"type":"","data":{"id":1e400}}`, `null`, `{}`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := ParseEnvelope(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidEnvelope) {
				t.Fatalf("error not ErrInvalidEnvelope: %v", err)
			}
			return
		}
		if env.Type == "" || env.Data.ID == "" {
			t.Fatalf("accepted envelope without type or id: %+v", env)
		}
		ref, err := ParseRef(env.Type, env.Data.ID)
		if err != nil {
			return
		}
		if ref.ID == "" || strings.Contains(ref.ID, "/") || ref.ID == "." || ref.ID == ".." || len(ref.ID) > MaxDocIDBytes {
			t.Fatalf("ParseRef(%q,%q) gave an unusable document id %q", env.Type, env.Data.ID, ref.ID)
		}
		// Re-encoding the data and parsing it again is stable.
		b, err := json.Marshal(env.Data)
		if err != nil {
			t.Fatal(err)
		}
		var d Data
		if err := json.Unmarshal(b, &d); err != nil || d.ID != env.Data.ID {
			t.Fatalf("data round trip: %v %q", err, d.ID)
		}
	})
}
