package gemsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/apierrors"
	gi "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"
	"google.golang.org/genai/interactions/retry"

	"github.com/geminihooks/geminihooks/shared/gemsim"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

var noRetry = operations.WithRetries(retry.Config{Strategy: "none"})

type envelope struct {
	Type      string            `json:"type"`
	Version   string            `json:"version"`
	Timestamp time.Time         `json:"timestamp"`
	Data      map[string]string `json:"data"`
}

func decode(t *testing.T, r received) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("envelope %s: %v", r.Body, err)
	}
	if e.Version != "v1" || e.Timestamp.IsZero() || e.Data["id"] == "" {
		t.Fatalf("envelope = %s", r.Body)
	}
	return e
}

func verifyHMAC(t *testing.T, r received, secrets ...string) error {
	t.Helper()
	src, err := webhook.StaticSecrets(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	v, err := webhook.NewHMACVerifier(src, webhook.HMACOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), r.Body, r.Header)
	return err
}

func createHook(t *testing.T, client *genai.Client, uri string, events ...webhooks.WebhookSubscribedEvent) (id, secret string) {
	t.Helper()
	res, err := client.Webhooks.Create(ctxT(t), operations.CreateWebhookRequest{Body: webhooks.WebhookInput{
		Name: genai.Ptr("test"), URI: uri, SubscribedEvents: events}}, noRetry)
	if err != nil {
		t.Fatalf("Webhooks.Create: %v", err)
	}
	return *res.Webhook.ID, *res.Webhook.GetNewSigningSecret()
}

