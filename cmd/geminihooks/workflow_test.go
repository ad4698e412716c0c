package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/workflow"
)

func TestWorkflowCommands(t *testing.T) {
	if r := cli(t, "workflow", "--help"); !strings.Contains(r.stdout, "retry-step") {
		t.Skip("the workflow command is not registered in root.go yet")
	}
	sim, url := startSim(t)
	fs, project := testenv.Firestore(t)
	common := []string{"--project", project, "--gemini-url", url, "--api-key", "k"}

	r := mustCLI(t, append(common, "workflow", "list")...)
	if !strings.Contains(r.stdout, "summarise-consolidate") || !strings.Contains(r.stdout, "summarise(batch) → consolidate(interaction)") ||
		!strings.Contains(r.stdout, "video-describe") {
		t.Errorf("list = %s", r.stdout)
	}

	r = mustCLI(t, append(common, "--format", "json", "workflow", "start", "video-describe", "--input", "prompt=a lighthouse", "--run-id", "vd-1")...)
	var run workflow.Run
	decodeJSON(t, r.stdout, &run)
	if run.RunID != "vd-1" || run.Status != "running" || run.Steps[0].Status != "running" || !strings.HasPrefix(run.Steps[0].JobID, "video-") {
		t.Fatalf("started run = %+v", run)
	}
	if run.Input["prompt"] != "a lighthouse" {
		t.Errorf("input = %v", run.Input)
	}
	if n := sim.Stats().Requests["models.predictLongRunning"]; n != 1 {
		t.Errorf("videos created = %d, want 1", n)
	}
	r = mustCLI(t, append(common, "workflow", "show", "vd-1")...)
	if !strings.Contains(r.stdout, "generate") || !strings.Contains(r.stdout, "running") || !strings.Contains(r.stdout, "describe") {
		t.Errorf("show = %s", r.stdout)
	}
	r = mustCLI(t, append(common, "workflow", "list", "--runs")...)
	if !strings.Contains(r.stdout, "vd-1") || !strings.Contains(r.stdout, "generate:running describe:pending") {
		t.Errorf("list --runs = %s", r.stdout)
	}

	// Input mistakes and impossible requests.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"workflow", "start", "nope"}, exitRuntime, "unknown workflow"},
		{[]string{"workflow", "start", "video-describe", "--input", "{bad"}, exitUsage, "JSON object"},
		{[]string{"workflow", "show", "missing-run"}, exitRuntime, "not found"},
		{[]string{"workflow", "retry-step", "vd-1", "generate"}, exitRuntime, "only a failed step"},
		{[]string{"workflow", "retry-step", "vd-1"}, exitUsage, "takes 2 argument"},
	} {
		r := cli(t, append(common, c.args...)...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}

	// --watch follows the run until it ends; a failed run exits 1 and
	// says how to retry.
	go func() {
		time.Sleep(300 * time.Millisecond)
		fs.Collection(workflow.RunsCollection).Doc("vd-1").Update(context.Background(), []firestore.Update{
			{Path: "status", Value: "failed"}, {Path: "error", Value: "step generate: job video-x failed: boom"}})
	}()
	r = cli(t, append(common, "workflow", "show", "vd-1", "--watch", "--interval", "50ms")...)
	if r.code != exitRuntime || !strings.Contains(r.stdout, "running  generate:running describe:pending") ||
		!strings.Contains(r.stdout, "failed  generate:running") || !strings.Contains(r.stderr, "retry-step vd-1 STEP") {
		t.Errorf("watch: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}
