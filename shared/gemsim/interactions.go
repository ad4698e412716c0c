package gemsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Interaction statuses used by the simulator.
const (
	interactionInProgress           = "in_progress"
	interactionRequiresAction       = "requires_action"
	interactionRequiresContinuation = "requires_continuation"
	interactionCompleted            = "completed"
	interactionFailed               = "failed"
	interactionCancelled            = "cancelled"
	interactionIncomplete           = "incomplete"
	interactionBudgetExceeded       = "budget_exceeded"
)

// SimulatedInteractionErrorCode is errors[0].code of a failed simulated
// interaction and data.error_code of its interaction.failed event: the
// Interactions API's codes are lowercase words (see doc.go).
const SimulatedInteractionErrorCode = "internal_error"

// active reports whether a background interaction is still running.
func (it *interaction) active() bool {
	return it.status == interactionInProgress || it.status == interactionRequiresContinuation
}

type funcResult struct {
	callID, name, result string
}

type interaction struct {
	id         string
	model      string
	agent      json.RawMessage
	input      json.RawMessage
	text       string
	background bool
	previousID string
	hookConfig json.RawMessage
	hookURIs   []string
	labels     map[string]string
	sysInstr   string
	created    time.Time
	updated    time.Time

	status  string
	outcome plannedInteraction
	// token is the continuation_token shown while requires_continuation.
	token string
}

// plannedInteraction is the deterministic result computed at creation.
type plannedInteraction struct {
	status string
	steps  []any
	out    string
	errMsg string
	// pause: show requires_continuation for the second half of the run.
	pause bool
}

