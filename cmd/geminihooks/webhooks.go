package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"
	"google.golang.org/genai/interactions/retry"

	"github.com/geminihooks/geminihooks/shared/webhook"
)

// subscribableEvents are the event types the WebhookService accepts.
var subscribableEvents = []string{
	string(webhooks.WebhookSubscribedEventBatchSucceeded),
	string(webhooks.WebhookSubscribedEventBatchFailed),
	string(webhooks.WebhookSubscribedEventBatchExpired),
	string(webhooks.WebhookSubscribedEventVideoGenerated),
	string(webhooks.WebhookSubscribedEventInteractionCompleted),
	string(webhooks.WebhookSubscribedEventInteractionFailed),
	string(webhooks.WebhookSubscribedEventInteractionRequiresAction),
}

// noRetry turns off the SDK's automatic retries for the non-idempotent
// Create and RotateSigningSecret: a retry after a lost response would create
// a second webhook, or rotate twice and leave us holding only the second
// secret while the first (never seen) one also signs.
var noRetry = operations.WithRetries(retry.Config{Strategy: "none"})

func (a *app) webhooksCmd() *cobra.Command {
	cmd := groupCmd("webhooks", "Manage Gemini API webhook registrations",
		`  geminihooks webhooks create --name prod --uri https://example.com/gemini --secret-manager projects/p/secrets/gemini-webhook
  geminihooks webhooks list
  geminihooks webhooks rotate WEBHOOK_ID --secret-file secret.txt`)
	cmd.Long = `Manages static webhooks with the Gemini WebhookService (Standard Webhooks
HMAC signatures).

Signing secrets are returned only once, on create and on rotate. They are
stored, never printed unless --show-secret is given, in a secret store the
Receiver reads: a file (--secret-file, written with mode 0600) or a new
version of a Secret Manager secret (--secret-manager projects/P/secrets/S,
created if missing). The store holds every currently valid secret, newest
first, separated by commas. create replaces its content with the new secret;
rotate puts the new secret first and keeps the previous ones, which Gemini
keeps signing with for 24 hours (those Gemini no longer lists are dropped);
rotate --immediately keeps only the new secret.`
	cmd.AddCommand(a.whCreateCmd(), a.whListCmd(), a.whGetCmd(), a.whUpdateCmd(),
		a.whRotateCmd(), a.whPingCmd(), a.whDeleteCmd())
	return cmd
}

