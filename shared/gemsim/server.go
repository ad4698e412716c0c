package gemsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/geminihooks/geminihooks/shared/webhook"
)

// DefaultJobDuration is how long (sim-time) a batch, video or background
// interaction takes from creation to its terminal state when
// [Durations] leaves the kind at zero. The job is pending for the first half
// and running for the second.
const DefaultJobDuration = 200 * time.Millisecond

// DefaultVideoBytes is the size of a generated fake MP4 when
// Options.VideoBytes is zero.
const DefaultVideoBytes = 4096

// JWTKeyID is the kid of the simulator's RS256 key in its JWKS.
const JWTKeyID = "gemsim-1"

// JWTIssuer is the iss claim of dynamic-webhook JWTs.
const JWTIssuer = "https://generativelanguage.googleapis.com"

// Kind names a job kind for [Durations.Func] and [Simulator.FinishJob].
type Kind string

// Job kinds.
const (
	KindBatch       Kind = "batch"
	KindVideo       Kind = "video"
	KindInteraction Kind = "interaction"
)

// Durations sets how long jobs take, in sim-time. Zero means
// DefaultJobDuration; a negative value means "finish immediately" (on the
// next scheduler turn, still asynchronously). Func, when set, is consulted
// first; a negative result from it falls back to the per-kind value.
type Durations struct {
	Batch       time.Duration
	Video       time.Duration
	Interaction time.Duration
	Func        func(kind Kind, name string) time.Duration
}

func (d Durations) of(kind Kind, name string) time.Duration {
	if d.Func != nil {
		if v := d.Func(kind, name); v >= 0 {
			return v
		}
	}
	var v time.Duration
	switch kind {
	case KindBatch:
		v = d.Batch
	case KindVideo:
		v = d.Video
	case KindInteraction:
		v = d.Interaction
	}
	switch {
	case v == 0:
		return DefaultJobDuration
	case v < 0:
		return 0
	}
	return v
}

// Options configures a [Simulator]. The zero value is usable.
type Options struct {
	// APIKey, when non-empty, is the only accepted API key. Empty accepts any
	// non-empty key (the SDK insists on sending one anyway).
	APIKey string
	// Clock drives job progress, retries and rotation windows. Nil means the
	// wall clock, or a ScaledClock when Faults.TimeScale is set.
	Clock Clock
	// Durations of jobs; see [Durations].
	Durations Durations
	// Delivery tunes the webhook delivery engine; see [DeliveryOptions].
	Delivery DeliveryOptions
	// Faults injects delivery faults; see [Faults].
	Faults Faults
	// Seed seeds the RNG used for resource ids, message ids and fault
	// decisions, so a run is reproducible (goroutine scheduling aside).
	Seed int64
	// Logger receives debug/info logs; nil discards them.
	Logger *slog.Logger
	// VideoBytes is the size of each generated fake MP4 (default
	// DefaultVideoBytes).
	VideoBytes int
	// BaseURL overrides the simulator's own base URL (URL, resumable
	// upload URLs). Default: the listener URL after Start, else the scheme
	// and Host of the request.
	BaseURL string
	// URIBase is the base of the resource URIs the simulator mints (a
	// file's uri and downloadUri, a generated video's uri, video.generated
	// output_file_uri and video_uri). Default [DefaultURIBase], the real
	// API's host: SDKs and the Collector take only the file id from such a
	// URI and read it from their configured base URL, as they do against
	// Gemini; [Simulator.Transport] resolves the host to the simulator for
	// a client that fetches the URI itself.
	URIBase string
	// EventIDs chooses the form of data.id in webhook events (see
	// [IDForm]); default IDFormCanonical.
	EventIDs IDForm
	// FileTTL is how long (sim-time) a file lives after its creation:
	// uploads, batch outputs and generated videos. Default [DefaultFileTTL];
	// negative: files never expire. An expired file is gone: files.get
	// answers 403, a download 404, as for a file that never existed.
	FileTTL time.Duration
	// RedirectDownloads makes files.download answer 302 with a signed URL
	// on a second listener (another host:port, started by Start) that
	// serves the bytes without an API key, like a media CDN. A request
	// there that carries the API key is counted in Stats.KeyLeaks.
	RedirectDownloads bool
	// IgnoreRange makes downloads ignore a Range header and always send the
	// whole file with 200 (Accept-Ranges: none), like a server without range
	// support. By default a single "bytes=N-[M]" range is answered 206, as
	// Google's media downloads do; a client resuming a file must handle both.
	IgnoreRange bool
	// OnDelivery, when set, is called after every delivery attempt (from the
	// delivery goroutine; keep it fast and non-blocking).
	OnDelivery func(DeliveryAttempt)
}

