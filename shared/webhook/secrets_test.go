package webhook

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSecret(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	std := base64.StdEncoding.EncodeToString(key)
	tests := []struct {
		name    string
		in      string
		want    []byte
		wantErr error
	}{
		{name: "whsec prefix", in: SecretPrefix + std, want: key},
		{name: "bare base64", in: std, want: key},
		{name: "unpadded", in: SecretPrefix + strings.TrimRight(std, "="), want: key},
		{name: "surrounding whitespace", in: " \n" + SecretPrefix + std + "\n", want: key},
		{name: "24 bytes (the minimum)", in: SecretPrefix + base64.StdEncoding.EncodeToString(key[:24]), want: key[:24]},
		{name: "64 bytes", in: base64.StdEncoding.EncodeToString(bytes.Repeat(key, 2)), want: bytes.Repeat(key, 2)},
		{name: "one byte", in: SecretPrefix + "AQ==", wantErr: ErrInvalidSecret},
		{name: "23 bytes", in: SecretPrefix + base64.StdEncoding.EncodeToString(key[:23]), wantErr: ErrInvalidSecret},
		{name: "a word", in: SecretPrefix + base64.StdEncoding.EncodeToString([]byte("password")), wantErr: ErrInvalidSecret},
		{name: "empty", in: "", wantErr: ErrInvalidSecret},
		{name: "blank", in: " \t", wantErr: ErrInvalidSecret},
		{name: "prefix only", in: SecretPrefix, wantErr: ErrInvalidSecret},
		{name: "padding only", in: SecretPrefix + "==", wantErr: ErrInvalidSecret},
		{name: "non-base64", in: SecretPrefix + "not*base64!", wantErr: ErrInvalidSecret},
		{name: "url-safe alphabet", in: SecretPrefix + "ab-_cd", wantErr: ErrInvalidSecret},
		{name: "embedded space", in: SecretPrefix + "abcd efgh", wantErr: ErrInvalidSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSecret(tc.in)
			checkErr(t, err, tc.wantErr)
			if err != nil && strings.HasPrefix(tc.name, "23") && !strings.Contains(err.Error(), "fewer than the 24") {
				t.Fatalf("error %q does not say the secret is too short", err)
			}
			if err != nil {
				if s := strings.TrimPrefix(strings.TrimSpace(tc.in), SecretPrefix); len(s) > 3 && strings.Contains(err.Error(), s) {
					t.Fatalf("error %q echoes the secret", err)
				}
				return
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got %x, want %x", got, tc.want)
			}
		})
	}
}

