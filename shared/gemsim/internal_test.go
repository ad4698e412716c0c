package gemsim

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzBatchOutputGen feeds arbitrary JSONL to the batch output generator:
// it must not fail or panic, and must emit exactly one valid JSON line per
// non-empty input line (simulate_lines directives are excluded to keep
// inputs cheap).
func FuzzBatchOutputGen(f *testing.F) {
	f.Add([]byte(`{"key":"a","request":{"contents":[{"parts":[{"text":"hi"}]}]}}` + "\n" + `{"key":"b","request":{"contents":[{"parts":[{"text":"FAIL_LINE"}]}]}}`))
	f.Add([]byte("not json\n\n{}\n"))
	f.Add([]byte(`{"key":1}`))
	f.Fuzz(func(t *testing.T, input []byte) {
		if bytes.Contains(input, []byte("simulate_lines")) || bytes.Contains(input, []byte{'\r'}) {
			t.Skip()
		}
		var out bytes.Buffer
		if err := batchOutputGen("models/m", input)(&out); err != nil {
			t.Skipf("scanner limit: %v", err)
		}
		want := countLines(input)
		got := 0
		for line := range strings.SplitSeq(strings.TrimSuffix(out.String(), "\n"), "\n") {
			if line == "" {
				continue
			}
			got++
			if !json.Valid([]byte(line)) {
				t.Fatalf("invalid output line %q", line)
			}
		}
		if got != want {
			t.Fatalf("%d output lines for %d input lines", got, want)
		}
	})
}

func FuzzParseInteractionInput(f *testing.F) {
	f.Add([]byte(`"hello"`))
	f.Add([]byte(`[{"type":"function_result","call_id":"c","name":"n","result":"r"},{"type":"text","text":"t"}]`))
	f.Add([]byte(`{"type":"text","text":"x"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		text, results := parseInteractionInput(raw)
		p := planInteraction("m", text, results, []string{"f"})
		if p.status == "" {
			t.Fatal("no planned status")
		}
	})
}

func TestPlanInteractionRules(t *testing.T) {
	tests := []struct {
		name    string
		model   string
		text    string
		results []funcResult
		funcs   []string
		status  string
		out     string
		calls   []string
	}{
		{"echo", "m", "hi", nil, nil, interactionCompleted, "echo: hi", nil},
		{"fail model", "fail-x", "hi", nil, nil, interactionFailed, "", nil},
		{"fail trigger", "m", "x FAIL_INTERACTION", nil, []string{"f"}, interactionFailed, "", nil},
		{"results win over tools", "m", "", []funcResult{{callID: "c1", name: "f", result: "1"}, {callID: "c2", result: "2"}}, []string{"f"}, interactionCompleted, "function results: f=1; c2=2", nil},
		{"named tools", "m", "use b and c", nil, []string{"a", "b", "c"}, interactionRequiresAction, "", []string{"b", "c"}},
		{"first tool by default", "m", "whatever", nil, []string{"a", "b"}, interactionRequiresAction, "", []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planInteraction(tc.model, tc.text, tc.results, tc.funcs)
			if p.status != tc.status || p.out != tc.out {
				t.Fatalf("plan = %+v", p)
			}
			if tc.status == interactionRequiresAction {
				if len(p.steps) != len(tc.calls) {
					t.Fatalf("steps %v", p.steps)
				}
				for i, st := range p.steps {
					if st.(map[string]any)["name"] != tc.calls[i] {
						t.Fatalf("step %d = %v", i, st)
					}
				}
			}
		})
	}
}

func TestFakeClockFiresInOrder(t *testing.T) {
	c := NewFakeClock(time.Time{})
	late, early, never := c.NewTimer(2*time.Hour), c.NewTimer(time.Hour), c.NewTimer(3*time.Hour)
	if !never.Stop() || c.Waiters() != 2 {
		t.Fatalf("waiters %d", c.Waiters())
	}
	c.Advance(time.Hour)
	select {
	case <-early.C():
	default:
		t.Fatal("1h timer did not fire")
	}
	select {
	case <-late.C():
		t.Fatal("2h timer fired early")
	default:
	}
	c.Advance(time.Hour)
	<-late.C()
	if c.Waiters() != 0 || late.Stop() {
		t.Fatal("fired timer still pending")
	}
}

func TestScaledClockCompressesTime(t *testing.T) {
	c := NewScaledClock(3600 * 1000) // one sim-hour per wall millisecond
	start := c.Now()
	<-c.NewTimer(24 * time.Hour).C()
	if c.Now().Sub(start) < 24*time.Hour {
		t.Fatalf("sim time advanced only %v", c.Now().Sub(start))
	}
}

func TestDurations(t *testing.T) {
	d := Durations{Video: time.Minute, Interaction: -1, Func: func(k Kind, name string) time.Duration {
		if name == "special" {
			return time.Second
		}
		return -1
	}}
	if d.of(KindBatch, "x") != DefaultJobDuration || d.of(KindVideo, "x") != time.Minute || d.of(KindInteraction, "x") != 0 || d.of(KindBatch, "special") != time.Second {
		t.Fatal("durations not resolved as documented")
	}
}