// DefaultURIBase is the default Options.URIBase: Gemini's public host.
const DefaultURIBase = "https://generativelanguage.googleapis.com"

// DefaultFileTTL is how long Gemini keeps files: 48 hours.
const DefaultFileTTL = 48 * time.Hour

// IDForm is the form of data.id in the simulator's webhook events. Gemini's
// documentation does not settle it (its example is a bare "batch_123456"),
// so receivers must accept every form of one job.
type IDForm string

// ID forms. For a batch "batches/b", a video "models/m/operations/o" and an
// interaction "v1_i":
const (
	// IDFormCanonical sends the names the SDK returns: "batches/b",
	// "models/m/operations/o", "v1_i".
	IDFormCanonical IDForm = "canonical"
	// IDFormBare sends the bare ids: "b", "o", "v1_i".
	IDFormBare IDForm = "bare"
	// IDFormPrefixed sends collection-prefixed ids: "batches/b",
	// "operations/o", "interactions/v1_i".
	IDFormPrefixed IDForm = "prefixed"
	// IDFormMixed picks one of the three at random for each event (seeded).
	IDFormMixed IDForm = "mixed"
)

// ParseIDForm reads an IDForm name ("" is canonical).
func ParseIDForm(s string) (IDForm, error) {
	switch f := IDForm(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return IDFormCanonical, nil
	case IDFormCanonical, IDFormBare, IDFormPrefixed, IDFormMixed:
		return f, nil
	}
	return "", fmt.Errorf("gemsim: unknown id form %q (canonical, bare, prefixed, mixed)", s)
}

// Stats is a snapshot of the simulator's counters.
type Stats struct {
	// Requests counts API requests per route, keyed by method id, e.g.
	// "batches.get", "files.download", "webhooks.create" (see doc.go for the
	// full list). Unauthenticated requests are counted under their route too.
	Requests map[string]int64
	// TotalRequests is the sum of Requests.
	TotalRequests int64
	// Deliveries counts webhook delivery attempts and outcomes.
	Deliveries DeliveryStats
	// KeyLeaks counts requests to the redirect (media) host that carried
	// an API key: a client that forwards its key across hosts.
	KeyLeaks int64
}

// DeliveryStats counts webhook deliveries.
type DeliveryStats struct {
	Messages   int64 // distinct messages (one per event and target)
	Attempts   int64 // HTTP attempts, including dropped ones and duplicates
	Succeeded  int64 // messages acknowledged with 2xx
	Failed     int64 // attempts that got a non-2xx, a transport error or were dropped
	Dropped    int64 // attempts dropped by Faults.DropRate or Faults.LoseRate
	Lost       int64 // events lost for good by Faults.LoseRate
	Duplicates int64 // extra copies sent by Faults.DuplicateRate
	GaveUp     int64 // messages abandoned (retry window over, webhook disabled or deleted)
}

// Simulator is an in-memory Gemini API (the subset the genai Go SDK uses for
// files, batches, videos, interactions and webhooks) plus a webhook delivery
// engine. It is an http.Handler; Start serves it on a loopback listener.
type Simulator struct {
	opts   Options
	clock  Clock
	log    *slog.Logger
	client *http.Client
	jwt    *webhook.JWTSigner
	jwtErr error

	rngMu sync.Mutex
	rng   *rand.Rand

	mu           sync.Mutex
	files        map[string]*simFile
	fileOrder    []string
	uploads      map[string]*upload
	batches      map[string]*batch
	batchOrder   []string
	videos       map[string]*videoOp
	interactions map[string]*interaction
	hooks        map[string]*hook
	hookOrder    []string
	baseURL      string
	uriBase      string
	mediaURL     string
	mediaKey     []byte
	closedFlag   bool

	statsMu  sync.Mutex
	requests map[string]int64
	dstats   DeliveryStats
	leaks    int64

	closed   chan struct{}
	wg       sync.WaitGroup
	srv      *http.Server
	mediaSrv *http.Server
}

