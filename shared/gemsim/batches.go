package gemsim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Batch states as the API spells them (the SDK maps them to JOB_STATE_*).
const (
	batchPending   = "BATCH_STATE_PENDING"
	batchRunning   = "BATCH_STATE_RUNNING"
	batchSucceeded = "BATCH_STATE_SUCCEEDED"
	batchFailed    = "BATCH_STATE_FAILED"
	batchCancelled = "BATCH_STATE_CANCELLED"
	batchExpired   = "BATCH_STATE_EXPIRED"
)

// Trigger strings recognised in inputs (see doc.go).
const (
	// TriggerFailLine in a request's text makes that request (line) fail.
	TriggerFailLine = "FAIL_LINE"
	// TriggerFail as a batch display-name prefix makes the whole batch fail.
	TriggerFail = "FAIL"
	// TriggerExpire as a batch display-name prefix makes the batch expire.
	TriggerExpire = "EXPIRE"
	// TriggerFailInteraction in an interaction's input text makes it fail.
	TriggerFailInteraction = "FAIL_INTERACTION"
	// TriggerFailVideo in a video prompt makes the operation fail.
	TriggerFailVideo = "FAIL_VIDEO"
	// TriggerRAIFilter in a video prompt makes the operation complete with
	// every sample filtered by safety (raiMediaFilteredCount, no video).
	TriggerRAIFilter = "RAI_FILTER"
	// TriggerIncomplete in an interaction's input ends it "incomplete",
	// with partial output.
	TriggerIncomplete = "INCOMPLETE_INTERACTION"
	// TriggerBudgetExceeded in an interaction's input ends it
	// "budget_exceeded".
	TriggerBudgetExceeded = "BUDGET_EXCEEDED"
	// TriggerContinuation in a background interaction's input makes it
	// show "requires_continuation" (with a continuation_token) for the
	// second half of its duration before it completes: the server
	// continues background interactions by itself.
	TriggerContinuation = "REQUIRES_CONTINUATION"
)

// SimulatedBatchErrorCode is data.error_code of a simulated batch.failed
// event: the canonical status name of the operation's error (code 13).
const SimulatedBatchErrorCode = "INTERNAL"

func terminalBatch(state string) bool {
	switch state {
	case batchSucceeded, batchFailed, batchCancelled, batchExpired:
		return true
	}
	return false
}

type batch struct {
	id          string
	model       string // "models/x"
	displayName string
	state       string
	outcome     string // terminal state it will reach on its own
	created     time.Time
	updated     time.Time
	ended       time.Time

	inline    []json.RawMessage // inline request items {"request":…, "metadata":…}
	inputFile string            // file id of a JSONL input
	inputData []byte
	requests  int

	responses  []any  // inline results, set on success
	outputFile string // output file id, set on success
	succeeded  int
	failedReq  int

	errCode, errMsg string
	hookURIs        []string
}

// ---- the GenerateContent echo model ----

type gcRequest struct {
	Contents []struct {
		Parts []struct {
			Text string `json:"text"`
		} `json:"parts"`
	} `json:"contents"`
}

type gcPart struct {
	Text string `json:"text"`
}
type gcContent struct {
	Parts []gcPart `json:"parts"`
	Role  string   `json:"role"`
}
type gcCandidate struct {
	Content      gcContent `json:"content"`
	FinishReason string    `json:"finishReason"`
	Index        int       `json:"index"`
}
type gcUsage struct {
	PromptTokenCount     int `json:"promptTokenCount"`
	CandidatesTokenCount int `json:"candidatesTokenCount"`
	TotalTokenCount      int `json:"totalTokenCount"`
}
type gcResponse struct {
	Candidates    []gcCandidate `json:"candidates"`
	UsageMetadata gcUsage       `json:"usageMetadata"`
	ModelVersion  string        `json:"modelVersion"`
}

