package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"

	"github.com/geminihooks/geminihooks/shared/webhook"
)

// maxShownResponse bounds how much of the receiver's answer is printed.
const maxShownResponse = 64 << 10

type sendOpts struct {
	url, typ, id, data            string
	secret, secretFile, webhookID string
	jwtKey, jwtKID, jwtAudience   string
	timeout                       time.Duration
}

func (a *app) sendCmd() *cobra.Command {
	var o sendOpts
	cmd := &cobra.Command{
		Use:   "send --url URL --type TYPE --id ID (--secret SECRET | --secret-file FILE | --jwt-key KEY.pem)",
		Short: "Sign and POST a test Gemini webhook event to a URL",
		Long: `Builds a Gemini webhook envelope {"type","version":"v1","timestamp","data"},
signs it like Gemini does and POSTs it to --url, then prints the receiver's
status and response body.

Static webhooks are signed with Standard Webhooks HMAC-SHA256 using a
"whsec_" secret (--secret or --secret-file; a file may list several secrets,
newest first, and gets one v1 signature entry per secret, like Gemini during
a rotation). Dynamic webhooks are signed with an RS256 JWT (--jwt-key, a PEM
RSA private key) carrying the claims the simulator uses: iss, aud, iat, exp,
jti (the webhook-id), event_type and data_id.

The command exits 1 unless the receiver answers 2xx.`,
		Example: `  # A batch success for a local receiver
  geminihooks send --url http://127.0.0.1:8080 --type batch.succeeded --id batches/abc \
      --secret-file secret.txt --data '{"output_file_uri":"files/abc"}'

  # Re-send the same delivery (same webhook-id) to test de-duplication
  geminihooks send --url http://127.0.0.1:8080 --type interaction.completed --id v1_abc \
      --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw --webhook-id msg_test1`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.send(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "receiver URL (required)")
	f.StringVar(&o.typ, "type", "", "event type, e.g. batch.succeeded, video.generated, interaction.completed (required)")
	f.StringVar(&o.id, "id", "", `job id placed in data.id, e.g. batches/abc (required unless --data has "id")`)
	f.StringVar(&o.data, "data", "", `extra data fields as a JSON object, e.g. '{"output_file_uri":"files/x"}'`)
	f.StringVar(&o.secret, "secret", "", "whsec_ signing secret (list: comma separated)")
	f.StringVar(&o.secretFile, "secret-file", "", "file holding the whsec_ signing secret(s)")
	f.StringVar(&o.webhookID, "webhook-id", "", "webhook-id header (default: a fresh msg_… id)")
	f.StringVar(&o.jwtKey, "jwt-key", "", "sign as a dynamic webhook: PEM file with an RSA private key")
	f.StringVar(&o.jwtKID, "jwt-kid", "geminihooks-cli", "kid placed in the JWT header (with --jwt-key)")
	f.StringVar(&o.jwtAudience, "jwt-audience", "", "JWT aud claim (with --jwt-key; default: --url)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "HTTP request timeout")
	return cmd
}

func (a *app) send(cmd *cobra.Command, o sendOpts) error {
	if err := requireFlags(cmd.Flags(), "url", "type"); err != nil {
		return err
	}
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErr("--url must be an http(s) URL, not %q", o.url)
	}
	modes := 0
	for _, s := range []string{o.secret, o.secretFile, o.jwtKey} {
		if s != "" {
			modes++
		}
	}
	if modes != 1 {
		return usageErr("exactly one of --secret, --secret-file or --jwt-key is required")
	}
	data := map[string]any{}
	if o.data != "" {
		if err := json.Unmarshal([]byte(o.data), &data); err != nil || data == nil {
			return usageErr("--data must be a JSON object: %v", err)
		}
	}
	if o.id != "" {
		data["id"] = o.id
	}
	dataID, _ := data["id"].(string)
	if dataID == "" {
		return usageErr("--id is required (or a string \"id\" in --data)")
	}
	if o.webhookID == "" {
		o.webhookID = newMessageID()
	}
	now := time.Now()
	body, err := json.Marshal(struct {
		Type      string         `json:"type"`
		Version   string         `json:"version"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}{o.typ, "v1", now.UTC().Format(time.RFC3339), data})
	if err != nil {
		return usageErr("encode event: %v", err)
	}

	var header http.Header
	switch {
	case o.jwtKey != "":
		tok, err := signJWT(o, now, dataID)
		if err != nil {
			return err
		}
		header = http.Header{}
		header.Set(webhook.HeaderID, o.webhookID)
		header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		header.Set(webhook.HeaderSignature, tok)
	default:
		secrets := o.secret
		if o.secretFile != "" {
			b, err := os.ReadFile(o.secretFile)
			if err != nil {
				return inputErr("read --secret-file", err)
			}
			secrets = string(b)
		}
		signer, err := webhook.NewSigner(secrets)
		if err != nil {
			return usageErr("signing secret: %v", err)
		}
		header = signer.Headers(o.webhookID, now, body)
	}

	ctx := cmd.Context()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		return usageErr("--url: %v", err)
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "geminihooks-cli")
	res, err := (&http.Client{Timeout: o.timeout}).Do(req)
	if err != nil {
		return &cliError{what: "send " + o.url, err: err, retry: true}
	}
	defer res.Body.Close()
	resp, err := io.ReadAll(io.LimitReader(res.Body, maxShownResponse+1))
	if err != nil {
		return &cliError{what: "read response", err: err, retry: true}
	}
	truncated := len(resp) > maxShownResponse
	if truncated {
		resp = resp[:maxShownResponse]
	}
	if a.format == formatJSON {
		if err := a.printJSON(map[string]any{
			"webhook_id": o.webhookID, "type": o.typ, "status": res.StatusCode,
			"body": string(resp), "body_truncated": truncated,
		}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "webhook-id %s: %s\n", o.webhookID, res.Status)
		if len(resp) > 0 {
			fmt.Fprintln(a.stdout, strings.TrimRight(string(resp), "\n"))
		}
		if truncated {
			fmt.Fprintf(a.stdout, "[response truncated at %d bytes]\n", maxShownResponse)
		}
	}
	if res.StatusCode/100 != 2 {
		return &cliError{
			what:  "send " + o.typ,
			err:   fmt.Errorf("receiver answered %s", res.Status),
			retry: res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusRequestTimeout,
		}
	}
	return nil
}

// newMessageID returns a webhook-id in the msg_… style Gemini uses.
func newMessageID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "msg_" + hex.EncodeToString(b[:])
}

func signJWT(o sendOpts, now time.Time, dataID string) (string, error) {
	pemBytes, err := os.ReadFile(o.jwtKey)
	if err != nil {
		return "", inputErr("read --jwt-key", err)
	}
	key, err := parseRSAKey(pemBytes)
	if err != nil {
		return "", inputErr("parse --jwt-key", err)
	}
	aud := o.jwtAudience
	if aud == "" {
		aud = o.url
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": "geminihooks-cli", "aud": aud, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": o.webhookID, "event_type": o.typ, "data_id": dataID,
	})
	tok.Header["kid"] = o.jwtKID
	s, err := tok.SignedString(key)
	if err != nil {
		return "", inputErr("sign JWT", err)
	}
	return s, nil
}

// parseRSAKey reads a PKCS#1 or PKCS#8 PEM RSA private key.
func parseRSAKey(b []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("no PEM block: %w", errBadInput)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS#1 or PKCS#8 private key: %w", errBadInput)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key (RS256 needs RSA)")
	}
	return rk, nil
}
