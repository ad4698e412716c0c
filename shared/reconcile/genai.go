package reconcile

import (
	"context"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
)

// GenAI is the [Gemini] port over the genai SDK (gemini.Client).
type GenAI struct{ *gemini.Client }

var _ Gemini = GenAI{}

// ListBatches implements [Gemini].
func (g GenAI) ListBatches(ctx context.Context, pageToken string, pageSize int) ([]Batch, string, error) {
	items, next, err := g.Client.ListBatches(ctx, pageToken, pageSize)
	if err != nil {
		return nil, "", err
	}
	out := make([]Batch, 0, len(items))
	for _, b := range items {
		if b == nil {
			continue
		}
		out = append(out, Batch{Name: b.Name, State: gemini.BatchState(b.State), CreateTime: b.CreateTime, EndTime: b.EndTime, Model: b.Model})
	}
	return out, next, nil
}

// ListWebhooks implements [Gemini].
func (g GenAI) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	hooks, err := g.Client.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Webhook, 0, len(hooks))
	for _, h := range hooks {
		w := Webhook{URI: h.URI}
		if h.ID != nil {
			w.ID = *h.ID
		}
		if h.Name != nil {
			w.Name = *h.Name
		}
		if h.State != nil {
			w.State = string(*h.State)
		}
		out = append(out, w)
	}
	return out, nil
}

// ReadJob implements [Gemini].
func (g GenAI) ReadJob(ctx context.Context, kind event.Kind, name string) (*gemini.Job, error) {
	return g.Client.ReadJob(ctx, kind, name)
}