func parseEvents(list []string) ([]string, error) {
	var out []string
	for _, item := range list {
		for _, e := range strings.Split(item, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			if !slices.Contains(subscribableEvents, e) {
				return nil, usageErr("--events: %q is not subscribable (one of %s)", e, strings.Join(subscribableEvents, ", "))
			}
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	if len(out) == 0 {
		return nil, usageErr("--events must name at least one event")
	}
	return out, nil
}

func (a *app) whCreateCmd() *cobra.Command {
	var (
		name, uri string
		events    []string
		sf        secretFlags
	)
	cmd := &cobra.Command{
		Use:   "create --uri URI [--name NAME] [--events E1,E2] (--secret-file F | --secret-manager S | --show-secret)",
		Short: "Register a webhook and store its signing secret",
		Example: `  geminihooks webhooks create --name prod --uri https://REGION-PROJECT.cloudfunctions.net/Receiver \
      --secret-manager projects/my-project/secrets/gemini-webhook-secrets
  geminihooks webhooks create --uri https://example.com/hook --events batch.succeeded,batch.failed --secret-file secret.txt`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd.Flags(), "uri"); err != nil {
				return err
			}
			evs, err := parseEvents(events)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			store, err := a.secretStore(ctx, sf)
			if err != nil {
				return err
			}
			g, err := a.geminiClient(ctx)
			if err != nil {
				return err
			}
			if store != nil {
				if err := store.Check(ctx); err != nil {
					return fail("secret store", err)
				}
			}
			in := webhooks.WebhookInput{URI: uri}
			if name != "" {
				in.Name = genai.Ptr(name)
			}
			for _, e := range evs {
				in.SubscribedEvents = append(in.SubscribedEvents, webhooks.WebhookSubscribedEvent(e))
			}
			res, err := g.GenAI.Webhooks.Create(ctx, operations.CreateWebhookRequest{Body: in}, noRetry)
			if err != nil {
				return fail("create webhook", err)
			}
			if res == nil || res.Webhook == nil || res.Webhook.NewSigningSecret == nil {
				return fail("create webhook", errors.New("response holds no webhook or no signing secret"))
			}
			wh := *res.Webhook
			secret := *wh.NewSigningSecret
			wh.NewSigningSecret = nil
			id := deref(wh.ID)
			if store != nil {
				if err := store.Write(ctx, []string{secret}); err != nil {
					return &cliError{what: "store signing secret",
						err:   fmt.Errorf("webhook %s was created but its secret could not be stored: %w; get a new one with: geminihooks webhooks rotate %s --immediately", id, err, id),
						retry: true}
				}
			}
			return a.printWebhookChange(wh, "Created webhook "+id, store, secret, sf.show)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "display name")
	cmd.Flags().StringVar(&uri, "uri", "", "HTTPS endpoint that receives the events (required)")
	cmd.Flags().StringSliceVar(&events, "events", subscribableEvents, "subscribed events, comma separated")
	sf.register(cmd)
	return cmd
}

// printWebhookChange reports a create or rotate without revealing the
// secret unless show is set.
func (a *app) printWebhookChange(wh webhooks.Webhook, headline string, store secretStore, secret string, show bool) error {
	where := ""
	if store != nil {
		where = store.String()
	}
	if a.format == formatJSON {
		out := map[string]any{"webhook": webhookJSON(wh)}
		if where != "" {
			out["secret_stored_in"] = where
		}
		if show {
			out["signing_secret"] = secret
		}
		return a.printJSON(out)
	}
	fmt.Fprintln(a.stdout, headline+".")
	if where != "" {
		fmt.Fprintf(a.stdout, "Signing secret stored in %s.\n", where)
	}
	if show {
		fmt.Fprintf(a.stdout, "Signing secret: %s\n", secret)
	}
	return nil
}

// webhookJSON renders a webhook with the API's field names.
func webhookJSON(wh webhooks.Webhook) json.RawMessage {
	wh.NewSigningSecret = nil
	b, err := wh.MarshalJSON()
	if err != nil {
		b, _ = json.Marshal(map[string]string{"id": deref(wh.ID)})
	}
	return b
}

func eventsOf(wh webhooks.Webhook) string {
	s := make([]string, 0, len(wh.SubscribedEvents))
	for _, e := range wh.SubscribedEvents {
		s = append(s, string(e))
	}
	return strings.Join(s, ",")
}

func (a *app) whListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List registered webhooks",
		Example: `  geminihooks webhooks list --format json`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			g, err := a.geminiClient(ctx)
			if err != nil {
				return err
			}
			var all []webhooks.Webhook
			req := operations.ListWebhooksRequest{PageSize: genai.Ptr(100)}
			for {
				res, err := g.GenAI.Webhooks.List(ctx, req)
				if err != nil {
					return fail("list webhooks", err)
				}
				if res == nil || res.WebhookListResponse == nil {
					break
				}
				all = append(all, res.WebhookListResponse.Webhooks...)
				next := res.WebhookListResponse.NextPageToken
				if next == nil || *next == "" {
					break
				}
				req.PageToken = next
			}
			if a.format == formatJSON {
				out := make([]json.RawMessage, 0, len(all))
				for _, wh := range all {
					out = append(out, webhookJSON(wh))
				}
				return a.printJSON(out)
			}
			rows := make([][]string, 0, len(all))
			for _, wh := range all {
				rows = append(rows, []string{deref(wh.ID), orDash(deref(wh.Name)), wh.URI, deref(wh.State), eventsOf(wh)})
			}
			return a.printTable([]string{"id", "name", "uri", "state", "events"}, rows)
		},
	}
}

func (a *app) getWebhook(ctx context.Context, g *genai.Client, id string) (webhooks.Webhook, error) {
	res, err := g.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: id})
	if err != nil {
		return webhooks.Webhook{}, fail("get webhook "+id, err)
	}
	if res == nil || res.Webhook == nil {
		return webhooks.Webhook{}, fail("get webhook "+id, errors.New("empty response"))
	}
	return *res.Webhook, nil
}

func (a *app) printWebhook(wh webhooks.Webhook) error {
	if a.format == formatJSON {
		return a.printJSON(webhookJSON(wh))
	}
	var secrets []string
	for _, s := range wh.SigningSecrets {
		v := deref(s.TruncatedSecret)
		if s.ExpireTime != nil {
			v += " (expires " + fmtTimePtr(s.ExpireTime) + ")"
		}
		secrets = append(secrets, v)
	}
	return a.printFields([][2]string{
		{"id", deref(wh.ID)}, {"name", deref(wh.Name)}, {"uri", wh.URI}, {"state", deref(wh.State)},
		{"events", eventsOf(wh)}, {"signing_secrets", strings.Join(secrets, ", ")},
		{"create_time", fmtTimePtr(wh.CreateTime)}, {"update_time", fmtTimePtr(wh.UpdateTime)},
	})
}

