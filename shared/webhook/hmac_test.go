package webhook

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// request is what a mutator may change before verification.
type request struct {
	body []byte
	h    http.Header
}

func TestHMACVerify(t *testing.T) {
	signer := mustSigner(t, secretNew)
	other := mustSigner(t, secretOther)
	sig := func(id string, ts time.Time, body []byte) string { return signer.Signature(id, ts, body) }
	// resign re-signs the request at ts, as a legitimate sender would.
	resignAt := func(ts time.Time) func(*request) {
		return func(r *request) {
			r.h = signer.Headers(r.h.Get(HeaderID), ts, r.body)
		}
	}
	validValue := sig(testID, testNow, testBody)

	tests := []struct {
		name    string
		mutate  func(*request)
		opts    HMACOptions
		wantErr error
	}{
		{name: "valid", mutate: func(*request) {}},
		{name: "missing id", mutate: func(r *request) { r.h.Del(HeaderID) }, wantErr: ErrMissingHeaders},
		{name: "missing timestamp", mutate: func(r *request) { r.h.Del(HeaderTimestamp) }, wantErr: ErrMissingHeaders},
		{name: "missing signature", mutate: func(r *request) { r.h.Del(HeaderSignature) }, wantErr: ErrMissingHeaders},
		{name: "empty id", mutate: func(r *request) { r.h.Set(HeaderID, "") }, wantErr: ErrMissingHeaders},
		{name: "blank signature", mutate: func(r *request) { r.h.Set(HeaderSignature, "   ") }, wantErr: ErrMissingHeaders},
		{name: "entry without comma", mutate: func(r *request) {
			r.h.Set(HeaderSignature, strings.Replace(validValue, ",", "", 1))
		}, wantErr: ErrMalformedHeaders},
		{name: "entry with empty value", mutate: func(r *request) { r.h.Set(HeaderSignature, "v1,") }, wantErr: ErrMalformedHeaders},
		{name: "entry with empty version", mutate: func(r *request) {
			r.h.Set(HeaderSignature, strings.TrimPrefix(validValue, "v1"))
		}, wantErr: ErrMalformedHeaders},
		{name: "non-base64 v1 entry", mutate: func(r *request) {
			r.h.Set(HeaderSignature, "v1,!!!!not-base64!!!!!!!!!!!!!!!!!!!!!!!!!!!!")
		}, wantErr: ErrMalformedHeaders},
		{name: "truncated v1 entry", mutate: func(r *request) { r.h.Set(HeaderSignature, validValue[:len(validValue)-4]) }, wantErr: ErrMalformedHeaders},
		{name: "other version only", mutate: func(r *request) {
			r.h.Set(HeaderSignature, "v1a,"+strings.TrimPrefix(validValue, "v1,"))
		}, wantErr: ErrNoMatchingSignature},
		{name: "valid value under other version", mutate: func(r *request) {
			r.h.Set(HeaderSignature, "v2,"+strings.TrimPrefix(validValue, "v1,"))
		}, wantErr: ErrNoMatchingSignature},
		{name: "wrong secret", mutate: func(r *request) {
			r.h.Set(HeaderSignature, other.Signature(testID, testNow, r.body))
		}, wantErr: ErrNoMatchingSignature},
		{name: "valid entry hidden among invalid ones", mutate: func(r *request) {
			r.h.Set(HeaderSignature, strings.Join([]string{
				"v1,bm90IGEgc2lnbmF0dXJl", "garbage", "v1a,c29tZXRoaW5nIGVsc2U=",
				other.Signature(testID, testNow, r.body), validValue, "v2,x",
			}, " "))
		}},
		{name: "double spaces between entries", mutate: func(r *request) {
			r.h.Set(HeaderSignature, other.Signature(testID, testNow, r.body)+"  "+validValue)
		}},
		{name: "tampered body", mutate: func(r *request) {
			r.body = []byte(strings.Replace(string(r.body), "succeeded", "failed", 1))
		}, wantErr: ErrNoMatchingSignature},
		{name: "re-encoded body", mutate: func(r *request) { r.body = append(r.body, '\n') }, wantErr: ErrNoMatchingSignature},
		{name: "tampered id", mutate: func(r *request) { r.h.Set(HeaderID, testID+"x") }, wantErr: ErrNoMatchingSignature},
		{name: "tampered timestamp", mutate: func(r *request) {
			r.h.Set(HeaderTimestamp, strconv.FormatInt(testNow.Unix()+1, 10))
		}, wantErr: ErrNoMatchingSignature},
		{name: "non-integer timestamp", mutate: func(r *request) { r.h.Set(HeaderTimestamp, "1780000000.5") }, wantErr: ErrMalformedHeaders},
		{name: "RFC 3339 timestamp", mutate: func(r *request) { r.h.Set(HeaderTimestamp, testNow.Format(time.RFC3339)) }, wantErr: ErrMalformedHeaders},
		{name: "timestamp overflow", mutate: func(r *request) { r.h.Set(HeaderTimestamp, "99999999999999999999") }, wantErr: ErrMalformedHeaders},
		// Like the reference libraries, the canonical decimal form is what is signed.
		{name: "non-canonical timestamp with plus sign", mutate: func(r *request) {
			r.h.Set(HeaderTimestamp, "+"+strconv.FormatInt(testNow.Unix(), 10))
		}},
		{name: "old at exactly the tolerance", mutate: resignAt(testNow.Add(-DefaultTolerance))},
		{name: "old by tolerance+1s", mutate: resignAt(testNow.Add(-DefaultTolerance - time.Second)), wantErr: ErrTimestampTooOld},
		{name: "new at exactly the tolerance", mutate: resignAt(testNow.Add(DefaultTolerance))},
		{name: "new by tolerance+1s", mutate: resignAt(testNow.Add(DefaultTolerance + time.Second)), wantErr: ErrTimestampTooNew},
		{name: "custom tolerance boundary", opts: HMACOptions{Tolerance: 10 * time.Second}, mutate: resignAt(testNow.Add(-10 * time.Second))},
		{name: "custom tolerance exceeded", opts: HMACOptions{Tolerance: 10 * time.Second},
			mutate: resignAt(testNow.Add(-11 * time.Second)), wantErr: ErrTimestampTooOld},
		{name: "replay a day later", mutate: resignAt(testNow.Add(-24 * time.Hour)), wantErr: ErrTimestampTooOld},
		{name: "bad signature and too old reports the signature", mutate: func(r *request) {
			r.h = other.Headers(testID, testNow.Add(-time.Hour), r.body)
		}, wantErr: ErrNoMatchingSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Now = func() time.Time { return testNow }
			v := mustHMACVerifier(t, opts, secretNew)
			r := &request{body: append([]byte(nil), testBody...), h: signer.Headers(testID, testNow, testBody)}
			tc.mutate(r)
			d, err := v.Verify(context.Background(), r.body, r.h)
			checkErr(t, err, tc.wantErr)
			if err != nil {
				if msg := err.Error(); strings.Contains(msg, validValue[3:]) || strings.Contains(msg, string(testBody)) {
					t.Fatalf("error leaks signature or body: %q", msg)
				}
				return
			}
			if d.ID != r.h.Get(HeaderID) || d.Scheme != SchemeHMAC || d.Claims != nil {
				t.Fatalf("delivery = %+v", d)
			}
			wantTS, _ := strconv.ParseInt(r.h.Get(HeaderTimestamp), 10, 64)
			if !d.Timestamp.Equal(time.Unix(wantTS, 0)) {
				t.Fatalf("Timestamp = %v, want unix %d", d.Timestamp, wantTS)
			}
		})
	}
}