func status(err error) int {
	var e *apierrors.APIError
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

func TestWebhookManagement(t *testing.T) {
	sim, client := startSim(t, gemsim.Options{})
	ctx := ctxT(t)
	res, err := client.Webhooks.Create(ctx, operations.CreateWebhookRequest{Body: webhooks.WebhookInput{
		Name: genai.Ptr("prod"), URI: "https://example.com/gemini",
		SubscribedEvents: []webhooks.WebhookSubscribedEvent{webhooks.WebhookSubscribedEventBatchSucceeded, webhooks.WebhookSubscribedEventBatchFailed},
	}}, noRetry)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	wh := res.Webhook
	secret := *wh.GetNewSigningSecret()
	if _, err := webhook.ParseSecret(secret); err != nil || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("new_signing_secret %q: %v", secret, err)
	}
	if *wh.State != webhooks.WebhookStateEnabled || len(wh.SigningSecrets) != 1 || *wh.SigningSecrets[0].TruncatedSecret != "whsec_..."+secret[len(secret)-4:] {
		t.Fatalf("created webhook = %+v", wh)
	}
	id := *wh.ID
	id2, _ := createHook(t, client, "https://example.com/other", webhooks.WebhookSubscribedEventVideoGenerated)

	// List with paging.
	lr, err := client.Webhooks.List(ctx, operations.ListWebhooksRequest{PageSize: genai.Ptr(1)})
	if err != nil || len(lr.WebhookListResponse.Webhooks) != 1 || lr.WebhookListResponse.NextPageToken == nil {
		t.Fatalf("List page 1 = %+v, %v", lr, err)
	}
	lr2, err := client.Webhooks.List(ctx, operations.ListWebhooksRequest{PageSize: genai.Ptr(1), PageToken: lr.WebhookListResponse.NextPageToken})
	if err != nil || len(lr2.WebhookListResponse.Webhooks) != 1 || lr2.WebhookListResponse.NextPageToken != nil || *lr2.WebhookListResponse.Webhooks[0].ID != id2 {
		t.Fatalf("List page 2 = %+v, %v", lr2, err)
	}

	// Get never returns the secret again.
	gr, err := client.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: id})
	if err != nil || gr.Webhook.URI != "https://example.com/gemini" || gr.Webhook.NewSigningSecret != nil || *gr.Webhook.Name != "prod" {
		t.Fatalf("Get = %+v, %v", gr, err)
	}

	// Update only what the mask names.
	ur, err := client.Webhooks.Update(ctx, operations.UpdateWebhookRequest{ID: id, UpdateMask: genai.Ptr("name"),
		Body: webhooks.WebhookUpdate{Name: genai.Ptr("renamed"), URI: genai.Ptr("https://ignored.example.com")}})
	if err != nil || *ur.Webhook.Name != "renamed" || ur.Webhook.URI != "https://example.com/gemini" {
		t.Fatalf("Update name = %+v, %v", ur, err)
	}
	ur, err = client.Webhooks.Update(ctx, operations.UpdateWebhookRequest{ID: id, UpdateMask: genai.Ptr("state,subscribed_events"),
		Body: webhooks.WebhookUpdate{State: webhooks.WebhookUpdateStateDisabled.ToPointer(),
			SubscribedEvents: []webhooks.WebhookUpdateSubscribedEvent{webhooks.WebhookUpdateSubscribedEventVideoGenerated}}})
	if err != nil || *ur.Webhook.State != webhooks.WebhookStateDisabled || len(ur.Webhook.SubscribedEvents) != 1 {
		t.Fatalf("Update state = %+v, %v", ur, err)
	}

	// Unknown id → 404 on every per-id method.
	const unknown = "doesnotexist"
	_, err = client.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: unknown})
	if status(err) != 404 {
		t.Errorf("Get unknown: %v", err)
	}
	_, err = client.Webhooks.Update(ctx, operations.UpdateWebhookRequest{ID: unknown, UpdateMask: genai.Ptr("name"), Body: webhooks.WebhookUpdate{Name: genai.Ptr("x")}})
	if status(err) != 404 {
		t.Errorf("Update unknown: %v", err)
	}
	_, err = client.Webhooks.Ping(ctx, operations.PingWebhookRequest{ID: unknown})
	if status(err) != 404 {
		t.Errorf("Ping unknown: %v", err)
	}
	_, err = client.Webhooks.RotateSigningSecret(ctx, operations.RotateSigningSecretRequest{ID: unknown}, noRetry)
	if status(err) != 404 {
		t.Errorf("Rotate unknown: %v", err)
	}
	_, err = client.Webhooks.Delete(ctx, operations.DeleteWebhookRequest{ID: unknown})
	if status(err) != 404 {
		t.Errorf("Delete unknown: %v", err)
	}

	// Bad input → 400.
	_, err = client.Webhooks.Create(ctx, operations.CreateWebhookRequest{Body: webhooks.WebhookInput{
		SubscribedEvents: []webhooks.WebhookSubscribedEvent{webhooks.WebhookSubscribedEventBatchSucceeded}}}, noRetry)
	if status(err) != 400 {
		t.Errorf("Create without uri: %v", err)
	}
	_, err = client.Webhooks.Create(ctx, operations.CreateWebhookRequest{Body: webhooks.WebhookInput{URI: "https://example.com",
		SubscribedEvents: []webhooks.WebhookSubscribedEvent{"batch.cancelled"}}}, noRetry)
	if status(err) != 400 {
		t.Errorf("Create with unsubscribable event: %v", err)
	}
	_, err = client.Webhooks.Update(ctx, operations.UpdateWebhookRequest{ID: id, UpdateMask: genai.Ptr("secret"), Body: webhooks.WebhookUpdate{}})
	if status(err) != 400 {
		t.Errorf("Update with bad mask: %v", err)
	}
	_, err = client.Webhooks.Update(ctx, operations.UpdateWebhookRequest{ID: id, UpdateMask: genai.Ptr("state"),
		Body: webhooks.WebhookUpdate{State: webhooks.WebhookUpdateStateDisabledDueToFailedDeliveries.ToPointer()}})
	if status(err) != 400 {
		t.Errorf("Update to disabled_due_to_failed_deliveries: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, sim.URL()+"/v1beta/webhooks/"+id+":rotateSigningSecret", strings.NewReader(`{"revocation_behavior":"REVOKE_PREVIOUS_SECRETS_AFTER_H24"}`))
	req.Header.Set("x-goog-api-key", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("rotate with uppercase enum: %v %v", resp, err)
	}
	resp.Body.Close()

	if _, err := client.Webhooks.Delete(ctx, operations.DeleteWebhookRequest{ID: id}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := client.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: id}); status(err) != 404 {
		t.Fatalf("Get after Delete: %v", err)
	}
}

