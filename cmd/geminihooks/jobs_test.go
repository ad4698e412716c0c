package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

func TestSubmitBatchRecordsSubmitted(t *testing.T) {
	sim, url := startSim(t)
	fs, project := testenv.Firestore(t)
	st := ledger.New(fs, ledger.Options{})
	ctx := context.Background()
	common := []string{"--project", project, "--gemini-url", url, "--api-key", "k", "--format", "json"}

	r := mustCLI(t, append(common, "submit", "batch", "--model", "gemini-2.5-flash", "--prompt", "hi", "--prompt", "there",
		"--label", "team=search", "--label", "env=test")...)
	var out struct{ JobID, Kind, GeminiName, State string }
	var raw map[string]string
	decodeJSON(t, r.stdout, &raw)
	out.JobID, out.Kind, out.GeminiName, out.State = raw["job_id"], raw["kind"], raw["gemini_name"], raw["state"]
	if out.Kind != "batch" || out.State != "submitted" || !strings.HasPrefix(out.GeminiName, "batches/") {
		t.Fatalf("output = %v", raw)
	}
	ref, _ := event.RefForName(event.KindBatch, out.GeminiName)
	if out.JobID != ref.ID {
		t.Errorf("job_id = %q, want %q", out.JobID, ref.ID)
	}
	job, err := st.GetJob(ctx, out.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if job.State != "submitted" || job.Model != "gemini-2.5-flash" || job.Labels["team"] != "search" || job.Labels["env"] != "test" {
		t.Errorf("job = %+v", job)
	}

	// File batch: uploaded, then created.
	in := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(in, []byte(`{"key":"a","request":{"contents":[{"parts":[{"text":"x"}]}]}}`+"\n"), 0o600)
	r = mustCLI(t, append(common, "submit", "batch", "--model", "gemini-2.5-flash", "--input", in)...)
	decodeJSON(t, r.stdout, &raw)
	if _, err := st.GetJob(ctx, raw["job_id"]); err != nil {
		t.Errorf("file batch not recorded: %v", err)
	}
	if sim.Stats().Requests["files.upload.start"] != 1 {
		t.Errorf("input file was not uploaded: %v", sim.Stats().Requests)
	}
	// A missing input file is the user's to fix.
	r = cli(t, append(common, "submit", "batch", "--model", "m", "--input", filepath.Join(t.TempDir(), "missing"))...)
	if r.code != exitRuntime || !strings.Contains(r.stderr, "(fix the input)") {
		t.Errorf("missing input: exit %d stderr %q", r.code, r.stderr)
	}

	// Video and interaction in table format.
	r = mustCLI(t, "--project", project, "--gemini-url", url, "--api-key", "k", "submit", "video", "--model", "veo-3.1-generate-preview", "--prompt", "a cat")
	if !strings.Contains(r.stdout, "Submitted video job video-") {
		t.Errorf("video stdout = %q", r.stdout)
	}
	r = mustCLI(t, "--project", project, "--gemini-url", url, "--api-key", "k", "submit", "interaction", "--model", "gemini-3-flash", "--input", "weather?", "--tool", "get_weather")
	if !strings.Contains(r.stdout, "Submitted interaction job interaction-v1_") {
		t.Errorf("interaction stdout = %q", r.stdout)
	}
}

// TestSubmitWait plays the Receiver and Collector by hand: --wait must
// return once the collection is written, and print the job.
func TestSubmitWait(t *testing.T) {
	_, url := startSim(t)
	fs, project := testenv.Firestore(t)
	st := ledger.New(fs, ledger.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	done := make(chan result, 1)
	go func() {
		done <- cli(t, "--project", project, "--gemini-url", url, "--api-key", "k", "--format", "json",
			"submit", "interaction", "--model", "gemini-3-flash", "--input", "hi", "--wait", "--poll-interval", "50ms")
	}()
	var jobs []ledger.Job
	for len(jobs) == 0 {
		if ctx.Err() != nil {
			t.Fatal("submission never recorded")
		}
		time.Sleep(50 * time.Millisecond)
		jobs, _ = st.ListJobs(ctx, "", 10)
	}
	j := jobs[0]
	ev := event.JobEvent{SchemaVersion: event.SchemaVersion, WebhookID: "msg_w1", Type: event.TypeInteractionCompleted,
		JobID: j.JobID, Kind: event.KindInteraction, GeminiName: j.GeminiName, State: event.StateSucceeded, ReceivedAt: time.Now()}
	if _, err := st.Record(ctx, ev, "hmac"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveCollection(ctx, j.JobID, ledger.Collection{CollectionState: ledger.CollectionDone, CollectedState: event.StateSucceeded,
		Counts: event.Counts{Results: 1}, CollectedAt: time.Now(), Kind: event.KindInteraction, GeminiName: j.GeminiName,
		Verification: &ledger.Verification{State: event.StateSucceeded, At: time.Now(), WebhookID: ev.WebhookID, Claimed: ev.State}}); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("--wait did not return after collection")
	}
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var v jobView
	decodeJSON(t, r.stdout, &v)
	if v.JobID != j.JobID || v.State != "succeeded" || v.CollectionState != "collected" || v.Counts.Results != 1 {
		t.Errorf("summary = %+v", v)
	}
	if !strings.Contains(r.stderr, "state=submitted") || !strings.Contains(r.stderr, "collection=collected") {
		t.Errorf("progress lines = %q", r.stderr)
	}
}

func TestJobsListShow(t *testing.T) {
	fs, project := testenv.Firestore(t)
	st := ledger.New(fs, ledger.Options{})
	ctx := context.Background()
	refA, _ := event.RefForName(event.KindBatch, "batches/aaa")
	refB, _ := event.RefForName(event.KindBatch, "batches/bbb")
	for _, ref := range []event.JobRef{refA, refB} {
		if err := st.RecordSubmission(ctx, ledger.Submission{Ref: ref, Model: "m", Labels: map[string]string{"team": "x"}}); err != nil {
			t.Fatal(err)
		}
	}
	ev := event.JobEvent{SchemaVersion: event.SchemaVersion, WebhookID: "msg_b", Type: event.TypeBatchSucceeded,
		JobID: refB.ID, Kind: event.KindBatch, GeminiName: refB.Name, State: event.StateSucceeded, ReceivedAt: time.Now()}
	if _, err := st.Record(ctx, ev, "hmac"); err != nil {
		t.Fatal(err)
	}
	if err := st.ApplyVerification(ctx, refB.ID, event.KindBatch, ledger.Verification{State: event.StateSucceeded, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	w := st.OpenResults(ctx, refB.ID)
	for i, txt := range []string{"zero", "one", "two"} {
		if err := w.Write(refB.ID+"-"+string(rune('a'+2-i)), ledger.Result{Key: "k" + txt, Index: int64(i), Text: "echo: " + txt}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	g := []string{"--project", project}
	r := mustCLI(t, append(g, "--format", "json", "jobs", "list")...)
	var list []jobView
	decodeJSON(t, r.stdout, &list)
	if len(list) != 2 {
		t.Fatalf("jobs list = %d jobs, want 2", len(list))
	}
	r = mustCLI(t, append(g, "--format", "json", "jobs", "list", "--state", "succeeded")...)
	decodeJSON(t, r.stdout, &list)
	if len(list) != 1 || list[0].JobID != refB.ID || list[0].Labels["team"] != "x" {
		t.Fatalf("succeeded jobs = %+v", list)
	}
	r = mustCLI(t, append(g, "jobs", "list", "--limit", "1")...)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "JOB_ID") {
		t.Errorf("table = %q, want header and one row", r.stdout)
	}

	r = mustCLI(t, append(g, "--format", "json", "jobs", "show", refB.ID, "--results", "2")...)
	var v jobView
	decodeJSON(t, r.stdout, &v)
	if v.JobID != refB.ID || v.State != "succeeded" || len(v.Results) != 2 || v.Results[0].Text != "echo: zero" || v.Results[1].Index != 1 {
		t.Errorf("show = %+v", v)
	}
	r = mustCLI(t, append(g, "jobs", "show", refB.ID)...)
	for _, want := range []string{"job_id:", refB.ID, "state:", "succeeded", "team=x", "echo: two"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show table lacks %q:\n%s", want, r.stdout)
		}
	}
	r = cli(t, append(g, "jobs", "show", "batch-missing")...)
	if r.code != exitRuntime || !strings.Contains(r.stderr, "not found") || !strings.Contains(r.stderr, "(fix the input)") {
		t.Errorf("missing job: exit %d stderr %q", r.code, r.stderr)
	}
}

func TestProgressRendering(t *testing.T) {
	p := &ledger.Progress{Lines: 500, Bytes: 1 << 20, TotalBytes: 4 << 20, Invocations: 3}
	if got := progressText(p); !strings.Contains(got, "500 lines, 1.0 MiB of 4.0 MiB (25%), 3 invocations") {
		t.Errorf("progressText = %q", got)
	}
	if got := progressBar(p, 8); !strings.HasPrefix(got, "[##      ]  25% 500 lines, 3 invocations") {
		t.Errorf("progressBar = %q", got)
	}
	if progressText(nil) != "" || !strings.Contains(progressBar(nil, 4), "waiting") {
		t.Error("no progress yet must render as nothing / waiting")
	}
	for _, tc := range []struct {
		j    ledger.Job
		over bool
	}{
		{ledger.Job{CollectionState: ledger.CollectionCollecting}, false},
		{ledger.Job{CollectionState: ledger.CollectionPending, State: "succeeded"}, false},
		{ledger.Job{CollectionState: ledger.CollectionDone}, true},
		{ledger.Job{CollectionState: ledger.CollectionFailed}, true},
		{ledger.Job{State: "failed"}, true},
	} {
		if got := collectionOver(tc.j); got != tc.over {
			t.Errorf("collectionOver(%+v) = %v", tc.j.CollectionState, got)
		}
	}
}

// TestJobsShowWaitProgress: while a batch output is being collected over
// several invocations, "jobs show --wait" draws its progress and returns
// when the summary is written, printing collection_progress.
func TestJobsShowWaitProgress(t *testing.T) {
	fs, project := testenv.Firestore(t)
	st := ledger.New(fs, ledger.Options{})
	ctx := context.Background()
	const id = "batch-progress"
	g, err := st.AcquireCollection(ctx, id, ledger.LeaseRequest{State: event.StateSucceeded, File: "files/out",
		GeminiName: "batches/progress", MessageID: "m1", Attempt: 1, Seq: -1, TTL: time.Minute})
	if err != nil || g.Outcome != ledger.LeaseAcquired {
		t.Fatalf("acquire: %+v %v", g, err)
	}
	cp := ledger.Checkpoint{State: "succeeded", File: "files/out", Seq: 1, Lines: 400, Bytes: 1 << 20, Counts: event.Counts{Results: 400}}
	if err := st.SaveCheckpoint(ctx, id, g.Fence, cp, 4<<20, false, time.Minute); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(1500 * time.Millisecond)
		_, err := st.SaveCollection(ctx, id, ledger.Collection{CollectionState: ledger.CollectionDone, CollectedState: event.StateSucceeded,
			Counts: event.Counts{Results: 1600}, ResultsPath: ledger.ResultsPath(id), CollectedAt: time.Now(), Fence: g.Fence,
			Progress: &ledger.Progress{Lines: 1600, Bytes: 4 << 20, TotalBytes: 4 << 20}})
		if err != nil {
			t.Error(err)
		}
	}()
	r := mustCLI(t, "--project", project, "jobs", "show", id, "--wait", "--results", "0")
	if !strings.Contains(r.stderr, "[#######") || !strings.Contains(r.stderr, " 25% 400 lines, 1 invocations") ||
		!strings.Contains(r.stderr, "100% 1600 lines") {
		t.Errorf("progress bar on stderr: %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "1600 lines, 4.0 MiB of 4.0 MiB (100%), 1 invocations") || !strings.Contains(r.stdout, "collected") {
		t.Errorf("stdout: %s", r.stdout)
	}
}
