package devstack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genai"
	gi "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// Models used for submissions; the simulator accepts any model id.
const (
	BatchModel       = "gemini-2.5-flash"
	VideoModel       = "veo-3.1-generate-preview"
	InteractionModel = "gemini-3-flash"
)

// SubmitOptions tunes one submission.
type SubmitOptions struct {
	// WebhookURIs, when set, gives the job a dynamic webhook
	// (webhook_config.uris): its events go there, signed with an RS256 JWT,
	// instead of to the static webhook.
	WebhookURIs []string
	// Labels are stored on the job and copied to its results event.
	Labels map[string]string
	// Text is the prompt (default "hello from geminihooks").
	Text string
}

func (o SubmitOptions) text() string {
	if o.Text == "" {
		return "hello from geminihooks"
	}
	return o.Text
}

func (o SubmitOptions) batchWebhook() *genai.WebhookConfig {
	if len(o.WebhookURIs) == 0 {
		return nil
	}
	return &genai.WebhookConfig{Uris: o.WebhookURIs}
}

// record stores the job as submitted, as the CLI does, so the ledger knows it
// before its webhook arrives.
func (s *Stack) record(ctx context.Context, kind event.Kind, name, model string, o SubmitOptions) (event.JobRef, error) {
	ref, err := event.RefForName(kind, name)
	if err != nil {
		return event.JobRef{}, fmt.Errorf("devstack: job ref for %s: %w", name, err)
	}
	if err := s.Ledger.RecordSubmission(ctx, ledger.Submission{Ref: ref, Model: model, Labels: o.Labels}); err != nil {
		return event.JobRef{}, fmt.Errorf("devstack: %w", err)
	}
	return ref, nil
}

// SubmitInlineBatch submits a two-request inline batch through the genai SDK.
func (s *Stack) SubmitInlineBatch(ctx context.Context, o SubmitOptions) (event.JobRef, error) {
	req := func(text string) *genai.InlinedRequest {
		return &genai.InlinedRequest{Contents: []*genai.Content{genai.NewContentFromText(text, genai.RoleUser)}}
	}
	job, err := s.Gemini.Batches.Create(ctx, BatchModel,
		&genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{req(o.text() + " #1"), req(o.text() + " #2")}},
		&genai.CreateBatchJobConfig{DisplayName: "devstack-inline", WebhookConfig: o.batchWebhook()})
	if err != nil {
		return event.JobRef{}, fmt.Errorf("devstack: batches.create (inline): %w", err)
	}
	return s.record(ctx, event.KindBatch, job.Name, BatchModel, o)
}

// SubmitFileBatch uploads a three-line JSONL input and submits a file batch.
func (s *Stack) SubmitFileBatch(ctx context.Context, o SubmitOptions) (event.JobRef, error) {
	var b strings.Builder
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, `{"key":"line-%d","request":{"contents":[{"role":"user","parts":[{"text":%q}]}]}}`+"\n", i, fmt.Sprintf("%s (line %d)", o.text(), i))
	}
	f, err := s.Gemini.Files.Upload(ctx, strings.NewReader(b.String()),
		&genai.UploadFileConfig{MIMEType: "application/jsonl", DisplayName: "devstack-batch-input"})
	if err != nil {
		return event.JobRef{}, fmt.Errorf("devstack: files.upload: %w", err)
	}
	job, err := s.Gemini.Batches.Create(ctx, BatchModel, &genai.BatchJobSource{FileName: f.Name},
		&genai.CreateBatchJobConfig{DisplayName: "devstack-file", WebhookConfig: o.batchWebhook()})
	if err != nil {
		return event.JobRef{}, fmt.Errorf("devstack: batches.create (file): %w", err)
	}
	return s.record(ctx, event.KindBatch, job.Name, BatchModel, o)
}

// SubmitVideo starts a video generation (a long-running operation).
func (s *Stack) SubmitVideo(ctx context.Context, o SubmitOptions) (event.JobRef, error) {
	op, err := s.Gemini.Models.GenerateVideosFromSource(ctx, VideoModel,
		&genai.GenerateVideosSource{Prompt: o.text()},
		&genai.GenerateVideosConfig{WebhookConfig: o.batchWebhook()})
	if err != nil {
		return event.JobRef{}, fmt.Errorf("devstack: models.generateVideos: %w", err)
	}
	return s.record(ctx, event.KindVideo, op.Name, VideoModel, o)
}

