package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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
		// Every id form of one video operation is one document; without the
		// model the name is "operations/<id>".
		{"video.generated", "operations/abc123", JobRef{ID: "video-abc123", Kind: KindVideo, Name: "operations/abc123"}},
		{"video.generated", "abc123", JobRef{ID: "video-abc123", Kind: KindVideo, Name: "operations/abc123"}},
		{"something.else", "models/veo-3/operations/abc123", JobRef{ID: "video-abc123", Kind: KindVideo, Name: "models/veo-3/operations/abc123"}},
		// Interactions are read by bare id, whichever form the event used.
		{"interaction.completed", "interactions/v1_abc", JobRef{ID: "interaction-v1_abc", Kind: KindInteraction, Name: "v1_abc"}},
		{"interaction.completed", "v1_abc", JobRef{ID: "interaction-v1_abc", Kind: KindInteraction, Name: "v1_abc"}},
		{"something.else", "interactions/v1_abc", JobRef{ID: "interaction-v1_abc", Kind: KindInteraction, Name: "v1_abc"}},
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
	for _, bad := range []string{"operations/", "interactions/", "models/veo/operations/"} {
		if _, err := ParseRef("video.generated", bad); err == nil {
			t.Errorf("ParseRef(video, %q) succeeded", bad)
		}
	}
}

// TestIDFormsMeetOnOneJob: whatever form a webhook uses, it lands on the
// document the submission recorded (RefForName of the API's answer).
func TestIDFormsMeetOnOneJob(t *testing.T) {
	cases := []struct {
		kind      Kind
		submitted string
		forms     []string
	}{
		{KindBatch, "batches/b1", []string{"b1", "batches/b1"}},
		{KindVideo, "models/veo-3.1-generate-preview/operations/op1", []string{"op1", "operations/op1", "models/veo-3.1-generate-preview/operations/op1"}},
		{KindInteraction, "v1_i1", []string{"v1_i1", "interactions/v1_i1"}},
	}
	for _, c := range cases {
		sub, err := RefForName(c.kind, c.submitted)
		if err != nil {
			t.Fatal(err)
		}
		if sub.Name != c.submitted {
			t.Errorf("RefForName(%s) name = %q", c.submitted, sub.Name)
		}
		for _, f := range c.forms {
			ref, err := ParseRef(string(c.kind)+".x", f)
			if err != nil || ref.ID != sub.ID || ref.Kind != c.kind {
				t.Errorf("%s: form %q → %+v, %v; want document %s", c.kind, f, ref, err, sub.ID)
			}
			if got := BetterName(sub.Name, ref.Name); got != c.submitted {
				t.Errorf("%s: recorded %q, webhook %q: read by %q", c.kind, sub.Name, ref.Name, got)
			}
		}
	}
}

func TestBetterName(t *testing.T) {
	for _, tc := range []struct{ recorded, learned, want string }{
		{"", "operations/x", "operations/x"},
		{"operations/x", "models/veo/operations/x", "models/veo/operations/x"},
		{"models/veo/operations/x", "operations/x", "models/veo/operations/x"},
		// a webhook cannot redirect the read to another model's operation
		{"models/veo/operations/x", "models/evil/operations/x", "models/veo/operations/x"},
		{"batches/b", "batches/b", "batches/b"},
		{"v1_a", "interactions/v1_a", "v1_a"},
	} {
		if got := BetterName(tc.recorded, tc.learned); got != tc.want {
			t.Errorf("BetterName(%q, %q) = %q; want %q", tc.recorded, tc.learned, got, tc.want)
		}
	}
}

