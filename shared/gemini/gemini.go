// Package gemini builds the genai client geminihooks uses to read job results
// (API key, optional base URL for the simulator) and adds what the SDK lacks:
// a streaming file download and a classification of errors into permanent
// (retrying cannot help) and transient (retrying may help).
//
// The SDK's Files.Download reads a whole file into memory; batch output files
// can be far larger than a function instance's memory, so [Client.OpenFile]
// returns the response body as a stream instead.
//
// # Files and URIs
//
// Gemini points at files as "files/<id>" or as a download URI
// (https://generativelanguage.googleapis.com/v1beta/files/<id>:download?alt=media).
// Like the SDKs, the client takes only the file id from either and reads it
// from its configured base URL, so the simulator's real-form URIs and a
// proxy in front of Gemini both work. A download may be answered with a
// redirect: it is followed, but the API key goes only to the host it was
// meant for (Go's client would forward a custom header such as
// x-goog-api-key to any host). Gemini deletes files [FileTTL] after they
// were created; a file the API key can no longer read is reported with
// [ErrFileGone].
package gemini

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/retry"
)

// DefaultBaseURL is Gemini's public endpoint, used when Config.BaseURL is empty.
const DefaultBaseURL = "https://generativelanguage.googleapis.com"

// APIVersion is the REST version every call uses.
const APIVersion = "v1beta"

// Config configures a [Client].
type Config struct {
	// APIKey is required (the SDK insists on one even for a fake server).
	APIKey string
	// BaseURL overrides DefaultBaseURL, e.g. to point at the simulator.
	BaseURL string
	// HTTPClient is used for every request. Defaults to a client without
	// an overall timeout: downloads are bounded by the caller's context.
	HTTPClient *http.Client
}

// Client reads Gemini jobs. It is safe for concurrent use.
type Client struct {
	// GenAI is the underlying SDK client.
	GenAI *genai.Client
	base  string
	key   string
	hc    *http.Client
}

// New returns a Client for cfg.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("gemini: API key is required")
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	if _, err := url.Parse(base); err != nil {
		return nil, fmt.Errorf("gemini: base URL %q: %w", base, err)
	}
	hc := wrapHTTPClient(cfg.HTTPClient)
	gc, err := genai.NewClient(ctx, &genai.ClientConfig{
		APIKey:      cfg.APIKey,
		Backend:     genai.BackendGeminiAPI,
		HTTPClient:  hc,
		HTTPOptions: genai.HTTPOptions{BaseURL: base + "/", APIVersion: APIVersion},
	})
	if err != nil {
		return nil, fmt.Errorf("gemini: new client: %w", err)
	}
	return &Client{GenAI: gc, base: base, key: cfg.APIKey, hc: hc}, nil
}

// FileTTL is how long Gemini keeps a file (uploads, batch outputs,
// generated videos) after creating it.
const FileTTL = 48 * time.Hour

// ErrFileGone reports a file this API key cannot read (HTTP 403 or 404):
// expired (see [FileTTL]), deleted, or never this project's. It wraps
// together with the error's class.
var ErrFileGone = errors.New("gemini file not readable (expired, deleted or not this project's)")

// wrapHTTPClient returns a copy of hc (or a new client) whose transport
// records each answer's HTTP status for error classification and whose
// redirects never carry the API key to another host.
func wrapHTTPClient(hc *http.Client) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = statusTransport{base: base}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		stripKeyOffHost(req, via)
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// stripKeyOffHost removes the API key (header and query parameter) from a
// redirected request bound for another scheme or host than the original.
func stripKeyOffHost(req *http.Request, via []*http.Request) {
	if len(via) == 0 {
		return
	}
	orig := via[0].URL
	if req.URL.Scheme == orig.Scheme && strings.EqualFold(req.URL.Host, orig.Host) {
		return
	}
	req.Header.Del("x-goog-api-key")
	if q := req.URL.Query(); q.Has("key") {
		q.Del("key")
		req.URL.RawQuery = q.Encode()
	}
}

// noRetry disables the interactions sub-client's built-in retries: the
// caller is a Pub/Sub consumer whose redelivery already retries, with
// backoff, and a dead-letter policy the SDK loop would only delay.
var noRetry = operations.WithRetries(retry.Config{Strategy: "none"})

// GetBatch returns the batch job name ("batches/…").
func (c *Client) GetBatch(ctx context.Context, name string) (*genai.BatchJob, error) {
	ctx, seen := withStatus(ctx)
	j, err := c.GenAI.Batches.Get(ctx, name, nil)
	if err != nil {
		return nil, classify(fmt.Errorf("gemini batches.get %s: %w", name, err), seen.get())
	}
	return j, nil
}

