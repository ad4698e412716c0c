// Package lazy builds a Cloud Function's handler on its first request.
//
// All geminihooks functions are compiled into one binary (the buildpack
// imports the root package), so every function's init() runs in every
// deployed function. Reading configuration or dialing clients there would
// make the Receiver fail without the Collector's settings; so init() only
// registers a [Handler], and the configuration of the function actually
// served is read once, on first use.
package lazy

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/geminihooks/geminihooks/shared/logging"
)

// Handler is an http.Handler built by Build on the first request. A failed
// build is logged, answered with 500 (the sender retries) and tried again on
// the next request, so a transient error does not poison the instance.
type Handler struct {
	// Name appears in the log line of a failed build.
	Name  string
	Build func(ctx context.Context) (http.Handler, error)

	mu sync.Mutex
	h  http.Handler
}

// ServeHTTP implements http.Handler.
func (l *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	h := l.h
	if h == nil {
		var err error
		if h, err = l.Build(r.Context()); err != nil {
			l.mu.Unlock()
			logging.New(logging.Output(), slog.LevelInfo).ErrorContext(r.Context(), l.Name+" not configured", "error", err.Error())
			http.Error(w, l.Name+" not configured", http.StatusInternalServerError)
			return
		}
		l.h = h
	}
	l.mu.Unlock()
	h.ServeHTTP(w, r)
}

// HTTP registers entryPoint with the Functions Framework as a [Handler]
// built by build, inside the given middleware (the first one outermost),
// e.g. tracing.Push(entryPoint). Call it from init(): it does nothing else.
func HTTP(entryPoint string, build func(ctx context.Context) (http.Handler, error), wrap ...func(http.Handler) http.Handler) {
	var h http.Handler = &Handler{Name: entryPoint, Build: build}
	for i := len(wrap) - 1; i >= 0; i-- {
		h = wrap[i](h)
	}
	functions.HTTP(entryPoint, h.ServeHTTP)
}