// New returns a simulator configured by opts. Call Close to stop its
// goroutines (and its listener, if started).
func New(opts Options) *Simulator {
	s := &Simulator{
		opts:         opts,
		clock:        opts.Clock,
		log:          opts.Logger,
		rng:          rand.New(rand.NewPCG(uint64(opts.Seed), 0x9e3779b97f4a7c15)),
		files:        map[string]*simFile{},
		uploads:      map[string]*upload{},
		batches:      map[string]*batch{},
		videos:       map[string]*videoOp{},
		interactions: map[string]*interaction{},
		hooks:        map[string]*hook{},
		requests:     map[string]int64{},
		closed:       make(chan struct{}),
		baseURL:      strings.TrimRight(opts.BaseURL, "/"),
		uriBase:      strings.TrimRight(opts.URIBase, "/"),
	}
	if s.uriBase == "" {
		s.uriBase = DefaultURIBase
	}
	if s.opts.FileTTL == 0 {
		s.opts.FileTTL = DefaultFileTTL
	}
	if s.opts.EventIDs == "" {
		s.opts.EventIDs = IDFormCanonical
	}
	if s.clock == nil {
		if opts.Faults.TimeScale > 0 && opts.Faults.TimeScale != 1 {
			s.clock = NewScaledClock(opts.Faults.TimeScale)
		} else {
			s.clock = RealClock{}
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.opts.Delivery = opts.Delivery.withDefaults()
	s.client = s.opts.Delivery.HTTPClient
	if s.client == nil {
		s.client = &http.Client{Timeout: s.opts.Delivery.Timeout}
	}
	s.jwt, s.jwtErr = webhook.NewJWTSigner(JWTKeyID)
	if s.jwtErr != nil {
		s.log.Error("gemsim: JWT signer unavailable; dynamic webhook deliveries will fail", "err", s.jwtErr)
	}
	return s
}

// Start serves the simulator on addr (default "127.0.0.1:0"; a bare ":port"
// binds 127.0.0.1) and returns its base URL, e.g. "http://127.0.0.1:40123".
func (s *Simulator) Start(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("gemsim: listen %s: %w", addr, err)
	}
	url := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	var mln net.Listener
	if s.opts.RedirectDownloads {
		// Another port is another host to an HTTP client: what a redirect
		// to a media CDN looks like.
		host, _, _ := net.SplitHostPort(ln.Addr().String())
		if mln, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
			ln.Close()
			return "", fmt.Errorf("gemsim: listen for media: %w", err)
		}
	}
	s.mu.Lock()
	if s.opts.BaseURL == "" {
		s.baseURL = url
	}
	s.srv = srv
	if mln != nil {
		s.mediaURL = "http://" + mln.Addr().String()
		s.mediaKey = []byte(s.newID(32))
		s.mediaSrv = &http.Server{Handler: http.HandlerFunc(s.serveMedia), ReadHeaderTimeout: 10 * time.Second}
	}
	mediaSrv := s.mediaSrv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("gemsim: serve", "err", err)
		}
	}()
	if mediaSrv != nil {
		go func() {
			if err := mediaSrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("gemsim: serve media", "err", err)
			}
		}()
	}
	return url, nil
}

// Transport returns an http.RoundTripper that sends requests for the host
// of Options.URIBase (Gemini's, by default) to the simulator, over plain
// HTTP, and everything else through base (http.DefaultTransport if nil):
// a client using it can fetch the real-form URIs the simulator mints.
// It needs Start.
func (s *Simulator) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return rewriteTransport{s: s, base: base}
}

type rewriteTransport struct {
	s    *Simulator
	base http.RoundTripper
}

func (t rewriteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	pub, err := url.Parse(t.s.uriBase)
	if err != nil || !strings.EqualFold(r.URL.Host, pub.Host) {
		return t.base.RoundTrip(r)
	}
	own, err := url.Parse(t.s.URL())
	if err != nil || own.Host == "" {
		return nil, fmt.Errorf("gemsim: transport: simulator not started")
	}
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host, r2.Host = own.Scheme, own.Host, own.Host
	return t.base.RoundTrip(r2)
}

// URL is the base URL for genai.HTTPOptions.BaseURL: the listener URL after
// Start (or Options.BaseURL), empty otherwise.
func (s *Simulator) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// Clock returns the simulator's clock (useful with a ScaledClock chosen via
// Faults.TimeScale).
func (s *Simulator) Clock() Clock { return s.clock }

