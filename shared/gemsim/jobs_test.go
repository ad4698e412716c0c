package gemsim_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genai"
	gi "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"

	"github.com/geminihooks/geminihooks/shared/gemsim"
)

func TestFilesUploadGetDownloadRoundtrip(t *testing.T) {
	sim, client := startSim(t, gemsim.Options{})
	ctx := ctxT(t)
	// 9 MiB forces the SDK to send two chunks (8 MiB chunk size).
	data := bytes.Repeat([]byte("0123456789abcdef"), 9<<20/16)
	f, err := client.Files.Upload(ctx, bytes.NewReader(data), &genai.UploadFileConfig{MIMEType: "application/jsonl", DisplayName: "in"})
	if err != nil {
		t.Fatalf("Files.Upload: %v", err)
	}
	if !strings.HasPrefix(f.Name, "files/") || f.SizeBytes == nil || *f.SizeBytes != int64(len(data)) || f.DisplayName != "in" {
		t.Fatalf("uploaded file = %+v", f)
	}
	got, err := client.Files.Get(ctx, f.Name, nil)
	if err != nil || got.Name != f.Name || got.MIMEType != "application/jsonl" || got.State != genai.FileStateActive {
		t.Fatalf("Files.Get = %+v, %v", got, err)
	}
	b, err := client.Files.Download(ctx, genai.NewDownloadURIFromFile(f), nil)
	if err != nil {
		t.Fatalf("Files.Download: %v", err)
	}
	if !bytes.Equal(b, data) {
		t.Fatalf("downloaded %d bytes, want the %d uploaded", len(b), len(data))
	}
	if _, err := client.Files.Get(ctx, "files/doesnotexist", nil); err == nil {
		t.Fatal("Files.Get of an unknown file succeeded")
	}
	st := sim.Stats()
	if st.Requests["files.upload.start"] != 1 || st.Requests["files.upload.chunk"] != 2 || st.Requests["files.download"] != 1 {
		t.Fatalf("request counts = %v", st.Requests)
	}
}

