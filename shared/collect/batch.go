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
func (s *Service) collectBatch(ctx context.Context, ev event.JobEvent, job *genai.BatchJob) (outcome, error) {
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
			r.Metadata = ir.Metadata
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

// fileLine is one line of a batch output file.
type fileLine struct {
	Key      string                         `json:"key"`
	Metadata map[string]string              `json:"metadata"`
	Response *genai.GenerateContentResponse `json:"response"`
	Error    *struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
		Status  string          `json:"status"`
	} `json:"error"`
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
	br := bufio.NewReaderSize(rc, 256<<10)
	var buf []byte
	var index int64
	for {
		var line []byte
		line, buf, err = readLine(br, buf)
		if l := bytes.TrimSpace(line); len(l) > 0 {
			r := parseLine(index, l)
			if werr := writeResult(w, r); werr != nil {
				return werr
			}
			t.add(r)
			index++
		}
		if cap(buf) > 4<<20 {
			buf = nil // one huge line must not pin its buffer for the rest of the file
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readLine returns the next line (without limit on its length). The line
// aliases either br's buffer or buf, and is valid until the next call.
func readLine(br *bufio.Reader, buf []byte) (line, newBuf []byte, err error) {
	buf = buf[:0]
	for {
		frag, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			buf = append(buf, frag...)
			continue
		}
		if len(buf) == 0 {
			return frag, buf, err
		}
		buf = append(buf, frag...)
		return buf, buf, err
	}
}

func parseLine(index int64, l []byte) ledger.Result {
	var fl fileLine
	if err := json.Unmarshal(l, &fl); err != nil {
		return ledger.Result{Index: index, Error: &event.JobError{Code: "invalid_line", Message: "line is not a batch response: " + err.Error()}}
	}
	key := fl.Key
	if key == "" {
		key = fl.Metadata["key"]
	}
	var jerr *event.JobError
	if fl.Error != nil {
		code := fl.Error.Status
		if code == "" {
			code = strings.Trim(string(fl.Error.Code), `"`)
		}
		jerr = &event.JobError{Code: code, Message: fl.Error.Message}
	}
	r := resultOf(index, key, fl.Response, jerr)
	r.Metadata = fl.Metadata
	return r
}

func jobError(e *genai.JobError) *event.JobError {
	if e == nil {
		return nil
	}
	je := &event.JobError{Message: e.Message}
	if e.Code != nil {
		je.Code = strconv.Itoa(int(*e.Code))
	}
	return je
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