func TestStaticDeliveriesAreSignedAndFiltered(t *testing.T) {
	sim, client := startSim(t, gemsim.Options{})
	ctx := ctxT(t)
	batchRC, videoRC := newReceiver(t), newReceiver(t)
	_, batchSecret := createHook(t, client, batchRC.URL, webhooks.WebhookSubscribedEventBatchSucceeded)
	_, videoSecret := createHook(t, client, videoRC.URL, webhooks.WebhookSubscribedEventVideoGenerated, webhooks.WebhookSubscribedEventInteractionRequiresAction)

	job, err := client.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("x")}}}, withName)
	if err != nil {
		t.Fatal(err)
	}
	r := batchRC.next(t)
	if err := verifyHMAC(t, r, batchSecret); err != nil {
		t.Fatalf("verify batch delivery: %v", err)
	}
	if err := verifyHMAC(t, r, videoSecret); !errors.Is(err, webhook.ErrNoMatchingSignature) {
		t.Fatalf("verify with another webhook's secret: %v", err)
	}
	e := decode(t, r)
	if e.Type != "batch.succeeded" || e.Data["id"] != job.Name || e.Data["output_file_uri"] != "" || !strings.HasPrefix(r.Header.Get("webhook-id"), "msg_") {
		t.Fatalf("batch event = %s (headers %v)", r.Body, r.Header)
	}
	if got := sim.Stats().Deliveries.Messages; got != 1 {
		t.Fatalf("batch.succeeded went to %d webhooks, want only the subscribed one", got)
	}

	// File batch: output_file_uri is the result file.
	in := sim.PutFile("in", "application/jsonl", []byte(`{"key":"a","request":{"contents":[{"parts":[{"text":"x"}]}]}}`))
	fjob, err := client.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{FileName: in}, withName)
	if err != nil {
		t.Fatal(err)
	}
	e = decode(t, batchRC.next(t))
	fjob = waitBatch(t, client, fjob.Name)
	if e.Data["id"] != fjob.Name || e.Data["output_file_uri"] != fjob.Dest.FileName {
		t.Fatalf("file batch event data %v, job dest %+v", e.Data, fjob.Dest)
	}

	// Video.
	op, err := client.Models.GenerateVideosFromSource(ctx, "veo-3.1-generate-preview", &genai.GenerateVideosSource{Prompt: "p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r = videoRC.next(t)
	if err := verifyHMAC(t, r, videoSecret); err != nil {
		t.Fatal(err)
	}
	e = decode(t, r)
	op, err = client.Operations.GetVideosOperation(ctx, op, nil)
	if err != nil || !op.Done {
		t.Fatalf("video op %+v %v", op, err)
	}
	uri := op.Response.GeneratedVideos[0].Video.URI
	if e.Type != "video.generated" || e.Data["id"] != op.Name || e.Data["output_file_uri"] != uri || e.Data["video_uri"] != uri ||
		!strings.HasPrefix(e.Data["file_name"], "files/") || !strings.Contains(uri, strings.TrimPrefix(e.Data["file_name"], "files/")+":download") {
		t.Fatalf("video event %v, uri %s", e.Data, uri)
	}

	// Interaction requiring action.
	it := createInteraction(t, client, gi.CreateModelInteraction{Model: gi.Model("gemini-3-flash"), Input: genai.Ptr(gi.NewInteractionsInput("x")),
		Tools: []gi.Tool{gi.NewTool(gi.Function{Name: genai.Ptr("f")})}, Background: genai.Ptr(true)})
	e = decode(t, videoRC.next(t))
	if e.Type != "interaction.requires_action" || e.Data["id"] != *it.ID {
		t.Fatalf("interaction event %+v", e)
	}
}

func TestRotationSignsWithOldAndNewSecret(t *testing.T) {
	clock := gemsim.NewFakeClock(time.Time{})
	_, client := startSim(t, gemsim.Options{Clock: clock})
	ctx := ctxT(t)
	rc := newReceiver(t)
	id, s1 := createHook(t, client, rc.URL, webhooks.WebhookSubscribedEventBatchSucceeded)
	ping := func() received {
		t.Helper()
		if _, err := client.Webhooks.Ping(ctx, operations.PingWebhookRequest{ID: id}); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		r := rc.next(t)
		if e := decode(t, r); e.Type != gemsim.PingEventType || e.Data["id"] != id {
			t.Fatalf("ping event %s", r.Body)
		}
		return r
	}
	entries := func(r received) int { return len(strings.Fields(r.Header.Get("webhook-signature"))) }

	if r := ping(); entries(r) != 1 || verifyHMAC(t, r, s1) != nil {
		t.Fatalf("before rotation: %q", r.Header.Get("webhook-signature"))
	}
	rr, err := client.Webhooks.RotateSigningSecret(ctx, operations.RotateSigningSecretRequest{ID: id,
		Body: webhooks.RotateSigningSecretRequest{RevocationBehavior: webhooks.RevocationBehaviorRevokePreviousSecretsAfterH24.ToPointer()}}, noRetry)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	s2 := *rr.WebhookRotateSigningSecretResponse.GetSecret()
	r := ping()
	if entries(r) != 2 || verifyHMAC(t, r, s1) != nil || verifyHMAC(t, r, s2) != nil {
		t.Fatalf("during grace: %d entries", entries(r))
	}
	gr, err := client.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: id})
	if err != nil || len(gr.Webhook.SigningSecrets) != 2 || gr.Webhook.SigningSecrets[1].ExpireTime == nil ||
		!gr.Webhook.SigningSecrets[1].ExpireTime.Equal(clock.Now().Add(24*time.Hour)) || gr.Webhook.SigningSecrets[0].ExpireTime != nil {
		t.Fatalf("signing_secrets during grace = %+v, %v", gr.Webhook.SigningSecrets, err)
	}

	clock.Advance(24 * time.Hour)
	r = ping()
	if entries(r) != 1 || verifyHMAC(t, r, s2) != nil || !errors.Is(verifyHMAC(t, r, s1), webhook.ErrNoMatchingSignature) {
		t.Fatalf("after grace: %d entries", entries(r))
	}

	rr, err = client.Webhooks.RotateSigningSecret(ctx, operations.RotateSigningSecretRequest{ID: id,
		Body: webhooks.RotateSigningSecretRequest{RevocationBehavior: webhooks.RevocationBehaviorRevokePreviousSecretsImmediately.ToPointer()}}, noRetry)
	if err != nil {
		t.Fatal(err)
	}
	s3 := *rr.WebhookRotateSigningSecretResponse.GetSecret()
	r = ping()
	if entries(r) != 1 || verifyHMAC(t, r, s3) != nil || verifyHMAC(t, r, s2) == nil {
		t.Fatalf("after immediate rotation: %d entries", entries(r))
	}
}