func (a *app) whGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "get WEBHOOK_ID",
		Short:   "Show a webhook",
		Example: `  geminihooks webhooks get k0h9q38f6ejj`,
		Args:    exactArgs("WEBHOOK_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			g, err := a.geminiClient(ctx)
			if err != nil {
				return err
			}
			wh, err := a.getWebhook(ctx, g.GenAI, args[0])
			if err != nil {
				return err
			}
			return a.printWebhook(wh)
		},
	}
}

func (a *app) whUpdateCmd() *cobra.Command {
	var (
		state, uri, name string
		events           []string
	)
	cmd := &cobra.Command{
		Use:   "update WEBHOOK_ID [--state enabled|disabled] [--uri URI] [--events E1,E2] [--name NAME]",
		Short: "Change a webhook's state, URI, events or name",
		Long: `Updates only the fields given. Re-enable a webhook that Gemini disabled
after failed deliveries with --state enabled.`,
		Example: `  geminihooks webhooks update k0h9q38f6ejj --state enabled
  geminihooks webhooks update k0h9q38f6ejj --events batch.succeeded,batch.failed`,
		Args: exactArgs("WEBHOOK_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body webhooks.WebhookUpdate
			var mask []string
			fs := cmd.Flags()
			if fs.Changed("state") {
				if state != "enabled" && state != "disabled" {
					return usageErr("--state must be enabled or disabled, not %q", state)
				}
				body.State = webhooks.WebhookUpdateState(state).ToPointer()
				mask = append(mask, "state")
			}
			if fs.Changed("uri") {
				body.URI = genai.Ptr(uri)
				mask = append(mask, "uri")
			}
			if fs.Changed("name") {
				body.Name = genai.Ptr(name)
				mask = append(mask, "name")
			}
			if fs.Changed("events") {
				evs, err := parseEvents(events)
				if err != nil {
					return err
				}
				for _, e := range evs {
					body.SubscribedEvents = append(body.SubscribedEvents, webhooks.WebhookUpdateSubscribedEvent(e))
				}
				mask = append(mask, "subscribed_events")
			}
			if len(mask) == 0 {
				return usageErr("nothing to update: give --state, --uri, --events or --name")
			}
			ctx := cmd.Context()
			g, err := a.geminiClient(ctx)
			if err != nil {
				return err
			}
			res, err := g.GenAI.Webhooks.Update(ctx, operations.UpdateWebhookRequest{
				ID: args[0], UpdateMask: genai.Ptr(strings.Join(mask, ",")), Body: body,
			})
			if err != nil {
				return fail("update webhook "+args[0], err)
			}
			if res == nil || res.Webhook == nil {
				return fail("update webhook "+args[0], errors.New("empty response"))
			}
			return a.printWebhook(*res.Webhook)
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "enabled or disabled")
	cmd.Flags().StringVar(&uri, "uri", "", "new endpoint URI")
	cmd.Flags().StringVar(&name, "name", "", "new display name")
	cmd.Flags().StringSliceVar(&events, "events", nil, "new subscribed events, comma separated")
	return cmd
}

func (a *app) whRotateCmd() *cobra.Command {
	var (
		immediately bool
		sf          secretFlags
	)
	cmd := &cobra.Command{
		Use:   "rotate WEBHOOK_ID [--immediately] (--secret-file F | --secret-manager S | --show-secret)",
		Short: "Rotate a webhook's signing secret",
		Long: `Asks Gemini for a new signing secret and stores it first in the secret
store, keeping the previous secrets: Gemini keeps signing with them for 24
hours, so Receivers verify during the switch. With --immediately the
previous secrets are revoked at once (deliveries in flight may fail
verification) and the store keeps only the new secret.`,
		Example: `  geminihooks webhooks rotate k0h9q38f6ejj --secret-manager projects/my-project/secrets/gemini-webhook-secrets
  geminihooks webhooks rotate k0h9q38f6ejj --immediately --secret-file secret.txt`,
		Args: exactArgs("WEBHOOK_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			ctx := cmd.Context()
			store, err := a.secretStore(ctx, sf)
			if err != nil {
				return err
			}
			g, err := a.geminiClient(ctx)
			if err != nil {
				return err
			}
			var previous []string
			if store != nil {
				if err := store.Check(ctx); err != nil {
					return fail("secret store", err)
				}
				if previous, err = store.Read(ctx); err != nil {
					return fail("read secret store", err)
				}
			}
			behavior := webhooks.RevocationBehaviorRevokePreviousSecretsAfterH24
			if immediately {
				behavior = webhooks.RevocationBehaviorRevokePreviousSecretsImmediately
			}
			res, err := g.GenAI.Webhooks.RotateSigningSecret(ctx, operations.RotateSigningSecretRequest{
				ID:   id,
				Body: webhooks.RotateSigningSecretRequest{RevocationBehavior: behavior.ToPointer()},
			}, noRetry)
			if err != nil {
				return fail("rotate signing secret of "+id, err)
			}
			if res == nil || res.WebhookRotateSigningSecretResponse == nil || res.WebhookRotateSigningSecretResponse.GetSecret() == nil {
				return fail("rotate signing secret of "+id, errors.New("response holds no secret"))
			}
			secret := *res.WebhookRotateSigningSecretResponse.GetSecret()
			wh, getErr := a.getWebhook(ctx, g.GenAI, id)
			if store != nil {
				list := []string{secret}
				if !immediately {
					if getErr == nil {
						previous = liveSecrets(previous, wh, secret)
					}
					for _, p := range previous {
						if p != secret {
							list = append(list, p)
						}
					}
				}
				if err := store.Write(ctx, list); err != nil {
					return &cliError{what: "store signing secret",
						err:   fmt.Errorf("the secret of webhook %s was rotated but could not be stored: %w; rotate again once the store is writable", id, err),
						retry: true}
				}
			}
			if getErr != nil {
				wh = webhooks.Webhook{ID: genai.Ptr(id)}
			}
			head := "Rotated the signing secret of webhook " + id + "; previous secrets stay valid for 24 hours"
			if immediately {
				head = "Rotated the signing secret of webhook " + id + "; previous secrets are revoked"
			}
			return a.printWebhookChange(wh, head, store, secret, sf.show)
		},
	}
	cmd.Flags().BoolVar(&immediately, "immediately", false, "revoke the previous secrets now instead of after 24 hours")
	sf.register(cmd)
	return cmd
}

// liveSecrets keeps the stored secrets Gemini still lists for the webhook
// (signing_secrets shows them truncated to "whsec_...<last 4>"). If the
// listing does not look like that, or does not include the new secret,
// nothing is dropped: a stale secret costs less than a rejected delivery.
func liveSecrets(stored []string, wh webhooks.Webhook, newSecret string) []string {
	var suffixes []string
	for _, s := range wh.SigningSecrets {
		t := deref(s.TruncatedSecret)
		i := strings.LastIndex(t, "...")
		if !strings.HasPrefix(t, webhook.SecretPrefix) || i < 0 || len(t)-(i+3) < 4 {
			return stored
		}
		suffixes = append(suffixes, t[i+3:])
	}
	matches := func(s string) bool {
		for _, suf := range suffixes {
			if strings.HasSuffix(s, suf) {
				return true
			}
		}
		return false
	}
	if !matches(newSecret) {
		return stored
	}
	var out []string
	for _, s := range stored {
		if matches(s) {
			out = append(out, s)
		}
	}
	return out
}

func (a *app) whPingCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "ping WEBHOOK_ID",
		Short:   "Ask Gemini to send a test delivery to a webhook",
		Example: `  geminihooks webhooks ping k0h9q38f6ejj`,
		Args:    exactArgs("WEBHOOK_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			g, err := a.geminiClient(ctx)
			if err != nil {
				return err
			}
			if _, err := g.GenAI.Webhooks.Ping(ctx, operations.PingWebhookRequest{ID: args[0], Body: &webhooks.PingWebhookRequest{}}); err != nil {
				return fail("ping webhook "+args[0], err)
			}
			if a.format == formatJSON {
				return a.printJSON(map[string]string{"id": args[0], "pinged": "true"})
			}
			fmt.Fprintf(a.stdout, "Pinged webhook %s.\n", args[0])
			return nil
		},
	}
}

func (a *app) whDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "delete WEBHOOK_ID",
		Short:   "Delete a webhook registration",
		Example: `  geminihooks webhooks delete k0h9q38f6ejj`,
		Args:    exactArgs("WEBHOOK_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			g, err := a.geminiClient(ctx)
			if err != nil {
				return err
			}
			if _, err := g.GenAI.Webhooks.Delete(ctx, operations.DeleteWebhookRequest{ID: args[0]}); err != nil {
				return fail("delete webhook "+args[0], err)
			}
			if a.format == formatJSON {
				return a.printJSON(map[string]string{"id": args[0], "deleted": "true"})
			}
			fmt.Fprintf(a.stdout, "Deleted webhook %s.\n", args[0])
			return nil
		},
	}
}
