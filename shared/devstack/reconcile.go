package devstack

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/geminihooks/geminihooks/shared/reconcile"
)

func runCtxOf(s *Stack) context.Context { return s.runCtx }

// reconcileLoop calls the Reconciler function every period, as Cloud
// Scheduler does in production, until ctx ends. A sweep that found
// something is shown on Out.
func (s *Stack) reconcileLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	client := &http.Client{Timeout: 5 * time.Minute}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.FunctionsURL+"/Reconciler", nil)
		if err != nil {
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("devstack: reconcile sweep", "error", err)
			}
			continue
		}
		var rep reconcile.Report
		_ = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			s.log.Warn("devstack: reconcile sweep answered", "status", resp.StatusCode, "errors", rep.Errors)
		}
		if rep.Missed+rep.Redriven+rep.Discovered+rep.DisabledWebhooks > 0 && s.out.enabled() {
			s.out.printf("reconciler sweep: checked=%d missed=%d discovered=%d redriven=%d disabled_webhooks=%d gemini_calls=%d",
				rep.Checked, rep.Missed, rep.Discovered, rep.Redriven, rep.DisabledWebhooks, rep.GeminiCalls)
		}
	}
}
