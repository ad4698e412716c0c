package reconcile

import (
	"fmt"
	"time"

	"github.com/geminihooks/geminihooks/shared/config"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

// Config is the Reconciler's environment.
type Config struct {
	// Common: GOOGLE_CLOUD_PROJECT, FIRESTORE_DATABASE.
	config.Common
	// Gemini: GEMINI_API_KEY (or _FILE) and GEMINI_BASE_URL.
	Gemini config.Gemini
	// EventsTopic is EVENTS_TOPIC (required): where found states are
	// announced, like the Receiver's.
	EventsTopic string
	// Limit is RECONCILE_LIMIT (default DefaultLimit).
	Limit int
	// LookBack is RECONCILE_LOOKBACK (default DefaultLookBack).
	LookBack time.Duration
	// StuckAfter is RECONCILE_STUCK_AFTER (default DefaultStuckAfter).
	StuckAfter time.Duration
	// ReEnableWebhooks is RECONCILE_REENABLE_WEBHOOKS=true (default false).
	ReEnableWebhooks bool
	// SkipBatchList is RECONCILE_LIST_BATCHES=false (default: listed).
	SkipBatchList bool
	// FirstCheck is RECONCILE_FIRST_CHECK (ledger.FirstCheckEnv; default
	// ledger.DefaultSchedule.First); every ledger user reads it.
	FirstCheck time.Duration
}

// ConfigFromEnv reads the Reconciler's configuration through getenv
// (os.Getenv in production); every problem is reported.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	e := config.NewEnv(getenv)
	c := Config{
		Common:      e.Common(),
		Gemini:      e.Gemini(),
		EventsTopic: e.Required("EVENTS_TOPIC"),
		Limit:       int(e.PositiveInt("RECONCILE_LIMIT", DefaultLimit)),
		LookBack:    e.Duration("RECONCILE_LOOKBACK", DefaultLookBack),
		StuckAfter:  e.Duration("RECONCILE_STUCK_AFTER", DefaultStuckAfter),
		FirstCheck:  e.Duration(ledger.FirstCheckEnv, ledger.DefaultSchedule.First),
	}
	switch v := e.String("RECONCILE_REENABLE_WEBHOOKS", "false"); v {
	case "true", "1":
		c.ReEnableWebhooks = true
	case "false", "0", "":
	default:
		e.Fail(errorf("RECONCILE_REENABLE_WEBHOOKS=%q: want true or false", v))
	}
	switch v := e.String("RECONCILE_LIST_BATCHES", "true"); v {
	case "false", "0":
		c.SkipBatchList = true
	case "true", "1", "":
	default:
		e.Fail(errorf("RECONCILE_LIST_BATCHES=%q: want true or false", v))
	}
	if err := e.Err("reconciler"); err != nil {
		return Config{}, err
	}
	return c, nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
