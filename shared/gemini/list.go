package gemini

import (
	"context"
	"fmt"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"
)

// ListBatches returns one page of the project's batches (newest first) and
// the next page's token ("" after the last). Errors are classified.
func (c *Client) ListBatches(ctx context.Context, pageToken string, pageSize int) ([]*genai.BatchJob, string, error) {
	ctx, seen := withStatus(ctx)
	page, err := c.GenAI.Batches.List(ctx, &genai.ListBatchJobsConfig{PageSize: int32(pageSize), PageToken: pageToken})
	if err != nil {
		return nil, "", classify(fmt.Errorf("gemini batches.list: %w", err), seen.get())
	}
	return page.Items, page.NextPageToken, nil
}

// ListWebhooks returns every static webhook of the project (all pages, at
// most 20 of 1,000).
func (c *Client) ListWebhooks(ctx context.Context) ([]webhooks.Webhook, error) {
	var out []webhooks.Webhook
	var token *string
	for range 20 {
		sctx, seen := withStatus(ctx)
		res, err := c.GenAI.Webhooks.List(sctx, operations.ListWebhooksRequest{PageSize: genai.Ptr(1000), PageToken: token}, noRetry)
		if err != nil {
			return nil, classify(fmt.Errorf("gemini webhooks.list: %w", err), seen.get())
		}
		if res == nil || res.WebhookListResponse == nil {
			break
		}
		out = append(out, res.WebhookListResponse.Webhooks...)
		token = res.WebhookListResponse.NextPageToken
		if token == nil || *token == "" {
			break
		}
	}
	return out, nil
}

// EnableWebhook sets webhook id's state to enabled (after Gemini disabled
// it for failed deliveries).
func (c *Client) EnableWebhook(ctx context.Context, id string) error {
	ctx, seen := withStatus(ctx)
	_, err := c.GenAI.Webhooks.Update(ctx, operations.UpdateWebhookRequest{ID: id, UpdateMask: genai.Ptr("state"),
		Body: webhooks.WebhookUpdate{State: webhooks.WebhookUpdateStateEnabled.ToPointer()}}, noRetry)
	if err != nil {
		return classify(fmt.Errorf("gemini webhooks.update %s: %w", id, err), seen.get())
	}
	return nil
}
