package workflow

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// DefaultMaxDeliveryAttempts mirrors the Workflow subscription's
// dead-letter policy.
const DefaultMaxDeliveryAttempts = 5

// Config is the Workflow function's environment.
type Config struct {
	// Project is GOOGLE_CLOUD_PROJECT (required).
	Project string
	// Database is FIRESTORE_DATABASE, default "(default)".
	Database string
	// GeminiAPIKey comes from GEMINI_API_KEY or the file GEMINI_API_KEY_FILE
	// names (one is required; the variable wins).
	GeminiAPIKey string
	// GeminiBaseURL is GEMINI_BASE_URL, empty for Google's endpoint.
	GeminiBaseURL string
	// MaxDeliveryAttempts is MAX_DELIVERY_ATTEMPTS, default 5: on that
	// attempt a transient failure fails the run (visibly) before the
	// message dead-letters.
	MaxDeliveryAttempts int
}

// ConfigFromEnv reads the configuration through getenv, reporting every
// problem at once.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Project:             strings.TrimSpace(getenv("GOOGLE_CLOUD_PROJECT")),
		Database:            strings.TrimSpace(getenv("FIRESTORE_DATABASE")),
		GeminiAPIKey:        strings.TrimSpace(getenv("GEMINI_API_KEY")),
		GeminiBaseURL:       strings.TrimSpace(getenv("GEMINI_BASE_URL")),
		MaxDeliveryAttempts: DefaultMaxDeliveryAttempts,
	}
	var errs []error
	if c.Project == "" {
		errs = append(errs, errors.New("GOOGLE_CLOUD_PROJECT is required"))
	}
	if c.Database == "" {
		c.Database = "(default)"
	}
	if c.GeminiAPIKey == "" {
		if f := strings.TrimSpace(getenv("GEMINI_API_KEY_FILE")); f != "" {
			b, err := os.ReadFile(f)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("GEMINI_API_KEY_FILE: %w", err))
			case strings.TrimSpace(string(b)) == "":
				errs = append(errs, fmt.Errorf("GEMINI_API_KEY_FILE %s is empty", f))
			default:
				c.GeminiAPIKey = strings.TrimSpace(string(b))
			}
		} else {
			errs = append(errs, errors.New("GEMINI_API_KEY or GEMINI_API_KEY_FILE is required"))
		}
	}
	if v := strings.TrimSpace(getenv("MAX_DELIVERY_ATTEMPTS")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("MAX_DELIVERY_ATTEMPTS %q: want a positive integer", v))
		} else {
			c.MaxDeliveryAttempts = n
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("workflow config: %w", errors.Join(errs...))
	}
	return c, nil
}
