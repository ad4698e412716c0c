package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/geminihooks/geminihooks/shared/webhook"
)

// fileReceiver verifies every delivery against the secrets currently in a
// secret file, as a Receiver with GEMINI_WEBHOOK_SECRETS_FILE does.
type fileReceiver struct {
	*httptest.Server
	mu        sync.Mutex
	ok, fails int
}

func newFileReceiver(t *testing.T, path string) *fileReceiver {
	fr := &fileReceiver{}
	fr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := func() error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			src, err := webhook.StaticSecrets(string(b))
			if err != nil {
				return err
			}
			v, err := webhook.NewHMACVerifier(src, webhook.HMACOptions{})
			if err != nil {
				return err
			}
			_, err = v.Verify(r.Context(), body, r.Header)
			return err
		}()
		fr.mu.Lock()
		defer fr.mu.Unlock()
		if err != nil {
			fr.fails++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fr.ok++
	}))
	t.Cleanup(fr.Close)
	return fr
}

// waitOK waits until n deliveries verified.
func (fr *fileReceiver) waitOK(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		fr.mu.Lock()
		ok, fails := fr.ok, fr.fails
		fr.mu.Unlock()
		if fails > 0 {
			t.Fatalf("%d deliveries failed verification against the secret file", fails)
		}
		if ok >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d deliveries verified", ok, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readSecretList(t *testing.T, path string) []string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode = %v, want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return webhook.SplitSecrets(string(b))
}

func TestWebhooksLifecycle(t *testing.T) {
	_, url := startSim(t)
	secretFile := filepath.Join(t.TempDir(), "gemini-webhook-secrets")
	rcv := newFileReceiver(t, secretFile)
	g := []string{"--gemini-url", url, "--api-key", "k"}
	noSecretIn := func(r result, secrets ...string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
				t.Errorf("a signing secret was printed:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
			}
		}
	}

	r := mustCLI(t, append(g, "--format", "json", "webhooks", "create", "--name", "test", "--uri", rcv.URL, "--secret-file", secretFile)...)
	var created struct {
		Webhook struct {
			ID               string   `json:"id"`
			URI              string   `json:"uri"`
			SubscribedEvents []string `json:"subscribed_events"`
			NewSigningSecret string   `json:"new_signing_secret"`
		} `json:"webhook"`
		StoredIn string `json:"secret_stored_in"`
	}
	decodeJSON(t, r.stdout, &created)
	id := created.Webhook.ID
	if id == "" || created.Webhook.URI != rcv.URL || len(created.Webhook.SubscribedEvents) != 7 || created.StoredIn != secretFile || created.Webhook.NewSigningSecret != "" {
		t.Fatalf("create output = %+v", created)
	}
	first := readSecretList(t, secretFile)
	if len(first) != 1 || !strings.HasPrefix(first[0], webhook.SecretPrefix) {
		t.Fatalf("secret file = %v, want one whsec_ secret", first)
	}
	noSecretIn(r, first[0])

	// The stored secret is the one Gemini signs with.
	mustCLI(t, append(g, "webhooks", "ping", id)...)
	rcv.waitOK(t, 1)

	// Rotation keeps the previous secret after the new one.
	r = mustCLI(t, append(g, "webhooks", "rotate", id, "--secret-file", secretFile)...)
	rotated := readSecretList(t, secretFile)
	if len(rotated) != 2 || rotated[1] != first[0] || rotated[0] == first[0] {
		t.Fatalf("after rotate: %d secrets (old kept second: %v)", len(rotated), len(rotated) == 2 && rotated[1] == first[0])
	}
	noSecretIn(r, rotated...)
	if !strings.Contains(r.stdout, "24 hours") {
		t.Errorf("rotate output = %q", r.stdout)
	}
	mustCLI(t, append(g, "webhooks", "ping", id)...)
	rcv.waitOK(t, 2)

	// Immediate rotation keeps only the new secret; --show-secret prints it.
	r = mustCLI(t, append(g, "webhooks", "rotate", id, "--immediately", "--secret-file", secretFile, "--show-secret")...)
	now := readSecretList(t, secretFile)
	if len(now) != 1 || now[0] == rotated[0] || !strings.Contains(r.stdout, now[0]) {
		t.Fatalf("after immediate rotate: %d secrets, printed: %v", len(now), strings.Contains(r.stdout, now[0]))
	}
	mustCLI(t, append(g, "webhooks", "ping", id)...)
	rcv.waitOK(t, 3)

	// list, update, get, delete.
	r = mustCLI(t, append(g, "webhooks", "list")...)
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "enabled") || !strings.Contains(r.stdout, "batch.succeeded") {
		t.Errorf("list = %q", r.stdout)
	}
	r = mustCLI(t, append(g, "--format", "json", "webhooks", "update", id, "--state", "disabled", "--events", "batch.succeeded,batch.failed")...)
	var upd map[string]any
	decodeJSON(t, r.stdout, &upd)
	if upd["state"] != "disabled" || len(upd["subscribed_events"].([]any)) != 2 {
		t.Errorf("update = %v", upd)
	}
	r = mustCLI(t, append(g, "webhooks", "get", id)...)
	if !strings.Contains(r.stdout, "disabled") || !strings.Contains(r.stdout, "whsec_...") {
		t.Errorf("get = %q", r.stdout)
	}
	mustCLI(t, append(g, "webhooks", "delete", id)...)
	r = mustCLI(t, append(g, "--format", "json", "webhooks", "list")...)
	var list []json.RawMessage
	decodeJSON(t, r.stdout, &list)
	if len(list) != 0 {
		t.Errorf("after delete: %d webhooks", len(list))
	}
	r = cli(t, append(g, "webhooks", "get", id)...)
	if r.code != exitRuntime || !strings.Contains(r.stderr, "(fix the input)") {
		t.Errorf("get deleted: exit %d stderr %q", r.code, r.stderr)
	}
}

func TestLiveSecrets(t *testing.T) {
	a, b, c := "whsec_aaaaAAAA1111", "whsec_bbbbBBBB2222", "whsec_ccccCCCC3333"
	cases := []struct {
		name      string
		truncated []string
		want      int
	}{
		{"drops revoked", []string{"whsec_...3333", "whsec_...1111"}, 2},
		{"unknown format keeps all", []string{"3333", "1111"}, 3},
		{"new secret not listed keeps all", []string{"whsec_...1111"}, 3},
	}
	for _, tc := range cases {
		wh := webhookWithTruncated(tc.truncated...)
		got := liveSecrets([]string{c, b, a}, wh, c)
		if len(got) != tc.want {
			t.Errorf("%s: kept %d, want %d", tc.name, len(got), tc.want)
		}
	}
}

func webhookWithTruncated(ts ...string) webhooks.Webhook {
	var wh webhooks.Webhook
	for _, s := range ts {
		wh.SigningSecrets = append(wh.SigningSecrets, webhooks.SigningSecret{TruncatedSecret: genai.Ptr(s)})
	}
	return wh
}
