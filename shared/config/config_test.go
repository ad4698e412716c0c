package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadReceiver(t *testing.T) {
	base := map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "EVENTS_TOPIC": "events", "GEMINI_WEBHOOK_SECRETS": "whsec_a, whsec_b whsec_c"}
	c, err := LoadReceiver(env(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.FirestoreDatabase != "(default)" || c.MaxBodyBytes != 1<<20 || c.SignatureTolerance != 5*time.Minute ||
		c.JWKSURL != DefaultJWKSURL || c.JWTEnabled || c.DeliveryTTL != 7*24*time.Hour || len(c.WebhookSecrets) != 3 {
		t.Errorf("defaults: %+v", c)
	}
	tests := map[string]struct {
		set     map[string]string
		wantErr []string
	}{
		"nothing": {set: map[string]string{"GOOGLE_CLOUD_PROJECT": "", "EVENTS_TOPIC": "", "GEMINI_WEBHOOK_SECRETS": ""},
			wantErr: []string{"GOOGLE_CLOUD_PROJECT is required", "EVENTS_TOPIC is required", "GEMINI_WEBHOOK_SECRETS or GEMINI_WEBHOOK_SECRETS_FILE"}},
		"file instead of list": {set: map[string]string{"GEMINI_WEBHOOK_SECRETS": "", "GEMINI_WEBHOOK_SECRETS_FILE": "/s"}},
		"bad body size":        {set: map[string]string{"MAX_BODY_BYTES": "-1"}, wantErr: []string{"MAX_BODY_BYTES"}},
		"bad tolerance":        {set: map[string]string{"SIGNATURE_TOLERANCE": "5"}, wantErr: []string{"SIGNATURE_TOLERANCE"}},
		"bad jwt switch":       {set: map[string]string{"WEBHOOK_JWT_ENABLED": "yes please"}, wantErr: []string{"WEBHOOK_JWT_ENABLED"}},
		"ttl too short":        {set: map[string]string{"DELIVERY_TTL": "1h"}, wantErr: []string{"24h retry window"}},
		"overrides": {set: map[string]string{"MAX_BODY_BYTES": "2048", "SIGNATURE_TOLERANCE": "30s", "FIRESTORE_DATABASE": "db2",
			"JWT_AUDIENCE": "https://x", "DELIVERY_TTL": "48h", "WEBHOOK_JWT_ENABLED": "true"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range base {
				m[k] = v
			}
			for k, v := range tc.set {
				m[k] = v
			}
			c, err := LoadReceiver(env(m))
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if name == "overrides" && (c.MaxBodyBytes != 2048 || c.SignatureTolerance != 30*time.Second || c.FirestoreDatabase != "db2" || c.DeliveryTTL != 48*time.Hour ||
					!c.JWTEnabled || c.JWTAudience != "https://x") {
					t.Errorf("overrides not applied: %+v", c)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