// Close stops the listener (if any), job timers and delivery goroutines.
// In-flight delivery attempts are abandoned.
func (s *Simulator) Close() error {
	s.mu.Lock()
	if s.closedFlag {
		s.mu.Unlock()
		return nil
	}
	s.closedFlag = true
	srv := s.srv
	s.mu.Unlock()
	close(s.closed)
	var err error
	if s.mediaSrv != nil {
		_ = s.mediaSrv.Close()
	}
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err = srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
			// A client still holds a request open (a download being read,
			// a keep-alive mid-request): close its connection; the
			// simulator is stopped either way.
			err = srv.Close()
		}
		cancel()
	}
	s.wg.Wait()
	return err
}

// Stats returns a snapshot of request and delivery counters.
func (s *Simulator) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := Stats{Requests: make(map[string]int64, len(s.requests)), Deliveries: s.dstats, KeyLeaks: s.leaks}
	for k, v := range s.requests {
		st.Requests[k] = v
		st.TotalRequests += v
	}
	return st
}

// ResetStats zeroes all counters (e.g. between benchmark phases).
func (s *Simulator) ResetStats() {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.requests = map[string]int64{}
	s.dstats = DeliveryStats{}
	s.leaks = 0
}

func (s *Simulator) count(route string) {
	s.statsMu.Lock()
	s.requests[route]++
	s.statsMu.Unlock()
}

func (s *Simulator) dstat(f func(*DeliveryStats)) {
	s.statsMu.Lock()
	f(&s.dstats)
	s.statsMu.Unlock()
}

// FinishJob forces the named job to its natural terminal state now instead
// of waiting for its duration: "batches/<id>", "models/<m>/operations/<id>"
// (or "operations/<id>"), or an interaction id (or "interactions/<id>").
// It returns ErrNotFound for an unknown name; a job that already ended is
// left alone.
func (s *Simulator) FinishJob(name string) error {
	switch {
	case strings.HasPrefix(name, "batches/"):
		return s.finishBatch(strings.TrimPrefix(name, "batches/"), "")
	case strings.HasPrefix(name, "operations/") || strings.Contains(name, "/operations/"):
		return s.finishVideo(name[strings.LastIndex(name, "/")+1:])
	default:
		return s.finishInteraction(strings.TrimPrefix(name, "interactions/"))
	}
}

// eventID renders a job's canonical name in the form Options.EventIDs asks
// for (see [IDForm]).
func (s *Simulator) eventID(name string) string {
	form := s.opts.EventIDs
	if form == IDFormMixed {
		s.rngMu.Lock()
		form = []IDForm{IDFormCanonical, IDFormBare, IDFormPrefixed}[s.rng.IntN(3)]
		s.rngMu.Unlock()
	}
	bare := name[strings.LastIndex(name, "/")+1:]
	switch form {
	case IDFormBare:
		return bare
	case IDFormPrefixed:
		switch {
		case strings.HasPrefix(name, "batches/"):
			return name
		case strings.Contains(name, "/operations/"):
			return "operations/" + bare
		default:
			return "interactions/" + bare
		}
	}
	return name
}

// ErrNotFound is returned by FinishJob (and helpers) for unknown names.
var ErrNotFound = errors.New("gemsim: not found")

// after runs f once d of sim-time has elapsed, unless the simulator is
// closed first. The timer is armed before after returns, so with a
// FakeClock a later Advance is guaranteed to see it.
func (s *Simulator) after(d time.Duration, f func()) {
	s.mu.Lock()
	if s.closedFlag {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	t := s.clock.NewTimer(d)
	go func() {
		defer s.wg.Done()
		select {
		case <-t.C():
			f()
		case <-s.closed:
			t.Stop()
		}
	}()
}

// sleep waits d of sim-time; false means the simulator closed.
func (s *Simulator) sleep(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-s.closed:
			return false
		default:
			return true
		}
	}
	t := s.clock.NewTimer(d)
	select {
	case <-t.C():
		return true
	case <-s.closed:
		t.Stop()
		return false
	}
}

// go_ runs f as a tracked goroutine (not started after Close).
func (s *Simulator) go_(f func()) {
	s.mu.Lock()
	if s.closedFlag {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		f()
	}()
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// newID returns n random lowercase alphanumerics: the SDK extracts file ids
// with ^[a-z0-9]+, so every id the simulator mints uses that alphabet.
func (s *Simulator) newID(n int) string {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	b := make([]byte, n)
	for i := range b {
		b[i] = idAlphabet[s.rng.IntN(len(idAlphabet))]
	}
	return string(b)
}

func (s *Simulator) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64() < p
}

