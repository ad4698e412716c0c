package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/shared/workflow/tools"
)

func TestDefaultTools(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC) }
	r, err := tools.NewRegistry(tools.GetTime(now), tools.WordCount())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		tool, args, want string
		err              error
	}{
		{"word_count", `{"input":"one two  three\nfour"}`, "4", nil},
		{"word_count", `{"input":""}`, "0", nil},
		{"word_count", `{}`, "", tools.ErrBadArguments},
		{"word_count", `{"input":3}`, "", tools.ErrBadArguments},
		{"word_count", `{"input":"x","extra":1}`, "", tools.ErrBadArguments},
		{"get_time", ``, `{"time":"2026-11-29T12:00:00Z","zone":"UTC"}`, nil},
		{"get_time", `{"input":"Europe/Paris"}`, `{"time":"2026-11-29T13:00:00+01:00","zone":"Europe/Paris"}`, nil},
		{"get_time", `{"input":"what time is it?"}`, `{"time":"2026-11-29T12:00:00Z","zone":"UTC"}`, nil},
		{"lookup_stock", `{}`, "", tools.ErrUnknownTool},
	}
	for _, c := range cases {
		got, err := r.Call(ctx, c.tool, []byte(c.args))
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s(%s): err %v, want %v", c.tool, c.args, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s(%s) = %q, %v; want %q", c.tool, c.args, got, err, c.want)
		}
	}
	if got := r.Names(); len(got) != 2 || got[0] != "get_time" || got[1] != "word_count" {
		t.Errorf("Names = %v", got)
	}
	if _, err := tools.NewRegistry(tools.WordCount(), tools.WordCount()); err == nil {
		t.Error("duplicate tool accepted")
	}
}

type mixedArgs struct {
	City   string  `json:"city" desc:"city name"`
	Days   int     `json:"days,omitempty"`
	Metric bool    `json:"metric,omitempty"`
	Ratio  float64 `json:"ratio,omitempty"`
	skip   string
}

func TestSchemaFromArgs(t *testing.T) {
	tool := tools.New("forecast", "d", func(_ context.Context, a mixedArgs) (string, error) { return a.City, nil })
	b, _ := json.Marshal(tool.Parameters())
	want := `{"properties":{"city":{"description":"city name","type":"string"},"days":{"type":"integer"},"metric":{"type":"boolean"},"ratio":{"type":"number"}},"required":["city"],"type":"object"}`
	if string(b) != want {
		t.Errorf("schema = %s\nwant %s", b, want)
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted a non-struct argument type")
		}
	}()
	tools.New("bad", "", func(context.Context, []string) (string, error) { return "", nil })
}
