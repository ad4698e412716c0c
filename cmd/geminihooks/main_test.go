package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/gemsim"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// result is one in-process CLI run.
type result struct {
	stdout, stderr string
	code           int
}

func cli(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return result{out.String(), errb.String(), code}
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) result {
	t.Helper()
	r := cli(t, args...)
	if r.code != 0 {
		t.Fatalf("geminihooks %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode JSON output: %v\n%s", err, s)
	}
}

// startSim runs the Gemini simulator with short jobs and returns its URL.
func startSim(t *testing.T) (*gemsim.Simulator, string) {
	t.Helper()
	d := 50 * time.Millisecond
	sim := gemsim.New(gemsim.Options{Durations: gemsim.Durations{Batch: d, Video: d, Interaction: d}})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, url
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "")
	t.Setenv("GEMINI_API_KEY", "")
	cases := [][]string{
		{"nope"},
		{"jobs", "nope"},
		{"--bogus"},
		{"jobs", "list", "--limit", "x"},
		{"jobs", "list", "--limit", "0"},
		{"jobs", "list", "--state", "done"},
		{"--format", "xml", "jobs", "list"},
		{"jobs", "show"},
		{"jobs", "show", "a", "b"},
		{"jobs", "list"}, // no project
		{"send", "--type", "batch.succeeded", "--id", "x", "--secret", "whsec_AAAA"},
		{"send", "--url", "ftp://x", "--type", "batch.succeeded", "--id", "x", "--secret", "whsec_AAAA"},
		{"send", "--url", "http://127.0.0.1:1", "--type", "batch.succeeded", "--id", "x"},
		{"send", "--url", "http://127.0.0.1:1", "--type", "t.x", "--id", "x", "--secret", "whsec_AAAA", "--secret-file", "f"},
		{"send", "--url", "http://127.0.0.1:1", "--type", "t.x", "--secret", "whsec_AAAA"},
		{"send", "--url", "http://127.0.0.1:1", "--type", "t.x", "--id", "x", "--secret", "whsec_AAAA", "--data", "[1]"},
		{"send", "--url", "http://127.0.0.1:1", "--type", "t.x", "--id", "x", "--secret", "not base64!"},
		{"submit", "batch", "--project", "p", "--api-key", "k", "--model", "m"},
		{"submit", "batch", "--project", "p", "--api-key", "k", "--prompt", "x"},
		{"submit", "batch", "--project", "p", "--api-key", "k", "--model", "m", "--prompt", "x", "--label", "novalue"},
		{"submit", "batch", "--project", "p", "--api-key", "k", "--model", "m", "--prompt", "x", "--label", "goog_team=x"},
		{"submit", "batch", "--project", "p", "--api-key", "k", "--model", "m", "--prompt", "x", "--label", strings.Repeat("k", 251) + "=x"},
		{"submit", "batch", "--project", "p", "--model", "m", "--prompt", "x"}, // no API key
		{"submit", "interaction", "--project", "p", "--api-key", "k", "--model", "m", "--input", "x", "--background=false"},
		{"submit", "video", "--project", "p", "--api-key", "k", "--model", "m"},
		{"webhooks", "create", "--api-key", "k", "--uri", "https://x"},
		{"webhooks", "create", "--api-key", "k", "--uri", "https://x", "--show-secret", "--events", "batch.cancelled"},
		{"webhooks", "create", "--api-key", "k", "--uri", "https://x", "--secret-file", "a", "--secret-manager", "projects/p/secrets/s"},
		{"webhooks", "create", "--api-key", "k", "--uri", "https://x", "--secret-manager", "secrets/s"},
		{"webhooks", "update", "--api-key", "k", "id1"},
		{"webhooks", "update", "--api-key", "k", "id1", "--state", "disabled_due_to_failed_deliveries"},
		{"webhooks", "rotate", "--api-key", "k"},
		{"replay"},
		{"replay", "msg_1", "--job", "batch-x"},
		{"dev", "--gemini", "fake"},
		{"dev", "--gemini", "real"},
	}
	for _, args := range cases {
		r := cli(t, args...)
		if r.code != exitUsage {
			t.Errorf("geminihooks %s: exit %d, want 2\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
			continue
		}
		if !strings.HasPrefix(r.stderr, "geminihooks: ") || !strings.Contains(r.stderr, "(fix the input)") {
			t.Errorf("geminihooks %s: stderr = %q, want the error format", strings.Join(args, " "), r.stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Setenv("GEMINI_API_KEY", "very-secret-key")
	for _, args := range [][]string{{}, {"--help"}, {"submit", "batch", "--help"}, {"webhooks"}, {"webhooks", "create", "--help"}, {"help", "send"}} {
		r := mustCLI(t, args...)
		if !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("geminihooks %s: no usage in output:\n%s", strings.Join(args, " "), r.stdout)
		}
		if strings.Contains(r.stdout, "very-secret-key") {
			t.Errorf("geminihooks %s: help shows the API key", strings.Join(args, " "))
		}
	}
	// Every command has a summary and examples.
	root := (&app{}).rootCmd()
	for _, c := range allCommands(root) {
		if c.Short == "" {
			t.Errorf("%s has no one-line summary", c.CommandPath())
		}
		if c.Example == "" && c.Name() != "help" {
			t.Errorf("%s has no examples", c.CommandPath())
		}
	}
}

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, s := range c.Commands() {
		out = append(out, allCommands(s)...)
	}
	return out
}
