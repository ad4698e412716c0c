package collect

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/geminihooks/geminihooks/shared/ledger"
)

// FuzzParseLine: any line of a batch output file yields one result for its
// index, never a panic; a line that does not parse is kept as a per-line
// error, not dropped.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		`{"key":"a","response":{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2,"totalTokenCount":3}}}`,
		`{"metadata":{"key":"b"},"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}`,
		`{"key":"c","response":{"promptFeedback":{"blockReason":"SAFETY"}}}`,
		`{"key":"d","response":{"candidates":[null]}}`,
		`{}`, `null`, `[`, ``, `{"error":{"code":"x"}}`,
		`{"response":{"candidates":[]},"metadata":{"key":1,"a":[[1]],"b":{"c":null}}}`,
		`{"key":"e","error":{"code":3,"message":"m"}}`, `{"key":"s","status":{"code":14}}`, `{"error":"plain"}`,
	} {
		f.Add(int64(7), []byte(s))
	}
	f.Fuzz(func(t *testing.T, index int64, line []byte) {
		r := parseLine(index, line)
		if r.Index != index {
			t.Fatalf("index %d, want %d", r.Index, index)
		}
		if r.Error == nil && r.Text == "" && r.FinishReason == "" && r.Tokens.Total == 0 && r.ModelVersion == "" &&
			r.Key == "" && len(r.Metadata) == 0 && !bytes.Contains(line, []byte("response")) {
			t.Fatalf("line %q produced an empty result without an error", line)
		}
	})
}

// FuzzSplitAndReadLines: results too large for one document are split into
// parts that rejoin to the original text without breaking a rune, and lines
// read with a small buffer rejoin to the original file.
func FuzzSplitAndReadLines(f *testing.F) {
	f.Add("héllo wörld ✓ "+strings.Repeat("x", 40), 7)
	f.Add("a\nbb\n\nccc", 1)
	f.Fuzz(func(t *testing.T, text string, n int) {
		// splitUTF8 needs room for one rune; MaxTextBytes is far larger.
		n = utf8.UTFMax + (n%64+64)%64
		parts := splitUTF8(text, n)
		if strings.Join(parts, "") != text {
			t.Fatalf("parts do not rejoin")
		}
		for _, p := range parts {
			if len(p) > n && utf8.ValidString(text) {
				t.Fatalf("part of %d bytes > %d", len(p), n)
			}
			if utf8.ValidString(text) && !utf8.ValidString(p) {
				t.Fatalf("split a rune: %q", p)
			}
		}
		w := &recordingWriter{}
		if err := writeResult(w, ledger.Result{Index: 3, Text: text}); err != nil {
			t.Fatal(err)
		}
		var joined strings.Builder
		for _, r := range w.results {
			joined.WriteString(r.Text)
		}
		if joined.String() != text {
			t.Fatalf("writeResult lost text")
		}

		br := bufio.NewReaderSize(strings.NewReader(text), 16)
		var out, buf []byte
		for {
			line, nb, _, err := readLine(br, buf, len(text)+1)
			buf = nb
			out = append(out, line...)
			if err != nil {
				break
			}
		}
		if string(out) != text {
			t.Fatalf("readLine lost bytes: %q vs %q", out, text)
		}

		// Capped: no line over the cap is returned, every byte is accounted
		// for, and the lines within it come back intact.
		const max = 24
		br = bufio.NewReaderSize(strings.NewReader(text), 16)
		var total int64
		out, buf = out[:0], nil
		for {
			line, nb, size, err := readLine(br, buf, max)
			buf = nb
			total += size
			if size > max && line != nil || size <= max && int64(len(line)) != size {
				t.Fatalf("line of %d bytes returned with size %d (cap %d)", len(line), size, max)
			}
			out = append(out, line...)
			if err != nil {
				break
			}
		}
		if total != int64(len(text)) {
			t.Fatalf("readLine accounted for %d of %d bytes", total, len(text))
		}
		if !strings.Contains(text, "\n") && len(text) <= max && string(out) != text {
			t.Fatalf("short single line altered: %q", out)
		}
	})
}

type recordingWriter struct{ results []ledger.Result }

func (w *recordingWriter) Write(_ string, r ledger.Result) error {
	w.results = append(w.results, r)
	return nil
}
func (w *recordingWriter) Close() error { return nil }
