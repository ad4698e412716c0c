package gemsim

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fileTTL mirrors the Files API: uploaded files expire after 48 hours.
const fileTTL = 48 * time.Hour

// simFile is a stored or generated file. Exactly one of data and gen is set:
// gen streams the content on demand so a 100 MB batch output never sits in
// memory.
type simFile struct {
	id          string
	displayName string
	mime        string
	source      string // UPLOADED or GENERATED
	created     time.Time
	size        int64
	data        []byte
	gen         func(w io.Writer) error
	sha         string
}

type upload struct {
	mu   sync.Mutex // serialises chunks of one session without blocking the API
	id   string
	file *simFile
	buf  bytes.Buffer
	done bool
}

var fileNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// PutFile stores data as an uploaded file without going through the SDK and
// returns its name ("files/<id>"), e.g. to seed a batch input in a test.
func (s *Simulator) PutFile(displayName, mimeType string, data []byte) string {
	f := &simFile{displayName: displayName, mime: mimeType, source: "UPLOADED", created: s.now(), data: data, size: int64(len(data))}
	f.sha = shaOf(data)
	s.mu.Lock()
	s.addFileLocked(f)
	s.mu.Unlock()
	return "files/" + f.id
}

func shaOf(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// addFileLocked assigns an id (if none) and stores f. Caller holds s.mu.
func (s *Simulator) addFileLocked(f *simFile) {
	if f.id == "" {
		for {
			f.id = s.newID(12)
			if _, dup := s.files[f.id]; !dup {
				break
			}
		}
	}
	s.files[f.id] = f
	s.fileOrder = append(s.fileOrder, f.id)
}

func (s *Simulator) fileJSON(f *simFile, base string) map[string]any {
	m := map[string]any{
		"name":           "files/" + f.id,
		"mimeType":       f.mime,
		"sizeBytes":      strconv.FormatInt(f.size, 10),
		"createTime":     fmtTime(f.created),
		"updateTime":     fmtTime(f.created),
		"expirationTime": fmtTime(f.created.Add(fileTTL)),
		"uri":            base + "/v1beta/files/" + f.id,
		"downloadUri":    base + "/v1beta/files/" + f.id + ":download?alt=media",
		"state":          "ACTIVE",
		"source":         f.source,
	}
	if f.displayName != "" {
		m["displayName"] = f.displayName
	}
	if f.sha != "" {
		m["sha256Hash"] = f.sha
	}
	return m
}

// handleUploadStart opens a resumable upload session (X-Goog-Upload-Command:
// start) and answers with X-Goog-Upload-URL, as files.go Upload expects.
func (s *Simulator) handleUploadStart(w http.ResponseWriter, r *http.Request, _ routeParams) {
	if !strings.EqualFold(r.Header.Get("X-Goog-Upload-Protocol"), "resumable") ||
		!strings.Contains(strings.ToLower(r.Header.Get("X-Goog-Upload-Command")), "start") {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "only the resumable upload protocol (X-Goog-Upload-Protocol: resumable, X-Goog-Upload-Command: start) is supported")
		return
	}
	var body struct {
		File struct {
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
			MIMEType    string `json:"mimeType"`
		} `json:"file"`
	}
	if err := readJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	mime := body.File.MIMEType
	if mime == "" {
		mime = r.Header.Get("X-Goog-Upload-Header-Content-Type")
	}
	if mime == "" {
		mime = "application/octet-stream"
	}
	f := &simFile{displayName: body.File.DisplayName, mime: mime, source: "UPLOADED"}
	if body.File.Name != "" {
		id := strings.TrimPrefix(body.File.Name, "files/")
		if !fileNameRE.MatchString(id) {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "File name may only contain lowercase alphanumeric characters or dashes (-) and cannot begin or end with a dash.")
			return
		}
		s.mu.Lock()
		_, exists := s.files[id]
		s.mu.Unlock()
		if exists {
			writeError(w, http.StatusConflict, "ALREADY_EXISTS", "File files/"+id+" already exists.")
			return
		}
		f.id = id
	}
	up := &upload{id: s.newID(24), file: f}
	s.mu.Lock()
	s.uploads[up.id] = up
	s.mu.Unlock()
	w.Header().Set("X-Goog-Upload-URL", s.base(r)+"/upload/v1beta/files?upload_id="+up.id+"&upload_protocol=resumable")
	w.Header().Set("X-Goog-Upload-Status", "active")
	w.Header().Set("X-Goog-Upload-Chunk-Granularity", "8388608")
	w.WriteHeader(http.StatusOK)
}