func TestNormalizeError(t *testing.T) {
	for _, tc := range []struct {
		name        string
		code        any
		status, msg string
		want        *JobError
	}{
		{"rpc status line", float64(3), "", "bad", &JobError{Code: "3", Status: "INVALID_ARGUMENT", Message: "bad"}},
		{"operation error", float64(13), "", "boom", &JobError{Code: "13", Status: "INTERNAL", Message: "boom"}},
		{"google http error", float64(400), "INVALID_ARGUMENT", "x", &JobError{Code: "3", Status: "INVALID_ARGUMENT", Message: "x"}},
		{"status wins over http code", float64(400), "FAILED_PRECONDITION", "x", &JobError{Code: "9", Status: "FAILED_PRECONDITION", Message: "x"}},
		{"http code alone", 404, "", "", &JobError{Code: "5", Status: "NOT_FOUND"}},
		{"http 503", json.Number("503"), "", "", &JobError{Code: "14", Status: "UNAVAILABLE"}},
		{"interactions word", "invalid_request", "", "no", &JobError{Code: "3", Status: "INVALID_ARGUMENT", Message: "no"}},
		{"interactions uri", "https://example.com/errors/not_found", "", "", &JobError{Code: "5", Status: "NOT_FOUND"}},
		{"webhook status name", "INTERNAL", "", "sim", &JobError{Code: "13", Status: "INTERNAL", Message: "sim"}},
		{"lowercase name", "resource-exhausted", "", "", &JobError{Code: "8", Status: "RESOURCE_EXHAUSTED"}},
		{"numeric string", "3", "", "", &JobError{Code: "3", Status: "INVALID_ARGUMENT"}},
		{"int32 from the SDK", int32(13), "", "m", &JobError{Code: "13", Status: "INTERNAL", Message: "m"}},
		{"unknown word kept", "weird_thing", "", "m", &JobError{Code: "weird_thing", Message: "m"}},
		{"unknown number kept", float64(42), "", "", &JobError{Code: "42"}},
		{"message only", nil, "", "just text", &JobError{Message: "just text"}},
		{"nothing", nil, "", "  ", nil},
	} {
		got := NormalizeError(tc.code, tc.status, tc.msg)
		if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("%s: NormalizeError(%v, %q, %q) = %+v; want %+v", tc.name, tc.code, tc.status, tc.msg, got, tc.want)
		}
	}
	long := NormalizeError(strings.Repeat("c", 1000), "", strings.Repeat("m", 10000))
	if len(long.Code) > MaxErrorCodeBytes || len(long.Message) > MaxErrorMessageBytes {
		t.Errorf("unbounded error: %d/%d bytes", len(long.Code), len(long.Message))
	}
	if HTTPStatusFor("INVALID_ARGUMENT") != 400 || HTTPStatusFor("not_found") != 404 || HTTPStatusFor("UNAVAILABLE") != 503 || HTTPStatusFor("what") != 0 {
		t.Error("HTTPStatusFor mapping")
	}
}

