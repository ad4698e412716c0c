package gemsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/shared/gemsim"
)

// TestJSSDKDownloadsGeneratedVideo runs the official JS SDK
// (scripts/jssdk, @google/genai pinned by its package-lock.json) against the
// simulator: generateVideos, getVideosOperation until done, then
// files.download of the generated video, whose real-form https URI the SDK
// resolves to its base URL. Skipped without node; scripts/test.sh installs
// the SDK (npm ci) when node is present and then requires this test to run.
func TestJSSDKDownloadsGeneratedVideo(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "scripts", "jssdk"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@google", "genai", "package.json")); err != nil {
		if os.Getenv("GEMINIHOOKS_JSSDK") == "required" {
			t.Fatalf("@google/genai is not installed in %s: %v", dir, err)
		}
		t.Skip("@google/genai is not installed: run npm ci --prefix scripts/jssdk (scripts/test.sh does)")
	}
	const size, prompt = 3000, "a heron at dawn"
	sim, _ := startSim(t, gemsim.Options{APIKey: testKey, VideoBytes: size})
	out := filepath.Join(t.TempDir(), "video.mp4")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "download-video.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GEMINI_BASE_URL="+sim.URL(), "GEMINI_API_KEY="+testKey, "PROMPT="+prompt, "OUT="+out)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node download-video.mjs: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var res struct {
		Operation, URI string
		Bytes          int
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("script output %q: %v", stdout.String(), err)
	}
	if !strings.HasPrefix(res.URI, gemsim.DefaultURIBase+"/v1beta/files/") || !strings.Contains(res.Operation, "/operations/") {
		t.Errorf("script saw operation %q, uri %q", res.Operation, res.URI)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := gemsim.FakeVideo(prompt, 0, size); !bytes.Equal(got, want) {
		t.Fatalf("downloaded %d bytes, not the generated video (%d bytes)", len(got), len(want))
	}
	if n := sim.Stats().Requests["files.download"]; n != 1 {
		t.Errorf("files.download requests = %d, want 1", n)
	}
}
