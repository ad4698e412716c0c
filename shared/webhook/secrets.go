package webhook

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
)

// SecretPrefix marks a Standard Webhooks signing secret.
const SecretPrefix = "whsec_"

// DefaultRecheckInterval is how often, at most, a [FileSecretSource] looks at
// its file again.
const DefaultRecheckInterval = 10 * time.Second

// MinSecretBytes is the shortest decoded secret accepted. The Standard
// Webhooks spec makes secrets 24 to 64 random bytes; anything shorter is a
// typo, a truncated copy or a placeholder, and an HMAC key that short is
// guessable enough to forge deliveries.
const MinSecretBytes = 24

// maxSecretFileBytes bounds what FileSecrets reads: a handful of secrets is a
// few hundred bytes, anything much larger is the wrong file.
const maxSecretFileBytes = 64 << 10

// ParseSecret decodes one "whsec_<base64>" secret into the HMAC key bytes.
// The prefix is optional (the reference libraries accept bare base64 too) and
// surrounding whitespace is ignored; both padded and unpadded standard base64
// are accepted. It returns an error wrapping [ErrInvalidSecret] for an empty
// string, non-base64 text or a key shorter than [MinSecretBytes]. The error
// never echoes the input.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), SecretPrefix)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	key, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("%w: not standard base64", ErrInvalidSecret)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: decodes to zero bytes", ErrInvalidSecret)
	}
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("%w: decodes to %d bytes, fewer than the %d a Standard Webhooks secret has (is it truncated?)",
			ErrInvalidSecret, len(key), MinSecretBytes)
	}
	return key, nil
}

// SplitSecrets splits a list of secrets separated by commas and/or
// whitespace (including newlines), dropping empty items. Base64 never contains
// either separator, so this is unambiguous.
func SplitSecrets(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// parseSecretList splits every argument with SplitSecrets and decodes each
// item. Errors name the position of a bad secret, never its value.
func parseSecretList(items ...string) ([][]byte, error) {
	var keys [][]byte
	n := 0
	for _, item := range items {
		for _, s := range SplitSecrets(item) {
			n++
			key, err := ParseSecret(s)
			if err != nil {
				return nil, fmt.Errorf("secret #%d: %w", n, err)
			}
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, ErrNoSecrets
	}
	return keys, nil
}

// SecretSource yields the currently accepted HMAC keys (decoded secrets).
// During a rotation Gemini keeps the previous secret valid for 24 hours, so a
// source normally holds one or two keys; a delivery is accepted when it
// matches any of them. Implementations must be safe for concurrent use and
// callers must not modify the returned slices.
type SecretSource interface {
	Secrets() ([][]byte, error)
}

type staticSecrets [][]byte

func (s staticSecrets) Secrets() ([][]byte, error) { return s, nil }

// StaticSecrets returns a fixed SecretSource. Each argument may itself hold a
// comma/whitespace separated list (see [SplitSecrets]), so the value of
// GEMINI_WEBHOOK_SECRETS can be passed as is. It fails with [ErrNoSecrets]
// when there is no secret at all and with [ErrInvalidSecret] when any secret
// does not parse.
func StaticSecrets(secrets ...string) (SecretSource, error) {
	keys, err := parseSecretList(secrets...)
	if err != nil {
		return nil, fmt.Errorf("static secrets: %w", err)
	}
	return staticSecrets(keys), nil
}

// FileSecretSource serves the secrets held in a file, typically a Secret
// Manager secret mounted as a volume in Cloud Run / Cloud Functions, where
// the mounted file follows the secret's "latest" version. Unlike an
// environment variable, a rotation then reaches running instances without a
// redeploy.
//
// Secrets reads the file at most once per RecheckInterval and compares its
// content with the last one loaded: size and modification time are not
// trusted to change (a same-length secret written within the file system's
// timestamp granularity, or a mount that preserves mtimes, keeps both). A
// few hundred bytes every 10 seconds is cheap. If the file cannot be read
// or no longer holds valid secrets, the last good secrets stay in use (a
// half-written file during an update must not lock every delivery out) and
// the problem is available from [FileSecretSource.LastError].
//
// It is safe for concurrent use. Set the exported fields before the first
// concurrent call to Secrets.
type FileSecretSource struct {
	// RecheckInterval is the minimum time between two looks at the file.
	// Defaults to DefaultRecheckInterval (10s) when zero.
	RecheckInterval time.Duration
	// Now is the clock used for RecheckInterval. Defaults to time.Now.
	Now func() time.Time

	path string

	mu      sync.Mutex
	keys    [][]byte
	content []byte // the file content keys were parsed from
	checked time.Time
	lastErr error
}

// FileSecrets loads the secrets in path (one or more "whsec_" secrets,
// separated by commas, spaces or newlines). It fails if the file cannot be
// read, holds no secret, or holds an invalid one; later reload problems are
// not fatal (see [FileSecretSource]).
func FileSecrets(path string) (*FileSecretSource, error) {
	f := &FileSecretSource{path: path}
	data, err := readSecretFile(path)
	if err != nil {
		return nil, fmt.Errorf("file secrets: %w", err)
	}
	keys, err := parseSecretFile(path, data)
	if err != nil {
		return nil, fmt.Errorf("file secrets: %w", err)
	}
	f.keys, f.content, f.checked = keys, data, f.now()
	return f, nil
}

func readSecretFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxSecretFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxSecretFileBytes {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, maxSecretFileBytes)
	}
	return data, nil
}

func parseSecretFile(path string, data []byte) ([][]byte, error) {
	keys, err := parseSecretList(string(data))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return keys, nil
}

func (f *FileSecretSource) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *FileSecretSource) interval() time.Duration {
	if f.RecheckInterval > 0 {
		return f.RecheckInterval
	}
	return DefaultRecheckInterval
}

// Secrets returns the current keys. It never fails once FileSecrets
// succeeded: reload problems keep the previous keys (see LastError).
func (f *FileSecretSource) Secrets() ([][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	// A clock that went backwards (or was swapped) counts as due.
	if d := now.Sub(f.checked); d >= 0 && d < f.interval() {
		return f.keys, nil
	}
	f.checked = now
	data, err := readSecretFile(f.path)
	if err != nil {
		f.lastErr = fmt.Errorf("file secrets: %w", err)
		return f.keys, nil
	}
	if bytes.Equal(data, f.content) {
		f.lastErr = nil
		return f.keys, nil
	}
	keys, err := parseSecretFile(f.path, data)
	if err != nil {
		// Keep content unchanged so the next check tries again.
		f.lastErr = fmt.Errorf("file secrets: %w", err)
		return f.keys, nil
	}
	f.keys, f.content, f.lastErr = keys, data, nil
	return f.keys, nil
}

// LastError returns the problem met by the most recent reload attempt, or nil
// if it succeeded (or nothing changed). Useful for a health log line; the
// error never contains secret material.
func (f *FileSecretSource) LastError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

// NewSecret returns a fresh "whsec_" secret holding 32 random bytes, for
// tests, the simulator and `geminihooks` CLI setups.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go 1.24+).
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}