func (s *Simulator) randDuration(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return time.Duration(s.rng.Int64N(int64(max)))
}

// base returns the absolute base URL for URIs minted during request r.
func (s *Simulator) base(r *http.Request) string {
	s.mu.Lock()
	b := s.baseURL
	s.mu.Unlock()
	if b != "" || r == nil {
		return b
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Simulator) now() time.Time { return s.clock.Now() }

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ---- HTTP plumbing ----

type handlerFunc func(w http.ResponseWriter, r *http.Request, p routeParams)

type routeParams struct {
	id    string // resource id (file, batch, webhook, interaction, operation)
	model string // model segment (without "models/")
}

// ServeHTTP routes an API request. Paths follow the Gemini REST surface under
// /v1beta (v1 and v1alpha are accepted as aliases).
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/.well-known/jwks.json" && r.Method == http.MethodGet {
		s.count("jwks")
		s.serveJWKS(w)
		return
	}
	name, h, p := s.route(r)
	if h == nil {
		s.count("unknown")
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("Method not found: %s %s", r.Method, r.URL.Path))
		return
	}
	s.count(name)
	if ok, code, status, msg := s.authorize(r); !ok {
		if strings.HasPrefix(name, "interactions.") {
			writeInteractionError(w, code, status, msg)
		} else {
			writeError(w, code, status, msg)
		}
		return
	}
	h(w, r, p)
}

func isVersion(seg string) bool { return seg == "v1beta" || seg == "v1" || seg == "v1alpha" }

func (s *Simulator) route(r *http.Request) (string, handlerFunc, routeParams) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	m := r.Method
	var p routeParams
	if len(segs) >= 2 && segs[0] == "upload" && isVersion(segs[1]) {
		if len(segs) == 3 && segs[2] == "files" && m == http.MethodPost {
			if r.URL.Query().Get("upload_id") != "" {
				return "files.upload.chunk", s.handleUploadChunk, p
			}
			return "files.upload.start", s.handleUploadStart, p
		}
		return "", nil, p
	}
	if len(segs) >= 2 && segs[0] == "download" && isVersion(segs[1]) {
		segs = segs[1:]
	}
	if len(segs) < 2 || !isVersion(segs[0]) {
		return "", nil, p
	}
	segs = segs[1:]
	last := segs[len(segs)-1]
	res, action, _ := strings.Cut(last, ":")
	switch segs[0] {
	case "files":
		switch {
		case len(segs) == 1 && m == http.MethodGet:
			return "files.list", s.handleFileList, p
		case len(segs) == 2:
			p.id = res
			switch {
			case action == "download" && m == http.MethodGet:
				return "files.download", s.handleFileDownload, p
			case action == "" && m == http.MethodGet:
				return "files.get", s.handleFileGet, p
			case action == "" && m == http.MethodDelete:
				return "files.delete", s.handleFileDelete, p
			}
		}
	case "models":
		switch {
		case len(segs) == 2 && m == http.MethodPost && action == "batchGenerateContent":
			p.model = res
			return "batches.create", s.handleBatchCreate, p
		case len(segs) == 2 && m == http.MethodPost && action == "predictLongRunning":
			p.model = res
			return "models.predictLongRunning", s.handleVideoCreate, p
		case len(segs) == 4 && segs[2] == "operations" && m == http.MethodGet && action == "":
			p.model, p.id = segs[1], res
			return "operations.get", s.handleVideoGet, p
		}
	case "operations":
		// The model-less name of an operation (an assumption; see doc.go).
		if len(segs) == 2 && m == http.MethodGet && action == "" {
			p.id = res
			return "operations.get", s.handleVideoGet, p
		}
	case "batches":
		switch {
		case len(segs) == 1 && m == http.MethodGet:
			return "batches.list", s.handleBatchList, p
		case len(segs) == 2:
			p.id = res
			switch {
			case action == "" && m == http.MethodGet:
				return "batches.get", s.handleBatchGet, p
			case action == "" && m == http.MethodDelete:
				return "batches.delete", s.handleBatchDelete, p
			case action == "cancel" && m == http.MethodPost:
				return "batches.cancel", s.handleBatchCancel, p
			}
		}
	case "interactions":
		switch {
		case len(segs) == 1 && m == http.MethodPost:
			return "interactions.create", s.handleInteractionCreate, p
		case len(segs) == 2 && action == "":
			p.id = res
			switch m {
			case http.MethodGet:
				return "interactions.get", s.handleInteractionGet, p
			case http.MethodDelete:
				return "interactions.delete", s.handleInteractionDelete, p
			}
		case len(segs) == 3 && segs[2] == "cancel" && m == http.MethodPost:
			p.id = segs[1]
			return "interactions.cancel", s.handleInteractionCancel, p
		}
	case "webhooks":
		switch {
		case len(segs) == 1 && m == http.MethodPost:
			return "webhooks.create", s.handleWebhookCreate, p
		case len(segs) == 1 && m == http.MethodGet:
			return "webhooks.list", s.handleWebhookList, p
		case len(segs) == 2:
			p.id = res
			switch {
			case action == "" && m == http.MethodGet:
				return "webhooks.get", s.handleWebhookGet, p
			case action == "" && m == http.MethodPatch:
				return "webhooks.update", s.handleWebhookUpdate, p
			case action == "" && m == http.MethodDelete:
				return "webhooks.delete", s.handleWebhookDelete, p
			case action == "ping" && m == http.MethodPost:
				return "webhooks.ping", s.handleWebhookPing, p
			case action == "rotateSigningSecret" && m == http.MethodPost:
				return "webhooks.rotateSigningSecret", s.handleWebhookRotate, p
			}
		}
	}
	return "", nil, p
}

