package devstack

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	_ "unsafe" // go:linkname

	// The funcframework package must be linked for the linkname below.
	_ "github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	// Every function registers itself with the Functions Framework in init().
	_ "github.com/geminihooks/geminihooks"
	_ "github.com/geminihooks/geminihooks/functions/collector"
	_ "github.com/geminihooks/geminihooks/functions/receiver"
)

// funcframeworkMux is funcframework's own (unexported) server constructor:
// the mux StartHostPort would serve, with every registered function at
// /<EntryPoint> and the framework's request wrapping. funcframework v1.9.2
// exports only StartHostPort, which calls http.ListenAndServe and can never
// be stopped; mounting the same mux on an http.Server we own is what lets
// the stack shut down without leaving a listener behind. If a future
// funcframework renames it, the build fails at link time (not silently).
//
//go:linkname funcframeworkMux github.com/GoogleCloudPlatform/functions-framework-go/funcframework.initServer
func funcframeworkMux() (*http.ServeMux, error)

// functionsHandler returns the Functions Framework mux serving every
// registered function, and the entry points it serves among want.
func functionsHandler(want []string) (*http.ServeMux, map[string]bool, error) {
	if t := os.Getenv("FUNCTION_TARGET"); t != "" {
		// With FUNCTION_TARGET the framework serves one function at "/" only.
		return nil, nil, fmt.Errorf("devstack: FUNCTION_TARGET=%s is set; unset it to serve every function at /<EntryPoint>", t)
	}
	mux, err := funcframeworkMux()
	if err != nil {
		return nil, nil, fmt.Errorf("devstack: functions framework: %w", err)
	}
	served := map[string]bool{}
	for _, fn := range want {
		r, _ := http.NewRequest(http.MethodPost, "/"+fn, nil)
		if _, pattern := mux.Handler(r); pattern != "" {
			served[fn] = true
		}
	}
	return mux, served, nil
}

// NotifySinkPath is served next to the functions: the Notifier's default
// destination in the stack, which logs each notification to Out.
const NotifySinkPath = "/_devstack/notifications"

// gate sits in front of the functions. It answers 503 on path while down is
// set, standing for an outage of the deployed Receiver (Gemini then retries
// with backoff), and serves the notification sink.
type gate struct {
	path string
	down atomic.Bool
	next http.Handler
	sink http.Handler
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == NotifySinkPath && g.sink != nil {
		g.sink.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == g.path && g.down.Load() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "receiver unavailable (devstack outage toggle)", http.StatusServiceUnavailable)
		return
	}
	g.next.ServeHTTP(w, r)
}

// ErrAlreadyStarted is returned by Start when this process already ran a
// stack. The functions build their clients from the process environment on
// their first request and keep them for the life of the process (as a Cloud
// Functions instance does), so a second stack in the same process would be
// served by handlers wired to the first one's emulators. Run each stack in
// its own process; retrying in the same process cannot help.
var ErrAlreadyStarted = errors.New("devstack: a stack was already started in this process (functions cache their configuration per process)")

var startedOnce atomic.Bool
