// Package notify is the Notifier's domain: it turns a results event into a
// short message for each configured destination — a Slack incoming webhook,
// a Google Chat webhook, or a generic JSON webhook signed with Standard
// Webhooks — at most once per (event, destination).
//
// # Exactly one notification per event
//
// Pub/Sub may deliver a results event more than once. Before sending,
// [Service.Handle] claims notifications/{event_id}.{destination} in
// Firestore ([SendLog]); a claim that is already sent is skipped, one being
// sent by a concurrent delivery makes this one retry later. A destination
// that fails (non-2xx, timeout) releases its claim and fails the delivery,
// so Pub/Sub retries it and finally dead-letters it: failures are never
// silent. Destinations already notified are not notified again on retry.
//
// # Untrusted text
//
// Job ids, error codes and messages come from Gemini or a model. In Slack
// and Google Chat messages they are escaped ([EscapeMarkup]) so they can
// neither ping a channel (<!channel>, <users/all>) nor hide a link behind
// innocent text (<url|text>). Requests follow no redirects: a destination
// answering 3xx fails, so a signed body (and its signature) never reaches a
// host the configuration did not name.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/webhook"
)

// Formats of destinations.
const (
	FormatSlack   = "slack"
	FormatChat    = "chat"
	FormatWebhook = "webhook"
)

// Destination is where notifications go.
type Destination struct {
	// Name identifies the destination in the send log. Defaults to its format.
	Name string `json:"name"`
	URL  string `json:"url"`
	// Format is slack, chat or webhook; empty detects it from the URL host.
	Format string `json:"format"`
	// Events are event-type patterns (path.Match syntax, e.g. "batch.*");
	// empty means all.
	Events []string `json:"events"`
	// States are job states or collection states to notify on (e.g.
	// "failed", "collect_failed"); empty means all.
	States []string `json:"states"`
	// Secret signs generic webhooks (a whsec_ secret). Optional.
	Secret string `json:"secret"`
}

// ErrConfig reports an unusable destination list; fix the configuration.
var ErrConfig = errors.New("invalid notifier configuration")

// ParseDestinations reads destinations from s: either a JSON array of
// [Destination] or a single URL (all events, format from the host).
func ParseDestinations(s string) ([]Destination, error) {
	s = strings.TrimSpace(s)
	var ds []Destination
	if strings.HasPrefix(s, "[") {
		if err := json.Unmarshal([]byte(s), &ds); err != nil {
			return nil, fmt.Errorf("%w: destinations JSON: %v", ErrConfig, err)
		}
	} else if s != "" {
		ds = []Destination{{URL: s}}
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("%w: no destination", ErrConfig)
	}
	seen := map[string]bool{}
	for i := range ds {
		d := &ds[i]
		u, err := url.Parse(d.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("%w: destination %d: url is not http(s)", ErrConfig, i)
		}
		if d.Format == "" {
			d.Format = detectFormat(u.Host)
		}
		if d.Format != FormatSlack && d.Format != FormatChat && d.Format != FormatWebhook {
			return nil, fmt.Errorf("%w: destination %d: format %q", ErrConfig, i, d.Format)
		}
		for _, p := range d.Events {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("%w: destination %d: event pattern %q", ErrConfig, i, p)
			}
		}
		if d.Secret != "" {
			if _, err := webhook.ParseSecret(d.Secret); err != nil {
				return nil, fmt.Errorf("%w: destination %d: %v", ErrConfig, i, err)
			}
		}
		if d.Name == "" {
			d.Name = d.Format
		}
		if seen[d.Name] {
			return nil, fmt.Errorf("%w: two destinations named %q (set name)", ErrConfig, d.Name)
		}
		seen[d.Name] = true
	}
	return ds, nil
}

func detectFormat(host string) string {
	switch {
	case host == "hooks.slack.com":
		return FormatSlack
	case host == "chat.googleapis.com":
		return FormatChat
	}
	return FormatWebhook
}

// Wants reports whether d is interested in ev.
func (d Destination) Wants(ev event.ResultsEvent) bool {
	if len(d.Events) > 0 && !anyMatch(d.Events, ev.Type) {
		return false
	}
	if len(d.States) > 0 {
		for _, s := range d.States {
			if s == string(ev.State) || s == ev.CollectionState {
				return true
			}
		}
		return false
	}
	return true
}

func anyMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// Text is the one-line human summary of a results event.
func Text(ev event.ResultsEvent) string {
	var b strings.Builder
	icon := "✅"
	switch {
	case ev.CollectionState == "collect_failed":
		icon = "⚠️"
	case ev.State == event.StateFailed || ev.State == event.StateExpired || ev.State == event.StateCancelled:
		icon = "❌"
	case ev.State == event.StateRequiresAction:
		icon = "⏸️"
	}
	fmt.Fprintf(&b, "%s %s %s %s", icon, ev.Kind, ev.JobID, ev.State)
	if ev.CollectionState == "collect_failed" {
		b.WriteString(" (results could not be collected)")
	}
	if ev.Counts.Results > 0 || ev.Counts.Failed > 0 {
		fmt.Fprintf(&b, " — %d results", ev.Counts.Results)
		if ev.Counts.Failed > 0 {
			fmt.Fprintf(&b, " (%d failed)", ev.Counts.Failed)
		}
	}
	if ev.Tokens.Total > 0 {
		fmt.Fprintf(&b, ", %d tokens", ev.Tokens.Total)
	}
	if ev.Error != nil {
		fmt.Fprintf(&b, ": %s", strings.TrimSpace(ev.Error.Code+" "+ev.Error.Message))
	}
	if ev.ResultsPath != "" {
		fmt.Fprintf(&b, " · results: %s", ev.ResultsPath)
	} else if ev.JobPath != "" {
		fmt.Fprintf(&b, " · job: %s", ev.JobPath)
	}
	return b.String()
}

