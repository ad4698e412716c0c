package gemsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/geminihooks/geminihooks/shared/webhook"
)

// DeliveryOptions tunes the webhook delivery engine. Durations are sim-time
// (see [Clock]) except Timeout, which bounds one HTTP attempt in wall time.
type DeliveryOptions struct {
	// InitialBackoff is the wait before the first retry (default 5s).
	InitialBackoff time.Duration
	// MaxBackoff caps the wait between retries (default 1h).
	MaxBackoff time.Duration
	// Multiplier grows the wait after each failed attempt (default 2).
	Multiplier float64
	// RetryWindow is how long after the first attempt a message is retried
	// (default 24h, as documented for Gemini).
	RetryWindow time.Duration
	// DisableAfter is the number of consecutive failed attempts, counted
	// across all messages of a static webhook, after which the webhook goes to
	// disabled_due_to_failed_deliveries (default 50). Any 2xx resets the
	// count; re-enabling via PATCH state=enabled resets it too.
	DisableAfter int
	// Timeout bounds one attempt (wall time, default 10s).
	Timeout time.Duration
	// HTTPClient sends deliveries (default: a client with Timeout).
	HTTPClient *http.Client
	// Now gives the webhook-timestamp header and the JWT iat/exp. It defaults
	// to the wall clock (time.Now), not sim-time, because receivers compare
	// it with their own clock.
	Now func() time.Time
}

