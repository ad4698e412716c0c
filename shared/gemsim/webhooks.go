package gemsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/geminihooks/geminihooks/shared/webhook"
)

// Webhook states (the WebhookService enum).
const (
	StateEnabled                       = "enabled"
	StateDisabled                      = "disabled"
	StateDisabledDueToFailedDeliveries = "disabled_due_to_failed_deliveries"
)

// PingEventType is the type of the event delivered by webhooks.ping. The real
// value is undocumented; receivers should acknowledge unknown verified types.
const PingEventType = "webhook.ping"

// RotationGrace is how long a previous secret keeps signing after a
// rotation with revoke_previous_secrets_after_h24 (sim-time).
const RotationGrace = 24 * time.Hour

// SubscribableEvents are the event types a static webhook may subscribe to
// (the SDK's WebhookSubscribedEvent enum; *.cancelled are not subscribable).
var SubscribableEvents = []string{
	"batch.succeeded", "batch.expired", "batch.failed",
	"interaction.requires_action", "interaction.completed", "interaction.failed",
	"video.generated",
}

type signingSecret struct {
	secret  string
	expires time.Time // zero: current secret
}

type hook struct {
	id       string
	name     string
	uri      string
	events   []string
	state    string
	secrets  []signingSecret // newest first
	created  time.Time
	updated  time.Time
	failures int // consecutive failed attempts
}

// webhookConfig is the per-job webhook_config / webhookConfig object. Its
// user metadata is accepted and ignored: where the real API echoes it in
// events is undocumented.
type webhookConfig struct {
	URIs []string `json:"uris"`
}

func (c *webhookConfig) validURIs() ([]string, error) {
	if c == nil {
		return nil, nil
	}
	for _, u := range c.URIs {
		if err := validURI(u); err != nil {
			return nil, fmt.Errorf("webhook_config.uris: %w", err)
		}
	}
	return c.URIs, nil
}

func validURI(u string) error {
	if u == "" {
		return fmt.Errorf("uri is required")
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return fmt.Errorf("invalid uri %q: must be an absolute http(s) URL", u)
	}
	return nil
}

func validEvents(evs []string) error {
	if len(evs) == 0 {
		return fmt.Errorf("subscribed_events must not be empty")
	}
	for _, e := range evs {
		if !slices.Contains(SubscribableEvents, e) {
			return fmt.Errorf("Invalid value at 'webhook.subscribed_events' (type.googleapis.com/google.ai.generativelanguage.v1beta.Webhook.SubscribedEvent), %q", e)
		}
	}
	return nil
}

func truncate(secret string) string {
	if len(secret) < 4 {
		return webhook.SecretPrefix + "..."
	}
	return webhook.SecretPrefix + "..." + secret[len(secret)-4:]
}

// activeSecretsLocked drops expired previous secrets and returns the rest,
// newest first.
func (s *Simulator) activeSecretsLocked(h *hook) []string {
	now := s.now()
	keep := h.secrets[:0]
	for _, sec := range h.secrets {
		if sec.expires.IsZero() || now.Before(sec.expires) {
			keep = append(keep, sec)
		}
	}
	h.secrets = keep
	out := make([]string, len(keep))
	for i, sec := range keep {
		out[i] = sec.secret
	}
	return out
}

func (s *Simulator) hookJSONLocked(h *hook) map[string]any {
	s.activeSecretsLocked(h)
	secs := []any{}
	for _, sec := range h.secrets {
		m := map[string]any{"truncated_secret": truncate(sec.secret)}
		if !sec.expires.IsZero() {
			m["expire_time"] = fmtTime(sec.expires)
		}
		secs = append(secs, m)
	}
	m := map[string]any{
		"id":                h.id,
		"uri":               h.uri,
		"subscribed_events": h.events,
		"state":             h.state,
		"signing_secrets":   secs,
		"create_time":       fmtTime(h.created),
		"update_time":       fmtTime(h.updated),
	}
	if h.name != "" {
		m["name"] = h.name
	}
	return m
}

// AddWebhook registers a static webhook without the SDK (for tests and the
// dev stack) and returns its id and signing secret. Events default to every
// subscribable event.
func (s *Simulator) AddWebhook(uri string, events ...string) (id, secret string, err error) {
	if len(events) == 0 {
		events = SubscribableEvents
	}
	if err := validURI(uri); err != nil {
		return "", "", fmt.Errorf("gemsim: add webhook: %w", err)
	}
	if err := validEvents(events); err != nil {
		return "", "", fmt.Errorf("gemsim: add webhook: %w", err)
	}
	h := s.createHook("", uri, events)
	return h.id, h.secrets[0].secret, nil
}

// WebhookState returns the state of a static webhook ("" if unknown).
func (s *Simulator) WebhookState(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hooks[id]; h != nil {
		return h.state
	}
	return ""
}

func (s *Simulator) createHook(name, uri string, events []string) *hook {
	now := s.now()
	h := &hook{name: name, uri: uri, events: slices.Clone(events), state: StateEnabled, created: now, updated: now,
		secrets: []signingSecret{{secret: webhook.NewSecret()}}}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		h.id = s.newID(36)
		if _, dup := s.hooks[h.id]; !dup {
			break
		}
	}
	s.hooks[h.id] = h
	s.hookOrder = append(s.hookOrder, h.id)
	return h
}

type webhookBody struct {
	Name             *string  `json:"name"`
	URI              *string  `json:"uri"`
	SubscribedEvents []string `json:"subscribed_events"`
	State            *string  `json:"state"`
}

