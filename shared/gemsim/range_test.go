package gemsim_test

import (
	"bytes"
	"io"
	"testing"

	"google.golang.org/genai"

	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/gemsim"
)

// TestRangeDownloads: a generated batch output is the same bytes on every
// download; a download from byte N through gemini.Client.OpenFileAt is the
// file's tail, served 206 by default and, with IgnoreRange, 200 with the
// client skipping N bytes (also through a redirect to the media host).
func TestRangeDownloads(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     gemsim.Options
		ranged   bool
		redirect bool
	}{
		{"range", gemsim.Options{}, true, false},
		{"norange", gemsim.Options{IgnoreRange: true}, false, false},
		{"range-redirect", gemsim.Options{RedirectDownloads: true}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, client := startSim(t, tc.opts)
			ctx := ctxT(t)
			in := sim.PutFile("big", "application/jsonl", []byte(`{"key":"k","simulate_lines":3000,"line_bytes":200}`+"\n"))
			job, err := client.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{FileName: in}, withName)
			if err != nil {
				t.Fatal(err)
			}
			job = waitBatch(t, client, job.Name)
			gc, err := gemini.New(ctx, gemini.Config{APIKey: testKey, BaseURL: sim.URL()})
			if err != nil {
				t.Fatal(err)
			}
			read := func(off int64) (*gemini.Download, []byte) {
				t.Helper()
				d, err := gc.OpenFileAt(ctx, job.Dest.FileName, off)
				if err != nil {
					t.Fatal(err)
				}
				defer d.Body.Close()
				b, err := io.ReadAll(d.Body)
				if err != nil {
					t.Fatal(err)
				}
				return d, b
			}
			_, full := read(0)
			_, again := read(0)
			if len(full) < 3000*200 || !bytes.Equal(full, again) {
				t.Fatalf("generated output: %d bytes, deterministic %v", len(full), bytes.Equal(full, again))
			}
			for _, off := range []int64{1, int64(len(full)) / 3, int64(len(full)) - 1, int64(len(full)), int64(len(full)) + 10} {
				d, tail := read(off)
				want := full[min(off, int64(len(full))):]
				if !bytes.Equal(tail, want) {
					t.Errorf("from byte %d: %d bytes, want %d", off, len(tail), len(want))
				}
				if d.Ranged != tc.ranged && off < int64(len(full)) {
					t.Errorf("from byte %d: ranged %v, want %v", off, d.Ranged, tc.ranged)
				}
				if off < int64(len(full)) && d.Ranged && d.Size != int64(len(full)) {
					t.Errorf("from byte %d: size %d, want %d", off, d.Size, len(full))
				}
			}
			if sim.Stats().KeyLeaks != 0 {
				t.Error("the API key reached the media host")
			}
		})
	}
}