// attempts collects DeliveryAttempt reports.
type attempts struct {
	mu  sync.Mutex
	all []gemsim.DeliveryAttempt
}

func (a *attempts) add(x gemsim.DeliveryAttempt) {
	a.mu.Lock()
	a.all = append(a.all, x)
	a.mu.Unlock()
}
func (a *attempts) snapshot() []gemsim.DeliveryAttempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]gemsim.DeliveryAttempt(nil), a.all...)
}

func TestRetriesUntilReceiverRecovers(t *testing.T) {
	var log attempts
	sim, client := startSim(t, gemsim.Options{OnDelivery: log.add,
		Delivery: gemsim.DeliveryOptions{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}})
	rc := newReceiver(t, 503, 503, 503)
	_, secret, err := sim.AddWebhook(rc.URL, "batch.succeeded")
	if err != nil {
		t.Fatal(err)
	}
	job, err := client.Batches.Create(ctxT(t), "m", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("x")}}}, withName)
	if err != nil {
		t.Fatal(err)
	}
	var got []received
	for range 4 {
		got = append(got, rc.next(t))
	}
	id := got[0].Header.Get("webhook-id")
	for i, r := range got {
		if r.Header.Get("webhook-id") != id || !bytes.Equal(r.Body, got[0].Body) {
			t.Fatalf("attempt %d: webhook-id %q body %s, want %q and the same body", i, r.Header.Get("webhook-id"), r.Body, id)
		}
		if err := verifyHMAC(t, r, secret); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if got[3].Status != 200 || decode(t, got[3]).Data["id"] != job.Name {
		t.Fatalf("last attempt status %d", got[3].Status)
	}
	eventually(t, "final report", func() bool { return sim.Stats().Deliveries.Succeeded == 1 })
	reps := log.snapshot()
	if len(reps) != 4 || reps[3].Attempt != 4 || !reps[3].Final || reps[3].Status != 200 || reps[0].Status != 503 || reps[0].Final || reps[0].Err == nil {
		t.Fatalf("reports = %+v", reps)
	}
	if st := sim.Stats().Deliveries; st.Attempts != 4 || st.Failed != 3 || st.GaveUp != 0 {
		t.Fatalf("delivery stats = %+v", st)
	}
}

