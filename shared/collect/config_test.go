package collect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/shared/config"
)

func TestConfigFromEnv(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte("file-key\n"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	base := map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "GEMINI_API_KEY": "k", "RESULTS_TOPIC": "results", "EVENTS_TOPIC": "events"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr []string
	}{
		{"defaults", base, Config{Common: config.Common{Project: "p", Database: "(default)", MaxDeliveryAttempts: 5}, Gemini: config.Gemini{APIKey: "k"}, ResultsTopic: "results", EventsTopic: "events", TimeBudget: DefaultTimeBudget}, nil},
		{"all set", with("FIRESTORE_DATABASE", "db", "GEMINI_BASE_URL", "http://127.0.0.1:1", "VIDEO_BUCKET", "gs://b", "MAX_DELIVERY_ATTEMPTS", "7", "COLLECT_TIME_BUDGET", "2m"),
			Config{Common: config.Common{Project: "p", Database: "db", MaxDeliveryAttempts: 7}, Gemini: config.Gemini{APIKey: "k", BaseURL: "http://127.0.0.1:1"}, ResultsTopic: "results", EventsTopic: "events", TimeBudget: 2 * time.Minute, VideoBucket: "b"}, nil},
		{"key file", with("GEMINI_API_KEY", "", "GEMINI_API_KEY_FILE", keyFile),
			Config{Common: config.Common{Project: "p", Database: "(default)", MaxDeliveryAttempts: 5}, Gemini: config.Gemini{APIKey: "file-key"}, ResultsTopic: "results", EventsTopic: "events", TimeBudget: DefaultTimeBudget}, nil},
		{"empty key file", with("GEMINI_API_KEY", "", "GEMINI_API_KEY_FILE", empty), Config{}, []string{"is empty"}},
		{"missing file", with("GEMINI_API_KEY", "", "GEMINI_API_KEY_FILE", keyFile+"-no"), Config{}, []string{"GEMINI_API_KEY_FILE"}},
		{"nothing", map[string]string{}, Config{}, []string{"GOOGLE_CLOUD_PROJECT", "GEMINI_API_KEY or", "RESULTS_TOPIC", "EVENTS_TOPIC"}},
		{"budget too long", with("COLLECT_TIME_BUDGET", "421s"), Config{}, []string{"COLLECT_TIME_BUDGET", "at most 7m0s"}},
		{"bad budget", with("COLLECT_TIME_BUDGET", "-1s"), Config{}, []string{"COLLECT_TIME_BUDGET"}},
		{"bad attempts", with("MAX_DELIVERY_ATTEMPTS", "0"), Config{}, []string{"MAX_DELIVERY_ATTEMPTS"}},
		{"junk attempts", with("MAX_DELIVERY_ATTEMPTS", "five"), Config{}, []string{"MAX_DELIVERY_ATTEMPTS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ConfigFromEnv(func(k string) string { return tc.env[k] })
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want error, got %+v", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestSplitUTF8(t *testing.T) {
	s := strings.Repeat("aé€😀", 100)
	for _, n := range []int{4, 5, 7, 64} {
		parts := splitUTF8(s, n)
		if strings.Join(parts, "") != s {
			t.Fatalf("n=%d: parts do not join back", n)
		}
		for _, p := range parts {
			if len(p) > n || !isValidUTF8(p) {
				t.Fatalf("n=%d: bad part %q", n, p)
			}
		}
	}
}

func isValidUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
