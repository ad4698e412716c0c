package gemini

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Download is a file being downloaded from an offset ([Client.OpenFileAt]).
type Download struct {
	// Body yields the file's bytes from the requested offset on; the caller
	// must close it.
	Body io.ReadCloser
	// Ranged reports that the server honoured the Range request (206). When
	// it did not (200), the first offset bytes were read and discarded.
	Ranged bool
	// Size is the file's total size in bytes, -1 when the server did not
	// say (no Content-Length or Content-Range total).
	Size int64
}

// OpenFileAt starts downloading a file from byte offset on. It asks for
// "Range: bytes=offset-"; a server that ignores it (200) is read from the
// start and the first offset bytes are discarded, so the result is the same
// either way, only slower. A 416 (the offset is at or past the end: the
// file is exhausted) yields an empty body. Errors are classified like
// [Client.OpenFile]'s.
func (c *Client) OpenFileAt(ctx context.Context, ref string, offset int64) (*Download, error) {
	id, ok := FileID(ref)
	if !ok {
		return nil, fmt.Errorf("gemini download %q: not a Gemini file reference: %w", ref, ErrPermanent)
	}
	what := "gemini download files/" + id
	u := c.base + "/" + APIVersion + "/files/" + url.PathEscape(id) + ":download?alt=media"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, err, ErrPermanent)
	}
	req.Header.Set("x-goog-api-key", c.key)
	if offset > 0 {
		// Go keeps Range across redirects (it is not a sensitive header).
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, err, ErrTransient)
	}
	switch {
	case res.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0:
		res.Body.Close()
		return &Download{Body: io.NopCloser(strings.NewReader("")), Ranged: true, Size: rangeTotal(res.Header.Get("Content-Range"))}, nil
	case res.StatusCode/100 != 2:
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		res.Body.Close()
		err := statusError(what, res.StatusCode, strings.TrimSpace(string(msg)))
		return nil, fileGone(err, res.StatusCode)
	}
	d := &Download{Body: &transientReader{rc: res.Body, what: what}, Size: res.ContentLength}
	if res.StatusCode == http.StatusPartialContent {
		start, total, ok := contentRange(res.Header.Get("Content-Range"))
		if !ok || start != offset {
			res.Body.Close()
			return nil, fmt.Errorf("%s: 206 with Content-Range %q for a request from byte %d: %w", what,
				res.Header.Get("Content-Range"), offset, ErrTransient)
		}
		d.Ranged, d.Size = true, total
		return d, nil
	}
	if offset > 0 {
		// The server sent the whole file: skip to the offset.
		n, err := io.CopyN(io.Discard, d.Body, offset)
		if err != nil && err != io.EOF {
			d.Body.Close()
			return nil, fmt.Errorf("%s: skipping %d bytes: %w", what, offset, err)
		}
		if n < offset {
			// The file is shorter than the offset: nothing is left.
			d.Body.Close()
			d.Body = io.NopCloser(strings.NewReader(""))
		}
	}
	return d, nil
}

// contentRange parses "bytes START-END/TOTAL" (TOTAL may be "*": -1).
func contentRange(h string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(h), "bytes ")
	if !found {
		return 0, 0, false
	}
	span, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	s, _, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

// rangeTotal is the TOTAL of "bytes */TOTAL" (a 416's Content-Range), or -1.
func rangeTotal(h string) int64 {
	_, tot, found := strings.Cut(h, "/")
	if !found {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(tot), 10, 64)
	if err != nil {
		return -1
	}
	return n
}
