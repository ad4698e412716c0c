package workflow

import "github.com/geminihooks/geminihooks/shared/config"

// DefaultMaxDeliveryAttempts mirrors the Workflow subscription's
// dead-letter policy.
const DefaultMaxDeliveryAttempts = config.DefaultMaxDeliveryAttempts

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
	e := config.NewEnv(getenv)
	common, gem := e.Common(), e.Gemini()
	c := Config{
		Project:             common.Project,
		Database:            common.Database,
		GeminiAPIKey:        gem.APIKey,
		GeminiBaseURL:       gem.BaseURL,
		MaxDeliveryAttempts: common.MaxDeliveryAttempts,
	}
	if err := e.Err("workflow"); err != nil {
		return Config{}, err
	}
	return c, nil
}