func (o DeliveryOptions) withDefaults() DeliveryOptions {
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Hour
	}
	if o.MaxBackoff < o.InitialBackoff {
		o.MaxBackoff = o.InitialBackoff
	}
	if o.Multiplier < 1 {
		o.Multiplier = 2
	}
	if o.RetryWindow <= 0 {
		o.RetryWindow = 24 * time.Hour
	}
	if o.DisableAfter <= 0 {
		o.DisableAfter = 50
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Faults injects delivery misbehaviour; decisions use the seeded RNG.
type Faults struct {
	// DuplicateRate (0..1) is the probability that a successfully delivered
	// message is sent once more (same webhook-id, fresh timestamp/signature).
	DuplicateRate float64
	// DropRate (0..1) is the probability that an attempt is lost before
	// reaching the receiver; it counts as a failed attempt and is retried.
	DropRate float64
	// LoseRate (0..1) is the probability that an event is lost for good:
	// every attempt of every delivery of it is dropped (and retried until
	// the retry window ends or the webhook is disabled), like a Receiver
	// outage longer than Gemini's 24 h of retries. Only a sweep of
	// Gemini's API finds such a job.
	LoseRate float64
	// Delay is added (sim-time) before every attempt.
	Delay time.Duration
	// Shuffle adds a random extra delay in [0, Shuffle) before every attempt
	// and before duplicates, so events arrive out of order.
	Shuffle time.Duration
	// TimeScale, when Options.Clock is nil and TimeScale > 0, runs sim-time
	// this many times faster than wall time (3600: one sim-hour per second).
	TimeScale float64
}

// DeliveryAttempt describes one delivery attempt, reported to
// Options.OnDelivery.
type DeliveryAttempt struct {
	MessageID string // webhook-id header, stable across retries and duplicates
	WebhookID string // static webhook id; empty for dynamic (webhook_config.uris) deliveries
	Dynamic   bool
	EventType string
	DataID    string
	URL       string
	Attempt   int       // 1-based; duplicates carry the attempt they copy
	Status    int       // HTTP status, 0 if none
	Err       error     // transport error, ErrDropped, or a give-up reason
	Dropped   bool      // lost by Faults.DropRate
	Duplicate bool      // extra copy from Faults.DuplicateRate
	Final     bool      // no further attempt will follow (delivered or abandoned)
	Time      time.Time // sim-time of the attempt
}

// Errors reported in DeliveryAttempt.Err.
var (
	ErrDropped         = errors.New("gemsim: attempt dropped by fault injection")
	ErrRetryWindowOver = errors.New("gemsim: retry window exhausted")
	ErrWebhookDisabled = errors.New("gemsim: webhook disabled")
	ErrWebhookDeleted  = errors.New("gemsim: webhook deleted")
)

type envelope struct {
	Type      string         `json:"type"`
	Version   string         `json:"version"`
	Timestamp string         `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

type message struct {
	id        string
	eventType string
	dataID    string
	body      []byte
	hookID    string // static
	url       string // dynamic
	ping      bool
	lost      bool // Faults.LoseRate: no attempt ever arrives
}

func (s *Simulator) envelope(eventType string, data map[string]any) []byte {
	b, err := json.Marshal(envelope{Type: eventType, Version: "v1", Timestamp: fmtTime(s.now()), Data: data})
	if err != nil {
		panic(fmt.Sprintf("gemsim: marshal envelope: %v", err)) // data holds only strings
	}
	return b
}

func dataID(data map[string]any) string {
	id, _ := data["id"].(string)
	return id
}

// emit delivers an event: to the job's webhook_config URIs when it has any
// (signed with a JWT), otherwise to every enabled static webhook subscribed
// to the type (signed with HMAC).
func (s *Simulator) emit(eventType string, data map[string]any, uris []string) {
	body := s.envelope(eventType, data)
	lost := s.chance(s.opts.Faults.LoseRate)
	if lost {
		s.dstat(func(st *DeliveryStats) { st.Lost++ })
	}
	if len(uris) > 0 {
		s.dstat(func(st *DeliveryStats) { st.Messages += int64(len(uris)) })
		for _, u := range uris {
			m := &message{id: "msg_" + s.newID(24), eventType: eventType, dataID: dataID(data), body: body, url: u, lost: lost}
			s.go_(func() { s.runDelivery(m) })
		}
		return
	}
	s.mu.Lock()
	var targets []string
	for _, id := range s.hookOrder {
		h := s.hooks[id]
		if h.state == StateEnabled && slices.Contains(h.events, eventType) {
			targets = append(targets, id)
		}
	}
	s.mu.Unlock()
	// Counted here, synchronously, so tests can rely on Messages once the
	// job reached its terminal state.
	s.dstat(func(st *DeliveryStats) { st.Messages += int64(len(targets)) })
	for _, id := range targets {
		m := &message{id: "msg_" + s.newID(24), eventType: eventType, dataID: dataID(data), body: body, hookID: id, lost: lost}
		s.go_(func() { s.runDelivery(m) })
	}
}

// deliverStatic sends one event to one static webhook (used by ping).
func (s *Simulator) deliverStatic(hookID, eventType string, data map[string]any, ping bool) {
	s.dstat(func(st *DeliveryStats) { st.Messages++ })
	m := &message{id: "msg_" + s.newID(24), eventType: eventType, dataID: dataID(data), body: s.envelope(eventType, data), hookID: hookID, ping: ping}
	s.go_(func() { s.runDelivery(m) })
}

// target resolves where and how to send the next attempt of m.
func (s *Simulator) target(m *message) (url string, secrets []string, err error) {
	if m.hookID == "" {
		return m.url, nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hooks[m.hookID]
	if h == nil {
		return "", nil, ErrWebhookDeleted
	}
	if h.state != StateEnabled && !m.ping {
		return "", nil, fmt.Errorf("%w (%s)", ErrWebhookDisabled, h.state)
	}
	return h.uri, s.activeSecretsLocked(h), nil
}

func (s *Simulator) report(a DeliveryAttempt) {
	if s.opts.OnDelivery != nil {
		s.opts.OnDelivery(a)
	}
	s.log.Debug("gemsim: delivery attempt", "msg", a.MessageID, "type", a.EventType, "url", a.URL,
		"attempt", a.Attempt, "status", a.Status, "err", a.Err, "final", a.Final)
}

func (s *Simulator) runDelivery(m *message) {
	d := s.opts.Delivery
	start := s.now()
	var backoff time.Duration
	for attempt := 1; ; attempt++ {
		if !s.sleep(backoff + s.opts.Faults.Delay + s.randDuration(s.opts.Faults.Shuffle)) {
			return
		}
		a := DeliveryAttempt{MessageID: m.id, WebhookID: m.hookID, Dynamic: m.hookID == "", EventType: m.eventType,
			DataID: m.dataID, URL: m.url, Attempt: attempt, Time: s.now()}
		url, secrets, err := s.target(m)
		if err != nil {
			a.Err, a.Final = err, true
			s.dstat(func(st *DeliveryStats) { st.GaveUp++ })
			s.report(a)
			return
		}
		a.URL = url
		s.dstat(func(st *DeliveryStats) { st.Attempts++ })
		if m.lost || s.chance(s.opts.Faults.DropRate) {
			a.Dropped, a.Err = true, ErrDropped
			s.dstat(func(st *DeliveryStats) { st.Dropped++ })
		} else {
			a.Status, a.Err = s.post(m, url, secrets)
		}
		if a.Err == nil && a.Status/100 == 2 {
			a.Final = true
			s.dstat(func(st *DeliveryStats) { st.Succeeded++ })
			s.recordResult(m.hookID, true)
			s.report(a)
			if s.chance(s.opts.Faults.DuplicateRate) {
				s.go_(func() { s.sendDuplicate(m, attempt) })
			}
			return
		}
		if a.Err == nil {
			a.Err = fmt.Errorf("gemsim: receiver answered %d", a.Status)
		}
		s.dstat(func(st *DeliveryStats) { st.Failed++ })
		disabled := s.recordResult(m.hookID, false)
		if attempt == 1 {
			backoff = d.InitialBackoff
		} else {
			backoff = min(time.Duration(float64(backoff)*d.Multiplier), d.MaxBackoff)
		}
		if disabled && !m.ping {
			a.Final = true
			a.Err = fmt.Errorf("%w: %w", ErrWebhookDisabled, a.Err)
		} else if s.now().Add(backoff).Sub(start) > d.RetryWindow {
			a.Final = true
			a.Err = fmt.Errorf("%w: %w", ErrRetryWindowOver, a.Err)
		}
		if a.Final {
			s.dstat(func(st *DeliveryStats) { st.GaveUp++ })
			s.report(a)
			return
		}
		s.report(a)
	}
}

func (s *Simulator) sendDuplicate(m *message, attempt int) {
	if !s.sleep(s.randDuration(s.opts.Faults.Shuffle)) {
		return
	}
	url, secrets, err := s.target(m)
	if err != nil {
		return
	}
	a := DeliveryAttempt{MessageID: m.id, WebhookID: m.hookID, Dynamic: m.hookID == "", EventType: m.eventType,
		DataID: m.dataID, URL: url, Attempt: attempt, Duplicate: true, Final: true, Time: s.now()}
	a.Status, a.Err = s.post(m, url, secrets)
	s.dstat(func(st *DeliveryStats) { st.Attempts++; st.Duplicates++ })
	s.report(a)
}

// recordResult tracks consecutive failures of a static webhook and reports
// whether it is (now) not enabled.
func (s *Simulator) recordResult(hookID string, ok bool) bool {
	if hookID == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hooks[hookID]
	if h == nil {
		return true
	}
	if ok {
		h.failures = 0
		return false
	}
	h.failures++
	if h.state == StateEnabled && h.failures >= s.opts.Delivery.DisableAfter {
		h.state = StateDisabledDueToFailedDeliveries
		h.updated = s.now()
		s.log.Info("gemsim: webhook disabled after failed deliveries", "webhook", hookID, "failures", h.failures)
	}
	return h.state != StateEnabled
}

// post sends one attempt. Static messages carry Standard Webhooks headers
// signed with every active secret; dynamic ones an RS256 JWT in
// webhook-signature plus webhook-id and webhook-timestamp.
func (s *Simulator) post(m *message, url string, secrets []string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Delivery.Timeout)
	defer cancel()
	go func() {
		select {
		case <-s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(m.body))
	if err != nil {
		return 0, fmt.Errorf("gemsim: build delivery request: %w", err)
	}
	ts := s.opts.Delivery.Now()
	if m.hookID != "" {
		signer, err := webhook.NewSigner(secrets...)
		if err != nil {
			return 0, fmt.Errorf("gemsim: signer: %w", err)
		}
		for k, vs := range signer.Headers(m.id, ts, m.body) {
			req.Header[k] = vs
		}
	} else {
		if s.jwt == nil {
			return 0, fmt.Errorf("gemsim: JWT signer unavailable: %w", s.jwtErr)
		}
		tok, err := s.jwt.Sign(map[string]any{
			"iss":        JWTIssuer,
			"aud":        url,
			"iat":        ts.Unix(),
			"exp":        ts.Add(5 * time.Minute).Unix(),
			"jti":        m.id,
			"event_type": m.eventType,
			"data_id":    m.dataID,
		})
		if err != nil {
			return 0, fmt.Errorf("gemsim: sign JWT: %w", err)
		}
		req.Header.Set("webhook-id", m.id)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set("webhook-signature", tok)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gemsim/1 (Gemini API simulator)")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("gemsim: deliver to %s: %w", url, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func (s *Simulator) serveJWKS(w http.ResponseWriter) {
	if s.jwt == nil {
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "JWT signer unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.jwt.JWKS())
}
