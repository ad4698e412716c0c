// Package collecttest is a small Gemini API fake for Collector tests and
// benchmarks: just the routes the Collector calls (batches.get, file
// download, operations.get, interactions.get), with injectable failures and
// output files generated line by line on the fly, so a 100 MB file costs no
// memory. The full simulator is shared/gemsim; this fake exists to pin down
// exact wire shapes and failure modes.
package collecttest

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// APIKey is the key the fake accepts.
const APIKey = "test-key"

// File is a downloadable file: Data, or Lines lines produced by Line.
type File struct {
	Data  []byte
	Lines int
	Line  func(i int) []byte
}

// Gemini is the fake. Register resources in its maps (under Mu when the
// server is running) by the path after /v1beta/.
type Gemini struct {
	Server *httptest.Server

	Mu sync.Mutex
	// Resources maps a path ("batches/abc", "models/veo/operations/x",
	// "interactions/id") to the JSON object served for it.
	Resources map[string]any
	// Files maps a file id to its content.
	Files map[string]File
	// Fail maps a path (as in Resources, or "files/<id>") to the number of
	// upcoming requests answered with FailStatus.
	Fail       map[string]int
	FailStatus int
	// Hits counts requests per path ("files/<id>" counts files.get and
	// downloads; "files/<id>:download" downloads only).
	Hits map[string]int
	// Hung lists paths whose requests get no answer until the client gives
	// up (a Gemini that accepts the connection and stalls).
	Hung map[string]bool
}

// New starts a fake on 127.0.0.1; it is closed by the caller (Server.Close).
func New() *Gemini {
	g := &Gemini{Resources: map[string]any{}, Files: map[string]File{}, Fail: map[string]int{}, Hits: map[string]int{},
		Hung: map[string]bool{}, FailStatus: http.StatusInternalServerError}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	return g
}

// URL is the base URL to give the client.
func (g *Gemini) URL() string { return g.Server.URL }

// FailNext makes the next n requests for path fail with status.
func (g *Gemini) FailNext(path string, n, status int) {
	g.Mu.Lock()
	defer g.Mu.Unlock()
	g.Fail[path] = n
	g.FailStatus = status
}

// HitCount returns how many requests path received.
func (g *Gemini) HitCount(path string) int {
	g.Mu.Lock()
	defer g.Mu.Unlock()
	return g.Hits[path]
}

// Hang makes requests for path stall until the client cancels them.
func (g *Gemini) Hang(path string) {
	g.Mu.Lock()
	defer g.Mu.Unlock()
	g.Hung[path] = true
}

// Set registers a resource.
func (g *Gemini) Set(path string, v any) {
	g.Mu.Lock()
	defer g.Mu.Unlock()
	g.Resources[path] = v
}

// SetFile registers a file.
func (g *Gemini) SetFile(id string, f File) {
	g.Mu.Lock()
	defer g.Mu.Unlock()
	g.Files[id] = f
}

func writeErr(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

func (g *Gemini) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("x-goog-api-key") != APIKey {
		writeErr(w, http.StatusUnauthorized, "UNAUTHENTICATED", "API key not valid")
		return
	}
	if r.Method != http.MethodGet {
		writeErr(w, http.StatusMethodNotAllowed, "UNIMPLEMENTED", "only GET is faked")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1beta/")
	download := strings.HasPrefix(path, "files/") && strings.HasSuffix(path, ":download")
	path = strings.TrimSuffix(path, ":download")

	g.Mu.Lock()
	g.Hits[path]++
	if download {
		g.Hits[path+":download"]++
	}
	if g.Fail[path] > 0 {
		g.Fail[path]--
		status := g.FailStatus
		g.Mu.Unlock()
		writeErr(w, status, http.StatusText(status), "injected failure")
		return
	}
	res, okRes := g.Resources[path]
	file, okFile := g.Files[strings.TrimPrefix(path, "files/")]
	hung := g.Hung[path]
	g.Mu.Unlock()
	if hung {
		<-r.Context().Done()
		return
	}

	if download {
		if !okFile {
			writeErr(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if file.Data != nil {
			w.Write(file.Data)
			return
		}
		bw := bufio.NewWriterSize(w, 64<<10)
		for i := 0; i < file.Lines; i++ {
			bw.Write(file.Line(i))
			bw.WriteByte('\n')
		}
		bw.Flush()
		return
	}
	if !okRes && okFile && strings.HasPrefix(path, "files/") {
		// files.get of a registered file: its metadata, live for 48 h.
		res = map[string]any{"name": path, "mimeType": "application/octet-stream", "state": "ACTIVE",
			"expirationTime": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339Nano)}
		okRes = true
	}
	if !okRes {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

// Batch returns the operation JSON of a batch in state (e.g.
// "BATCH_STATE_SUCCEEDED") with output (nil, or {"responsesFile": "files/x"},
// or {"inlinedResponses": {"inlinedResponses": [...]}}).
func Batch(name, state string, output map[string]any) map[string]any {
	meta := map[string]any{
		"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
		"name":  name, "model": "models/gemini-2.5-flash", "state": state,
	}
	if output != nil {
		meta["output"] = output
	}
	return map[string]any{"name": name, "metadata": meta, "done": true}
}

// Response returns a GenerateContentResponse JSON object with text and usage.
func Response(text string, prompt, candidates int) map[string]any {
	return map[string]any{
		"candidates": []any{map[string]any{
			"content":      map[string]any{"role": "model", "parts": []any{map[string]any{"text": text}}},
			"finishReason": "STOP",
		}},
		"usageMetadata": map[string]any{"promptTokenCount": prompt, "candidatesTokenCount": candidates, "totalTokenCount": prompt + candidates},
		"modelVersion":  "gemini-2.5-flash",
	}
}

// Line returns one JSONL output line for key with a response of text.
func Line(key, text string) []byte {
	b, _ := json.Marshal(map[string]any{"key": key, "response": Response(text, 3, 5)})
	return b
}