func TestRetryWindowGivesUp(t *testing.T) {
	var log attempts
	sim, client := startSim(t, gemsim.Options{OnDelivery: log.add, Delivery: gemsim.DeliveryOptions{
		InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, RetryWindow: 30 * time.Millisecond, DisableAfter: 1000}})
	rc := newFailingReceiver(t, 500)
	id, _ := createHook(t, client, rc.URL, webhooks.WebhookSubscribedEventBatchSucceeded)
	if _, err := client.Batches.Create(ctxT(t), "m", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("x")}}}, withName); err != nil {
		t.Fatal(err)
	}
	eventually(t, "give up", func() bool { return sim.Stats().Deliveries.GaveUp == 1 })
	reps := log.snapshot()
	last := reps[len(reps)-1]
	if !last.Final || !errors.Is(last.Err, gemsim.ErrRetryWindowOver) || len(reps) < 3 {
		t.Fatalf("%d reports, last %+v", len(reps), last)
	}
	if sim.WebhookState(id) != gemsim.StateEnabled {
		t.Fatalf("webhook state %s", sim.WebhookState(id))
	}
}

func TestDisabledDueToFailedDeliveries(t *testing.T) {
	var log attempts
	sim, client := startSim(t, gemsim.Options{OnDelivery: log.add,
		Delivery: gemsim.DeliveryOptions{InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, DisableAfter: 3}})
	rc := newReceiver(t, 500, 500, 500)
	id, _ := createHook(t, client, rc.URL, webhooks.WebhookSubscribedEventBatchSucceeded)
	src := &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("x")}}}
	if _, err := client.Batches.Create(ctxT(t), "m", src, withName); err != nil {
		t.Fatal(err)
	}
	eventually(t, "webhook disabled", func() bool {
		gr, err := client.Webhooks.Get(ctxT(t), operations.GetWebhookRequest{ID: id})
		return err == nil && *gr.Webhook.State == webhooks.WebhookStateDisabledDueToFailedDeliveries
	})
	eventually(t, "give up", func() bool { return sim.Stats().Deliveries.GaveUp == 1 })
	if n := len(rc.all()); n != 3 {
		t.Fatalf("receiver saw %d attempts, want 3", n)
	}
	reps := log.snapshot()
	if last := reps[len(reps)-1]; !last.Final || !errors.Is(last.Err, gemsim.ErrWebhookDisabled) {
		t.Fatalf("last report %+v", last)
	}
	// Re-enable; the receiver now answers 200 and new events flow again.
	if _, err := client.Webhooks.Update(ctxT(t), operations.UpdateWebhookRequest{ID: id, UpdateMask: genai.Ptr("state"),
		Body: webhooks.WebhookUpdate{State: webhooks.WebhookUpdateStateEnabled.ToPointer()}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rc.next(t) // drain the failed attempts
	}
	job, err := client.Batches.Create(ctxT(t), "m", src, withName)
	if err != nil {
		t.Fatal(err)
	}
	if r := rc.next(t); r.Status != 200 || decode(t, r).Data["id"] != job.Name {
		t.Fatalf("after re-enable: %d %s", r.Status, r.Body)
	}
}

