package collect

import (
	"fmt"
	"strings"
	"time"

	"github.com/geminihooks/geminihooks/shared/config"
	"github.com/geminihooks/geminihooks/shared/topology"
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
	// EventsTopic is EVENTS_TOPIC (required): where the Collector hands the
	// rest of a large output to its next invocation (event.Continuation).
	EventsTopic string
	// TimeBudget is COLLECT_TIME_BUDGET (a Go duration, default
	// DefaultTimeBudget, at most MaxTimeBudget): how long one invocation
	// streams an output file before it checkpoints and hands on.
	TimeBudget time.Duration
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
		EventsTopic:  e.Required("EVENTS_TOPIC"),
		TimeBudget:   e.Duration("COLLECT_TIME_BUDGET", DefaultTimeBudget),
		VideoBucket:  strings.TrimPrefix(e.String("VIDEO_BUCKET", ""), "gs://"),
	}
	if c.TimeBudget > MaxTimeBudget {
		e.Fail(fmt.Errorf("COLLECT_TIME_BUDGET=%s: at most %s, so the checkpoint after it is written before the handler's %s deadline", c.TimeBudget, MaxTimeBudget, topology.CollectorDeadline))
	}
	if err := e.Err("collector"); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Time budget bounds. The budget plus the time to flush the results in
// flight and write the checkpoint (FlushMargin) must stay below the
// handler's deadline (topology.CollectorDeadline, 480 s), which is below
// the function's timeout (540 s) and the events subscription's ack deadline
// (600 s); terraform/functions.tf checks the same relation.
const (
	DefaultTimeBudget = 300 * time.Second
	FlushMargin       = 60 * time.Second
	MaxTimeBudget     = topology.CollectorDeadline - FlushMargin
)