func TestSplitSecrets(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "empty", in: "", want: nil},
		{name: "one", in: "whsec_a", want: []string{"whsec_a"}},
		{name: "comma", in: "whsec_a,whsec_b", want: []string{"whsec_a", "whsec_b"}},
		{name: "comma and spaces", in: " whsec_a , whsec_b ", want: []string{"whsec_a", "whsec_b"}},
		{name: "newlines", in: "whsec_a\nwhsec_b\r\n", want: []string{"whsec_a", "whsec_b"}},
		{name: "empty items", in: ",,whsec_a,,\t,", want: []string{"whsec_a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SplitSecrets(tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("SplitSecrets(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestStaticSecrets(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		wantN   int
		wantErr error
	}{
		{name: "one", in: []string{secretNew}, wantN: 1},
		{name: "two args", in: []string{secretOld, secretNew}, wantN: 2},
		{name: "one list arg", in: []string{secretOld + ", " + secretNew}, wantN: 2},
		{name: "none", in: nil, wantErr: ErrNoSecrets},
		{name: "only blanks", in: []string{"", " , "}, wantErr: ErrNoSecrets},
		{name: "one invalid", in: []string{secretNew, "whsec_***"}, wantErr: ErrInvalidSecret},
		{name: "empty after decode", in: []string{secretNew, "whsec_="}, wantErr: ErrInvalidSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := StaticSecrets(tc.in...)
			checkErr(t, err, tc.wantErr)
			if err != nil {
				return
			}
			keys, err := src.Secrets()
			if err != nil || len(keys) != tc.wantN {
				t.Fatalf("Secrets() = %d keys, %v; want %d", len(keys), err, tc.wantN)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	if a == b {
		t.Fatal("two NewSecret calls returned the same secret")
	}
	key, err := ParseSecret(a)
	if err != nil || len(key) != 32 || !strings.HasPrefix(a, SecretPrefix) {
		t.Fatalf("NewSecret() = %d-byte key, %v", len(key), err)
	}
	// A fresh secret works end to end.
	v := mustHMACVerifier(t, HMACOptions{Now: func() time.Time { return testNow }}, a)
	if _, err := v.Verify(t.Context(), testBody, mustSigner(t, a).Headers(testID, testNow, testBody)); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// Explicit mtimes make the change detection independent of the file
	// system's timestamp granularity.
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestFileSecretsLoadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content *string
		wantErr error
	}{
		{name: "missing file"},
		{name: "empty file", content: new(""), wantErr: ErrNoSecrets},
		{name: "invalid secret", content: new(secretNew + "\nwhsec_@@@\n"), wantErr: ErrInvalidSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if tc.content != nil {
				writeFile(t, path, *tc.content, testNow)
			}
			_, err := FileSecrets(path)
			if err == nil {
				t.Fatal("FileSecrets succeeded")
			}
			if tc.wantErr != nil {
				checkErr(t, err, tc.wantErr)
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(secretNew, SecretPrefix)) {
				t.Fatalf("error %q echoes a secret", err)
			}
		})
	}
}

// TestFileSecretsReload walks a Secret Manager rotation through a mounted
// file: add the new secret, then drop the old one, with a broken write and a
// vanished file in between.
func TestFileSecretsReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets")
	writeFile(t, path, secretOld+"\n", testNow)
	f, err := FileSecrets(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(testNow)
	f.Now, f.RecheckInterval = clock.Now, 10*time.Second
	keyOld, _ := ParseSecret(secretOld)
	keyNew, _ := ParseSecret(secretNew)
	mtime := testNow

	steps := []struct {
		name    string
		change  func()        // file change before the step
		advance time.Duration // clock advance before Secrets()
		want    [][]byte      // expected keys
		wantErr bool          // LastError non-nil
	}{
		{name: "initial", want: [][]byte{keyOld}},
		{name: "rotation written, recheck not due", change: func() {
			mtime = mtime.Add(time.Second)
			writeFile(t, path, secretOld+","+secretNew, mtime)
		}, advance: 9 * time.Second, want: [][]byte{keyOld}},
		{name: "recheck due", advance: time.Second, want: [][]byte{keyOld, keyNew}},
		{name: "same size, new mtime, new content", change: func() {
			mtime = mtime.Add(time.Second)
			writeFile(t, path, secretNew+","+secretOld, mtime)
		}, advance: 10 * time.Second, want: [][]byte{keyNew, keyOld}},
		{name: "broken write keeps last good", change: func() {
			mtime = mtime.Add(time.Second)
			writeFile(t, path, "whsec_###", mtime)
		}, advance: 10 * time.Second, want: [][]byte{keyNew, keyOld}, wantErr: true},
		{name: "file removed keeps last good", change: func() {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, advance: 10 * time.Second, want: [][]byte{keyNew, keyOld}, wantErr: true},
		{name: "old secret dropped", change: func() {
			mtime = mtime.Add(time.Second)
			writeFile(t, path, secretNew+"\n", mtime)
		}, advance: 10 * time.Second, want: [][]byte{keyNew}},
	}
	for _, st := range steps {
		if st.change != nil {
			st.change()
		}
		clock.Advance(st.advance)
		got, err := f.Secrets()
		if err != nil {
			t.Fatalf("%s: Secrets() error %v", st.name, err)
		}
		if !slices.EqualFunc(got, st.want, bytes.Equal) {
			t.Fatalf("%s: got %d keys %x, want %x", st.name, len(got), got, st.want)
		}
		if gotErr := f.LastError() != nil; gotErr != st.wantErr {
			t.Fatalf("%s: LastError() = %v, want error: %v", st.name, f.LastError(), st.wantErr)
		}
	}
}

// TestFileSecretsVerifier shows a running verifier picking up a rotation.
func TestFileSecretsVerifier(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets")
	writeFile(t, path, secretOld, testNow)
	f, err := FileSecrets(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(testNow)
	f.Now = clock.Now
	v, err := NewHMACVerifier(f, HMACOptions{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	h := mustSigner(t, secretNew).Headers(testID, testNow, testBody)
	_, err = v.Verify(t.Context(), testBody, h)
	checkErr(t, err, ErrNoMatchingSignature)
	writeFile(t, path, secretOld+"\n"+secretNew+"\n", testNow.Add(time.Minute))
	clock.Advance(DefaultRecheckInterval)
	if _, err := v.Verify(t.Context(), testBody, h); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
}

// TestFileSecretsSameSizeSameMtimeRotation: a rotation that keeps the file's
// size and modification time (secrets of one length, a mount that preserves
// mtimes, or two writes within the file system's timestamp granularity) is
// still picked up: the content is compared, not the metadata.
func TestFileSecretsSameSizeSameMtimeRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets")
	writeFile(t, path, secretOld, testNow)
	f, err := FileSecrets(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(testNow)
	f.Now, f.RecheckInterval = clock.Now, 10*time.Second
	if len(secretOld) != len(secretNew) {
		t.Fatal("test secrets must have one length")
	}
	writeFile(t, path, secretNew, testNow) // same size, same mtime
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != int64(len(secretOld)) || !fi.ModTime().Equal(testNow) {
		t.Fatalf("stat = %v, %v; want the old size and mtime", fi, err)
	}
	clock.Advance(10 * time.Second)
	got, err := f.Secrets()
	keyNew, _ := ParseSecret(secretNew)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], keyNew) {
		t.Fatalf("after a same-size same-mtime rotation: keys %x, %v; want only the new key", got, err)
	}
	// And a verifier on the source follows: the old secret no longer verifies.
	v, err := NewHMACVerifier(f, HMACOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := mustSigner(t, secretOld).Headers(testID, clock.Now(), testBody)
	if _, err := v.Verify(t.Context(), testBody, h); !errorsIs(err, ErrNoMatchingSignature) {
		t.Fatalf("old secret after rotation: %v", err)
	}
	h = mustSigner(t, secretNew).Headers(testID, clock.Now(), testBody)
	if _, err := v.Verify(t.Context(), testBody, h); err != nil {
		t.Fatalf("new secret after rotation: %v", err)
	}
}
