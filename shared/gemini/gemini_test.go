package gemini

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/genai"
)

func TestFileID(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"files/abc123", "abc123", true},
		{"abc123", "abc123", true},
		{"https://generativelanguage.googleapis.com/v1beta/files/abc123:download?alt=media", "abc123", true},
		{"http://127.0.0.1:9/v1beta/files/x-y_z:download", "x-y_z", true},
		{"gs://bucket/results.jsonl", "", false},
		{"https://example.com/other/path", "", false},
		{"files/", "", false},
		{"", "", false},
	} {
		got, ok := FileID(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("FileID(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err       error
		permanent bool
	}{
		{genai.APIError{Code: 404}, true},
		{genai.APIError{Code: 400}, true},
		{genai.APIError{Code: 429}, false},
		{genai.APIError{Code: 503}, false},
		{genai.APIError{Code: 403}, false},
		{genai.APIError{Code: 409}, false},
		{genai.APIError{Code: 418}, true}, // a 4xx nobody anticipated repeats identically
		{genai.APIError{Code: 501}, true},
		{genai.APIError{Code: 3}, true},   // a canonical code in the body: INVALID_ARGUMENT
		{genai.APIError{Code: 14}, false}, // UNAVAILABLE
		{genai.APIError{Status: "NOT_FOUND"}, true},
		{genai.APIError{Status: "RESOURCE_EXHAUSTED"}, false},
		{fmt.Errorf("dial: %w", errors.New("connection refused")), false},
		{context.DeadlineExceeded, false},
	} {
		err := Classify(tc.err)
		if IsPermanent(err) != tc.permanent || errors.Is(err, ErrTransient) == tc.permanent {
			t.Errorf("Classify(%v) = %v, permanent %v", tc.err, err, tc.permanent)
		}
	}
}

func TestOpenFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-goog-api-key") != "k" || r.URL.Query().Get("alt") != "media" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/v1beta/files/ok:download":
			io.WriteString(w, "content")
		case "/v1beta/files/busy:download":
			http.Error(w, "busy", http.StatusServiceUnavailable)
		default:
			http.Error(w, "nope", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	c, err := New(context.Background(), Config{APIKey: "k", BaseURL: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.OpenFile(context.Background(), "files/ok")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "content" {
		t.Errorf("content = %q", b)
	}
	if _, err := c.OpenFile(context.Background(), "files/missing"); !IsPermanent(err) {
		t.Errorf("404: err = %v, want permanent", err)
	}
	if _, err := c.OpenFile(context.Background(), srv.URL+"/v1beta/files/busy:download?alt=media"); !errors.Is(err, ErrTransient) {
		t.Errorf("503: err = %v, want transient", err)
	}
	if _, err := c.OpenFile(context.Background(), "gs://b/o"); !IsPermanent(err) {
		t.Errorf("gs://: err = %v, want permanent", err)
	}
	if _, err := New(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "API key") {
		t.Errorf("no key: %v", err)
	}
}

// TestUnknownErrorBodies: whatever the error body looks like, the class
// follows the HTTP status of the answer, which the transport records.
func TestUnknownErrorBodies(t *testing.T) {
	bodies := map[string]struct {
		status int
		ctype  string
		body   string
	}{
		"no-code":   {400, "application/json", `{"error":{"message":"something odd"}}`},
		"rpc-code":  {400, "application/json", `{"error":{"code":3,"message":"canonical code in an HTTP error"}}`},
		"html":      {502, "text/html", `<html>bad gateway</html>`},
		"plain-404": {404, "text/plain", `not here`},
		"empty-503": {503, "application/json", ``},
		"words-429": {429, "application/json", `{"error":{"code":"rate_limit_exceeded"}}`},
		"teapot":    {418, "application/json", `{"error":{"code":"teapot"}}`},
		"body-lies": {500, "application/json", `{"error":{"code":404,"status":"NOT_FOUND"}}`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/v1beta/batches/")
		name = strings.TrimPrefix(name, "/v1beta/interactions/")
		if i := strings.LastIndex(r.URL.Path, "/"); i >= 0 {
			name = r.URL.Path[i+1:]
		}
		b, ok := bodies[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", b.ctype)
		w.WriteHeader(b.status)
		io.WriteString(w, b.body)
	}))
	defer srv.Close()
	c, err := New(context.Background(), Config{APIKey: "k", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"no-code": true, "rpc-code": true, "html": false, "plain-404": true, "empty-503": false,
		"words-429": false, "teapot": true, "body-lies": false}
	for name, permanent := range want {
		for _, read := range []struct {
			what string
			f    func() error
		}{
			{"batch", func() error { _, err := c.GetBatch(context.Background(), "batches/"+name); return err }},
			{"interaction", func() error { _, err := c.GetInteraction(context.Background(), name); return err }},
		} {
			err := read.f()
			if err == nil || IsPermanent(err) != permanent || errors.Is(err, ErrTransient) == permanent {
				t.Errorf("%s %s: err = %v; want permanent=%v", read.what, name, err, permanent)
			}
			if got := StatusCode(err); got != bodies[name].status {
				t.Errorf("%s %s: StatusCode = %d; want the answer's %d", read.what, name, got, bodies[name].status)
			}
		}
	}
}

// TestOpenFileRedirect: a download answered with a redirect is followed;
// the API key goes along to the same host only.
func TestOpenFileRedirect(t *testing.T) {
	var leaked, served int
	var mu sync.Mutex
	media := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("x-goog-api-key") != "" || r.URL.Query().Get("key") != "" {
			leaked++
		}
		served++
		io.WriteString(w, "bytes from the media host")
	}))
	defer media.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("x-goog-api-key") != "k":
			http.Error(w, "no key", http.StatusUnauthorized)
		case r.URL.Path == "/v1beta/files/away:download":
			http.Redirect(w, r, media.URL+"/media/away?sig=s&key=k", http.StatusFound)
		case r.URL.Path == "/v1beta/files/here:download":
			http.Redirect(w, r, "/v1beta/files/there:download?alt=media", http.StatusTemporaryRedirect)
		case r.URL.Path == "/v1beta/files/there:download":
			io.WriteString(w, "same host")
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	c, err := New(context.Background(), Config{APIKey: "k", BaseURL: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{"files/away": "bytes from the media host", "files/here": "same host"} {
		rc, err := c.OpenFile(context.Background(), ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != want {
			t.Errorf("%s: %q; want %q", ref, b, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if served != 1 || leaked != 0 {
		t.Errorf("media host served %d, saw the API key %d times; want 1, 0", served, leaked)
	}
	if _, err := c.OpenFile(context.Background(), "files/gone"); !errors.Is(err, ErrFileGone) || !IsPermanent(err) {
		t.Errorf("404 download: %v; want ErrFileGone, permanent", err)
	}
}