func (s *Simulator) handleWebhookCreate(w http.ResponseWriter, r *http.Request, _ routeParams) {
	var body webhookBody
	if err := readJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	uri := ""
	if body.URI != nil {
		uri = *body.URI
	}
	if err := validURI(uri); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	if err := validEvents(body.SubscribedEvents); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	name := ""
	if body.Name != nil {
		name = *body.Name
	}
	h := s.createHook(name, uri, body.SubscribedEvents)
	s.mu.Lock()
	resp := s.hookJSONLocked(h)
	resp["new_signing_secret"] = h.secrets[0].secret
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func (s *Simulator) handleWebhookList(w http.ResponseWriter, r *http.Request, _ routeParams) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start, end, next, err := pageBounds(len(s.hookOrder), queryInt(r, "page_size", "pageSize"), queryStr(r, "page_token", "pageToken"), 50, 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	list := []any{}
	for _, id := range s.hookOrder[start:end] {
		list = append(list, s.hookJSONLocked(s.hooks[id]))
	}
	resp := map[string]any{"webhooks": list}
	if next != "" {
		resp["next_page_token"] = next
	}
	writeJSON(w, http.StatusOK, resp)
}

func notFoundHook(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "NOT_FOUND", "Webhook "+id+" not found.")
}

func (s *Simulator) handleWebhookGet(w http.ResponseWriter, r *http.Request, p routeParams) {
	s.mu.Lock()
	h := s.hooks[p.id]
	var resp map[string]any
	if h != nil {
		resp = s.hookJSONLocked(h)
	}
	s.mu.Unlock()
	if h == nil {
		notFoundHook(w, p.id)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleWebhookUpdate applies a PATCH. Without update_mask every field
// present in the body is updated (AIP-134); with it only the listed fields
// (name, uri, state, subscribed_events; camelCase accepted), and "*" means
// all of them.
func (s *Simulator) handleWebhookUpdate(w http.ResponseWriter, r *http.Request, p routeParams) {
	raw := map[string]json.RawMessage{}
	var body webhookBody
	if err := readJSON(r, &raw); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &body); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	fields := map[string]bool{}
	mask := queryStr(r, "update_mask", "updateMask")
	if mask == "" || mask == "*" {
		for _, f := range []string{"name", "uri", "state", "subscribed_events"} {
			if _, ok := raw[f]; ok || mask == "*" {
				fields[f] = true
			}
		}
	} else {
		for _, f := range strings.Split(mask, ",") {
			f = strings.TrimSpace(f)
			if f == "subscribedEvents" {
				f = "subscribed_events"
			}
			switch f {
			case "name", "uri", "state", "subscribed_events":
				fields[f] = true
			default:
				writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("invalid update_mask field %q", f))
				return
			}
		}
	}
	if len(fields) == 0 {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "update_mask selects no field to update")
		return
	}
	if fields["uri"] {
		u := ""
		if body.URI != nil {
			u = *body.URI
		}
		if err := validURI(u); err != nil {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
			return
		}
	}
	if fields["subscribed_events"] {
		if err := validEvents(body.SubscribedEvents); err != nil {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
			return
		}
	}
	if fields["state"] {
		if body.State == nil || (*body.State != StateEnabled && *body.State != StateDisabled) {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "state must be \"enabled\" or \"disabled\"")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hooks[p.id]
	if h == nil {
		notFoundHook(w, p.id)
		return
	}
	if fields["name"] {
		h.name = ""
		if body.Name != nil {
			h.name = *body.Name
		}
	}
	if fields["uri"] {
		h.uri = *body.URI
	}
	if fields["subscribed_events"] {
		h.events = slices.Clone(body.SubscribedEvents)
	}
	if fields["state"] {
		h.state = *body.State
		if h.state == StateEnabled {
			h.failures = 0
		}
	}
	h.updated = s.now()
	writeJSON(w, http.StatusOK, s.hookJSONLocked(h))
}

func (s *Simulator) handleWebhookDelete(w http.ResponseWriter, r *http.Request, p routeParams) {
	s.mu.Lock()
	h := s.hooks[p.id]
	if h != nil {
		delete(s.hooks, p.id)
		s.hookOrder = slices.DeleteFunc(s.hookOrder, func(id string) bool { return id == p.id })
	}
	s.mu.Unlock()
	if h == nil {
		notFoundHook(w, p.id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// handleWebhookPing delivers a PingEventType event to the webhook's uri,
// whatever its subscriptions and state.
func (s *Simulator) handleWebhookPing(w http.ResponseWriter, r *http.Request, p routeParams) {
	s.mu.Lock()
	h := s.hooks[p.id]
	s.mu.Unlock()
	if h == nil {
		notFoundHook(w, p.id)
		return
	}
	s.deliverStatic(h.id, PingEventType, map[string]any{"id": h.id}, true)
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Simulator) handleWebhookRotate(w http.ResponseWriter, r *http.Request, p routeParams) {
	var body struct {
		RevocationBehavior string `json:"revocation_behavior"`
	}
	if err := readJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	switch body.RevocationBehavior {
	case "", "revoke_previous_secrets_after_h24", "revoke_previous_secrets_immediately":
	default:
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Invalid value at 'revocation_behavior', %q", body.RevocationBehavior))
		return
	}
	secret := webhook.NewSecret()
	s.mu.Lock()
	h := s.hooks[p.id]
	if h == nil {
		s.mu.Unlock()
		notFoundHook(w, p.id)
		return
	}
	now := s.now()
	s.activeSecretsLocked(h) // prune already expired secrets
	next := []signingSecret{{secret: secret}}
	if body.RevocationBehavior != "revoke_previous_secrets_immediately" {
		exp := now.Add(RotationGrace)
		for _, old := range h.secrets {
			if old.expires.IsZero() || old.expires.After(exp) {
				old.expires = exp
			}
			next = append(next, old)
		}
	}
	h.secrets = next
	h.updated = now
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"secret": secret})
}