// GetVideosOperation returns the video generation operation name.
func (c *Client) GetVideosOperation(ctx context.Context, name string) (*genai.GenerateVideosOperation, error) {
	ctx, seen := withStatus(ctx)
	op, err := c.GenAI.Operations.GetVideosOperation(ctx, &genai.GenerateVideosOperation{Name: name}, nil)
	if err != nil {
		return nil, classify(fmt.Errorf("gemini operations.get %s: %w", name, err), seen.get())
	}
	return op, nil
}

// GetInteraction returns the interaction id.
func (c *Client) GetInteraction(ctx context.Context, id string) (*interactions.Interaction, error) {
	ctx, seen := withStatus(ctx)
	res, err := c.GenAI.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: id}, noRetry)
	if err != nil {
		return nil, classify(fmt.Errorf("gemini interactions.get %s: %w", id, err), seen.get())
	}
	if res == nil || res.Interaction == nil {
		return nil, fmt.Errorf("gemini interactions.get %s: no interaction in response: %w", id, ErrTransient)
	}
	return res.Interaction, nil
}

// FileID extracts a file id from the forms Gemini uses to point at a file:
// "files/abc", a bare "abc", or a URL containing "/files/abc" (a download
// URI or a generated video's URI). ok is false when none matches.
func FileID(ref string) (id string, ok bool) {
	s := ref
	if u, err := url.Parse(ref); err == nil && u.Scheme != "" {
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", false
		}
		i := strings.LastIndex(u.Path, "/files/")
		if i < 0 {
			return "", false
		}
		s = u.Path[i+len("/files/"):]
	} else {
		s = strings.TrimPrefix(s, "files/")
	}
	end := 0
	for end < len(s) && isIDByte(s[end]) {
		end++
	}
	if end == 0 {
		return "", false
	}
	return s[:end], true
}

func isIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// OpenFile starts downloading a file and returns its content as a stream;
// the caller must close it. ref is anything [FileID] accepts. Nothing is
// buffered beyond what the caller reads, so memory use does not depend on
// the file's size.
func (c *Client) OpenFile(ctx context.Context, ref string) (io.ReadCloser, error) {
	id, ok := FileID(ref)
	if !ok {
		return nil, fmt.Errorf("gemini download %q: not a Gemini file reference: %w", ref, ErrPermanent)
	}
	u := c.base + "/" + APIVersion + "/files/" + url.PathEscape(id) + ":download?alt=media"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("gemini download files/%s: %w: %w", id, err, ErrPermanent)
	}
	req.Header.Set("x-goog-api-key", c.key)
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("gemini download files/%s: %w: %w", id, err, ErrTransient)
	}
	if res.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		res.Body.Close()
		err := statusError(fmt.Sprintf("gemini download files/%s", id), res.StatusCode, strings.TrimSpace(string(msg)))
		return nil, fileGone(err, res.StatusCode)
	}
	return &transientReader{rc: res.Body, what: "gemini download files/" + id}, nil
}

// fileGone adds [ErrFileGone] to a 403 or 404 answer about a file.
func fileGone(err error, status int) error {
	if status == http.StatusNotFound || status == http.StatusForbidden {
		return fmt.Errorf("%w: %w", err, ErrFileGone)
	}
	return err
}

// FileInfo reads a file's metadata (files.get): its name, size, MIME type,
// state and expiration time. ref is anything [FileID] accepts. A file the
// key cannot read (expired, deleted) is an error wrapping [ErrFileGone].
func (c *Client) FileInfo(ctx context.Context, ref string) (*genai.File, error) {
	id, ok := FileID(ref)
	if !ok {
		return nil, fmt.Errorf("gemini files.get %q: not a Gemini file reference: %w", ref, ErrPermanent)
	}
	ctx, seen := withStatus(ctx)
	f, err := c.GenAI.Files.Get(ctx, "files/"+id, nil)
	if err != nil {
		err = classify(fmt.Errorf("gemini files.get files/%s: %w", id, err), seen.get())
		return nil, fileGone(err, StatusCode(err))
	}
	return f, nil
}

// transientReader marks read failures (a connection cut mid-file) as
// transient so the caller's error mapping retries them.
type transientReader struct {
	rc   io.ReadCloser
	what string
}

func (r *transientReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: read: %w: %w", r.what, err, ErrTransient)
	}
	return n, err
}

func (r *transientReader) Close() error { return r.rc.Close() }
