package collect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/genai"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// MaxTextBytes is the largest text stored in one result document. Firestore
// documents are limited to 1 MiB; the margin covers the other fields. A
// longer text is split into parts.
var MaxTextBytes = 900 << 10

// ResultID is the document id of the response at index: zero-padded so ids
// sort in output order.
func ResultID(index int64) string { return fmt.Sprintf("%09d", index) }

// PartID is the document id of part (1-based) of a split response.
func PartID(index int64, part int) string { return fmt.Sprintf("%s-p%03d", ResultID(index), part) }

// writeResult stores r, split into parts when its text is too large.
func writeResult(w ledger.ResultWriter, r ledger.Result) error {
	if len(r.Text) <= MaxTextBytes {
		return w.Write(ResultID(r.Index), r)
	}
	parts := splitUTF8(r.Text, MaxTextBytes)
	for i, p := range parts {
		pr := r
		pr.Text, pr.Part, pr.Parts = p, i+1, len(parts)
		if err := w.Write(PartID(r.Index, i+1), pr); err != nil {
			return err
		}
	}
	return nil
}

// splitUTF8 cuts s into pieces of at most n bytes without splitting a rune
// (Firestore strings must be valid UTF-8). n must be at least utf8.UTFMax.
func splitUTF8(s string, n int) []string {
	var out []string
	for len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		if cut == 0 {
			cut = n
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	return append(out, s)
}

// tally accumulates a job's counts and tokens.
type tally struct {
	counts event.Counts
	tokens event.Tokens
}

func (t *tally) add(r ledger.Result) {
	t.counts.Results++
	if r.Error != nil {
		t.counts.Failed++
	}
	t.tokens.Prompt += r.Tokens.Prompt
	t.tokens.Candidates += r.Tokens.Candidates
	t.tokens.Total += r.Tokens.Total
}

// collectBatch stores the results of a batch the API shows succeeded: its
// inline responses, or the lines of its output file. Only the API's
// pointers are followed, never a webhook's (a claim could point at another
// file this key can read).
func (s *Service) collectBatch(ctx context.Context, ev event.JobEvent, gj *gemini.Job, inv invocation) (outcome, error) {
	job := gj.Batch
	var (
		inline []*genai.InlinedResponse
		file   string
	)
	if job.Dest != nil {
		inline, file = job.Dest.InlinedResponses, job.Dest.FileName
	}
	if len(inline) == 0 && file == "" {
		return outcome{}, fmt.Errorf("%w: batch %s succeeded without inline responses or an output file", errInvalidData, job.Name)
	}

	if cpl := s.checkpointer(); len(inline) == 0 && cpl != nil {
		// An output file of any size: in checkpointed steps (resume.go).
		return s.collectFile(ctx, cpl, ev.JobID, ev.Kind, gj, file, inv)
	}
	w := s.o.Ledger.OpenResults(ctx, ev.JobID)
	var (
		t   tally
		err error
	)
	switch {
	case len(inline) > 0:
		for i, ir := range inline {
			if ir == nil {
				continue
			}
			r := resultOf(int64(i), ir.Metadata["key"], ir.Response, jobError(ir.Error))
			r.Metadata = stringMetadata(ir.Metadata)
			if err = writeResult(w, r); err != nil {
				break
			}
			t.add(r)
		}
	case file != "":
		err = s.streamFile(ctx, file, w, &t)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return outcome{}, err
	}
	return outcome{counts: t.counts, tokens: t.tokens, resultsPath: ledger.ResultsPath(ev.JobID)}, nil
}

// fileLine is one line of a batch output file. Every plausible shape is
// accepted: "key" may be missing (the request's metadata may carry it, or
// nothing does); "metadata" may be any JSON object (a protobuf Struct), not
// only strings; the error may be a google.rpc.Status ({"code": 3,
// "message": …}), a Google HTTP error, a plain string, or sit under
// "status" instead of "error".
type fileLine struct {
	Key      json.RawMessage                `json:"key"`
	Metadata json.RawMessage                `json:"metadata"`
	Response *genai.GenerateContentResponse `json:"response"`
	Error    json.RawMessage                `json:"error"`
	Status   json.RawMessage                `json:"status"`
}

// rawLine is fileLine with the response undecoded: the fallback for a line
// whose response is not a GenerateContentResponse, so its key, metadata
// and error are still kept.
type rawLine struct {
	Key      json.RawMessage `json:"key"`
	Metadata json.RawMessage `json:"metadata"`
	Error    json.RawMessage `json:"error"`
	Status   json.RawMessage `json:"status"`
}

// streamFile reads a JSONL output file line by line and writes one result
// per non-empty line. Memory stays bounded by the longest line and the
// writer's in-flight limit, whatever the file size.
func (s *Service) streamFile(ctx context.Context, ref string, w ledger.ResultWriter, t *tally) error {
	rc, err := s.o.Gemini.OpenFile(ctx, ref)
	if err != nil {
		return err
	}
	defer rc.Close()
	lr := newLineReader(rc)
	for index := int64(0); ; {
		r, ok, _, err := lr.next(index)
		if ok {
			if werr := writeResult(w, r); werr != nil {
				return werr
			}
			t.add(r)
			index++
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// lineReader turns an output file's lines into results: the one loop
// body of the single-pass and the checkpointed collection.
type lineReader struct {
	br  *bufio.Reader
	buf []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 256<<10)}
}

// next reads one line and returns its result (ok is false for a blank
// line, which has none), the bytes it consumed and the read error (io.EOF
// after the last line, which may still carry a result).
func (lr *lineReader) next(index int64) (r ledger.Result, ok bool, size int64, err error) {
	var line []byte
	line, lr.buf, size, err = readLine(lr.br, lr.buf, MaxLineBytes)
	switch l := bytes.TrimSpace(line); {
	case size > int64(MaxLineBytes):
		r, ok = lineTooLarge(index, size), true
	case len(l) > 0:
		r, ok = parseLine(index, l), true
	}
	if cap(lr.buf) > 4<<20 {
		lr.buf = nil // one huge line must not pin its buffer for the rest of the file
	}
	return r, ok, size, err
}

// MaxLineBytes bounds one line of a batch output file that is decoded. A
// longer line (a runaway response; Gemini's per-response output limits keep
// real ones far below) is not held in memory: it becomes an error result
// with code line_too_large and the rest of the file is collected. 32 MiB
// keeps the line and its decoded form well inside the Collector's 1 GiB.
var MaxLineBytes = 32 << 20

// lineTooLarge is the result recorded for a line over MaxLineBytes.
func lineTooLarge(index int64, size int64) ledger.Result {
	return ledger.Result{Index: index, Error: &event.JobError{Code: "line_too_large",
		Message: fmt.Sprintf("output line of %d bytes or more exceeds the %d-byte limit; it was skipped", size, MaxLineBytes)}}
}

// readLine returns the next line, of at most max bytes (newline included).
// The line aliases either br's buffer or buf, and is valid until the next
// call. size is the line's length; when it exceeds max, the line was read
// to its end and discarded (line is nil), so memory stays within max plus
// br's buffer however long the line is.
func readLine(br *bufio.Reader, buf []byte, max int) (line, newBuf []byte, size int64, err error) {
	buf = buf[:0]
	for {
		frag, err := br.ReadSlice('\n')
		size += int64(len(frag))
		if size > int64(max) {
			buf = buf[:0]
			for errors.Is(err, bufio.ErrBufferFull) {
				frag, err = br.ReadSlice('\n')
				size += int64(len(frag))
			}
			return nil, buf, size, err
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			buf = append(buf, frag...)
			continue
		}
		if len(buf) == 0 {
			return frag, buf, size, err
		}
		buf = append(buf, frag...)
		return buf, buf, size, err
	}
}

func parseLine(index int64, l []byte) ledger.Result {
	var fl fileLine
	var respErr error
	if err := json.Unmarshal(l, &fl); err != nil {
		// One decode in the common case; only a line that fails it is
		// decoded again without its response, to tell a broken response
		// from a line that is not JSON at all.
		var rl rawLine
		if json.Unmarshal(l, &rl) != nil {
			return ledger.Result{Index: index, Error: &event.JobError{Code: "invalid_line", Message: "line is not a batch response: " + err.Error()}}
		}
		fl = fileLine{Key: rl.Key, Metadata: rl.Metadata, Error: rl.Error, Status: rl.Status}
		respErr = err
	}
	meta := lineMetadata(fl.Metadata)
	key := scalarText(fl.Key)
	if key == "" {
		switch k := meta["key"].(type) {
		case string:
			key = k
		case float64:
			key = strconv.FormatFloat(k, 'f', -1, 64)
		}
	}
	jerr := lineError(fl.Error, true)
	if jerr == nil {
		jerr = lineError(fl.Status, false) // a Status object; a status word is no error
	}
	if respErr != nil && jerr == nil {
		jerr = &event.JobError{Code: "invalid_response", Message: event.Bound("response is not a GenerateContentResponse: "+respErr.Error(), event.MaxErrorMessageBytes)}
	}
	r := resultOf(index, key, fl.Response, jerr)
	r.Metadata = meta
	return r
}

// maxMetadataBytes bounds the metadata stored with one result; a larger
// object is replaced by a note of its size, so the document still fits.
const maxMetadataBytes = 64 << 10

// lineMetadata decodes a line's metadata: an object is kept (made
// storable), any other value is kept as {"value": v}.
func lineMetadata(raw json.RawMessage) map[string]any {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if len(raw) > maxMetadataBytes {
		return map[string]any{"omitted_bytes": int64(len(raw))}
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	if m, ok := sanitize(v).(map[string]any); ok {
		return m
	}
	return map[string]any{"value": sanitize(v)}
}

// scalarText renders a JSON string or number as text; anything else as "".
func scalarText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// lineError decodes a per-line error: an object in any of Gemini's error
// shapes, or (when allowString is set) a non-empty string, taken as the
// message. null, "", {} and a status OK are no error.
func lineError(raw json.RawMessage, allowString bool) *event.JobError {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	switch raw[0] {
	case '{':
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			return nil
		}
		if inner, ok := m["error"].(map[string]any); ok { // a whole HTTP error body
			m = inner
		}
		if je := event.ErrorFromMap(m); je != nil && !(je.Status == "OK" && je.Message == "") {
			return je
		}
		return nil
	case '"':
		var s string
		if !allowString || json.Unmarshal(raw, &s) != nil || s == "" {
			return nil
		}
		return event.NormalizeError(nil, "", s)
	}
	return nil
}

// jobError normalises an inline response's error (the SDK decodes it as a
// google.rpc.Status).
func jobError(e *genai.JobError) *event.JobError {
	if e == nil {
		return nil
	}
	var c any
	if e.Code != nil {
		c = *e.Code
	}
	if je := event.NormalizeError(c, "", e.Message); je != nil {
		return je
	}
	return &event.JobError{Message: "request failed"}
}

// stringMetadata is an inline request's metadata in the stored form.
func stringMetadata(m map[string]string) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// resultOf extracts the stored fields of one response.
func resultOf(index int64, key string, resp *genai.GenerateContentResponse, jerr *event.JobError) ledger.Result {
	r := ledger.Result{Key: key, Index: index, Error: jerr}
	if resp == nil {
		if r.Error == nil {
			r.Error = &event.JobError{Code: "empty", Message: "neither response nor error"}
		}
		return r
	}
	r.ModelVersion = resp.ModelVersion
	if u := resp.UsageMetadata; u != nil {
		r.Tokens = event.Tokens{Prompt: int64(u.PromptTokenCount), Candidates: int64(u.CandidatesTokenCount), Total: int64(u.TotalTokenCount)}
	}
	if len(resp.Candidates) > 0 && resp.Candidates[0] != nil {
		c := resp.Candidates[0]
		r.FinishReason = string(c.FinishReason)
		if c.Content != nil {
			var b strings.Builder
			for _, p := range c.Content.Parts {
				if p != nil && !p.Thought {
					b.WriteString(p.Text)
				}
			}
			r.Text = b.String()
		}
	} else if pf := resp.PromptFeedback; pf != nil && pf.BlockReason != "" {
		r.FinishReason = string(pf.BlockReason)
	}
	return r
}
