package collect

import (
	"strings"

	"github.com/geminihooks/geminihooks/shared/config"
)

// DefaultMaxDeliveryAttempts mirrors the events subscription's dead-letter
// policy (topology): after this many deliveries Pub/Sub gives up.
const DefaultMaxDeliveryAttempts = config.DefaultMaxDeliveryAttempts

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
	e := config.NewEnv(getenv)
	common, gem := e.Common(), e.Gemini()
	c := Config{
		Project:             common.Project,
		Database:            common.Database,
		GeminiAPIKey:        gem.APIKey,
		GeminiBaseURL:       gem.BaseURL,
		ResultsTopic:        e.Required("RESULTS_TOPIC"),
		VideoBucket:         strings.TrimPrefix(e.String("VIDEO_BUCKET", ""), "gs://"),
		MaxDeliveryAttempts: common.MaxDeliveryAttempts,
	}
	if err := e.Err("collector"); err != nil {
		return Config{}, err
	}
	return c, nil
}