// FuzzNormalizeError: any JSON error object normalises to a bounded error
// whose Status, when set with a numeric code, is that code's name.
func FuzzNormalizeError(f *testing.F) {
	for _, s := range []string{`{"code":3}`, `{"code":400,"status":"INVALID_ARGUMENT","message":"m"}`,
		`{"code":"invalid_request","message":"x"}`, `{"code":1e400}`, `{"code":-1}`, `{"code":[1]}`, `{"status":5}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			return
		}
		je := ErrorFromMap(m)
		if je == nil {
			return
		}
		if len(je.Code) > MaxErrorCodeBytes || len(je.Status) > MaxErrorCodeBytes || len(je.Message) > MaxErrorMessageBytes {
			t.Fatalf("unbounded: %+v", je)
		}
		if je.Status != "" && HTTPStatusFor(je.Status) != 0 {
			if n, err := strconv.Atoi(je.Code); err != nil || n < 0 || n > 16 {
				t.Fatalf("canonical status %q with non-canonical code %q", je.Status, je.Code)
			}
		}
	})
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
		`{"type":"batch.succeeded","timestamp":"0000-01-01T00:00:00+01:00","data":{"id":"b"}}`,
		`{"type":"batch.succeeded","timestamp":"9999-12-31T23:59:59-01:00","data":{"id":"b"}}`,
		`{"type":"batch.succeeded","timestamp":"2026-05-04T12:00:00.999999999Z","data":{"id":"batches/` + strings.Repeat("a", 1100) + `"}}`,
		`{"type":"` + strings.Repeat("x", 300) + `.y","data":{"id":"b"}}`,
		`{"type":"__x.y","data":{"id":"__"}}`,
		`{"type":"batch.succeeded","data":{"id":"b","labels":{"` + strings.Repeat("k", 300) + `":"v"}}}`,
		// Long and odd timestamps, ids and labels (issue 10).
		`{"type":"batch.succeeded","timestamp":"2026-05-04T12:00:00.` + strings.Repeat("9", 5000) + `Z","data":{"id":"b"}}`,
		`{"type":"batch.succeeded","timestamp":"` + strings.Repeat("2026", 3000) + `","data":{"id":"b"}}`,
		`{"type":"batch.succeeded","timestamp":"+10000-01-01T00:00:00Z","data":{"id":"b"}}`,
		`{"type":"batch.succeeded","timestamp":-62135596801,"data":{"id":"b"}}`,
		`{"type":"interaction.completed","data":{"id":"` + strings.Repeat("v1_", 40000) + `"}}`,
		`{"type":"video.generated","data":{"id":"models/` + strings.Repeat("m", 2000) + `/operations/o"}}`,
		`{"type":"batch.succeeded","data":{"id":"b","user_metadata":{"goog_k":"` + strings.Repeat("v", 1100) + `","__k__":"v","":"v"}}}`,
		`{"type":"batch.succeeded","data":{"id":"b","user_metadata":{` + strings.Repeat(`"k":"v",`, 150) + `"z":"v"}}}`,
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
		if ref.ID == "" || strings.Contains(ref.ID, "/") || ref.ID == "." || ref.ID == ".." || len(ref.ID) > MaxJobIDBytes ||
			(strings.HasPrefix(ref.ID, "__") && strings.HasSuffix(ref.ID, "__")) {
			t.Fatalf("ParseRef(%q,%q) gave an unusable document id %q", env.Type, env.Data.ID, ref.ID)
		}
		// Whatever was accepted can be stored and published.
		if !ValidTimestamp(env.Timestamp) || CheckText("type", env.Type, MaxTypeBytes) != nil {
			t.Fatalf("accepted an envelope beyond limits: %q at %v", env.Type, env.Timestamp)
		}
		if _, err := Encode(JobEvent{Type: env.Type, JobID: ref.ID, EventTime: env.Timestamp, Data: env.Data}); err != nil {
			t.Fatalf("accepted envelope cannot be encoded: %v", err)
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

func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		s   string
		max int
		ok  bool
	}{
		{"batch.succeeded", MaxTypeBytes, true},
		{"", MaxTypeBytes, false},
		{strings.Repeat("x", MaxTypeBytes+1), MaxTypeBytes, false},
		{"a\x00b", MaxTypeBytes, false},
		{"a\nb", MaxTypeBytes, false},
		{"\xff", MaxTypeBytes, false},
		{"é", MaxTypeBytes, true},
	} {
		if err := CheckText("x", tc.s, tc.max); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrLimit)) {
			t.Errorf("CheckText(%q) = %v, want ok=%v", tc.s, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		t  time.Time
		ok bool
	}{
		{time.Time{}, true},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{time.Date(0, 12, 31, 23, 59, 59, 0, time.UTC), false},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		if got := ValidTimestamp(tc.t); got != tc.ok {
			t.Errorf("ValidTimestamp(%v) = %v", tc.t, got)
		}
	}
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"abcdefghijkl", 10, "abcdefg…"},
		{"ééééé", 7, "éé…"},
		{"a\xffb", 10, "a\uFFFDb"},
	} {
		if got := Bound(tc.in, tc.max); got != tc.want || len(got) > tc.max || !utf8.ValidString(got) {
			t.Errorf("Bound(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestEnvelopeLimits(t *testing.T) {
	for name, body := range map[string]string{
		"year 0":            `{"type":"batch.succeeded","timestamp":"0000-01-01T00:00:00+01:00","data":{"id":"b"}}`,
		"year 10000 via tz": `{"type":"batch.succeeded","timestamp":"9999-12-31T23:59:59-01:00","data":{"id":"b"}}`,
		"type too long":     `{"type":"` + strings.Repeat("t", MaxTypeBytes+1) + `","data":{"id":"b"}}`,
		"type with a NUL":   `{"type":"batch.succeeded\u0000","data":{"id":"b"}}`,
	} {
		if _, err := ParseEnvelope([]byte(body)); !errors.Is(err, ErrInvalidEnvelope) {
			t.Errorf("%s: err = %v, want ErrInvalidEnvelope", name, err)
		}
	}
	for _, tc := range []struct{ typ, id string }{
		{"__x.y", "__"},
		{"a/b.c", "x"},
		{"9lives.done", "x"},
		{strings.Repeat("k", 33) + ".done", "x"},
		{"batch.succeeded", strings.Repeat("i", MaxJobIDBytes)},
	} {
		if _, err := ParseRef(tc.typ, tc.id); !errors.Is(err, ErrInvalidEnvelope) {
			t.Errorf("ParseRef(%.40q, %.20q) = %v, want ErrInvalidEnvelope", tc.typ, tc.id, err)
		}
	}
}

func TestTypeFor(t *testing.T) {
	for _, tc := range []struct {
		k    Kind
		s    State
		want string
	}{
		{KindBatch, StateSucceeded, TypeBatchSucceeded},
		{KindBatch, StateExpired, TypeBatchExpired},
		{KindVideo, StateSucceeded, TypeVideoGenerated},
		{KindVideo, StateFailed, TypeVideoFailed},
		{KindInteraction, StateRequiresAction, TypeInteractionRequiresAction},
		{KindInteraction, StateSucceeded, TypeInteractionCompleted},
		{KindBatch, StateRunning, ""},
		{"custom", StateSucceeded, ""},
	} {
		if got := TypeFor(tc.k, tc.s); got != tc.want {
			t.Errorf("TypeFor(%s, %s) = %q, want %q", tc.k, tc.s, got, tc.want)
		}
	}
	// Every type Gemini sends for a collected kind maps back to itself.
	for typ, s := range stateOfType {
		if k := KindOf(typ); k.Collected() && TypeFor(k, s) != typ {
			t.Errorf("TypeFor(%s, %s) = %q, want %q", k, s, TypeFor(k, s), typ)
		}
	}
}

// Labels that cannot be Pub/Sub attributes stay in the body but are left
// out of the attributes, so the publish cannot fail for good.
func TestResultsEventAttributesFitPubSub(t *testing.T) {
	labels := map[string]string{
		"ok":                     "v",
		strings.Repeat("k", 251): "key too long as label_<k>",
		"big":                    strings.Repeat("v", MaxAttributeValueBytes+1),
		"bad\xff":                "key not UTF-8",
		"badv":                   "\xff",
	}
	for i := range 200 {
		labels[fmt.Sprintf("n%03d", i)] = "x"
	}
	a := ResultsEvent{EventID: "e", JobID: "j", Labels: labels}.Attributes()
	// Valid labels in key order until the attribute limit: n000…n094.
	if len(a) != MaxAttributes || a["label_n000"] != "x" || a["label_n094"] != "x" || a["label_n095"] != "" || a["label_ok"] != "" {
		t.Fatalf("%d attributes: %v", len(a), a)
	}
	if a := (ResultsEvent{Labels: map[string]string{"ok": "v", "big": strings.Repeat("v", 2000)}}).Attributes(); a["label_ok"] != "v" || a["label_big"] != "" {
		t.Errorf("attributes = %v", a)
	}
	for k, v := range a {
		if len(k) > MaxAttributeKeyBytes || len(v) > MaxAttributeValueBytes || !utf8.ValidString(k) || !utf8.ValidString(v) {
			t.Errorf("attribute %.40q=%.40q beyond limits", k, v)
		}
	}
}
