package workflow

import "github.com/geminihooks/geminihooks/shared/config"

// DefaultMaxDeliveryAttempts mirrors the Workflow subscription's
// dead-letter policy.
const DefaultMaxDeliveryAttempts = config.DefaultMaxDeliveryAttempts

// Config is the Workflow function's environment: GOOGLE_CLOUD_PROJECT,
// FIRESTORE_DATABASE and MAX_DELIVERY_ATTEMPTS (on that attempt a transient
// failure fails the run, visibly, before the message dead-letters), and the
// Gemini API access.
type Config struct {
	config.Common
	Gemini config.Gemini
}

// ConfigFromEnv reads the configuration through getenv, reporting every
// problem at once.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	e := config.NewEnv(getenv)
	c := Config{Common: e.Common(), Gemini: e.Gemini()}
	if err := e.Err("workflow"); err != nil {
		return Config{}, err
	}
	return c, nil
}