// SubmitInteraction creates a background interaction.
func (s *Stack) SubmitInteraction(ctx context.Context, o SubmitOptions) (event.JobRef, error) {
	body := gi.CreateModelInteraction{
		Model:      gi.Model(InteractionModel),
		Input:      genai.Ptr(gi.NewInteractionsInput(o.text())),
		Background: genai.Ptr(true),
	}
	if len(o.WebhookURIs) > 0 {
		body.WebhookConfig = &gi.WebhookConfig{Uris: o.WebhookURIs}
	}
	res, err := s.Gemini.Interactions.Create(ctx, operations.CreateInteractionRequest{Body: operations.NewCreateInteractionRequestBody(body)})
	if err != nil {
		return event.JobRef{}, fmt.Errorf("devstack: interactions.create: %w", err)
	}
	if res.Interaction == nil || res.Interaction.ID == nil {
		return event.JobRef{}, errors.New("devstack: interactions.create returned no id")
	}
	return s.record(ctx, event.KindInteraction, *res.Interaction.ID, InteractionModel, o)
}

// SubmitAll submits one inline batch, one file batch, one video and one
// interaction, in that order.
func (s *Stack) SubmitAll(ctx context.Context, o SubmitOptions) ([]event.JobRef, error) {
	var refs []event.JobRef
	for _, submit := range []func(context.Context, SubmitOptions) (event.JobRef, error){
		s.SubmitInlineBatch, s.SubmitFileBatch, s.SubmitVideo, s.SubmitInteraction,
	} {
		ref, err := submit(ctx, o)
		if err != nil {
			return refs, err
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// WaitCollected polls Firestore until every job has a final collection
// state (collected or collect_failed) and returns the jobs. onChange, if
// set, is called whenever a job's (state, collection_state) changes.
func (s *Stack) WaitCollected(ctx context.Context, ids []string, onChange func(ledger.Job)) ([]ledger.Job, error) {
	last := map[string]string{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		jobs := make([]ledger.Job, 0, len(ids))
		done := true
		for _, id := range ids {
			j, err := s.Ledger.GetJob(ctx, id)
			if errors.Is(err, ledger.ErrNotFound) {
				done = false
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, err
			}
			if k := j.State + "/" + j.CollectionState; last[id] != k {
				last[id] = k
				if onChange != nil {
					onChange(j)
				}
			}
			if j.CollectionState != ledger.CollectionDone && j.CollectionState != ledger.CollectionFailed {
				done = false
			}
			jobs = append(jobs, j)
		}
		if done {
			return jobs, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("devstack: waiting for collection of %v: %w", ids, ctx.Err())
		case <-tick.C:
		}
	}
}

// Demo submits one job of each kind and reports progress to Out until all
// of them are collected ("results in Firestore").
func (s *Stack) Demo(ctx context.Context) error {
	s.out.printf("demo: submitting an inline batch, a file batch, a video and an interaction")
	refs, err := s.SubmitAll(ctx, SubmitOptions{Labels: map[string]string{"source": "devstack-demo"}})
	if err != nil {
		return err
	}
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
		s.out.printf("demo: submitted %s (%s) as jobs/%s", r.Kind, r.Name, r.ID)
	}
	jobs, err := s.WaitCollected(ctx, ids, func(j ledger.Job) {
		cs := j.CollectionState
		if cs == "" {
			cs = "-"
		}
		s.out.printf("demo: jobs/%s state=%s collection_state=%s", j.JobID, j.State, cs)
	})
	if err != nil {
		return err
	}
	for _, j := range jobs {
		s.out.printf("demo: jobs/%s %s: %d results at %s", j.JobID, j.CollectionState, j.Counts.Results, orDash(j.ResultsPath))
	}
	s.out.printf("demo: all %d jobs done: results in Firestore (emulator %s, project %s); still serving, Ctrl-C stops", len(jobs), s.FirestoreHost, s.Project)
	return nil
}