// handleUploadChunk receives "upload", "upload, finalize", "query" and
// "cancel" commands for a session.
func (s *Simulator) handleUploadChunk(w http.ResponseWriter, r *http.Request, _ routeParams) {
	id := r.URL.Query().Get("upload_id")
	s.mu.Lock()
	up := s.uploads[id]
	s.mu.Unlock()
	if up == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "upload session not found")
		return
	}
	cmd := strings.ToLower(r.Header.Get("X-Goog-Upload-Command"))
	switch {
	case strings.Contains(cmd, "cancel"):
		s.mu.Lock()
		delete(s.uploads, id)
		s.mu.Unlock()
		w.Header().Set("X-Goog-Upload-Status", "cancelled")
		w.WriteHeader(http.StatusOK)
		return
	case strings.Contains(cmd, "query"):
		w.Header().Set("X-Goog-Upload-Status", "active")
		w.Header().Set("X-Goog-Upload-Size-Received", strconv.Itoa(up.buf.Len()))
		w.WriteHeader(http.StatusOK)
		return
	case !strings.Contains(cmd, "upload") && !strings.Contains(cmd, "finalize"):
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "unknown X-Goog-Upload-Command "+strconv.Quote(cmd))
		return
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.done {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "upload session already finalized")
		return
	}
	if off := r.Header.Get("X-Goog-Upload-Offset"); off != "" {
		if v, err := strconv.Atoi(off); err != nil || v != up.buf.Len() {
			w.Header().Set("X-Goog-Upload-Status", "active")
			w.Header().Set("X-Goog-Upload-Size-Received", strconv.Itoa(up.buf.Len()))
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("upload offset %s does not match received size %d", off, up.buf.Len()))
			return
		}
	}
	if _, err := up.buf.ReadFrom(r.Body); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "read upload chunk: "+err.Error())
		return
	}
	if !strings.Contains(cmd, "finalize") {
		w.Header().Set("X-Goog-Upload-Status", "active")
		w.WriteHeader(http.StatusOK)
		return
	}
	up.done = true
	f := up.file
	f.data = up.buf.Bytes()
	f.size = int64(len(f.data))
	f.sha = shaOf(f.data)
	f.created = s.now()
	s.mu.Lock()
	delete(s.uploads, id)
	if _, exists := s.files[f.id]; f.id != "" && exists {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, "ALREADY_EXISTS", "File files/"+f.id+" already exists.")
		return
	}
	s.addFileLocked(f)
	s.mu.Unlock()
	body := map[string]any{"file": s.fileJSON(f, s.base(r))}
	w.Header().Set("X-Goog-Upload-Status", "final")
	writeJSON(w, http.StatusOK, body)
}

func (s *Simulator) lookupFile(id string) *simFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files[id]
}

func (s *Simulator) handleFileGet(w http.ResponseWriter, r *http.Request, p routeParams) {
	f := s.lookupFile(p.id)
	if f == nil {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "You do not have permission to access the File "+p.id+" or it may not exist.")
		return
	}
	writeJSON(w, http.StatusOK, s.fileJSON(f, s.base(r)))
}

func (s *Simulator) handleFileList(w http.ResponseWriter, r *http.Request, _ routeParams) {
	s.mu.Lock()
	ids := append([]string(nil), s.fileOrder...)
	s.mu.Unlock()
	start, end, next, err := pageBounds(len(ids), queryInt(r, "pageSize", "page_size"), queryStr(r, "pageToken", "page_token"), 10, 100)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	base := s.base(r)
	out := []any{}
	for _, id := range ids[start:end] {
		if f := s.lookupFile(id); f != nil {
			out = append(out, s.fileJSON(f, base))
		}
	}
	resp := map[string]any{"files": out}
	if next != "" {
		resp["nextPageToken"] = next
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Simulator) handleFileDelete(w http.ResponseWriter, r *http.Request, p routeParams) {
	s.mu.Lock()
	_, ok := s.files[p.id]
	delete(s.files, p.id)
	for i, id := range s.fileOrder {
		if id == p.id {
			s.fileOrder = append(s.fileOrder[:i:i], s.fileOrder[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "You do not have permission to access the File "+p.id+" or it may not exist.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// handleFileDownload streams the file: stored bytes are written directly,
// generated files are produced line by line through a 64 KiB buffer, so the
// simulator's memory does not grow with the file size.
func (s *Simulator) handleFileDownload(w http.ResponseWriter, r *http.Request, p routeParams) {
	f := s.lookupFile(p.id)
	if f == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "File files/"+p.id+" not found.")
		return
	}
	w.Header().Set("Content-Type", f.mime)
	if f.size > 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(f.size, 10))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if f.gen == nil {
		_, _ = w.Write(f.data)
		return
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := f.gen(bw); err != nil {
		s.log.Debug("gemsim: download aborted", "file", p.id, "err", err)
		return
	}
	_ = bw.Flush()
}

// countingWriter measures generated output without keeping it.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
