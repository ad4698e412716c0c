package gemsim_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"

	"google.golang.org/genai"

	"github.com/geminihooks/geminihooks/shared/gemsim"
)

// BenchmarkDownloadSimulatedOutput streams a ~100 MB generated batch output
// (one input line with simulate_lines) and reports the simulator process's
// heap in use afterwards, which stays far below the file size because output
// files are generated while streaming.
func BenchmarkDownloadSimulatedOutput(b *testing.B) {
	const lines, lineBytes = 100_000, 1024
	sim := gemsim.New(gemsim.Options{Durations: gemsim.Durations{Batch: -1}})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	client, err := genai.NewClient(b.Context(), &genai.ClientConfig{APIKey: testKey, Backend: genai.BackendGeminiAPI, HTTPOptions: genai.HTTPOptions{BaseURL: url}})
	if err != nil {
		b.Fatal(err)
	}
	in := sim.PutFile("big", "application/jsonl", fmt.Appendf(nil, `{"key":"k","simulate_lines":%d,"line_bytes":%d}`, lines, lineBytes))
	job, err := client.Batches.Create(b.Context(), "m", &genai.BatchJobSource{FileName: in}, withName)
	if err != nil {
		b.Fatal(err)
	}
	for {
		job, err = client.Batches.Get(b.Context(), job.Name, nil)
		if err != nil {
			b.Fatal(err)
		}
		if job.State == genai.JobStateSucceeded {
			break
		}
	}
	b.SetBytes(lines * lineBytes)
	b.ReportAllocs()
	var heap uint64
	for b.Loop() {
		req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, url+"/v1beta/"+job.Dest.FileName+":download?alt=media", nil)
		req.Header.Set("x-goog-api-key", testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != lines*lineBytes {
			b.Fatalf("downloaded %d bytes, err %v", n, err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = max(heap, ms.HeapInuse)
	}
	b.ReportMetric(float64(heap)/(1<<20), "heap-inuse-MB")
}
