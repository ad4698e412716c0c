package workflow_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/geminihooks/geminihooks/shared/workflow"
	"github.com/geminihooks/geminihooks/workflows"
)

func TestEmbeddedDefinitionsLoad(t *testing.T) {
	cat, err := workflow.LoadFS(workflows.FS, func(n string) bool { return n == "get_time" || n == "word_count" })
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cat.Names(), ","); got != "summarise-consolidate,video-describe" {
		t.Errorf("names = %s", got)
	}
	d := cat["summarise-consolidate"]
	if len(d.On) != 1 || d.On[0].Label["pipeline"] != "summarise" || d.Steps[0].Foreach == "" {
		t.Errorf("summarise-consolidate = %+v", d)
	}
}

func TestParseRejects(t *testing.T) {
	base := "name: w\nsteps:\n  - name: s\n    kind: batch\n    model: m\n    prompt: p\n"
	cases := map[string]string{
		"no steps":                  "name: w\n",
		"bad name":                  "name: W X\nsteps: []\n",
		"unknown field":             base + "    colour: red\n",
		"bad kind":                  strings.Replace(base, "kind: batch", "kind: chat", 1),
		"no model":                  strings.Replace(base, "model: m", "model: ''", 1),
		"no prompt":                 strings.Replace(base, "prompt: p", "prompt: ''", 1),
		"bad template":              strings.Replace(base, "prompt: p", "prompt: '{{ .Input'", 1),
		"dup step":                  base + "  - name: s\n    kind: batch\n    model: m\n    prompt: p\n",
		"foreach on chat":           strings.Replace(base, "kind: batch", "kind: interaction", 1) + "    foreach: x\n",
		"tools on batch":            base + "    tools: [word_count]\n",
		"unknown tool":              strings.Replace(base, "kind: batch", "kind: interaction", 1) + "    tools: [nope]\n",
		"trigger no pipeline label": "name: w\non: {event_type: batch.succeeded, label: {team: x}}\n" + base[len("name: w\n"):],
		"trigger bad pattern":       "name: w\non: {event_type: '[', label: {pipeline: x}}\n" + base[len("name: w\n"):],
		"trigger reserved label":    "name: w\non: {event_type: batch.succeeded, label: {pipeline: x, goog_a: b}}\n" + base[len("name: w\n"):],
	}
	for name, src := range cases {
		_, err := workflow.Parse([]byte(src), func(n string) bool { return n == "word_count" })
		if !errors.Is(err, workflow.ErrDefinition) {
			t.Errorf("%s: err = %v, want ErrDefinition", name, err)
		}
	}
	d, err := workflow.Parse([]byte("name: w\non:\n  - {event_type: 'batch.*', label: {pipeline: x}}\n"+base[len("name: w\n"):]), nil)
	if err != nil || len(d.On) != 1 {
		t.Fatalf("trigger list: %v %+v", err, d)
	}
}
