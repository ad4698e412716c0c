package gemsim_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genai"
	gi "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/gemsim"
)

var allJobEvents = []webhooks.WebhookSubscribedEvent{
	webhooks.WebhookSubscribedEventBatchSucceeded, webhooks.WebhookSubscribedEventBatchFailed,
	webhooks.WebhookSubscribedEventVideoGenerated, webhooks.WebhookSubscribedEventInteractionCompleted,
	webhooks.WebhookSubscribedEventInteractionFailed, webhooks.WebhookSubscribedEventInteractionRequiresAction,
}

// jobsOfEachKind submits a batch, a video and a background interaction and
// returns their canonical names.
func jobsOfEachKind(t *testing.T, client *genai.Client) (batch, video, interaction string) {
	t.Helper()
	ctx := ctxT(t)
	b, err := client.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("x")}}}, withName)
	if err != nil {
		t.Fatal(err)
	}
	op, err := client.Models.GenerateVideosFromSource(ctx, "veo-3.1-generate-preview", &genai.GenerateVideosSource{Prompt: "p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	it := createInteraction(t, client, gi.CreateModelInteraction{Model: gi.Model("gemini-3-flash"),
		Input: genai.Ptr(gi.NewInteractionsInput("hi")), Background: genai.Ptr(true)})
	return b.Name, op.Name, *it.ID
}

// TestEventIDForms: Options.EventIDs sends each documented-or-plausible
// form of data.id, and the model-less operations/<id> name is readable.
func TestEventIDForms(t *testing.T) {
	for form, want := range map[gemsim.IDForm]func(b, v, i string) [3]string{
		gemsim.IDFormCanonical: func(b, v, i string) [3]string { return [3]string{b, v, i} },
		gemsim.IDFormBare: func(b, v, i string) [3]string {
			return [3]string{strings.TrimPrefix(b, "batches/"), v[strings.LastIndex(v, "/")+1:], i}
		},
		gemsim.IDFormPrefixed: func(b, v, i string) [3]string {
			return [3]string{b, "operations/" + v[strings.LastIndex(v, "/")+1:], "interactions/" + i}
		},
	} {
		t.Run(string(form), func(t *testing.T) {
			_, client := startSim(t, gemsim.Options{EventIDs: form})
			rc := newReceiver(t)
			createHook(t, client, rc.URL, allJobEvents...)
			b, v, i := jobsOfEachKind(t, client)
			got := map[string]string{}
			for range 3 {
				e := decode(t, rc.next(t))
				got[e.Type] = e.Data["id"]
			}
			w := want(b, v, i)
			if got["batch.succeeded"] != w[0] || got["video.generated"] != w[1] || got["interaction.completed"] != w[2] {
				t.Errorf("ids %v; want %v", got, w)
			}
			// The short name of an operation reads the same operation.
			short := "operations/" + v[strings.LastIndex(v, "/")+1:]
			op, err := client.Operations.GetVideosOperation(ctxT(t), &genai.GenerateVideosOperation{Name: short}, nil)
			if err != nil || !op.Done || op.Name != v {
				t.Errorf("GetVideosOperation(%s) = %+v, %v", short, op, err)
			}
		})
	}
	t.Run("mixed", func(t *testing.T) {
		sim, client := startSim(t, gemsim.Options{EventIDs: gemsim.IDFormMixed, Seed: 7})
		rc := newReceiver(t)
		createHook(t, client, rc.URL, webhooks.WebhookSubscribedEventBatchSucceeded)
		forms := map[bool]int{}
		for n := 0; n < 12; n++ {
			b, err := client.Batches.Create(ctxT(t), "m", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("x")}}}, withName)
			if err != nil {
				t.Fatal(err)
			}
			id := decode(t, rc.next(t)).Data["id"]
			if id != b.Name && "batches/"+id != b.Name {
				t.Fatalf("batch %s announced as %q", b.Name, id)
			}
			forms[id == b.Name]++
		}
		if forms[true] == 0 || forms[false] == 0 {
			t.Errorf("12 mixed events used one form only: %v", forms)
		}
		if _, err := gemsim.ParseIDForm("weird"); err == nil {
			t.Error("ParseIDForm accepted an unknown form")
		}
		_ = sim
	})
}