// TestHMACRotation covers Gemini's 24h rotation window: the verifier holds
// the secrets it accepts, the sender signs with one or both.
func TestHMACRotation(t *testing.T) {
	tests := []struct {
		name     string
		accepted []string // verifier secrets
		signedBy []string // sender secrets (one v1 entry each)
		wantErr  error
	}{
		{name: "both accepted, signed by old", accepted: []string{secretOld, secretNew}, signedBy: []string{secretOld}},
		{name: "both accepted, signed by new", accepted: []string{secretOld, secretNew}, signedBy: []string{secretNew}},
		{name: "both accepted, signed by both", accepted: []string{secretOld, secretNew}, signedBy: []string{secretOld, secretNew}},
		{name: "both accepted, signed new first", accepted: []string{secretOld, secretNew}, signedBy: []string{secretNew, secretOld}},
		{name: "only new accepted, signed by old", accepted: []string{secretNew}, signedBy: []string{secretOld}, wantErr: ErrNoMatchingSignature},
		{name: "only new accepted, signed by both", accepted: []string{secretNew}, signedBy: []string{secretOld, secretNew}},
		{name: "only old accepted, signed by new", accepted: []string{secretOld}, signedBy: []string{secretNew}, wantErr: ErrNoMatchingSignature},
		{name: "only old accepted, signed by both", accepted: []string{secretOld}, signedBy: []string{secretNew, secretOld}},
		{name: "accepted as one comma list", accepted: []string{secretOld + "," + secretNew}, signedBy: []string{secretNew}},
		{name: "neither accepted", accepted: []string{secretOther}, signedBy: []string{secretOld, secretNew}, wantErr: ErrNoMatchingSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := mustHMACVerifier(t, HMACOptions{Now: func() time.Time { return testNow }}, tc.accepted...)
			h := mustSigner(t, tc.signedBy...).Headers(testID, testNow, testBody)
			if got := len(strings.Fields(h.Get(HeaderSignature))); got != len(tc.signedBy) {
				t.Fatalf("signature has %d entries, want %d", got, len(tc.signedBy))
			}
			_, err := v.Verify(context.Background(), testBody, h)
			checkErr(t, err, tc.wantErr)
		})
	}
}

