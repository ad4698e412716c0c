package gemini

import (
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/apierrors"
	"google.golang.org/genai/interactions/models/components"
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

// permanentStatus lists the HTTP statuses for which a retry cannot help.
// 401/403 are left transient: they come from a wrong or revoked API key,
// which an operator can fix while Pub/Sub keeps retrying.
func permanentStatus(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusGone, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

func statusError(what string, code int, msg string) error {
	class := ErrTransient
	if permanentStatus(code) {
		class = ErrPermanent
	}
	if msg != "" {
		return fmt.Errorf("%s: HTTP %d: %s: %w", what, code, msg, class)
	}
	return fmt.Errorf("%s: HTTP %d: %w", what, code, class)
}

// StatusCode returns the HTTP status carried by an SDK error, or 0.
func StatusCode(err error) int {
	var ae genai.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	var pae *genai.APIError
	if errors.As(err, &pae) && pae != nil {
		return pae.Code
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

func metaStatus(m components.HTTPMetadata) int {
	if m.Response != nil {
		return m.Response.StatusCode
	}
	return 0
}

// Classify wraps err with [ErrPermanent] or [ErrTransient] unless it already
// carries one: SDK errors by HTTP status (400/404/410/422 permanent, the
// rest transient), everything else (network, timeouts, decoding surprises)
// transient, because a retry is cheap and a dead-letter policy bounds it.
func Classify(err error) error {
	if err == nil || errors.Is(err, ErrPermanent) || errors.Is(err, ErrTransient) {
		return err
	}
	if code := StatusCode(err); code != 0 && permanentStatus(code) {
		return fmt.Errorf("%w: %w", err, ErrPermanent)
	}
	return fmt.Errorf("%w: %w", err, ErrTransient)
}
