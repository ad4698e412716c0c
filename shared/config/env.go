package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env reads a function's variables and collects every problem, so a
// misconfigured deployment is told everything at once. Values are trimmed.
type Env struct {
	get  func(string) string
	errs []error
}

// NewEnv reads through getenv (os.Getenv in production).
func NewEnv(getenv func(string) string) *Env { return &Env{get: getenv} }

// String returns name's value, or def when unset.
func (e *Env) String(name, def string) string {
	if v := strings.TrimSpace(e.get(name)); v != "" {
		return v
	}
	return def
}

// Required returns name's value and records an error when it is unset.
func (e *Env) Required(name string) string {
	v := strings.TrimSpace(e.get(name))
	if v == "" {
		e.errs = append(e.errs, fmt.Errorf("%s is required", name))
	}
	return v
}

// Secret returns the value of name or, when unset, the content of the file
// named by name+"_FILE" (a Secret Manager volume mount). One of them is
// required.
func (e *Env) Secret(name string) string {
	if v := strings.TrimSpace(e.get(name)); v != "" {
		return v
	}
	f := strings.TrimSpace(e.get(name + "_FILE"))
	if f == "" {
		e.errs = append(e.errs, fmt.Errorf("%s or %s_FILE is required", name, name))
		return ""
	}
	b, err := os.ReadFile(f)
	v := strings.TrimSpace(string(b))
	switch {
	case err != nil:
		e.errs = append(e.errs, fmt.Errorf("%s_FILE: %w", name, err))
	case v == "":
		e.errs = append(e.errs, fmt.Errorf("%s_FILE %s is empty", name, f))
	}
	return v
}

// PositiveInt returns name as a positive integer, or def when unset.
func (e *Env) PositiveInt(name string, def int64) int64 {
	v := strings.TrimSpace(e.get(name))
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a positive integer", name, v))
		return def
	}
	return n
}

// Bool returns name as a boolean (strconv.ParseBool: true/false/1/0...),
// or def when unset.
func (e *Env) Bool(name string, def bool) bool {
	v := strings.TrimSpace(e.get(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want true or false", name, v))
		return def
	}
	return b
}

// Duration returns name as a positive Go duration, or def when unset.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(e.get(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a positive Go duration such as 5m", name, v))
		return def
	}
	return d
}

// Fail records a problem found by the caller.
func (e *Env) Fail(err error) { e.errs = append(e.errs, err) }

// Err returns every problem, prefixed with what was being configured
// ("receiver config: …"), or nil. Fix the environment; retrying cannot help.
func (e *Env) Err(what string) error {
	if len(e.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s config: %w", what, errors.Join(e.errs...))
}

// Common are the variables every function reads.
type Common struct {
	// Project is GOOGLE_CLOUD_PROJECT (required).
	Project string
	// Database is FIRESTORE_DATABASE; defaults to "(default)".
	Database string
	// MaxDeliveryAttempts is MAX_DELIVERY_ATTEMPTS, the dead-letter limit of
	// the function's push subscription; defaults to DefaultMaxDeliveryAttempts.
	// On that attempt a consumer records a transient failure before the
	// message is dead-lettered.
	MaxDeliveryAttempts int
}

// DefaultMaxDeliveryAttempts mirrors the subscriptions' dead-letter policy
// (shared/topology.MaxDeliveryAttempts).
const DefaultMaxDeliveryAttempts = 5

// Common reads the variables every function shares.
func (e *Env) Common() Common {
	return Common{
		Project:             e.Required("GOOGLE_CLOUD_PROJECT"),
		Database:            e.String("FIRESTORE_DATABASE", DefaultFirestoreDatabase),
		MaxDeliveryAttempts: int(e.PositiveInt("MAX_DELIVERY_ATTEMPTS", DefaultMaxDeliveryAttempts)),
	}
}

// Gemini is how a function reaches the Gemini API.
type Gemini struct {
	// APIKey is GEMINI_API_KEY or the content of GEMINI_API_KEY_FILE (required).
	APIKey string
	// BaseURL is GEMINI_BASE_URL; empty means Google's endpoint.
	BaseURL string
}

// Gemini reads the Gemini API access variables.
func (e *Env) Gemini() Gemini {
	return Gemini{APIKey: e.Secret("GEMINI_API_KEY"), BaseURL: e.String("GEMINI_BASE_URL", "")}
}