// gcError is a per-request error in batch output: a google.rpc.Status,
// whose code is the canonical code (3 = INVALID_ARGUMENT), without the
// "status" name the HTTP error body has.
type gcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Canonical codes the simulator uses.
const (
	codeInvalidArgument = 3
	codeInternal        = 13
)

// Tokens is the simulator's token count for a text: ceil(len(bytes)/4), at
// least 1 for non-empty text.
func Tokens(s string) int { return (len(s) + 3) / 4 }

func requestText(raw json.RawMessage) (string, error) {
	var req gcRequest
	if len(raw) == 0 {
		return "", fmt.Errorf("request is missing")
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		return "", fmt.Errorf("invalid GenerateContentRequest: %v", err)
	}
	var parts []string
	for _, c := range req.Contents {
		for _, p := range c.Parts {
			if p.Text != "" {
				parts = append(parts, p.Text)
			}
		}
	}
	return strings.Join(parts, "\n"), nil
}

// echoResponse is the deterministic model output for input text.
func echoResponse(model, in, out string) gcResponse {
	pt, ct := Tokens(in), Tokens(out)
	return gcResponse{
		Candidates:    []gcCandidate{{Content: gcContent{Parts: []gcPart{{Text: out}}, Role: "model"}, FinishReason: "STOP"}},
		UsageMetadata: gcUsage{PromptTokenCount: pt, CandidatesTokenCount: ct, TotalTokenCount: pt + ct},
		ModelVersion:  strings.TrimPrefix(model, "models/"),
	}
}

// answer computes the result of one request: a response or a per-request
// error (FAIL_LINE or an unparsable request).
func answer(model string, raw json.RawMessage) (*gcResponse, *gcError) {
	text, err := requestText(raw)
	if err != nil {
		return nil, &gcError{Code: codeInvalidArgument, Message: err.Error()}
	}
	if strings.Contains(text, TriggerFailLine) {
		return nil, &gcError{Code: codeInvalidArgument, Message: "simulated request failure (" + TriggerFailLine + ")"}
	}
	r := echoResponse(model, text, "echo: "+text)
	return &r, nil
}

// ---- handlers ----

func (s *Simulator) handleBatchCreate(w http.ResponseWriter, r *http.Request, p routeParams) {
	var body struct {
		Batch struct {
			DisplayName string `json:"displayName"`
			InputConfig struct {
				FileName string `json:"fileName"`
				Requests *struct {
					Requests []json.RawMessage `json:"requests"`
				} `json:"requests"`
			} `json:"inputConfig"`
			WebhookConfig *webhookConfig `json:"webhookConfig"`
		} `json:"batch"`
	}
	if err := readJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	if strings.TrimSpace(body.Batch.DisplayName) == "" {
		// The REST reference marks batch.display_name required.
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "batch.display_name is required")
		return
	}
	in := body.Batch.InputConfig
	hasFile, hasInline := in.FileName != "", in.Requests != nil
	if hasFile == hasInline {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "batch.input_config must set exactly one of file_name or requests")
		return
	}
	uris, err := body.Batch.WebhookConfig.validURIs()
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	now := s.now()
	b := &batch{
		model:       "models/" + p.model,
		displayName: body.Batch.DisplayName,
		state:       batchPending,
		outcome:     batchSucceeded,
		created:     now,
		updated:     now,
		hookURIs:    uris,
	}
	if hasInline {
		if len(in.Requests.Requests) == 0 {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "batch.input_config.requests.requests must not be empty")
			return
		}
		b.inline = in.Requests.Requests
		b.requests = len(b.inline)
	} else {
		id := strings.TrimPrefix(in.FileName, "files/")
		f := s.lookupFile(id)
		if f == nil || f.gen != nil {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "input file "+in.FileName+" not found")
			return
		}
		b.inputFile, b.inputData = id, f.data
		b.requests = countLines(f.data)
	}
	switch {
	case strings.HasPrefix(p.model, "fail"), strings.HasPrefix(b.displayName, TriggerFail):
		b.outcome = batchFailed
		b.errCode, b.errMsg = SimulatedBatchErrorCode, "simulated batch failure"
	case strings.HasPrefix(b.displayName, TriggerExpire):
		b.outcome = batchExpired
	}
	s.mu.Lock()
	for {
		b.id = s.newID(14)
		if _, dup := s.batches[b.id]; !dup {
			break
		}
	}
	s.batches[b.id] = b
	s.batchOrder = append(s.batchOrder, b.id)
	resp := s.batchJSONLocked(b)
	s.mu.Unlock()

	d := s.opts.Durations.of(KindBatch, "batches/"+b.id)
	s.after(d/2, func() { s.setBatchRunning(b.id) })
	s.after(d, func() { _ = s.finishBatch(b.id, "") })
	writeJSON(w, http.StatusOK, resp)
}

