package gemini

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