// TestFilesExpire: files live Options.FileTTL of sim-time (48 h by
// default), uploads and generated videos alike; then files.get answers 403
// and a download 404, like a file that never existed.
func TestFilesExpire(t *testing.T) {
	clk := gemsim.NewFakeClock(time.Time{})
	sim, client := startSim(t, gemsim.Options{Clock: clk, Durations: gemsim.Durations{Video: time.Minute}})
	ctx := ctxT(t)
	up, err := client.Files.Upload(ctx, strings.NewReader("data"), &genai.UploadFileConfig{MIMEType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(gemsim.DefaultFileTTL); !up.ExpirationTime.Equal(want) {
		t.Errorf("expirationTime = %v; want %v", up.ExpirationTime, want)
	}
	op, err := client.Models.GenerateVideosFromSource(ctx, "veo-3.1-generate-preview", &genai.GenerateVideosSource{Prompt: "p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	eventually(t, "video done", func() bool {
		op, err = client.Operations.GetVideosOperation(ctx, op, nil)
		return err == nil && op.Done
	})
	video := op.Response.GeneratedVideos[0]
	if _, err := client.Files.Download(ctx, genai.NewDownloadURIFromGeneratedVideo(video), nil); err != nil {
		t.Fatalf("fresh video: %v", err)
	}

	// The Go SDK's Files.Download does not check the HTTP status (v1.77
	// returns an error body as the file's bytes), so downloads are checked
	// with a plain GET, as the Collector's gemini.Client.OpenFile does.
	download := func(ref string) int {
		t.Helper()
		id, _ := gemini.FileID(ref)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sim.URL()+"/v1beta/files/"+id+":download?alt=media", nil)
		req.Header.Set("x-goog-api-key", testKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	clk.Advance(gemsim.DefaultFileTTL - time.Minute) // the upload's 48 h are over, the video has a minute left
	if _, err := client.Files.Get(ctx, up.Name, nil); gemini.StatusCode(err) != http.StatusForbidden {
		t.Errorf("files.get of an expired upload: %v; want 403", err)
	}
	if got := download(up.Name); got != http.StatusNotFound {
		t.Errorf("download of an expired upload: %d; want 404", got)
	}
	if got := download(video.Video.URI); got != http.StatusOK {
		t.Fatalf("video before its TTL: %d", got)
	}
	clk.Advance(time.Minute)
	if got := download(video.Video.URI); got != http.StatusNotFound {
		t.Errorf("download of an expired video: %d; want 404", got)
	}
	if b, err := client.Files.Download(ctx, genai.NewDownloadURIFromGeneratedVideo(video), nil); err != nil || bytes.HasPrefix(b, gemsim.FakeVideo("p", 0, gemsim.DefaultVideoBytes)[:8]) {
		t.Errorf("SDK download of an expired video gave %d video bytes, %v", len(b), err)
	}

	// A configurable TTL.
	clk2 := gemsim.NewFakeClock(time.Time{})
	_, client2 := startSim(t, gemsim.Options{Clock: clk2, FileTTL: time.Hour})
	f, err := client2.Files.Upload(ctx, strings.NewReader("x"), &genai.UploadFileConfig{MIMEType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	clk2.Advance(time.Hour)
	if _, err := client2.Files.Get(ctx, f.Name, nil); gemini.StatusCode(err) != http.StatusForbidden {
		t.Errorf("FileTTL 1h: %v; want 403", err)
	}
}

// TestRealFormURIs: minted URIs look like the real API's; the SDK reads
// them through its base URL, and Transport resolves them to the simulator
// for a client that fetches them directly.
func TestRealFormURIs(t *testing.T) {
	sim, client := startSim(t, gemsim.Options{VideoBytes: 512})
	ctx := ctxT(t)
	op, err := client.Models.GenerateVideosFromSource(ctx, "veo-3.1-generate-preview", &genai.GenerateVideosSource{Prompt: "cat"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "video done", func() bool {
		op, err = client.Operations.GetVideosOperation(ctx, op, nil)
		return err == nil && op.Done
	})
	v := op.Response.GeneratedVideos[0]
	if !strings.HasPrefix(v.Video.URI, "https://generativelanguage.googleapis.com/v1beta/files/") || !strings.HasSuffix(v.Video.URI, ":download?alt=media") {
		t.Fatalf("video uri %q is not in the real form", v.Video.URI)
	}
	want := gemsim.FakeVideo("cat", 0, 512)
	got, err := client.Files.Download(ctx, genai.NewDownloadURIFromGeneratedVideo(v), nil)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("SDK download: %d bytes, %v", len(got), err)
	}
	hc := &http.Client{Transport: sim.Transport(nil)}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.Video.URI, nil)
	req.Header.Set("x-goog-api-key", testKey)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("direct GET through Transport: %d, %d bytes", res.StatusCode, len(body))
	}
	f, err := client.Files.Get(ctx, "files/"+strings.TrimSuffix(strings.TrimPrefix(v.Video.URI, gemsim.DefaultURIBase+"/v1beta/files/"), ":download?alt=media"), nil)
	if err != nil || f.URI != strings.TrimSuffix(v.Video.URI, ":download?alt=media") || f.DownloadURI != v.Video.URI {
		t.Fatalf("files.get: %+v, %v", f, err)
	}
}

// TestDownloadRedirect: with RedirectDownloads a download is answered 302
// to a signed URL on another host. The Collector's client follows it
// without its API key; a client that forwards the key is counted.
func TestDownloadRedirect(t *testing.T) {
	sim, client := startSim(t, gemsim.Options{RedirectDownloads: true})
	name := sim.PutFile("out", "application/jsonl", []byte("line\n"))
	gc, err := gemini.New(context.Background(), gemini.Config{APIKey: testKey, BaseURL: sim.URL()})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := gc.OpenFile(ctxT(t), gemsim.DefaultURIBase+"/v1beta/"+name+":download?alt=media")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	st := sim.Stats()
	if string(b) != "line\n" || st.Requests["files.download"] != 1 || st.Requests["media.download"] != 1 || st.KeyLeaks != 0 {
		t.Fatalf("Collector client: %q, stats %v, leaks %d", b, st.Requests, st.KeyLeaks)
	}
	// Go's http.Client forwards custom headers such as x-goog-api-key to
	// any host, so the SDK's own download leaks the key: what the
	// Collector's redirect policy prevents.
	if _, err := client.Files.Download(ctxT(t), genai.NewDownloadURIFromFile(&genai.File{DownloadURI: name}), nil); err != nil {
		t.Fatal(err)
	}
	if st := sim.Stats(); st.KeyLeaks != 1 || st.Requests["media.download"] != 2 {
		t.Errorf("SDK download: leaks %d, media requests %d; want 1, 2", st.KeyLeaks, st.Requests["media.download"])
	}
	// A media URL is signed: another file's id under the signature is refused.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, sim.URL()+"/v1beta/"+name+":download?alt=media", nil)
	req.Header.Set("x-goog-api-key", testKey)
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || loc == "" || strings.HasPrefix(loc, sim.URL()) {
		t.Fatalf("download answered %d, Location %q; want 302 to another host", res.StatusCode, loc)
	}
	other := sim.PutFile("other", "text/plain", []byte("secret"))
	res, err = http.Get(strings.Replace(loc, strings.TrimPrefix(name, "files/"), strings.TrimPrefix(other, "files/"), 1))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("tampered media URL answered %d; want 403", res.StatusCode)
	}
}

// TestVeoOutcomes: a safety-filtered generation completes without a video
// (raiMediaFilteredCount, reasons) and is announced; a failed one carries
// a google.rpc.Status and sends no event.
func TestVeoOutcomes(t *testing.T) {
	_, client := startSim(t, gemsim.Options{})
	rc := newReceiver(t)
	createHook(t, client, rc.URL, allJobEvents...)
	ctx := ctxT(t)
	filtered, err := client.Models.GenerateVideosFromSource(ctx, "veo-3.1-generate-preview",
		&genai.GenerateVideosSource{Prompt: "something " + gemsim.TriggerRAIFilter}, &genai.GenerateVideosConfig{NumberOfVideos: 2})
	if err != nil {
		t.Fatal(err)
	}
	e := decode(t, rc.next(t))
	if e.Type != "video.generated" || e.Data["id"] != filtered.Name || e.Data["output_file_uri"] != "" {
		t.Errorf("filtered video event %+v", e)
	}
	op, err := client.Operations.GetVideosOperation(ctx, filtered, nil)
	if err != nil || !op.Done || op.Error != nil || op.Response == nil || len(op.Response.GeneratedVideos) != 0 ||
		op.Response.RAIMediaFilteredCount != 2 || len(op.Response.RAIMediaFilteredReasons) != 1 {
		t.Fatalf("filtered op = %+v (response %+v), %v", op, op.Response, err)
	}
	failed, err := client.Models.GenerateVideosFromSource(ctx, "veo-3.1-generate-preview", &genai.GenerateVideosSource{Prompt: gemsim.TriggerFailVideo}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "failed video done", func() bool {
		op, err = client.Operations.GetVideosOperation(ctx, failed, nil)
		return err == nil && op.Done
	})
	if op.Error["code"] != float64(13) || op.Error["status"] != nil || op.Response != nil {
		t.Fatalf("failed op error %v", op.Error)
	}
	// No event for the failed one: the next delivery is this batch's.
	b, err := client.Batches.Create(ctx, "m", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("x")}}}, withName)
	if err != nil {
		t.Fatal(err)
	}
	if e := decode(t, rc.next(t)); e.Data["id"] != b.Name {
		t.Errorf("unexpected event after a failed video: %+v", e)
	}
}