func countLines(data []byte) int {
	n := 0
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	return n
}

func (s *Simulator) setBatchRunning(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.batches[id]; b != nil && b.state == batchPending {
		b.state = batchRunning
		b.updated = s.now()
	}
}

// finishBatch moves the batch to its terminal state (force overrides the
// natural outcome) and emits the event. Outputs are computed outside the
// lock; a concurrent cancel wins.
func (s *Simulator) finishBatch(id, force string) error {
	s.mu.Lock()
	b := s.batches[id]
	if b == nil {
		s.mu.Unlock()
		return fmt.Errorf("batch %s: %w", id, ErrNotFound)
	}
	if terminalBatch(b.state) {
		s.mu.Unlock()
		return nil
	}
	outcome := b.outcome
	if force != "" {
		outcome = force
	}
	model, inline, input := b.model, b.inline, b.inputData
	s.mu.Unlock()

	var (
		responses []any
		out       *simFile
		ok, bad   int
	)
	if outcome == batchSucceeded {
		if inline != nil {
			responses, ok, bad = inlineResults(model, inline)
		} else {
			gen := batchOutputGen(model, input)
			cw := &countingWriter{}
			_ = gen(cw)
			ok, bad = countResults(model, input)
			out = &simFile{displayName: "batch-" + id + "-output", mime: "application/jsonl", source: "GENERATED", created: s.now(), gen: gen, size: cw.n}
		}
	}

	s.mu.Lock()
	if terminalBatch(b.state) || s.batches[id] == nil {
		s.mu.Unlock()
		return nil
	}
	now := s.now()
	b.state, b.updated, b.ended = outcome, now, now
	b.responses, b.succeeded, b.failedReq = responses, ok, bad
	data := map[string]any{"id": s.eventID("batches/" + id)}
	switch outcome {
	case batchSucceeded:
		if out != nil {
			s.addFileLocked(out)
			b.outputFile = out.id
			data["output_file_uri"] = "files/" + out.id
		}
	case batchFailed:
		if b.errCode == "" {
			b.errCode, b.errMsg = SimulatedBatchErrorCode, "simulated batch failure"
		}
		data["error_code"], data["error_message"] = b.errCode, b.errMsg
	}
	uris := b.hookURIs
	s.mu.Unlock()
	s.emit(batchEventType(outcome), data, uris)
	return nil
}

func batchEventType(state string) string {
	switch state {
	case batchSucceeded:
		return "batch.succeeded"
	case batchFailed:
		return "batch.failed"
	case batchExpired:
		return "batch.expired"
	default:
		return "batch.cancelled"
	}
}

