package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/submit"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// Hints appended to every error message.
const (
	hintRetry = "retry may help"
	hintInput = "fix the input"
)

// cliError is an error a command reports to the user. Any other error that
// reaches run comes from argument or flag parsing and is a usage error.
type cliError struct {
	what  string
	err   error
	usage bool
	retry bool
}

func (e *cliError) Error() string {
	hint := hintInput
	if e.retry {
		hint = hintRetry
	}
	why := strings.TrimSpace(e.err.Error())
	return fmt.Sprintf("%s: %s (%s)", e.what, why, hint)
}

func (e *cliError) Unwrap() error { return e.err }

// usageErr reports a bad invocation: exit code 2.
func usageErr(format string, args ...any) error {
	return &cliError{what: "usage", err: fmt.Errorf(format, args...), usage: true}
}

// inputErr reports a run-time failure caused by the input (a missing job,
// a rejected request): exit code 1, "fix the input".
func inputErr(what string, err error) error {
	return &cliError{what: what, err: err}
}

// fail reports a run-time failure, deciding from err whether retrying may
// help: exit code 1.
func fail(what string, err error) error {
	var ce *cliError
	if errors.As(err, &ce) {
		return err
	}
	return &cliError{what: what, err: err, retry: retryable(err)}
}

// retryable classifies errors of the packages the CLI calls.
func retryable(err error) bool {
	switch {
	case errors.Is(err, ledger.ErrNotFound), errors.Is(err, submit.ErrInvalidRequest),
		errors.Is(err, errBadInput), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, submit.ErrNotRecorded):
		return true
	}
	switch gemini.StatusCode(err) {
	case 400, 401, 403, 404, 409, 410, 422:
		return false
	}
	return !gemini.IsPermanent(err)
}

// errBadInput marks run-time errors caused by the user's input (an
// unreadable file, malformed JSON).
var errBadInput = errors.New("bad input")
