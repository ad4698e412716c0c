// Package config reads a function's configuration from its environment,
// applies documented defaults and validates everything at start, so a
// misconfigured deployment fails with one clear message instead of at the
// first webhook.
package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Defaults.
const (
	DefaultFirestoreDatabase  = "(default)"
	DefaultMaxBodyBytes       = 1 << 20
	DefaultSignatureTolerance = 5 * time.Minute
	DefaultJWKSURL            = "https://generativelanguage.googleapis.com/.well-known/jwks.json"
	DefaultDeliveryTTL        = 7 * 24 * time.Hour
)

// Receiver is the Receiver function's configuration.
type Receiver struct {
	// Project is GOOGLE_CLOUD_PROJECT (required).
	Project string
	// FirestoreDatabase is FIRESTORE_DATABASE; defaults to "(default)".
	FirestoreDatabase string
	// WebhookSecrets is GEMINI_WEBHOOK_SECRETS: whsec_ secrets separated by
	// commas or spaces. Either it or WebhookSecretsFile is required.
	WebhookSecrets []string
	// WebhookSecretsFile is GEMINI_WEBHOOK_SECRETS_FILE, a Secret Manager
	// volume mount re-read when it changes.
	WebhookSecretsFile string
	// EventsTopic is EVENTS_TOPIC (required), a topic id or full name.
	EventsTopic string
	// MaxBodyBytes is MAX_BODY_BYTES; defaults to 1 MiB.
	MaxBodyBytes int64
	// SignatureTolerance is SIGNATURE_TOLERANCE (a Go duration); defaults to 5m.
	SignatureTolerance time.Duration
	// JWKSURL is JWKS_URL, for dynamic (JWT-signed) webhooks.
	JWKSURL string
	// JWTAudience is JWT_AUDIENCE; enforced when set.
	JWTAudience string
	// DeliveryTTL is DELIVERY_TTL, how long deliveries are kept; defaults to 7 days.
	DeliveryTTL time.Duration
}

// LoadReceiver reads the Receiver configuration through getenv (os.Getenv
// in production). All problems are reported together.
func LoadReceiver(getenv func(string) string) (Receiver, error) {
	var errs []error
	c := Receiver{
		Project:            strings.TrimSpace(getenv("GOOGLE_CLOUD_PROJECT")),
		FirestoreDatabase:  orDefault(getenv("FIRESTORE_DATABASE"), DefaultFirestoreDatabase),
		WebhookSecretsFile: strings.TrimSpace(getenv("GEMINI_WEBHOOK_SECRETS_FILE")),
		EventsTopic:        strings.TrimSpace(getenv("EVENTS_TOPIC")),
		JWKSURL:            orDefault(getenv("JWKS_URL"), DefaultJWKSURL),
		JWTAudience:        strings.TrimSpace(getenv("JWT_AUDIENCE")),
	}
	if v := getenv("GEMINI_WEBHOOK_SECRETS"); strings.TrimSpace(v) != "" {
		c.WebhookSecrets = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
	}
	if c.Project == "" {
		errs = append(errs, errors.New("GOOGLE_CLOUD_PROJECT is required"))
	}
	if c.EventsTopic == "" {
		errs = append(errs, errors.New("EVENTS_TOPIC is required"))
	}
	if len(c.WebhookSecrets) == 0 && c.WebhookSecretsFile == "" {
		errs = append(errs, errors.New("GEMINI_WEBHOOK_SECRETS or GEMINI_WEBHOOK_SECRETS_FILE is required"))
	}
	var err error
	if c.MaxBodyBytes, err = intVar(getenv, "MAX_BODY_BYTES", DefaultMaxBodyBytes); err != nil {
		errs = append(errs, err)
	}
	if c.SignatureTolerance, err = durationVar(getenv, "SIGNATURE_TOLERANCE", DefaultSignatureTolerance); err != nil {
		errs = append(errs, err)
	}
	if c.DeliveryTTL, err = durationVar(getenv, "DELIVERY_TTL", DefaultDeliveryTTL); err != nil {
		errs = append(errs, err)
	} else if c.DeliveryTTL < 24*time.Hour {
		errs = append(errs, fmt.Errorf("DELIVERY_TTL=%s must cover Gemini's 24h retry window", c.DeliveryTTL))
	}
	if err := errors.Join(errs...); err != nil {
		return Receiver{}, fmt.Errorf("receiver config: %w", err)
	}
	return c, nil
}

func orDefault(v, d string) string {
	if v = strings.TrimSpace(v); v != "" {
		return v
	}
	return d
}

func intVar(getenv func(string) string, name string, def int64) (int64, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
	}
	return n, nil
}

func durationVar(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive Go duration such as 5m", name, v)
	}
	return d, nil
}