// authorize checks the API key like the real API: a missing key is 403
// PERMISSION_DENIED ("unregistered callers"), a wrong one 400
// INVALID_ARGUMENT ("API key not valid").
func (s *Simulator) authorize(r *http.Request) (bool, int, string, string) {
	key := r.Header.Get("x-goog-api-key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	if key == "" {
		return false, http.StatusForbidden, "PERMISSION_DENIED",
			"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
	}
	if s.opts.APIKey != "" && key != s.opts.APIKey {
		return false, http.StatusBadRequest, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
	}
	return true, 0, "", ""
}

// writeError writes the Google API error shape
// {"error":{"code":404,"message":"...","status":"NOT_FOUND"}}.
func writeError(w http.ResponseWriter, code int, status, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

// writeInteractionError writes the Interactions API error shape, whose code
// is a lowercase word, not a number or a status name:
// {"error":{"code":"invalid_request","message":"..."}}. "invalid_request"
// for a 400 is what public reports show; the other words are assumptions
// ([interactionErrorWord]).
func writeInteractionError(w http.ResponseWriter, code int, status, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": interactionErrorWord(code, status), "message": msg}})
}

// interactionErrorWord is the Interactions API's error code for an HTTP
// status and canonical status name.
func interactionErrorWord(code int, status string) string {
	switch {
	case code == http.StatusBadRequest:
		return "invalid_request"
	case code == http.StatusTooManyRequests:
		return "rate_limit_exceeded"
	case code >= 500:
		return "internal_error"
	}
	return strings.ToLower(status) // not_found, permission_denied, …
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "gemsim: marshal response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// maxJSONBody bounds JSON request bodies (inline batches can be large).
const maxJSONBody = 64 << 20

// readJSON decodes the request body into v. An empty body leaves v alone.
func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	if len(b) > maxJSONBody {
		return fmt.Errorf("request body larger than %d bytes", maxJSONBody)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("Invalid JSON payload received. %v", err)
	}
	return nil
}

// pageBounds parses an offset page token and returns the [start,end) slice
// bounds plus the next token ("" at the end).
func pageBounds(n, size int, token string, defSize, maxSize int) (int, int, string, error) {
	if size <= 0 {
		size = defSize
	}
	if size > maxSize {
		size = maxSize
	}
	start := 0
	if token != "" {
		v, err := strconv.Atoi(strings.TrimPrefix(token, "o"))
		if err != nil || v < 0 || !strings.HasPrefix(token, "o") {
			return 0, 0, "", fmt.Errorf("invalid page token %q", token)
		}
		start = v
	}
	if start > n {
		start = n
	}
	end := start + size
	next := ""
	if end < n {
		next = "o" + strconv.Itoa(end)
	} else {
		end = n
	}
	return start, end, next, nil
}

func queryInt(r *http.Request, names ...string) int {
	for _, n := range names {
		if v := r.URL.Query().Get(n); v != "" {
			i, err := strconv.Atoi(v)
			if err == nil {
				return i
			}
		}
	}
	return 0
}

func queryStr(r *http.Request, names ...string) string {
	for _, n := range names {
		if v := r.URL.Query().Get(n); v != "" {
			return v
		}
	}
	return ""
}
