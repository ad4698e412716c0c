// Package submit starts Gemini jobs (batches, video generations, background
// interactions) with the genai SDK and records each one in the ledger as
// "submitted", so geminihooks knows a job before its webhook arrives and can
// attach labels to it. The CLI's "submit" command and the Workflow function
// share it.
//
// # Ordering and failures
//
// The job is created at Gemini first, then recorded. A webhook may arrive
// between the two; the ledger never moves a job's state backwards, so the
// late submission record only adds model, labels and submitted_at. If
// recording fails, the job still exists at Gemini (its webhook will create
// the ledger entry without labels): the functions then return the job's
// JobRef together with an error wrapping [ErrNotRecorded], so the caller can
// report the job instead of submitting it again.
//
// # Webhooks per job
//
// WebhookURIs set webhook_config.uris: Gemini then sends the job's events to
// those URIs only (signed with an RS256 JWT) instead of the registered static
// webhooks. user_metadata is never sent: the API rejects it on batches
// (googleapis/go-genai#779) and the ledger correlates on the job name anyway.
package submit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/genai"
	gi "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/retry"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// Recorder records a submitted job; *ledger.Store implements it.
type Recorder interface {
	RecordSubmission(ctx context.Context, sub ledger.Submission) error
}

var (
	// ErrInvalidRequest: the request is incomplete or contradictory; nothing
	// was sent to Gemini. Fix the input; retrying cannot help.
	ErrInvalidRequest = errors.New("invalid submit request")
	// ErrNotRecorded: the job was created at Gemini but recording it in the
	// ledger failed. The returned JobRef is valid; do not resubmit.
	ErrNotRecorded = errors.New("job submitted but not recorded in the ledger")
)

// noRetry turns off the interactions sub-client's automatic retries for
// Interactions.Create: a create whose response was lost would be sent again
// and start a second, billed interaction.
var noRetry = operations.WithRetries(retry.Config{Strategy: "none"})

// BatchRequest describes a batch job. Exactly one input must be set:
// Prompts, Requests, InputJSONL or InputFile.
type BatchRequest struct {
	// Model is the model id, e.g. "gemini-2.5-flash". Required.
	Model string
	// Prompts become one inline request each (a single user text part).
	Prompts []string
	// Requests are inline requests given in full.
	Requests []*genai.InlinedRequest
	// InputJSONL is a JSONL request file ({"key":…,"request":{…}} per line)
	// uploaded to the Files API before the batch is created.
	InputJSONL io.Reader
	// InputFile is an already uploaded input file ("files/…").
	InputFile string
	// DisplayName is the batch's display name, which the REST reference
	// marks required. Empty: [DefaultDisplayName].
	DisplayName string
	// WebhookURIs, if any, receive this job's events instead of the
	// registered static webhooks.
	WebhookURIs []string
	// Labels are stored on the ledger's job document (not sent to Gemini).
	Labels map[string]string
}

// VideoRequest describes a Veo video generation.
type VideoRequest struct {
	// Model is the Veo model id, e.g. "veo-3.1-generate-preview". Required.
	Model string
	// Prompt describes the video. Required.
	Prompt string
	// NumberOfVideos is the number of samples; 0 lets the service choose.
	NumberOfVideos int32
	WebhookURIs    []string
	Labels         map[string]string
}

// InteractionRequest describes a background interaction (background is
// always on: webhooks require it).
type InteractionRequest struct {
	// Model is the model id, e.g. "gemini-3-flash". Required.
	Model string
	// Input is the user's text. Required.
	Input string
	// Tools declares functions by name (each taking one string argument
	// "input"); the model may answer with function calls, which ends the
	// interaction in requires_action.
	Tools       []string
	WebhookURIs []string
	Labels      map[string]string
}

// Batch creates a batch job (uploading InputJSONL first when given) and
// records it.
func Batch(ctx context.Context, client *genai.Client, rec Recorder, req BatchRequest) (event.JobRef, error) {
	if err := checkCommon(req.Model, req.WebhookURIs, req.Labels); err != nil {
		return event.JobRef{}, err
	}
	inputs := 0
	for _, set := range []bool{len(req.Prompts) > 0, len(req.Requests) > 0, req.InputJSONL != nil, req.InputFile != ""} {
		if set {
			inputs++
		}
	}
	if inputs != 1 {
		return event.JobRef{}, fmt.Errorf("%w: exactly one of prompts, requests, input file or JSONL input is required (got %d)", ErrInvalidRequest, inputs)
	}
	if strings.TrimSpace(req.DisplayName) == "" {
		req.DisplayName = DefaultDisplayName(time.Now())
	}
	src := &genai.BatchJobSource{FileName: req.InputFile, InlinedRequests: req.Requests}
	for i, p := range req.Prompts {
		if strings.TrimSpace(p) == "" {
			return event.JobRef{}, fmt.Errorf("%w: prompt %d is empty", ErrInvalidRequest, i+1)
		}
		src.InlinedRequests = append(src.InlinedRequests, &genai.InlinedRequest{
			Contents: []*genai.Content{genai.NewContentFromText(p, genai.RoleUser)},
			Metadata: map[string]string{"key": fmt.Sprintf("prompt-%d", i+1)},
		})
	}
	if req.InputJSONL != nil {
		f, err := client.Files.Upload(ctx, req.InputJSONL, &genai.UploadFileConfig{MIMEType: "application/jsonl", DisplayName: req.DisplayName})
		if err != nil {
			return event.JobRef{}, gemini.Classify(fmt.Errorf("gemini files.upload: %w", err))
		}
		src.FileName = f.Name
	}
	cfg := &genai.CreateBatchJobConfig{DisplayName: req.DisplayName}
	if len(req.WebhookURIs) > 0 {
		cfg.WebhookConfig = &genai.WebhookConfig{Uris: req.WebhookURIs}
	}
	job, err := client.Batches.Create(ctx, req.Model, src, cfg)
	if err != nil {
		return event.JobRef{}, gemini.Classify(fmt.Errorf("gemini batches.create %s: %w", req.Model, err))
	}
	return record(ctx, rec, event.KindBatch, job.Name, req.Model, req.Labels)
}

