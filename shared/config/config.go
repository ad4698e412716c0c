// Package config reads a function's configuration from its environment,
// applies documented defaults and validates everything at start, so a
// misconfigured deployment fails with one clear message instead of at the
// first webhook.
package config

import (
	"errors"
	"fmt"
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
	// JWTEnabled is WEBHOOK_JWT_ENABLED; defaults to false. Dynamic
	// (per-job, JWT-signed) webhooks are accepted only when it is true:
	// otherwise a JWT-signed delivery is answered 401. Off by default
	// because Gemini does not document the token's audience, so any token
	// Gemini issued for anyone would verify unless JWT_AUDIENCE is set.
	JWTEnabled bool
	// JWKSURL is JWKS_URL, for dynamic (JWT-signed) webhooks. https, or
	// http to a loopback host.
	JWKSURL string
	// JWTAudience is JWT_AUDIENCE; when set, a token's "aud" must contain it.
	JWTAudience string
	// DeliveryTTL is DELIVERY_TTL, how long deliveries are kept; defaults to 7 days.
	DeliveryTTL time.Duration
}

// LoadReceiver reads the Receiver configuration through getenv (os.Getenv
// in production). All problems are reported together.
func LoadReceiver(getenv func(string) string) (Receiver, error) {
	e := NewEnv(getenv)
	c := Receiver{
		Project:            e.Required("GOOGLE_CLOUD_PROJECT"),
		FirestoreDatabase:  e.String("FIRESTORE_DATABASE", DefaultFirestoreDatabase),
		WebhookSecretsFile: e.String("GEMINI_WEBHOOK_SECRETS_FILE", ""),
		EventsTopic:        e.Required("EVENTS_TOPIC"),
		MaxBodyBytes:       e.PositiveInt("MAX_BODY_BYTES", DefaultMaxBodyBytes),
		SignatureTolerance: e.Duration("SIGNATURE_TOLERANCE", DefaultSignatureTolerance),
		JWTEnabled:         e.Bool("WEBHOOK_JWT_ENABLED", false),
		JWKSURL:            e.String("JWKS_URL", DefaultJWKSURL),
		JWTAudience:        e.String("JWT_AUDIENCE", ""),
		DeliveryTTL:        e.Duration("DELIVERY_TTL", DefaultDeliveryTTL),
	}
	if v := e.String("GEMINI_WEBHOOK_SECRETS", ""); v != "" {
		c.WebhookSecrets = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
	}
	if len(c.WebhookSecrets) == 0 && c.WebhookSecretsFile == "" {
		e.Fail(errors.New("GEMINI_WEBHOOK_SECRETS or GEMINI_WEBHOOK_SECRETS_FILE is required"))
	}
	if c.DeliveryTTL < 24*time.Hour {
		e.Fail(fmt.Errorf("DELIVERY_TTL=%s must cover Gemini's 24h retry window", c.DeliveryTTL))
	}
	if err := e.Err("receiver"); err != nil {
		return Receiver{}, err
	}
	return c, nil
}