// parseInteractionInput extracts the user text and function results from an
// input that is a string, a Content, or an array of Content or Step.
func parseInteractionInput(raw json.RawMessage) (string, []funcResult) {
	if len(raw) == 0 {
		return "", nil
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		items = []json.RawMessage{raw}
	}
	var texts []string
	var results []funcResult
	for _, it := range items {
		var obj struct {
			Type    string `json:"type"`
			Text    string `json:"text"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
			CallID string          `json:"call_id"`
			Name   string          `json:"name"`
			Result json.RawMessage `json:"result"`
		}
		if json.Unmarshal(it, &obj) != nil {
			continue
		}
		switch obj.Type {
		case "text":
			texts = append(texts, obj.Text)
		case "user_input":
			for _, c := range obj.Content {
				if c.Type == "text" {
					texts = append(texts, c.Text)
				}
			}
		case "function_result":
			res := string(obj.Result)
			var rs string
			if json.Unmarshal(obj.Result, &rs) == nil {
				res = rs
			}
			results = append(results, funcResult{callID: obj.CallID, name: obj.Name, result: res})
		}
	}
	return strings.Join(texts, "\n"), results
}

// declaredFunctions lists the names of "function" tools.
func declaredFunctions(tools []json.RawMessage) []string {
	var names []string
	for _, t := range tools {
		var tool struct {
			Type string `json:"type"`
			Name string `json:"name"`
		}
		if json.Unmarshal(t, &tool) == nil && tool.Type == "function" && tool.Name != "" {
			names = append(names, tool.Name)
		}
	}
	return names
}

func callID(text, name string, i int) string {
	sum := sha256.Sum256([]byte(text + "\x00" + name + "\x00" + strconv.Itoa(i)))
	return "call_" + hex.EncodeToString(sum[:8])
}

// planInteraction applies the documented rules (doc.go) to compute the final
// state of an interaction from its inputs.
func planInteraction(model, text string, results []funcResult, funcs []string) plannedInteraction {
	switch {
	case strings.HasPrefix(model, "fail"), strings.Contains(text, TriggerFailInteraction):
		return plannedInteraction{status: interactionFailed, errMsg: "simulated interaction failure"}
	case strings.Contains(text, TriggerIncomplete):
		out := "echo: " + text[:len(text)/2] // cut short, as at max_output_tokens
		return plannedInteraction{status: interactionIncomplete, out: out, steps: []any{textStep(out)}}
	case strings.Contains(text, TriggerBudgetExceeded):
		return plannedInteraction{status: interactionBudgetExceeded, errMsg: "simulated budget exceeded (" + TriggerBudgetExceeded + ")"}
	case len(results) > 0:
		parts := make([]string, len(results))
		for i, r := range results {
			n := r.name
			if n == "" {
				n = r.callID
			}
			parts[i] = n + "=" + r.result
		}
		out := "function results: " + strings.Join(parts, "; ")
		return plannedInteraction{status: interactionCompleted, out: out, steps: []any{textStep(out)}}
	case len(funcs) > 0:
		var call []string
		for _, f := range funcs {
			if containsWord(text, f) {
				call = append(call, f)
			}
		}
		if len(call) == 0 {
			call = funcs[:1]
		}
		steps := make([]any, len(call))
		for i, f := range call {
			steps[i] = map[string]any{"type": "function_call", "id": callID(text, f, i), "name": f, "arguments": map[string]any{"input": text}}
		}
		return plannedInteraction{status: interactionRequiresAction, steps: steps}
	default:
		out := "echo: " + text
		return plannedInteraction{status: interactionCompleted, out: out, steps: []any{textStep(out)},
			pause: strings.Contains(text, TriggerContinuation)}
	}
}

// containsWord reports whether name occurs in text delimited by characters
// that cannot be part of an identifier.
func containsWord(text, name string) bool {
	isIdent := func(b byte) bool {
		return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
	}
	for i := 0; ; {
		j := strings.Index(text[i:], name)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(name)
		if (start == 0 || !isIdent(text[start-1])) && (end == len(text) || !isIdent(text[end])) {
			return true
		}
		i = start + 1
	}
}

func textStep(text string) map[string]any {
	return map[string]any{"type": "model_output", "content": []any{map[string]any{"type": "text", "text": text}}}
}

func (s *Simulator) handleInteractionCreate(w http.ResponseWriter, r *http.Request, _ routeParams) {
	var body struct {
		Model                 string            `json:"model"`
		Agent                 json.RawMessage   `json:"agent"`
		Input                 json.RawMessage   `json:"input"`
		Background            bool              `json:"background"`
		Stream                bool              `json:"stream"`
		Tools                 []json.RawMessage `json:"tools"`
		PreviousInteractionID string            `json:"previous_interaction_id"`
		WebhookConfig         json.RawMessage   `json:"webhook_config"`
		Labels                map[string]string `json:"labels"`
		SystemInstruction     string            `json:"system_instruction"`
	}
	if err := readJSON(r, &body); err != nil {
		writeInteractionError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	if body.Model == "" && len(body.Agent) == 0 {
		writeInteractionError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "one of model or agent is required")
		return
	}
	if body.Stream {
		writeInteractionError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "streaming is not supported by the simulator")
		return
	}
	var hookURIs []string
	if len(body.WebhookConfig) > 0 && string(body.WebhookConfig) != "null" {
		if !body.Background {
			writeInteractionError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "background must be true when webhook_config is specified")
			return
		}
		var cfg webhookConfig
		if err := json.Unmarshal(body.WebhookConfig, &cfg); err != nil {
			writeInteractionError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "invalid webhook_config: "+err.Error())
			return
		}
		var err error
		if hookURIs, err = cfg.validURIs(); err != nil {
			writeInteractionError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
			return
		}
	}
	if body.PreviousInteractionID != "" {
		s.mu.Lock()
		_, ok := s.interactions[body.PreviousInteractionID]
		s.mu.Unlock()
		if !ok {
			writeInteractionError(w, http.StatusNotFound, "NOT_FOUND", "previous interaction "+body.PreviousInteractionID+" not found")
			return
		}
	}
	text, results := parseInteractionInput(body.Input)
	now := s.now()
	it := &interaction{
		model: body.Model, agent: body.Agent, input: body.Input, text: text, background: body.Background,
		previousID: body.PreviousInteractionID, hookConfig: body.WebhookConfig, hookURIs: hookURIs,
		labels: body.Labels, sysInstr: body.SystemInstruction, created: now, updated: now,
		outcome: planInteraction(body.Model, text, results, declaredFunctions(body.Tools)),
	}
	if it.background {
		it.status = interactionInProgress
	} else {
		it.status = it.outcome.status
	}
	s.mu.Lock()
	for {
		it.id = "v1_" + s.newID(24)
		if _, dup := s.interactions[it.id]; !dup {
			break
		}
	}
	s.interactions[it.id] = it
	resp := s.interactionJSONLocked(it, true)
	s.mu.Unlock()
	if it.background {
		d := s.opts.Durations.of(KindInteraction, it.id)
		if it.outcome.pause {
			s.after(d/2, func() { s.pauseInteraction(it.id) })
		}
		s.after(d, func() { _ = s.finishInteraction(it.id) })
	}
	writeJSON(w, http.StatusOK, resp)
}

// pauseInteraction shows a running background interaction stopped at the
// per-request decode limit (requires_continuation, with a token); the
// server continues it by itself, so no event is sent.
func (s *Simulator) pauseInteraction(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := s.interactions[id]; it != nil && it.status == interactionInProgress {
		it.status, it.updated, it.token = interactionRequiresContinuation, s.now(), "ct_"+s.newID(16)
	}
}

func (s *Simulator) finishInteraction(id string) error {
	s.mu.Lock()
	it := s.interactions[id]
	if it == nil {
		s.mu.Unlock()
		return fmt.Errorf("interaction %s: %w", id, ErrNotFound)
	}
	if !it.active() {
		s.mu.Unlock()
		return nil
	}
	it.status, it.token = it.outcome.status, ""
	it.updated = s.now()
	uris := it.hookURIs
	s.mu.Unlock()
	data := map[string]any{"id": s.eventID(id)}
	var typ string
	switch it.outcome.status {
	case interactionCompleted:
		typ = "interaction.completed"
	case interactionRequiresAction:
		typ = "interaction.requires_action"
	case interactionIncomplete, interactionBudgetExceeded:
		// An assumption: an interaction that ended without its full
		// answer is announced as failed, the status as the code.
		typ = "interaction.failed"
		data["error_code"], data["error_message"] = it.outcome.status, "interaction ended "+it.outcome.status
	default:
		typ = "interaction.failed"
		data["error_code"], data["error_message"] = SimulatedInteractionErrorCode, it.outcome.errMsg
	}
	s.emit(typ, data, uris)
	return nil
}

func (s *Simulator) interactionJSONLocked(it *interaction, includeInput bool) map[string]any {
	m := map[string]any{
		"id":      it.id,
		"status":  it.status,
		"created": it.created.UTC().Format(time.RFC3339),
		"updated": it.updated.UTC().Format(time.RFC3339),
	}
	if it.model != "" {
		m["model"] = it.model
	}
	if len(it.agent) > 0 {
		m["agent"] = it.agent
	}
	if it.previousID != "" {
		m["previous_interaction_id"] = it.previousID
	}
	if len(it.hookConfig) > 0 && string(it.hookConfig) != "null" {
		m["webhook_config"] = it.hookConfig
	}
	if len(it.labels) > 0 {
		m["labels"] = it.labels
	}
	if it.sysInstr != "" {
		m["system_instruction"] = it.sysInstr
	}
	if includeInput && len(it.input) > 0 {
		m["input"] = it.input
	}
	switch it.status {
	case interactionCompleted, interactionRequiresAction, interactionIncomplete:
		m["steps"] = it.outcome.steps
		in, out := Tokens(it.text), Tokens(it.outcome.out)
		m["usage"] = map[string]any{"total_input_tokens": in, "total_output_tokens": out, "total_tokens": in + out}
	case interactionRequiresContinuation:
		m["continuation_token"] = it.token
	case interactionFailed:
		m["errors"] = []any{map[string]any{"code": SimulatedInteractionErrorCode, "message": it.outcome.errMsg}}
	case interactionBudgetExceeded:
		m["errors"] = []any{map[string]any{"code": "budget_exceeded", "message": it.outcome.errMsg}}
	}
	return m
}

func (s *Simulator) handleInteractionGet(w http.ResponseWriter, r *http.Request, p routeParams) {
	if r.URL.Query().Get("stream") == "true" {
		writeInteractionError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "streaming is not supported by the simulator")
		return
	}
	s.mu.Lock()
	it := s.interactions[p.id]
	var resp map[string]any
	if it != nil {
		resp = s.interactionJSONLocked(it, r.URL.Query().Get("include_input") == "true")
	}
	s.mu.Unlock()
	if it == nil {
		writeInteractionError(w, http.StatusNotFound, "NOT_FOUND", "Interaction "+p.id+" not found.")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Simulator) handleInteractionCancel(w http.ResponseWriter, r *http.Request, p routeParams) {
	s.mu.Lock()
	it := s.interactions[p.id]
	if it == nil {
		s.mu.Unlock()
		writeInteractionError(w, http.StatusNotFound, "NOT_FOUND", "Interaction "+p.id+" not found.")
		return
	}
	if !it.background || !it.active() {
		st := it.status
		s.mu.Unlock()
		writeInteractionError(w, http.StatusBadRequest, "FAILED_PRECONDITION", "only an in-progress background interaction can be cancelled (status "+st+")")
		return
	}
	it.status = interactionCancelled
	it.updated = s.now()
	resp := s.interactionJSONLocked(it, false)
	uris := it.hookURIs
	s.mu.Unlock()
	s.emit("interaction.cancelled", map[string]any{"id": s.eventID(p.id)}, uris)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Simulator) handleInteractionDelete(w http.ResponseWriter, r *http.Request, p routeParams) {
	s.mu.Lock()
	it := s.interactions[p.id]
	if it != nil {
		delete(s.interactions, p.id)
		if it.active() {
			it.status = interactionCancelled // pending timer must not emit
		}
	}
	s.mu.Unlock()
	if it == nil {
		writeInteractionError(w, http.StatusNotFound, "NOT_FOUND", "Interaction "+p.id+" not found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}
