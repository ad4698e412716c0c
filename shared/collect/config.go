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
	// Common: GOOGLE_CLOUD_PROJECT, FIRESTORE_DATABASE, MAX_DELIVERY_ATTEMPTS.
	config.Common
	// Gemini: GEMINI_API_KEY (or _FILE) and GEMINI_BASE_URL.
	Gemini config.Gemini
	// ResultsTopic is RESULTS_TOPIC (required): topic id or full name.
	ResultsTopic string
	// VideoBucket is VIDEO_BUCKET: when set, generated videos are copied to
	// gs://VIDEO_BUCKET/videos/<job_id>/<n>.mp4. Empty: no copy.
	VideoBucket string
}

// ConfigFromEnv reads the Collector's configuration through getenv
// (os.Getenv in production). Every missing or malformed variable is
// reported, not just the first.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	e := config.NewEnv(getenv)
	c := Config{
		Common:       e.Common(),
		Gemini:       e.Gemini(),
		ResultsTopic: e.Required("RESULTS_TOPIC"),
		VideoBucket:  strings.TrimPrefix(e.String("VIDEO_BUCKET", ""), "gs://"),
	}
	if err := e.Err("collector"); err != nil {
		return Config{}, err
	}
	return c, nil
}