func TestFaultDuplicatesDropsShuffle(t *testing.T) {
	t.Run("duplicates", func(t *testing.T) {
		sim, _ := startSim(t, gemsim.Options{Faults: gemsim.Faults{DuplicateRate: 1}})
		rc := newReceiver(t)
		id, secret, _ := sim.AddWebhook(rc.URL)
		pingRaw(t, sim, id)
		a, b := rc.next(t), rc.next(t)
		if a.Header.Get("webhook-id") != b.Header.Get("webhook-id") || !bytes.Equal(a.Body, b.Body) || verifyHMAC(t, b, secret) != nil {
			t.Fatalf("duplicate differs: %v / %v", a.Header, b.Header)
		}
		eventually(t, "duplicate counted", func() bool { return sim.Stats().Deliveries.Duplicates == 1 })
	})
	t.Run("drops", func(t *testing.T) {
		sim, _ := startSim(t, gemsim.Options{Seed: 7, Faults: gemsim.Faults{DropRate: 0.5},
			Delivery: gemsim.DeliveryOptions{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}})
		rc := newReceiver(t)
		id, _, _ := sim.AddWebhook(rc.URL)
		ids := map[string]bool{}
		for range 6 {
			pingRaw(t, sim, id)
			ids[rc.next(t).Header.Get("webhook-id")] = true
		}
		eventually(t, "all acknowledged", func() bool { return sim.Stats().Deliveries.Succeeded == 6 })
		st := sim.Stats().Deliveries
		if len(ids) != 6 || st.Dropped == 0 || st.Succeeded != 6 || st.Attempts != 6+st.Dropped {
			t.Fatalf("ids %d, stats %+v", len(ids), st)
		}
	})
	t.Run("shuffle", func(t *testing.T) {
		sim, _ := startSim(t, gemsim.Options{Faults: gemsim.Faults{Shuffle: 30 * time.Millisecond, Delay: time.Millisecond}})
		rc := newReceiver(t)
		id, _, _ := sim.AddWebhook(rc.URL)
		for range 10 {
			pingRaw(t, sim, id)
		}
		ids := map[string]bool{}
		for range 10 {
			ids[rc.next(t).Header.Get("webhook-id")] = true
		}
		if len(ids) != 10 {
			t.Fatalf("got %d distinct messages", len(ids))
		}
	})
}