// Video starts a video generation operation and records it.
func Video(ctx context.Context, client *genai.Client, rec Recorder, req VideoRequest) (event.JobRef, error) {
	if err := checkCommon(req.Model, req.WebhookURIs, req.Labels); err != nil {
		return event.JobRef{}, err
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return event.JobRef{}, fmt.Errorf("%w: prompt is required", ErrInvalidRequest)
	}
	cfg := &genai.GenerateVideosConfig{NumberOfVideos: req.NumberOfVideos}
	if len(req.WebhookURIs) > 0 {
		cfg.WebhookConfig = &genai.WebhookConfig{Uris: req.WebhookURIs}
	}
	op, err := client.Models.GenerateVideosFromSource(ctx, req.Model, &genai.GenerateVideosSource{Prompt: req.Prompt}, cfg)
	if err != nil {
		return event.JobRef{}, gemini.Classify(fmt.Errorf("gemini models.generateVideos %s: %w", req.Model, err))
	}
	return record(ctx, rec, event.KindVideo, op.Name, req.Model, req.Labels)
}

// Interaction creates a background interaction and records it.
func Interaction(ctx context.Context, client *genai.Client, rec Recorder, req InteractionRequest) (event.JobRef, error) {
	if err := checkCommon(req.Model, req.WebhookURIs, req.Labels); err != nil {
		return event.JobRef{}, err
	}
	if strings.TrimSpace(req.Input) == "" {
		return event.JobRef{}, fmt.Errorf("%w: input is required", ErrInvalidRequest)
	}
	body := gi.CreateModelInteraction{
		Model:      gi.Model(req.Model),
		Input:      genai.Ptr(gi.NewInteractionsInput(req.Input)),
		Background: genai.Ptr(true),
	}
	for _, name := range req.Tools {
		if name == "" {
			return event.JobRef{}, fmt.Errorf("%w: empty tool name", ErrInvalidRequest)
		}
		body.Tools = append(body.Tools, gi.NewTool(gi.Function{
			Name:        genai.Ptr(name),
			Description: genai.Ptr("Function " + name + " declared by geminihooks submit."),
			Parameters: map[string]any{
				"type":       "object",
				"properties": map[string]any{"input": map[string]any{"type": "string"}},
			},
		}))
	}
	if len(req.WebhookURIs) > 0 {
		body.WebhookConfig = &gi.WebhookConfig{Uris: req.WebhookURIs}
	}
	res, err := client.Interactions.Create(ctx, operations.CreateInteractionRequest{
		Body: operations.NewCreateInteractionRequestBody(body),
	}, noRetry)
	if err != nil {
		return event.JobRef{}, gemini.Classify(fmt.Errorf("gemini interactions.create %s: %w", req.Model, err))
	}
	if res == nil || res.Interaction == nil || res.Interaction.ID == nil || *res.Interaction.ID == "" {
		return event.JobRef{}, fmt.Errorf("gemini interactions.create %s: response has no interaction id: %w", req.Model, gemini.ErrTransient)
	}
	return record(ctx, rec, event.KindInteraction, *res.Interaction.ID, req.Model, req.Labels)
}

// DefaultDisplayName is the display name of a batch submitted without
// one: "geminihooks-<UTC time>-<random>", unique enough to find the batch
// in Gemini's batch list.
func DefaultDisplayName(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "geminihooks-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func checkCommon(model string, uris []string, labels map[string]string) error {
	if strings.TrimSpace(model) == "" {
		return fmt.Errorf("%w: model is required", ErrInvalidRequest)
	}
	for _, u := range uris {
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return fmt.Errorf("%w: webhook URI %q is not an http(s) URL", ErrInvalidRequest, u)
		}
	}
	// Labels travel as Pub/Sub attributes on the results event: one that
	// cannot would be left off it (and miss the subscription filters
	// matching on it), so refuse it before anything is created at Gemini.
	if err := event.ValidateLabels(labels); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return nil
}

func record(ctx context.Context, rec Recorder, kind event.Kind, name, model string, labels map[string]string) (event.JobRef, error) {
	ref, err := event.RefForName(kind, name)
	if err != nil {
		return event.JobRef{}, fmt.Errorf("job identity of %s %q: %w", kind, name, err)
	}
	err = rec.RecordSubmission(ctx, ledger.Submission{Ref: ref, Model: model, Labels: labels, SubmittedAt: time.Now().UTC()})
	if err != nil {
		return ref, fmt.Errorf("%w: %s (%s): %w", ErrNotRecorded, ref.ID, name, err)
	}
	return ref, nil
}