type errSource struct{ err error }

func (e errSource) Secrets() ([][]byte, error) { return nil, e.err }

func TestHMACVerifierConfig(t *testing.T) {
	if _, err := NewHMACVerifier(nil, HMACOptions{}); !errorsIs(err, ErrNoSecrets) {
		t.Errorf("nil source: err = %v, want ErrNoSecrets", err)
	}
	src, _ := StaticSecrets(secretNew)
	if _, err := NewHMACVerifier(src, HMACOptions{Tolerance: -time.Second}); err == nil {
		t.Error("negative tolerance accepted")
	}
	h := mustSigner(t, secretNew).Headers(testID, testNow, testBody)
	for name, src := range map[string]SecretSource{
		"source error":    errSource{err: ErrNoSecrets},
		"source is empty": staticSecrets(nil),
	} {
		t.Run(name, func(t *testing.T) {
			v, err := NewHMACVerifier(src, HMACOptions{Now: func() time.Time { return testNow }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(context.Background(), testBody, h)
			checkErr(t, err, ErrNoSecrets)
		})
	}
}

func TestParseSignatureHeader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []SignatureEntry
		wantErr error
	}{
		{name: "one entry", in: "v1,abc=", want: []SignatureEntry{{"v1", "abc="}}},
		{name: "two entries", in: "v1,a v1a,b", want: []SignatureEntry{{"v1", "a"}, {"v1a", "b"}}},
		{name: "garbage skipped", in: "x v1,a ,b c, v1,b", want: []SignatureEntry{{"v1", "a"}, {"v1", "b"}}},
		{name: "value keeps later commas", in: "v1,a,b", want: []SignatureEntry{{"v1", "a,b"}}},
		{name: "empty", in: "", wantErr: ErrMissingHeaders},
		{name: "spaces only", in: "   ", wantErr: ErrMissingHeaders},
		{name: "no comma", in: "v1abc", wantErr: ErrMalformedHeaders},
		{name: "only empty parts", in: "v1, ,x", wantErr: ErrMalformedHeaders},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSignatureHeader(tc.in)
			checkErr(t, err, tc.wantErr)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			}
		})
	}
}

func TestSignerHeaders(t *testing.T) {
	s := mustSigner(t, secretOld, secretNew)
	h := s.Headers(testID, testNow.Add(900*time.Millisecond), testBody)
	if h.Get(HeaderID) != testID || h.Get(HeaderTimestamp) != strconv.FormatInt(testNow.Unix(), 10) {
		t.Fatalf("headers = %v", h)
	}
	entries, err := ParseSignatureHeader(h.Get(HeaderSignature))
	if err != nil || len(entries) != 2 || entries[0].Version != "v1" || entries[1].Version != "v1" || entries[0] == entries[1] {
		t.Fatalf("signature entries = %q, %v", entries, err)
	}
	if _, err := NewSigner(); !errorsIs(err, ErrNoSecrets) {
		t.Errorf("NewSigner(): err = %v, want ErrNoSecrets", err)
	}
	if _, err := NewSigner(secretNew, "whsec_%%%"); !errorsIs(err, ErrInvalidSecret) {
		t.Errorf("NewSigner(bad): err = %v, want ErrInvalidSecret", err)
	}
}