func inlineResults(model string, items []json.RawMessage) ([]any, int, int) {
	out := make([]any, 0, len(items))
	ok, bad := 0, 0
	for _, item := range items {
		var it struct {
			Request  json.RawMessage   `json:"request"`
			Metadata map[string]string `json:"metadata"`
		}
		res := map[string]any{}
		if err := json.Unmarshal(item, &it); err != nil {
			res["error"] = gcError{Code: codeInvalidArgument, Message: "invalid inlined request: " + err.Error()}
			bad++
			out = append(out, res)
			continue
		}
		if it.Metadata != nil {
			res["metadata"] = it.Metadata
		}
		if resp, e := answer(model, it.Request); e != nil {
			res["error"] = e
			bad++
		} else {
			res["response"] = resp
			ok++
		}
		out = append(out, res)
	}
	return out, ok, bad
}

// inputLine is one line of a JSONL batch input. SimulateLines/LineBytes are
// simulator extensions (see doc.go).
type inputLine struct {
	Key           string          `json:"key"`
	Metadata      json.RawMessage `json:"metadata"`
	Request       json.RawMessage `json:"request"`
	SimulateLines int             `json:"simulate_lines"`
	LineBytes     int             `json:"line_bytes"`
}

type outputLine struct {
	Key      string          `json:"key,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
	Response *gcResponse     `json:"response,omitempty"`
	Error    *gcError        `json:"error,omitempty"`
}

func newLineScanner(input []byte) *bufio.Scanner {
	sc := bufio.NewScanner(bytes.NewReader(input))
	sc.Buffer(make([]byte, 0, 64<<10), maxJSONBody)
	return sc
}

func countResults(model string, input []byte) (ok, bad int) {
	sc := newLineScanner(input)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var in inputLine
		if err := json.Unmarshal(line, &in); err != nil {
			bad++
			continue
		}
		if in.SimulateLines > 0 {
			ok += in.SimulateLines
			continue
		}
		if _, e := answer(model, in.Request); e != nil {
			bad++
		} else {
			ok++
		}
	}
	return ok, bad
}

// batchOutputGen returns a generator for the JSONL output of a file batch,
// one line per input line (in input order), expanding simulate_lines
// directives. It never holds more than one line in memory.
func batchOutputGen(model string, input []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		sc := newLineScanner(input)
		n := 0
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			n++
			var in inputLine
			var out outputLine
			if err := json.Unmarshal(line, &in); err != nil {
				out = outputLine{Key: "line-" + strconv.Itoa(n), Error: &gcError{Code: codeInvalidArgument, Message: "invalid JSONL line: " + err.Error()}}
			} else if in.SimulateLines > 0 {
				if err := writeSimulated(w, model, in); err != nil {
					return err
				}
				continue
			} else {
				out.Key, out.Metadata = in.Key, in.Metadata
				out.Response, out.Error = answer(model, in.Request)
			}
			if err := writeLine(w, out); err != nil {
				return err
			}
		}
		return sc.Err()
	}
}

func writeLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

const filler = "lorem ipsum dolor sit amet consectetur adipiscing elit "

// writeSimulated emits in.SimulateLines lines of about in.LineBytes bytes
// each (default 256), keys "<key>-<i>".
func writeSimulated(w io.Writer, model string, in inputLine) error {
	size := in.LineBytes
	if size <= 0 {
		size = 256
	}
	pad := strings.Repeat(filler, size/len(filler)+1)
	lastPad := 0
	for i := 0; i < in.SimulateLines; i++ {
		key := in.Key + "-" + strconv.Itoa(i)
		// Token counts grow with the padding, so converge on the exact size
		// in a few rounds (lines shorter than the bare response stay short).
		// Consecutive lines almost always need the same padding, so start
		// from the previous line's: usually one marshal per line.
		padLen := lastPad
		var b []byte
		for round := 0; round < 4; round++ {
			text := "echo: " + key
			if padLen > 0 {
				text += " " + pad[:min(padLen-1, len(pad))]
			}
			resp := echoResponse(model, key, text)
			var err error
			if b, err = json.Marshal(outputLine{Key: key, Response: &resp}); err != nil {
				return err
			}
			diff := size - len(b) - 1
			if diff == 0 || (padLen == 0 && diff < 0) {
				break
			}
			padLen = max(padLen+diff, 0)
		}
		lastPad = padLen
		b = append(b, '\n')
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func (s *Simulator) batchJSONLocked(b *batch) map[string]any {
	name := "batches/" + b.id
	pending := 0
	if !terminalBatch(b.state) {
		pending = b.requests
	}
	meta := map[string]any{
		"@type":      "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
		"name":       name,
		"model":      b.model,
		"state":      b.state,
		"createTime": fmtTime(b.created),
		"updateTime": fmtTime(b.updated),
		"batchStats": map[string]any{
			"requestCount":           strconv.Itoa(b.requests),
			"pendingRequestCount":    strconv.Itoa(pending),
			"successfulRequestCount": strconv.Itoa(b.succeeded),
			"failedRequestCount":     strconv.Itoa(b.failedReq),
		},
	}
	if b.displayName != "" {
		meta["displayName"] = b.displayName
	}
	if b.inputFile != "" {
		meta["inputConfig"] = map[string]any{"fileName": "files/" + b.inputFile}
	}
	op := map[string]any{"name": name, "metadata": meta, "done": terminalBatch(b.state)}
	if terminalBatch(b.state) {
		meta["endTime"] = fmtTime(b.ended)
	}
	switch b.state {
	case batchSucceeded:
		output := map[string]any{}
		if b.outputFile != "" {
			output["responsesFile"] = "files/" + b.outputFile
		} else {
			output["inlinedResponses"] = map[string]any{"inlinedResponses": b.responses}
		}
		meta["output"] = output
		resp := map[string]any{"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"}
		for k, v := range output {
			resp[k] = v
		}
		op["response"] = resp
	case batchFailed:
		op["error"] = map[string]any{"code": codeInternal, "message": b.errMsg}
	}
	return op
}

func (s *Simulator) handleBatchGet(w http.ResponseWriter, r *http.Request, p routeParams) {
	s.mu.Lock()
	b := s.batches[p.id]
	var resp map[string]any
	if b != nil {
		resp = s.batchJSONLocked(b)
	}
	s.mu.Unlock()
	if b == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Simulator) handleBatchList(w http.ResponseWriter, r *http.Request, _ routeParams) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.batchOrder)
	start, end, next, err := pageBounds(n, queryInt(r, "pageSize", "page_size"), queryStr(r, "pageToken", "page_token"), 50, 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	ops := []any{}
	for i := start; i < end; i++ { // newest first
		ops = append(ops, s.batchJSONLocked(s.batches[s.batchOrder[n-1-i]]))
	}
	resp := map[string]any{"operations": ops}
	if next != "" {
		resp["nextPageToken"] = next
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Simulator) handleBatchCancel(w http.ResponseWriter, r *http.Request, p routeParams) {
	s.mu.Lock()
	b := s.batches[p.id]
	if b == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.")
		return
	}
	if terminalBatch(b.state) {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, "FAILED_PRECONDITION", "Batch batches/"+p.id+" is already in a terminal state ("+b.state+").")
		return
	}
	now := s.now()
	b.state, b.updated, b.ended = batchCancelled, now, now
	uris := b.hookURIs
	s.mu.Unlock()
	s.emit("batch.cancelled", map[string]any{"id": s.eventID("batches/" + p.id)}, uris)
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Simulator) handleBatchDelete(w http.ResponseWriter, r *http.Request, p routeParams) {
	s.mu.Lock()
	b := s.batches[p.id]
	if b != nil {
		delete(s.batches, p.id)
		for i, id := range s.batchOrder {
			if id == p.id {
				s.batchOrder = append(s.batchOrder[:i:i], s.batchOrder[i+1:]...)
				break
			}
		}
		b.state = batchCancelled // stops pending timers from finishing it
	}
	s.mu.Unlock()
	if b == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}