// TestInteractionOutcomes: incomplete and budget_exceeded end the
// interaction (announced as interaction.failed with the status as code);
// requires_continuation is a pause the server resumes by itself.
func TestInteractionOutcomes(t *testing.T) {
	clk := gemsim.NewFakeClock(time.Time{})
	_, client := startSim(t, gemsim.Options{Clock: clk, Durations: gemsim.Durations{Interaction: time.Minute}})
	rc := newReceiver(t)
	createHook(t, client, rc.URL, allJobEvents...)
	create := func(text string) string {
		it := createInteraction(t, client, gi.CreateModelInteraction{Model: gi.Model("gemini-3-flash"),
			Input: genai.Ptr(gi.NewInteractionsInput(text)), Background: genai.Ptr(true)})
		return *it.ID
	}
	inc, budget, cont := create("long story "+gemsim.TriggerIncomplete), create("spend "+gemsim.TriggerBudgetExceeded), create("go "+gemsim.TriggerContinuation)
	waitTimers(t, clk, 4) // three finishes and one pause
	clk.Advance(30 * time.Second)
	var it *gi.Interaction
	eventually(t, "interaction paused", func() bool { // the timer's goroutine pauses it
		it = getInteraction(t, client, cont)
		return it.Status != gi.InteractionStatusInProgress
	})
	if it.Status != gi.InteractionStatusRequiresContinuation || it.ContinuationToken == nil || *it.ContinuationToken == "" {
		t.Fatalf("paused interaction = %+v", it)
	}
	clk.Advance(30 * time.Second)
	events := map[string]envelope{}
	for range 3 {
		e := decode(t, rc.next(t))
		events[e.Data["id"]] = e
	}
	if e := events[inc]; e.Type != "interaction.failed" || e.Data["error_code"] != "incomplete" {
		t.Errorf("incomplete event %+v", e)
	}
	if e := events[budget]; e.Type != "interaction.failed" || e.Data["error_code"] != "budget_exceeded" {
		t.Errorf("budget event %+v", e)
	}
	if e := events[cont]; e.Type != "interaction.completed" {
		t.Errorf("continued event %+v", e)
	}
	if it := getInteraction(t, client, inc); it.Status != gi.InteractionStatusIncomplete || it.OutputText == nil || !strings.HasPrefix(*it.OutputText, "echo: ") {
		t.Errorf("incomplete = %+v", it)
	}
	if it := getInteraction(t, client, budget); it.Status != gi.InteractionStatusBudgetExceeded || len(it.Errors) != 1 {
		t.Errorf("budget_exceeded = %+v", it)
	}
	if it := getInteraction(t, client, cont); it.Status != gi.InteractionStatusCompleted || it.ContinuationToken != nil {
		t.Errorf("continued = %+v", it)
	}
}

// waitTimers waits until the fake clock has n pending timers (the jobs'
// goroutines armed them).
func waitTimers(t *testing.T, clk *gemsim.FakeClock, n int) {
	t.Helper()
	eventually(t, "timers armed", func() bool { return clk.Waiters() >= n })
}
