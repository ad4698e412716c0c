package collect

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// DefaultMaxDeliveryAttempts mirrors the events subscription's dead-letter
// policy (topology): after this many deliveries Pub/Sub gives up.
const DefaultMaxDeliveryAttempts = 5

// Config is the Collector's environment.
type Config struct {
	// Project is GOOGLE_CLOUD_PROJECT (required).
	Project string
	// Database is FIRESTORE_DATABASE, default "(default)".
	Database string
	// GeminiAPIKey comes from GEMINI_API_KEY or the file GEMINI_API_KEY_FILE
	// names (one of them is required; the variable wins).
	GeminiAPIKey string
	// GeminiBaseURL is GEMINI_BASE_URL, empty for Google's endpoint.
	GeminiBaseURL string
	// ResultsTopic is RESULTS_TOPIC (required): topic id or full name.
	ResultsTopic string
	// VideoBucket is VIDEO_BUCKET: when set, generated videos are copied to
	// gs://VIDEO_BUCKET/videos/<job_id>/<n>.mp4. Empty: no copy.
	VideoBucket string
	// MaxDeliveryAttempts is MAX_DELIVERY_ATTEMPTS, default 5.
	MaxDeliveryAttempts int
}

// ConfigFromEnv reads the Collector's configuration through getenv
// (os.Getenv in production). Every missing or malformed variable is
// reported, not just the first.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Project:             strings.TrimSpace(getenv("GOOGLE_CLOUD_PROJECT")),
		Database:            strings.TrimSpace(getenv("FIRESTORE_DATABASE")),
		GeminiAPIKey:        strings.TrimSpace(getenv("GEMINI_API_KEY")),
		GeminiBaseURL:       strings.TrimSpace(getenv("GEMINI_BASE_URL")),
		ResultsTopic:        strings.TrimSpace(getenv("RESULTS_TOPIC")),
		VideoBucket:         strings.TrimPrefix(strings.TrimSpace(getenv("VIDEO_BUCKET")), "gs://"),
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
	if c.ResultsTopic == "" {
		errs = append(errs, errors.New("RESULTS_TOPIC is required"))
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
		return Config{}, fmt.Errorf("collector config: %w", errors.Join(errs...))
	}
	return c, nil
}
