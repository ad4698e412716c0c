package webhook

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The f.Add seeds below are the committed seed corpus: they run in every
// plain `go test`. `go test -fuzz=FuzzHMACVerify` explores further.

func FuzzParseSignatureHeader(f *testing.F) {
	s := mustSigner(f, secretOld, secretNew)
	for _, seed := range []string{
		"", " ", "v1", "v1,", ",x", "v1,abc", "v1,a v1,b", "v1,a,b,c", "v1a,xyz v1,abc",
		"  v1,a   v1,b  ", "\tv1,a", "v1,\x00\xff", "a.b.c", "v1 , abc",
		s.Signature(testID, testNow, testBody),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		entries, err := ParseSignatureHeader(in)
		if err != nil {
			if !IsMalformed(err) || len(entries) != 0 {
				t.Fatalf("ParseSignatureHeader(%q) = %q, %v: errors must be malformed-class with no entries", in, entries, err)
			}
			return
		}
		if len(entries) == 0 || len(entries) > strings.Count(in, " ")+1 {
			t.Fatalf("ParseSignatureHeader(%q): %d entries", in, len(entries))
		}
		for _, e := range entries {
			if e.Version == "" || e.Value == "" || strings.Contains(e.Version, ",") ||
				strings.Contains(e.Version+e.Value, " ") || !strings.Contains(in, e.Version+","+e.Value) {
				t.Fatalf("ParseSignatureHeader(%q): bad entry %q", in, e)
			}
		}
	})
}

// FuzzHMACVerify checks three properties on arbitrary input:
//  1. arbitrary headers and bodies never panic and fail only with package
//     sentinels;
//  2. whatever we accept, the reference library accepts too (we are never
//     more lenient);
//  3. a message signed by Signer (under the fuzzed id/body) always verifies,
//     also through the reference library.
func FuzzHMACVerify(f *testing.F) {
	signer := mustSigner(f, secretOld, secretNew)
	good := signer.Headers(testID, testNow, testBody)
	ts := strconv.FormatInt(testNow.Unix(), 10)
	f.Add(testID, ts, good.Get(HeaderSignature), testBody)
	f.Add(testID, ts, strings.Fields(good.Get(HeaderSignature))[1], testBody)
	f.Add(testID, "+"+ts, good.Get(HeaderSignature), testBody)
	f.Add(testID, "0"+ts, good.Get(HeaderSignature)+" v1a,zzz", testBody)
	f.Add(testID, ts, "v1,"+strings.Repeat("A", 43)+"=", testBody)
	f.Add("", "", "", []byte(nil))
	f.Add("x", "1", "v1,", []byte("{}"))
	f.Add("x", "-9223372036854775808", "v1,abc v2,def", []byte("{}"))
	f.Add("x", "9223372036854775807", "a.b.c", []byte("{}"))
	f.Add("id with spaces", "1.5", "v1", []byte{0xff})

	// A huge tolerance makes the timestamp irrelevant, so property 2 can be
	// compared with the reference's VerifyIgnoringTimestamp.
	anyTime := mustHMACVerifier(f, HMACOptions{Tolerance: math.MaxInt64, Now: func() time.Time { return testNow }}, secretNew)
	strict := mustHMACVerifier(f, HMACOptions{Now: func() time.Time { return testNow }}, secretOld, secretNew)
	ref, err := standardwebhooks.NewWebhook(secretNew)
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		for _, v := range []*HMACVerifier{anyTime, strict} {
			if _, err := v.Verify(t.Context(), body, h); err != nil && !wrapsSentinel(err) {
				t.Fatalf("error without sentinel: %v", err)
			}
		}
		if _, err := anyTime.Verify(t.Context(), body, h); err == nil {
			if rerr := ref.VerifyIgnoringTimestamp(body, h); rerr != nil {
				t.Fatalf("we accept what the reference rejects (%v): id=%q ts=%q sig=%q", rerr, id, ts, sig)
			}
		}

		if id == "" {
			id = "msg"
		}
		signed := signer.Headers(id, testNow, body)
		if _, err := strict.Verify(t.Context(), body, signed); err != nil {
			t.Fatalf("signed message rejected: %v (id=%q)", err, id)
		}
		if err := ref.VerifyIgnoringTimestamp(body, signed); err != nil {
			t.Fatalf("reference rejects our signed message: %v (id=%q)", err, id)
		}
	})
}
