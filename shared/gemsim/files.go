package gemsim

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

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

// fileURI is a file's resource URI in the real API's form.
func (s *Simulator) fileURI(id string) string { return s.uriBase + "/v1beta/files/" + id }

// downloadURI is a file's download URI in the real API's form (what a
// generated video's uri is).
func (s *Simulator) downloadURI(id string) string {
	return s.uriBase + "/v1beta/files/" + id + ":download?alt=media"
}

// expiredLocked reports whether f has outlived Options.FileTTL.
func (s *Simulator) expiredLocked(f *simFile) bool {
	return s.opts.FileTTL > 0 && !s.now().Before(f.created.Add(s.opts.FileTTL))
}

func (s *Simulator) fileJSON(f *simFile) map[string]any {
	m := map[string]any{
		"name":        "files/" + f.id,
		"mimeType":    f.mime,
		"sizeBytes":   strconv.FormatInt(f.size, 10),
		"createTime":  fmtTime(f.created),
		"updateTime":  fmtTime(f.created),
		"uri":         s.fileURI(f.id),
		"downloadUri": s.downloadURI(f.id),
		"state":       "ACTIVE",
		"source":      f.source,
	}
	if s.opts.FileTTL > 0 {
		m["expirationTime"] = fmtTime(f.created.Add(s.opts.FileTTL))
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
	body := map[string]any{"file": s.fileJSON(f)}
	w.Header().Set("X-Goog-Upload-Status", "final")
	writeJSON(w, http.StatusOK, body)
}

// lookupFile returns a live file, nil for one that does not exist or has
// expired (an expired file is deleted, as Gemini does).
func (s *Simulator) lookupFile(id string) *simFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupFileLocked(id)
}

func (s *Simulator) lookupFileLocked(id string) *simFile {
	f := s.files[id]
	if f != nil && s.expiredLocked(f) {
		s.deleteFileLocked(id)
		return nil
	}
	return f
}

func (s *Simulator) deleteFileLocked(id string) bool {
	_, ok := s.files[id]
	delete(s.files, id)
	for i, fid := range s.fileOrder {
		if fid == id {
			s.fileOrder = append(s.fileOrder[:i:i], s.fileOrder[i+1:]...)
			break
		}
	}
	return ok
}

func (s *Simulator) handleFileGet(w http.ResponseWriter, r *http.Request, p routeParams) {
	f := s.lookupFile(p.id)
	if f == nil {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "You do not have permission to access the File "+p.id+" or it may not exist.")
		return
	}
	writeJSON(w, http.StatusOK, s.fileJSON(f))
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
	out := []any{}
	for _, id := range ids[start:end] {
		if f := s.lookupFile(id); f != nil {
			out = append(out, s.fileJSON(f))
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
	ok := s.lookupFileLocked(p.id) != nil
	s.deleteFileLocked(p.id)
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
	s.mu.Lock()
	media, key := s.mediaURL, s.mediaKey
	s.mu.Unlock()
	if media != "" {
		exp := strconv.FormatInt(s.now().Add(15*time.Minute).Unix(), 10)
		http.Redirect(w, r, media+"/media/"+p.id+"?expires="+exp+"&sig="+mediaSig(key, p.id, exp), http.StatusFound)
		return
	}
	s.writeFile(w, r, f)
}

// mediaSig signs a media URL, as a CDN's signed URL would be.
func mediaSig(key []byte, id, exp string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "\x00" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// serveMedia serves a redirected download on the media listener: a signed
// URL, no API key needed. A request that carries one anyway is counted as
// a leak: the client forwarded its key to another host.
func (s *Simulator) serveMedia(w http.ResponseWriter, r *http.Request) {
	s.count("media.download")
	if r.Header.Get("x-goog-api-key") != "" || r.URL.Query().Get("key") != "" {
		s.statsMu.Lock()
		s.leaks++
		s.statsMu.Unlock()
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/media/")
	q := r.URL.Query()
	s.mu.Lock()
	key := s.mediaKey
	s.mu.Unlock()
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if !ok || err != nil || !hmac.Equal([]byte(q.Get("sig")), []byte(mediaSig(key, id, q.Get("expires")))) {
		http.Error(w, "invalid signature", http.StatusForbidden)
		return
	}
	if s.now().Unix() > exp {
		http.Error(w, "signed URL expired", http.StatusForbidden)
		return
	}
	f := s.lookupFile(id)
	if f == nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	s.writeFile(w, r, f)
}

// writeFile streams a file's content. An open-ended or bounded single
// "Range: bytes=N-[M]" is answered 206 from byte N (416 past the end), as
// Google's media downloads do, unless Options.IgnoreRange is set: then the
// whole file is sent with 200, like a server without range support. A
// generated file is still generated from its start (the skipped part is
// produced and discarded here, never sent), so the generator stays a plain
// deterministic stream.
func (s *Simulator) writeFile(w http.ResponseWriter, r *http.Request, f *simFile) {
	w.Header().Set("Content-Type", f.mime)
	start, end, ranged := int64(0), f.size-1, false
	if h := r.Header.Get("Range"); h != "" && !s.opts.IgnoreRange && f.size > 0 {
		var ok bool
		if start, end, ok = parseRange(h, f.size); ok {
			if start >= f.size {
				w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(f.size, 10))
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return
			}
			ranged = true
			s.count("files.download.ranged")
		} else {
			start, end = 0, f.size-1
		}
	}
	w.Header().Set("Accept-Ranges", "bytes")
	if s.opts.IgnoreRange {
		w.Header().Set("Accept-Ranges", "none")
	}
	if f.size > 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(end-start+1, 10))
	}
	if ranged {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, f.size))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	if r.Method == http.MethodHead {
		return
	}
	if f.gen == nil {
		if f.size > 0 {
			_, _ = w.Write(f.data[start : end+1])
		} else {
			_, _ = w.Write(f.data)
		}
		return
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var out io.Writer = bw
	if ranged {
		out = &windowWriter{w: bw, skip: start, left: end - start + 1}
	}
	if err := f.gen(out); err != nil && err != errWindowDone {
		s.log.Debug("gemsim: download aborted", "file", f.id, "err", err)
		return
	}
	_ = bw.Flush()
}

// parseRange reads a single "bytes=START-[END]" range of a file of size
// bytes. Suffix ranges ("bytes=-N") and lists are not supported (ok false:
// the whole file is sent, which RFC 9110 allows).
func parseRange(h string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found || a == "" {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	end = size - 1
	if b != "" {
		if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
			return 0, 0, false
		}
		end = min(end, size-1)
	}
	return start, end, true
}

// errWindowDone stops a generator once a ranged window has been written.
var errWindowDone = errors.New("gemsim: range written")

// windowWriter passes on only bytes [skip, skip+left) of what is written.
type windowWriter struct {
	w          io.Writer
	skip, left int64
}

func (ww *windowWriter) Write(p []byte) (int, error) {
	n := len(p)
	if ww.skip > 0 {
		if int64(len(p)) <= ww.skip {
			ww.skip -= int64(len(p))
			return n, nil
		}
		p = p[ww.skip:]
		ww.skip = 0
	}
	if int64(len(p)) > ww.left {
		p = p[:ww.left]
	}
	if _, err := ww.w.Write(p); err != nil {
		return 0, err
	}
	ww.left -= int64(len(p))
	if ww.left == 0 {
		return n, errWindowDone
	}
	return n, nil
}

// countingWriter measures generated output without keeping it.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