// markupEscaper turns the three characters Slack's and Google Chat's
// message markup is built from into entities both render literally
// (Slack documents exactly these three; Chat renders them the same way).
// & goes first in effect: strings.Replacer does not re-scan its output.
var markupEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// EscapeMarkup makes s inert in a Slack or Google Chat text message:
// "<!channel>", "<users/all>", "<https://evil|click>" and "&" are shown as
// typed instead of pinging, linking or being decoded as entities.
func EscapeMarkup(s string) string { return markupEscaper.Replace(s) }

// Render builds the HTTP body for d.
func Render(d Destination, ev event.ResultsEvent) []byte {
	switch d.Format {
	case FormatSlack, FormatChat:
		// Both accept {"text": "..."}; Slack renders its mrkdwn, Chat its
		// own. Text carries strings from Gemini and models, and ours contain
		// no markup, so the whole text is escaped.
		return event.Marshal(map[string]string{"text": EscapeMarkup(Text(ev))})
	default:
		return event.Marshal(map[string]any{
			"type": "geminihooks.results", "timestamp": ev.CollectedAt, "text": Text(ev), "data": ev,
		})
	}
}

// SendLog records which notifications were sent.
type SendLog interface {
	// Begin claims key. sent reports it was sent before; inFlight that a
	// concurrent attempt holds it. Otherwise the caller holds the returned
	// token and must Finish or Abort.
	Begin(ctx context.Context, key string) (token string, sent, inFlight bool, err error)
	Finish(ctx context.Context, key, token string) error
	Abort(ctx context.Context, key, token string) error
}

// Sentinel errors of [Service.Handle]; both mean "redeliver later".
var (
	ErrDestination = errors.New("destination failed")
	ErrInFlight    = errors.New("notification being sent by another attempt")
	ErrUnavailable = errors.New("send log unavailable")
)

// Service sends notifications. It is safe for concurrent use.
type Service struct {
	Destinations []Destination
	Log          SendLog
	// HTTP sends the requests. Defaults to a client with a 10s timeout.
	HTTP *http.Client
	// Now is the clock used for signatures. Defaults to time.Now.
	Now func() time.Time
}

// Outcome per destination, for logs and tests.
type Outcome struct {
	Destination string `json:"destination"`
	// Result is sent, skipped (filtered), or duplicate.
	Result string `json:"result"`
}

// Handle notifies every interested destination about ev once.
func (s *Service) Handle(ctx context.Context, ev event.ResultsEvent) ([]Outcome, error) {
	var out []Outcome
	var errs []error
	for _, d := range s.Destinations {
		if !d.Wants(ev) {
			out = append(out, Outcome{d.Name, "skipped"})
			continue
		}
		key := ev.EventID + "." + d.Name
		token, sent, inFlight, err := s.Log.Begin(ctx, key)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%w: %v", ErrUnavailable, err))
			continue
		case sent:
			out = append(out, Outcome{d.Name, "duplicate"})
			continue
		case inFlight:
			errs = append(errs, fmt.Errorf("%s: %w", d.Name, ErrInFlight))
			continue
		}
		if err := s.send(ctx, d, ev); err != nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = s.Log.Abort(actx, key, token)
			cancel()
			errs = append(errs, fmt.Errorf("%s: %w: %v", d.Name, ErrDestination, err))
			continue
		}
		if err := s.Log.Finish(ctx, key, token); err != nil {
			// Sent but not recorded: a redelivery may notify twice; say so.
			errs = append(errs, fmt.Errorf("%s: sent but not recorded: %w: %v", d.Name, ErrUnavailable, err))
			continue
		}
		out = append(out, Outcome{d.Name, "sent"})
	}
	return out, errors.Join(errs...)
}

func (s *Service) send(ctx context.Context, d Destination, ev event.ResultsEvent) error {
	body := Render(d, ev)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if d.Format == FormatWebhook && d.Secret != "" {
		signer, err := webhook.NewSigner(d.Secret)
		if err != nil {
			return err
		}
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		for k, v := range signer.Headers(ev.EventID, now(), body) {
			req.Header[k] = v
		}
	}
	resp, err := noRedirects(s.HTTP).Do(req)
	if err != nil {
		// The URL may embed a token (Slack, Chat): report the host only.
		return fmt.Errorf("post to %s: %w", req.URL.Host, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 3 {
		return fmt.Errorf("post to %s: status %s: redirects are not followed (configure the final URL)", req.URL.Host, resp.Status)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post to %s: status %s", req.URL.Host, resp.Status)
	}
	return nil
}

// noRedirects returns a copy of c (or of a default client with a 10s
// timeout) that answers a redirect with the 3xx response itself. Following
// one would re-send the body, and for signed webhooks its signature, to
// wherever the destination points; a POST is also not to be replayed
// silently as the client's redirect rules might.
func noRedirects(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	} else {
		out.Timeout = 10 * time.Second
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}
