// Command coldstart measures, for each entry point, the time from process
// start to the first answer with the expected status, using the binary the
// Go functions buildpack would build (bench/cmd/fnmain, built with
// -trimpath like scripts/buildpack-check.sh): the Receiver must answer 405
// to GET, the Pub/Sub consumers 400 to an empty POST. Each entry point is
// started -runs times; configuration is dummy (secrets and keys in files,
// emulator hosts that refuse connections), so nothing waits on the network.
//
//	go run ./bench/cmd/coldstart [-runs 5] [-out results]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/geminihooks/geminihooks/bench/internal/benchutil"
)

type entry struct {
	name   string
	method string
	want   int
}

var entries = []entry{
	{"Receiver", http.MethodGet, http.StatusMethodNotAllowed},
	{"Collector", http.MethodPost, http.StatusBadRequest},
	{"Notifier", http.MethodPost, http.StatusBadRequest},
	{"Workflow", http.MethodPost, http.StatusBadRequest},
	// A GET never starts a sweep: the first expected answer without one.
	{"Reconciler", http.MethodGet, http.StatusMethodNotAllowed},
}

func main() {
	runs := flag.Int("runs", 5, "starts per entry point")
	out := flag.String("out", "results", "directory for coldstart.md")
	flag.Parse()
	log.SetFlags(log.Ltime)
	work, err := os.MkdirTemp("", "coldstart")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "function")
	t0 := time.Now()
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./bench/cmd/fnmain")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		log.Fatalf("go build ./bench/cmd/fnmain (run from the module root): %v", err)
	}
	buildTime := time.Since(t0)
	st, err := os.Stat(bin)
	if err != nil {
		log.Fatal(err)
	}
	secret := filepath.Join(work, "secret")
	os.WriteFile(secret, []byte("whsec_Y29sZHN0YXJ0LW5vdC1hLXNlY3JldC1hdC1hbGw="), 0o600)
	key := filepath.Join(work, "key")
	os.WriteFile(key, []byte("coldstart-not-a-key"), 0o600)
	dest := filepath.Join(work, "dest")
	os.WriteFile(dest, []byte(`[{"name":"x","format":"webhook","url":"https://127.0.0.1:9/notify"}]`), 0o600)

	type row struct {
		e     entry
		times []time.Duration
		got   int
		err   error
	}
	var rows []row
	for _, e := range entries {
		r := row{e: e}
		for range *runs {
			d, got, err := startOnce(bin, e, secret, key, dest)
			r.got = got
			if err != nil {
				r.err = err
				break
			}
			r.times = append(r.times, d)
		}
		log.Printf("coldstart: %s %v", e.name, r.times)
		rows = append(rows, r)
	}
	_ = benchutil.Section(*out, "coldstart.md", func(w io.Writer) {
		fmt.Fprintln(w, "## 5. Cold start (buildpack-style binary, process start → first expected answer)")
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Binary: %s MiB (`go build -trimpath ./bench/cmd/fnmain`, one binary for every entry point; build took %s).\n\n",
			benchutil.MiB(st.Size()), buildTime.Round(time.Second))
		t := benchutil.Table{Header: []string{"entry point", "probe", "runs", "min (ms)", "median (ms)", "max (ms)", "result"}}
		for _, r := range rows {
			res := "ok"
			if r.err != nil {
				res = "FAILED: " + r.err.Error()
			}
			ts := append([]time.Duration(nil), r.times...)
			t.Add(r.e.name, fmt.Sprintf("%s / → %d", r.e.method, r.e.want), len(r.times),
				benchutil.Ms(benchutil.Percentile(ts, 1)), benchutil.Ms(benchutil.Percentile(ts, 50)), benchutil.Ms(benchutil.Percentile(ts, 100)), res)
		}
		t.Write(w)
		fmt.Fprintln(w, "Anchor: Go on Cloud Run typically 100–150 ms cold start (anchors §5.1), which adds container and network set-up to what is measured here.")
		fmt.Fprintln(w)
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startOnce(bin string, e entry, secret, key, dest string) (time.Duration, int, error) {
	port, err := freePort()
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"FUNCTION_TARGET=" + e.name, "PORT=" + strconv.Itoa(port), "K_SERVICE=coldstart-" + e.name,
		"GOOGLE_CLOUD_PROJECT=coldstart", "FIRESTORE_EMULATOR_HOST=127.0.0.1:9", "PUBSUB_EMULATOR_HOST=127.0.0.1:9",
		"GCE_METADATA_HOST=127.0.0.1:9", "GEMINI_WEBHOOK_SECRETS_FILE=" + secret, "GEMINI_API_KEY_FILE=" + key,
		"NOTIFIER_DESTINATION_FILE=" + dest, "GEMINI_BASE_URL=http://127.0.0.1:9", "JWKS_URL=http://127.0.0.1:9/jwks.json",
		"EVENTS_TOPIC=coldstart-events", "RESULTS_TOPIC=coldstart-results", "MAX_DELIVERY_ATTEMPTS=5"}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := start.Add(20 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(e.method, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			d := time.Since(start)
			if resp.StatusCode != e.want {
				return d, resp.StatusCode, fmt.Errorf("first answer %d, want %d", resp.StatusCode, e.want)
			}
			return d, resp.StatusCode, nil
		}
		time.Sleep(time.Millisecond)
	}
	return 0, 0, errors.New("no answer within 20s")
}
