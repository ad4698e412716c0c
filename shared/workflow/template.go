package workflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
)

// TemplateData is what step templates see.
type TemplateData struct {
	Run struct {
		ID       string
		Workflow string
	}
	// Input is the run's input (from "workflow start --input").
	Input map[string]any
	// Trigger is the results event that started the run, nil otherwise.
	Trigger *StepOutput
	// Steps are the earlier steps by name.
	Steps map[string]*StepOutput
	// Attempt is the step's submission attempt (1, then +1 per retry-step).
	Attempt int
	// Item and Index are the current fan-out item (batch foreach only).
	Item  any
	Index int
}

// StepOutput is a finished step (or the triggering job) as templates see it.
type StepOutput struct {
	Name string
	// Status is the step's status: succeeded, failed, skipped.
	Status string
	// State is the Gemini job's state (succeeded, failed, …).
	State string
	JobID string
	Error string
	// Text is an interaction's output text, or a batch's result texts
	// joined by newlines.
	Text string
	// Results are a batch's result texts in input order ("" for a failed
	// line), an interaction's text as one element.
	Results []string
	// Videos are the URIs of a video step's generated videos.
	Videos []string
	// Labels are the job's labels (useful on .Trigger).
	Labels map[string]string
}

var funcs = template.FuncMap{
	"join": func(sep string, v []string) string { return strings.Join(v, sep) },
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"trim":  strings.TrimSpace,
	"lines": func(s string) []string { return splitLines(s) },
	"default": func(def string, v any) string {
		if s := fmt.Sprint(v); v != nil && s != "" {
			return s
		}
		return def
	},
}

func parseTemplate(field, text string) (*template.Template, error) {
	t, err := template.New(field).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template %s: %v", field, err)
	}
	return t, nil
}

func render(field, text string, data *TemplateData) (string, error) {
	t, err := parseTemplate(field, text)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("template %s: %v", field, err)
	}
	return b.String(), nil
}

// items splits a rendered foreach: a JSON array, or non-empty lines.
func items(s string) []any {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var a []any
		if json.Unmarshal([]byte(s), &a) == nil {
			return a
		}
	}
	var out []any
	for _, l := range splitLines(s) {
		out = append(out, l)
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
