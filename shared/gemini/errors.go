package gemini

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/apierrors"
	"google.golang.org/genai/interactions/models/components"

	"github.com/geminihooks/geminihooks/shared/event"
)

// Error classes. Every error returned by this package wraps exactly one.
var (
	// ErrPermanent: the request can never succeed as made (the resource does
	// not exist, the request is invalid). Retrying does not help.
	ErrPermanent = errors.New("permanent gemini error (retry cannot help)")
	// ErrTransient: quota, server or network trouble. Retrying later may help.
	ErrTransient = errors.New("transient gemini error (retry may help)")
)

// IsPermanent reports whether err is classified permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// permanentStatus reports whether an HTTP status says a retry of the same
// request cannot help: a client error (4xx) other than the ones that
// depend on time or on the caller's credentials, and 501.
//
//   - 401/403 are left transient: a wrong or revoked API key is fixed by an
//     operator while Pub/Sub keeps retrying.
//   - 408, 409, 425, 429 and 499 are about timing, contention or quota.
//
// Any other 4xx, including ones this code has never seen, repeats
// identically, so it is permanent rather than retried until the dead-letter
// policy gives up.
func permanentStatus(code int) bool {
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusConflict,
		http.StatusTooEarly, http.StatusTooManyRequests, 499:
		return false
	case http.StatusNotImplemented:
		return true
	}
	return code >= 400 && code < 500
}

func statusError(what string, code int, msg string) error {
	class := ErrTransient
	if permanentStatus(code) {
		class = ErrPermanent
	}
	if msg != "" {
		return &HTTPError{Status: code, Err: fmt.Errorf("%s: HTTP %d: %s: %w", what, code, msg, class)}
	}
	return &HTTPError{Status: code, Err: fmt.Errorf("%s: HTTP %d: %w", what, code, class)}
}

// HTTPError carries the HTTP status of the answer that failed, whatever the
// error body said (an SDK error may only show the body's own code).
type HTTPError struct {
	Status int
	Err    error
}

func (e *HTTPError) Error() string { return e.Err.Error() }
func (e *HTTPError) Unwrap() error { return e.Err }

// StatusCode returns the HTTP status of the answer behind err, or 0 when
// there was none (a network error) or it cannot be told. An SDK error whose
// body carried a canonical code or status name instead of the HTTP status
// ({"error":{"code":3}}, {"error":{"status":"NOT_FOUND"}}) maps to the HTTP
// status that stands for it.
func StatusCode(err error) int {
	var he *HTTPError
	if errors.As(err, &he) && he.Status != 0 {
		return he.Status
	}
	var ae genai.APIError
	if errors.As(err, &ae) {
		return apiErrorStatus(ae)
	}
	var pae *genai.APIError
	if errors.As(err, &pae) && pae != nil {
		return apiErrorStatus(*pae)
	}
	var ie *apierrors.APIError
	if errors.As(err, &ie) {
		return ie.StatusCode
	}
	var ve *apierrors.ResponseValidationError
	if errors.As(err, &ve) {
		return ve.StatusCode
	}
	var ce *apierrors.GetInteractionByIDClientError
	if errors.As(err, &ce) {
		return metaStatus(ce.HTTPMeta)
	}
	var se *apierrors.GetInteractionByIDServerError
	if errors.As(err, &se) {
		return metaStatus(se.HTTPMeta)
	}
	return 0
}

// apiErrorStatus reads the classic client's error: its Code is the body's
// "code", normally the HTTP status, but a body may carry a canonical code
// (0–16) or only a status name.
func apiErrorStatus(ae genai.APIError) int {
	switch {
	case ae.Code >= 100 && ae.Code <= 599:
		return ae.Code
	case ae.Status != "":
		if s := event.HTTPStatusFor(ae.Status); s != 0 {
			return s
		}
	}
	if ae.Code > 0 && ae.Code <= 16 {
		if je := event.NormalizeError(ae.Code, "", ""); je != nil {
			return event.HTTPStatusFor(je.Status)
		}
	}
	return 0
}

func metaStatus(m components.HTTPMetadata) int {
	if m.Response != nil {
		return m.Response.StatusCode
	}
	return 0
}

// Classify wraps err with [ErrPermanent] or [ErrTransient] unless it already
// carries one: by the HTTP status of the failed answer ([StatusCode],
// [permanentStatus]), so an error body of a shape nobody anticipated is
// classified like any other answer with that status; errors without an
// answer (network, timeouts) are transient, because a retry is cheap and a
// dead-letter policy bounds it.
func Classify(err error) error {
	return classify(err, 0)
}

// classify is Classify with the HTTP status seen by the transport (0 if
// none): it decides when the SDK's error does not carry the status.
func classify(err error, seen int) error {
	if err == nil || errors.Is(err, ErrPermanent) || errors.Is(err, ErrTransient) {
		return err
	}
	code := StatusCode(err)
	if seen >= 400 {
		// The transport saw the real answer; the SDK's error may only
		// repeat what the body claimed.
		code = seen
	}
	class := ErrTransient
	if code != 0 && permanentStatus(code) {
		class = ErrPermanent
	}
	if code != 0 {
		return &HTTPError{Status: code, Err: fmt.Errorf("%w: %w", err, class)}
	}
	return fmt.Errorf("%w: %w", err, class)
}

// statusKey carries a *statusBox in a request's context: the transport
// records the last HTTP status the request got.
type statusKey struct{}

type statusBox struct{ code atomic.Int32 }

func (b *statusBox) get() int {
	if b == nil {
		return 0
	}
	return int(b.code.Load())
}

// withStatus returns a context whose requests report their HTTP status.
func withStatus(ctx context.Context) (context.Context, *statusBox) {
	b := &statusBox{}
	return context.WithValue(ctx, statusKey{}, b), b
}

// statusTransport records each answer's status in the request's statusBox.
type statusTransport struct{ base http.RoundTripper }

func (t statusTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(r)
	if res != nil {
		if b, ok := r.Context().Value(statusKey{}).(*statusBox); ok {
			b.code.Store(int32(res.StatusCode))
		}
	}
	return res, err
}