func TestAuth(t *testing.T) {
	sim, _ := startSim(t, gemsim.Options{APIKey: testKey})
	resp, err := http.Get(sim.URL() + "/v1beta/batches")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"status":"PERMISSION_DENIED"`) {
		t.Fatalf("no key: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(sim.URL() + "/v1beta/batches?key=wrong")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong key: %d", resp.StatusCode)
	}
	resp, err = http.Get(sim.URL() + "/v1beta/batches?key=" + testKey)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("right key: %d", resp.StatusCode)
	}
	// The JWKS is public.
	resp, err = http.Get(sim.URL() + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), gemsim.JWTKeyID) {
		t.Fatalf("jwks: %d %s", resp.StatusCode, body)
	}
}

func waitBatch(t *testing.T, client *genai.Client, name string) *genai.BatchJob {
	t.Helper()
	var job *genai.BatchJob
	eventually(t, "batch "+name+" terminal", func() bool {
		var err error
		job, err = client.Batches.Get(ctxT(t), name, nil)
		if err != nil {
			t.Fatalf("Batches.Get: %v", err)
		}
		switch job.State {
		case genai.JobStateSucceeded, genai.JobStateFailed, genai.JobStateCancelled, genai.JobStateExpired:
			return true
		}
		return false
	})
	return job
}

func TestInlineBatch(t *testing.T) {
	_, client := startSim(t, gemsim.Options{})
	ctx := ctxT(t)
	job, err := client.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
		{Contents: genai.Text("hello"), Metadata: map[string]string{"k": "a"}},
		{Contents: genai.Text("please FAIL_LINE"), Metadata: map[string]string{"k": "b"}},
	}}, &genai.CreateBatchJobConfig{DisplayName: "inline"})
	if err != nil {
		t.Fatalf("Batches.Create: %v", err)
	}
	if !strings.HasPrefix(job.Name, "batches/") || job.State != genai.JobStatePending || job.DisplayName != "inline" || job.Model != "models/gemini-2.5-flash" {
		t.Fatalf("created job = %+v", job)
	}
	job = waitBatch(t, client, job.Name)
	if job.State != genai.JobStateSucceeded || job.Dest == nil || len(job.Dest.InlinedResponses) != 2 || job.EndTime.IsZero() {
		t.Fatalf("finished job = %+v", job)
	}
	r0, r1 := job.Dest.InlinedResponses[0], job.Dest.InlinedResponses[1]
	if r0.Response == nil || r0.Response.Text() != "echo: hello" || r0.Metadata["k"] != "a" {
		t.Fatalf("response 0 = %+v", r0)
	}
	if u := r0.Response.UsageMetadata; u == nil || u.PromptTokenCount != int32(gemsim.Tokens("hello")) || u.TotalTokenCount != u.PromptTokenCount+u.CandidatesTokenCount {
		t.Fatalf("usage = %+v", r0.Response.UsageMetadata)
	}
	if r0.Response.Candidates[0].FinishReason != genai.FinishReasonStop {
		t.Fatalf("finish reason = %v", r0.Response.Candidates[0].FinishReason)
	}
	// A per-request error is a google.rpc.Status: canonical code 3.
	if r1.Error == nil || r1.Error.Code == nil || *r1.Error.Code != 3 || r1.Response != nil || r1.Metadata["k"] != "b" {
		t.Fatalf("response 1 = %+v", r1)
	}
}

func TestFileBatch(t *testing.T) {
	_, client := startSim(t, gemsim.Options{})
	ctx := ctxT(t)
	input := `{"key":"a","request":{"contents":[{"parts":[{"text":"one"}],"role":"user"}]}}
{"key":"b","request":{"contents":[{"parts":[{"text":"FAIL_LINE two"}]}]}}
not json
{"key":"c","request":{"contents":[{"parts":[{"text":"three"}]}]}}
`
	f, err := client.Files.Upload(ctx, strings.NewReader(input), &genai.UploadFileConfig{MIMEType: "application/jsonl"})
	if err != nil {
		t.Fatalf("Files.Upload: %v", err)
	}
	job, err := client.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{FileName: f.Name}, withName)
	if err != nil {
		t.Fatalf("Batches.Create: %v", err)
	}
	job = waitBatch(t, client, job.Name)
	if job.State != genai.JobStateSucceeded || job.Dest == nil || !strings.HasPrefix(job.Dest.FileName, "files/") {
		t.Fatalf("job = %+v dest=%+v", job, job.Dest)
	}
	out, err := client.Files.Download(ctx, genai.NewDownloadURIFromFile(&genai.File{DownloadURI: job.Dest.FileName}), nil)
	if err != nil {
		t.Fatalf("Files.Download: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d output lines:\n%s", len(lines), out)
	}
	type line struct {
		Key      string                         `json:"key"`
		Response *genai.GenerateContentResponse `json:"response"`
		Error    *struct{ Code int }            `json:"error"`
	}
	var ls []line
	for _, l := range lines {
		var v line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		ls = append(ls, v)
	}
	if ls[0].Key != "a" || ls[0].Response == nil || ls[0].Response.Text() != "echo: one" {
		t.Fatalf("line a = %+v", ls[0])
	}
	if ls[1].Key != "b" || ls[1].Error == nil || ls[1].Error.Code != 3 || strings.Contains(lines[1], `"status"`) {
		t.Fatalf("line b = %+v", ls[1])
	}
	if ls[2].Error == nil || ls[3].Key != "c" || ls[3].Response.Text() != "echo: three" {
		t.Fatalf("lines = %+v", ls)
	}
	// Unknown input file.
	if _, err := client.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{FileName: "files/nope"}, withName); err == nil {
		t.Fatal("batch with unknown input file accepted")
	}
}

func TestSimulatedLinesAreStreamed(t *testing.T) {
	sim, client := startSim(t, gemsim.Options{})
	ctx := ctxT(t)
	name := sim.PutFile("big", "application/jsonl", []byte(`{"key":"k","simulate_lines":2000,"line_bytes":500}`+"\n"))
	job, err := client.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{FileName: name}, withName)
	if err != nil {
		t.Fatal(err)
	}
	job = waitBatch(t, client, job.Name)
	f, err := client.Files.Get(ctx, job.Dest.FileName, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, sim.URL()+"/v1beta/"+job.Dest.FileName+":download?alt=media", nil)
	req.Header.Set("x-goog-api-key", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	n, total := 0, int64(0)
	for sc.Scan() {
		total += int64(len(sc.Bytes())) + 1
		if n == 1999 && !strings.Contains(sc.Text(), `"key":"k-1999"`) {
			t.Fatalf("last line = %s", sc.Text())
		}
		if len(sc.Bytes())+1 != 500 {
			t.Fatalf("line %d has %d bytes, want 500", n, len(sc.Bytes())+1)
		}
		n++
	}
	if n != 2000 || total != *f.SizeBytes {
		t.Fatalf("lines=%d bytes=%d, want 2000 and sizeBytes %d", n, total, *f.SizeBytes)
	}
}

func TestBatchOutcomesCancelListDelete(t *testing.T) {
	sim, client := startSim(t, gemsim.Options{Durations: gemsim.Durations{Batch: time.Hour}})
	ctx := ctxT(t)
	src := &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("x")}}}
	cases := []struct {
		model, display string
		want           genai.JobState
	}{
		{"gemini-2.5-flash", "FAIL now", genai.JobStateFailed},
		{"fail-model", "by model", genai.JobStateFailed},
		{"gemini-2.5-flash", "EXPIRE", genai.JobStateExpired},
		{"gemini-2.5-flash", "ok", genai.JobStateSucceeded},
	}
	if _, err := client.Batches.Create(ctx, "gemini-2.5-flash", src, nil); err == nil || !strings.Contains(err.Error(), "display_name is required") {
		t.Fatalf("a batch without a display name: %v; want 400 display_name is required", err)
	}
	for _, c := range cases {
		job, err := client.Batches.Create(ctx, c.model, src, &genai.CreateBatchJobConfig{DisplayName: c.display})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.FinishJob(job.Name); err != nil {
			t.Fatal(err)
		}
		if got := waitBatch(t, client, job.Name); got.State != c.want {
			t.Errorf("%s/%q: state %s, want %s", c.model, c.display, got.State, c.want)
		}
	}
	long, err := client.Batches.Create(ctx, "gemini-2.5-flash", src, withName)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Batches.Cancel(ctx, long.Name, nil); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if got := waitBatch(t, client, long.Name); got.State != genai.JobStateCancelled {
		t.Fatalf("cancelled batch state %s", got.State)
	}
	if err := client.Batches.Cancel(ctx, long.Name, nil); err == nil {
		t.Fatal("cancelling a terminal batch succeeded")
	}
	page, err := client.Batches.List(ctx, &genai.ListBatchJobsConfig{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.NextPageToken == "" || page.Items[0].Name != long.Name {
		t.Fatalf("list page = %d items, token %q", len(page.Items), page.NextPageToken)
	}
	if _, err := client.Batches.Delete(ctx, long.Name, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = client.Batches.Get(ctx, long.Name, nil)
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 404 || apiErr.Status != "NOT_FOUND" {
		t.Fatalf("Get after delete: %v", err)
	}
}

func TestVideoOperationAndDownload(t *testing.T) {
	_, client := startSim(t, gemsim.Options{VideoBytes: 1000})
	ctx := ctxT(t)
	op, err := client.Models.GenerateVideosFromSource(ctx, "veo-3.1-generate-preview", &genai.GenerateVideosSource{Prompt: "a cat"}, &genai.GenerateVideosConfig{NumberOfVideos: 2})
	if err != nil {
		t.Fatalf("GenerateVideosFromSource: %v", err)
	}
	if !strings.HasPrefix(op.Name, "models/veo-3.1-generate-preview/operations/") {
		t.Fatalf("op name %q", op.Name)
	}
	eventually(t, "video done", func() bool {
		op, err = client.Operations.GetVideosOperation(ctx, &genai.GenerateVideosOperation{Name: op.Name}, nil)
		if err != nil {
			t.Fatalf("GetVideosOperation: %v", err)
		}
		return op.Done
	})
	if op.Response == nil || len(op.Response.GeneratedVideos) != 2 {
		t.Fatalf("op = %+v", op)
	}
	for i, v := range op.Response.GeneratedVideos {
		if v.Video.MIMEType != "video/mp4" {
			t.Errorf("mime %q", v.Video.MIMEType)
		}
		b, err := client.Files.Download(ctx, genai.NewDownloadURIFromGeneratedVideo(v), nil)
		if err != nil {
			t.Fatalf("Download: %v", err)
		}
		if want := gemsim.FakeVideo("a cat", i, 1000); !bytes.Equal(b, want) || len(b) != 1000 || string(b[4:8]) != "ftyp" {
			t.Fatalf("video %d: %d bytes, not the expected fake mp4", i, len(b))
		}
	}
	failed, err := client.Models.GenerateVideosFromSource(ctx, "veo-3.1-generate-preview", &genai.GenerateVideosSource{Prompt: "FAIL_VIDEO"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "failed video done", func() bool {
		failed, err = client.Operations.GetVideosOperation(ctx, &genai.GenerateVideosOperation{Name: failed.Name}, nil)
		return err == nil && failed.Done
	})
	if failed.Error == nil || failed.Response != nil {
		t.Fatalf("failed op = %+v", failed)
	}
}

func createInteraction(t *testing.T, client *genai.Client, body gi.CreateModelInteraction) *gi.Interaction {
	t.Helper()
	res, err := client.Interactions.Create(ctxT(t), operations.CreateInteractionRequest{Body: operations.NewCreateInteractionRequestBody(body)})
	if err != nil {
		t.Fatalf("Interactions.Create: %v", err)
	}
	return res.Interaction
}

func getInteraction(t *testing.T, client *genai.Client, id string) *gi.Interaction {
	t.Helper()
	res, err := client.Interactions.Get(ctxT(t), operations.GetInteractionByIDRequest{ID: id})
	if err != nil {
		t.Fatalf("Interactions.Get: %v", err)
	}
	return res.Interaction
}

func TestInteractions(t *testing.T) {
	_, client := startSim(t, gemsim.Options{})
	// Synchronous echo.
	it := createInteraction(t, client, gi.CreateModelInteraction{Model: gi.Model("gemini-3-flash"), Input: genai.Ptr(gi.NewInteractionsInput("hi there"))})
	if it.Status != gi.InteractionStatusCompleted || it.OutputText == nil || *it.OutputText != "echo: hi there" || it.Usage == nil {
		t.Fatalf("sync interaction = %+v", it)
	}
	// Background: in_progress, then completed.
	bg := createInteraction(t, client, gi.CreateModelInteraction{Model: gi.Model("gemini-3-flash"), Input: genai.Ptr(gi.NewInteractionsInput("later")), Background: genai.Ptr(true)})
	if bg.Status != gi.InteractionStatusInProgress || bg.ID == nil || !strings.HasPrefix(*bg.ID, "v1_") {
		t.Fatalf("background interaction = %+v", bg)
	}
	eventually(t, "background completion", func() bool { return getInteraction(t, client, *bg.ID).Status == gi.InteractionStatusCompleted })
	if got := getInteraction(t, client, *bg.ID); *got.OutputText != "echo: later" {
		t.Fatalf("output %q", *got.OutputText)
	}
	// Tools → requires_action with a function_call for the named function.
	tools := []gi.Tool{gi.NewTool(gi.Function{Name: genai.Ptr("get_time")}), gi.NewTool(gi.Function{Name: genai.Ptr("get_weather")})}
	ra := createInteraction(t, client, gi.CreateModelInteraction{Model: gi.Model("gemini-3-flash"), Input: genai.Ptr(gi.NewInteractionsInput("use get_weather for Paris")),
		Tools: tools, Background: genai.Ptr(true)})
	eventually(t, "requires_action", func() bool { return getInteraction(t, client, *ra.ID).Status == gi.InteractionStatusRequiresAction })
	ra = getInteraction(t, client, *ra.ID)
	if len(ra.Steps) != 1 || ra.Steps[0].Type != gi.StepTypeFunctionCall || ra.Steps[0].FunctionCallStep.Name != "get_weather" {
		t.Fatalf("requires_action steps = %+v", ra.Steps)
	}
	call := ra.Steps[0].FunctionCallStep
	// Answer it.
	done := createInteraction(t, client, gi.CreateModelInteraction{Model: gi.Model("gemini-3-flash"), PreviousInteractionID: ra.ID, Tools: tools,
		Input: genai.Ptr(gi.NewInteractionsInput([]gi.Step{gi.NewStep(gi.FunctionResultStep{CallID: call.ID, Name: genai.Ptr(call.Name), Result: gi.NewFunctionResultStepResultUnion("sunny")})}))})
	if done.Status != gi.InteractionStatusCompleted || *done.OutputText != "function results: get_weather=sunny" {
		t.Fatalf("follow-up = %+v", done)
	}
	// Cancel.
	sim2, client2 := startSim(t, gemsim.Options{Durations: gemsim.Durations{Interaction: time.Hour}})
	_ = sim2
	long := createInteraction(t, client2, gi.CreateModelInteraction{Model: gi.Model("gemini-3-flash"), Input: genai.Ptr(gi.NewInteractionsInput("slow")), Background: genai.Ptr(true)})
	cres, err := client2.Interactions.Cancel(ctxT(t), operations.CancelInteractionByIDRequest{ID: *long.ID})
	if err != nil || cres.Interaction.Status != gi.InteractionStatusCancelled {
		t.Fatalf("Cancel = %+v, %v", cres, err)
	}
	// Failure and not-found.
	failed := createInteraction(t, client, gi.CreateModelInteraction{Model: gi.Model("gemini-3-flash"), Input: genai.Ptr(gi.NewInteractionsInput("FAIL_INTERACTION"))})
	if failed.Status != gi.InteractionStatusFailed || len(failed.Errors) != 1 {
		t.Fatalf("failed = %+v", failed)
	}
	if _, err := client.Interactions.Get(ctxT(t), operations.GetInteractionByIDRequest{ID: "v1_nope"}); err == nil || !strings.Contains(err.Error(), `"code":"not_found"`) {
		t.Fatalf("Get unknown: %v", err)
	}
	// webhook_config needs background.
	_, err = client.Interactions.Create(ctxT(t), operations.CreateInteractionRequest{Body: operations.NewCreateInteractionRequestBody(gi.CreateModelInteraction{
		Model: gi.Model("gemini-3-flash"), Input: genai.Ptr(gi.NewInteractionsInput("x")), WebhookConfig: &gi.WebhookConfig{Uris: []string{"https://example.com/h"}}})})
	if err == nil {
		t.Fatal("webhook_config without background accepted")
	}
}

func TestStatsCountRoutes(t *testing.T) {
	sim, client := startSim(t, gemsim.Options{})
	ctx := ctxT(t)
	for i := 0; i < 3; i++ {
		_, _ = client.Batches.Get(ctx, fmt.Sprintf("batches/x%d", i), nil)
	}
	st := sim.Stats()
	if st.Requests["batches.get"] != 3 || st.TotalRequests != 3 {
		t.Fatalf("stats = %+v", st)
	}
	sim.ResetStats()
	if sim.Stats().TotalRequests != 0 {
		t.Fatal("ResetStats did not reset")
	}
}
