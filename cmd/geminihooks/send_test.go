package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/MicahParks/jwkset"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

// verifyingReceiver answers 204 to deliveries v accepts and 401 otherwise,
// and keeps the accepted ones.
type verifyingReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	accepted []accepted
}

type accepted struct {
	delivery webhook.Delivery
	env      event.Envelope
}

func newVerifyingReceiver(t *testing.T, v webhook.Verifier) *verifyingReceiver {
	r := &verifyingReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		d, err := v.Verify(req.Context(), body, req.Header)
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		env, err := event.ParseEnvelope(body)
		if err != nil {
			http.Error(w, "bad envelope", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.accepted = append(r.accepted, accepted{d, env})
		r.mu.Unlock()
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *verifyingReceiver) got() []accepted {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]accepted(nil), r.accepted...)
}

func hmacVerifier(t *testing.T, secrets ...string) webhook.Verifier {
	src, err := webhook.StaticSecrets(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	v, err := webhook.NewHMACVerifier(src, webhook.HMACOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSendHMAC(t *testing.T) {
	secret := webhook.NewSecret()
	rcv := newVerifyingReceiver(t, hmacVerifier(t, secret))

	r := mustCLI(t, "send", "--url", rcv.URL, "--type", "batch.succeeded", "--id", "batches/abc",
		"--secret", secret, "--data", `{"output_file_uri":"files/abc"}`, "--webhook-id", "msg_test1")
	if !strings.Contains(r.stdout, "200 OK") || !strings.Contains(r.stdout, `{"ok":true}`) {
		t.Errorf("stdout = %q, want status and response body", r.stdout)
	}
	got := rcv.got()
	if len(got) != 1 {
		t.Fatalf("receiver accepted %d deliveries, want 1", len(got))
	}
	d, env := got[0].delivery, got[0].env
	if d.ID != "msg_test1" || env.Type != "batch.succeeded" || env.Data.ID != "batches/abc" || env.Data.OutputURI() != "files/abc" {
		t.Errorf("delivery %+v envelope %+v", d, env)
	}

	// A secret file listing a new and the receiver's (old) secret still
	// verifies, like a delivery during a rotation.
	file := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(file, []byte(webhook.NewSecret()+","+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = mustCLI(t, "--format", "json", "send", "--url", rcv.URL, "--type", "interaction.completed", "--id", "v1_x", "--secret-file", file)
	var out struct {
		Status    int    `json:"status"`
		WebhookID string `json:"webhook_id"`
		Body      string `json:"body"`
	}
	decodeJSON(t, r.stdout, &out)
	if out.Status != 200 || !strings.HasPrefix(out.WebhookID, "msg_") || out.Body != `{"ok":true}` {
		t.Errorf("json output = %+v", out)
	}
	if n := len(rcv.got()); n != 2 {
		t.Errorf("receiver accepted %d deliveries, want 2", n)
	}

	// A wrong secret is rejected: the command reports the status and exits 1.
	r = cli(t, "send", "--url", rcv.URL, "--type", "batch.failed", "--id", "batches/abc", "--secret", webhook.NewSecret())
	if r.code != exitRuntime || !strings.Contains(r.stdout, "401") || !strings.Contains(r.stderr, "(fix the input)") {
		t.Errorf("wrong secret: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	// An unreachable receiver may come back.
	rcv.Close()
	r = cli(t, "send", "--url", rcv.URL, "--type", "batch.failed", "--id", "batches/abc", "--secret", secret)
	if r.code != exitRuntime || !strings.Contains(r.stderr, "(retry may help)") {
		t.Errorf("unreachable: exit %d stderr %q", r.code, r.stderr)
	}
}

func TestSendJWT(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1", ALG: jwkset.AlgRS256, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(jwks) }))
	defer keys.Close()

	// The receiver's URL is needed for the audience before it exists.
	var aud string
	v := &lazyJWT{t: t, jwksURL: keys.URL, aud: &aud}
	rcv := newVerifyingReceiver(t, v)
	aud = rcv.URL

	mustCLI(t, "send", "--url", rcv.URL, "--type", "interaction.requires_action", "--id", "v1_abc",
		"--jwt-key", keyFile, "--jwt-kid", "k1", "--webhook-id", "msg_jwt")
	got := rcv.got()
	if len(got) != 1 || got[0].delivery.ID != "msg_jwt" || got[0].delivery.Scheme != webhook.SchemeJWT {
		t.Fatalf("accepted = %+v, want one JWT delivery msg_jwt", got)
	}
	// Another kid is not in the key set.
	r := cli(t, "send", "--url", rcv.URL, "--type", "interaction.completed", "--id", "v1_abc", "--jwt-key", keyFile, "--jwt-kid", "other")
	if r.code != exitRuntime {
		t.Errorf("unknown kid: exit %d, want 1", r.code)
	}
}

// lazyJWT builds the JWT verifier on first use, once the audience is known.
type lazyJWT struct {
	t       *testing.T
	jwksURL string
	aud     *string
	once    sync.Once
	v       *webhook.JWTVerifier
}

func (l *lazyJWT) Verify(ctx context.Context, body []byte, h http.Header) (webhook.Delivery, error) {
	l.once.Do(func() {
		v, err := webhook.NewJWTVerifier(ctx, webhook.JWTOptions{JWKSURL: l.jwksURL, Audience: *l.aud})
		if err != nil {
			l.t.Error(err)
		}
		l.v = v
	})
	return l.v.Verify(ctx, body, h)
}