func pingRaw(t *testing.T, sim *gemsim.Simulator, id string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, sim.URL()+"/v1beta/webhooks/"+id+":ping", strings.NewReader("{}"))
	req.Header.Set("x-goog-api-key", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("ping: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestDynamicWebhookJWT(t *testing.T) {
	sim, client := startSim(t, gemsim.Options{})
	ctx := ctxT(t)
	static, dyn := newReceiver(t), newReceiver(t)
	if _, _, err := sim.AddWebhook(static.URL); err != nil {
		t.Fatal(err)
	}
	hookURL := dyn.URL + "/hook"
	verifier, err := webhook.NewJWTVerifier(ctx, webhook.JWTOptions{JWKSURL: sim.URL() + "/.well-known/jwks.json", Audience: hookURL, Issuer: gemsim.JWTIssuer})
	if err != nil {
		t.Fatal(err)
	}
	job, err := client.Batches.Create(ctx, "m", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("x")}}},
		&genai.CreateBatchJobConfig{DisplayName: "dyn", WebhookConfig: &genai.WebhookConfig{Uris: []string{hookURL}}})
	if err != nil {
		t.Fatal(err)
	}
	r := dyn.next(t)
	d, err := verifier.Verify(ctx, r.Body, r.Header)
	if err != nil {
		t.Fatalf("JWT verify: %v", err)
	}
	if d.Scheme != webhook.SchemeJWT || d.Claims["event_type"] != "batch.succeeded" || d.Claims["data_id"] != job.Name ||
		d.Claims["jti"] != r.Header.Get("webhook-id") || r.Header.Get("webhook-timestamp") == "" {
		t.Fatalf("delivery %+v headers %v", d, r.Header)
	}
	if e := decode(t, r); e.Data["id"] != job.Name {
		t.Fatalf("event %s", r.Body)
	}
	// A JWT for another audience is rejected.
	other, _ := webhook.NewJWTVerifier(ctx, webhook.JWTOptions{JWKSURL: sim.URL() + "/.well-known/jwks.json", Audience: "https://elsewhere"})
	if _, err := other.Verify(ctx, r.Body, r.Header); !errors.Is(err, webhook.ErrInvalidToken) {
		t.Fatalf("wrong audience: %v", err)
	}
	if n := sim.Stats().Deliveries.Messages; n != 1 || len(static.all()) != 0 {
		t.Fatalf("dynamic job also reached static webhooks: messages=%d static=%d", n, len(static.all()))
	}

	// Interactions echo webhook_config and deliver dynamically too.
	it := createInteraction(t, client, gi.CreateModelInteraction{Model: gi.Model("gemini-3-flash"), Input: genai.Ptr(gi.NewInteractionsInput("x")),
		Background: genai.Ptr(true), WebhookConfig: &gi.WebhookConfig{Uris: []string{hookURL}}})
	if it.WebhookConfig == nil || len(it.WebhookConfig.Uris) != 1 {
		t.Fatalf("webhook_config not echoed: %+v", it.WebhookConfig)
	}
	r = dyn.next(t)
	if d, err := verifier.Verify(ctx, r.Body, r.Header); err != nil || d.Claims["event_type"] != "interaction.completed" || d.Claims["data_id"] != *it.ID {
		t.Fatalf("interaction delivery %+v %v", d, err)
	}
}

// TestLoseRateLosesEveryDelivery: with LoseRate 1 every attempt of every
// delivery of an event is dropped (retried until the retry window ends),
// so the receiver never sees it; the event counts as Lost.
func TestLoseRateLosesEveryDelivery(t *testing.T) {
	var log attempts
	sim, client := startSim(t, gemsim.Options{OnDelivery: log.add, Faults: gemsim.Faults{LoseRate: 1},
		Delivery: gemsim.DeliveryOptions{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 5 * time.Millisecond, RetryWindow: 50 * time.Millisecond}})
	rc := newReceiver(t)
	if _, _, err := sim.AddWebhook(rc.URL, "batch.succeeded"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Batches.Create(ctxT(t), "m", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("x")}}}, withName); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the lost event's final attempt", func() bool {
		for _, a := range log.snapshot() {
			if a.Final {
				return true
			}
		}
		return false
	})
	st := sim.Stats().Deliveries
	if st.Lost != 1 || st.Succeeded != 0 || st.Dropped < 2 || st.Dropped != st.Attempts {
		t.Fatalf("stats %+v: want one lost event, every attempt dropped, several attempts", st)
	}
	for _, a := range log.snapshot() {
		if !a.Dropped {
			t.Errorf("attempt %+v reached the receiver", a)
		}
	}
}
