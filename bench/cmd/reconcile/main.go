// Command reconcile is the completeness run: jobs whose webhooks are lost
// for good, a webhook Gemini disables midway, and failed videos and
// cancelled batches that send no event at all, with the Reconciler
// sweeping on a schedule. It checks that no job is lost and that each job
// state has one results event, and measures the recovery delay of the jobs
// the sweep found and the Gemini calls per job (reconciliation reads and
// all calls, for jobs whose webhook arrived and for lost ones), next to
// what polling every 30 s would cost for the same job durations.
//
// The pipeline runs in process: the simulator (sim-time TIMESCALE× faster
// than wall time) delivers webhooks to the Receiver's domain (shared/ingest)
// on the Firestore emulator; published events are handed to the Collector
// (shared/collect, real genai SDK), redelivered on error up to 5 times; the
// Reconciler (shared/reconcile) sweeps every SWEEP of sim-time. Ledger,
// Collector and Reconciler run on the simulator's clock.
//
//	go run ./bench/cmd/reconcile [-jobs 300] [-lose 0.1] [-timescale 120] [-out results]
//
// It starts a Firestore emulator unless FIRESTORE_EMULATOR_HOST is set.
// Exit status 1 when a job is lost or a job state has other than one
// results event.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/geminihooks/geminihooks/bench/internal/benchutil"
	"github.com/geminihooks/geminihooks/internal/emulator"
	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/collect"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
	"github.com/geminihooks/geminihooks/shared/gemsim"
	"github.com/geminihooks/geminihooks/shared/ingest"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/reconcile"
	"github.com/geminihooks/geminihooks/shared/submit"
)

func main() { os.Exit(run()) }

// counter counts Gemini calls per job name.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(name string) { c.mu.Lock(); c.n[name]++; c.mu.Unlock() }
func (c *counter) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

type countingReconcile struct {
	reconcile.Gemini
	c *counter
}

func (g countingReconcile) ReadJob(ctx context.Context, k event.Kind, name string) (*gemini.Job, error) {
	g.c.add(name)
	return g.Gemini.ReadJob(ctx, k, name)
}

type countingCollect struct {
	*gemini.Client
	c *counter
}

func (g countingCollect) ReadJob(ctx context.Context, k event.Kind, name string) (*gemini.Job, error) {
	g.c.add(name)
	return g.Client.ReadJob(ctx, k, name)
}

func run() int {
	out := flag.String("out", "results", "directory for reconcile.md")
	jobs := flag.Int("jobs", 300, "jobs (2/3 batches, 1/3 videos)")
	lose := flag.Float64("lose", 0.1, "share of events whose every delivery is lost")
	failVideos := flag.Float64("fail-videos", 0.3, "share of videos that fail (Gemini sends no event)")
	cancelBatches := flag.Float64("cancel-batches", 0.05, "share of batches cancelled (no event reaches a static webhook)")
	scale := flag.Float64("timescale", 120, "sim-time speed-up")
	median := flag.Duration("median", 20*time.Minute, "median job duration (lognormal, sigma 1, capped at 3h), sim-time")
	sweep := flag.Duration("sweep", 5*time.Minute, "Reconciler period, sim-time (Cloud Scheduler's */5)")
	timeout := flag.Duration("timeout", 5*time.Minute, "wall-time bound")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "seed")
	flag.Parse()
	ctx := context.Background()
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		f, err := emulator.StartFirestore(ctx, emulator.Options{})
		if err != nil {
			log.Print(err)
			return 1
		}
		defer f.Stop()
		os.Setenv("FIRESTORE_EMULATOR_HOST", f.Host)
	}
	rng := rand.New(rand.NewPCG(*seed, 1))
	var rngMu sync.Mutex
	draw := func() time.Duration {
		rngMu.Lock()
		defer rngMu.Unlock()
		d := time.Duration(float64(*median) * math.Exp(rng.NormFloat64()))
		return min(max(d, 30*time.Second), 3*time.Hour)
	}
	clock := gemsim.NewScaledClock(*scale)
	sim := gemsim.New(gemsim.Options{APIKey: "bench", Clock: clock, Seed: int64(*seed),
		Faults:    gemsim.Faults{LoseRate: *lose},
		Durations: gemsim.Durations{Func: func(gemsim.Kind, string) time.Duration { return draw() }},
		Delivery:  gemsim.DeliveryOptions{DisableAfter: 20}})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		log.Print(err)
		return 1
	}
	defer sim.Close()
	gc, _ := genai.NewClient(ctx, &genai.ClientConfig{APIKey: "bench", Backend: genai.BackendGeminiAPI, HTTPOptions: genai.HTTPOptions{BaseURL: url}})
	client, _ := gemini.New(ctx, gemini.Config{APIKey: "bench", BaseURL: url})
	project := fmt.Sprintf("reconcile-%d", time.Now().Unix())
	fs, err := firestore.NewClient(ctx, project)
	if err != nil {
		log.Print(err)
		return 1
	}
	defer fs.Close()
	store := ledger.New(fs, ledger.Options{Now: clock.Now})
	events, results := &bus.MemoryPublisher{}, &bus.MemoryPublisher{}
	quiet := slog.New(slog.DiscardHandler)
	in := &ingest.Service{Ledger: store, Publisher: events, Now: clock.Now}
	var down atomic.Bool
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if _, err := in.Handle(r.Context(), ingest.Delivery{WebhookID: r.Header.Get("webhook-id"), Scheme: "hmac", Body: body}); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer rcv.Close()
	var subscribed []webhooks.WebhookSubscribedEvent
	for _, ev := range gemsim.SubscribableEvents {
		subscribed = append(subscribed, webhooks.WebhookSubscribedEvent(ev))
	}
	hook, err := gc.Webhooks.Create(ctx, operations.CreateWebhookRequest{Body: webhooks.WebhookInput{URI: rcv.URL, SubscribedEvents: subscribed}})
	if err != nil {
		log.Print(err)
		return 1
	}
	hookID := *hook.Webhook.ID

	recCalls, collCalls := &counter{n: map[string]int{}}, &counter{n: map[string]int{}}
	coll := collect.New(collect.Options{Ledger: store, Gemini: countingCollect{client, collCalls}, Publisher: results, Logger: quiet, Now: clock.Now})
	var disabledSeen atomic.Int64
	rec := reconcile.New(reconcile.Options{Ledger: store, Gemini: countingReconcile{reconcile.GenAI{Client: client}, recCalls},
		Announcer: in, Now: clock.Now, Logger: quiet, ReEnableWebhooks: true, SkipBatchList: true})

	runCtx, stop := context.WithTimeout(ctx, *timeout)
	defer stop()
	var wg sync.WaitGroup
	// The events subscription: every event to the Collector, redelivered on
	// error (up to 5 attempts, then dead-lettered).
	var deadLetters atomic.Int64
	wg.Go(func() {
		handled := 0
		attempts := map[int]int{}
		for runCtx.Err() == nil {
			msgs := events.Messages()
			var retry []int
			for i := handled; i < len(msgs); i++ {
				retry = append(retry, i)
			}
			handled = len(msgs)
			for i := range attempts {
				retry = append(retry, i)
			}
			for _, i := range retry {
				m := msgs[i]
				attempts[i]++
				err := coll.Handle(runCtx, bus.PushMessage{Data: m.Data, Attributes: m.Attributes, MessageID: fmt.Sprint(i),
					DeliveryAttempt: attempts[i], PublishTime: clock.Now()})
				switch {
				case err == nil:
					delete(attempts, i)
				case attempts[i] >= 5:
					deadLetters.Add(1)
					delete(attempts, i)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	// Cloud Scheduler.
	var sweeps, sweepMissed atomic.Int64
	wg.Go(func() {
		t := time.NewTicker(time.Duration(float64(*sweep) / *scale))
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			}
			rep, err := rec.Sweep(runCtx, false)
			if err != nil && runCtx.Err() == nil {
				log.Printf("sweep: %v", err)
			}
			sweeps.Add(1)
			sweepMissed.Add(int64(rep.Missed))
			disabledSeen.Add(int64(rep.DisabledWebhooks))
		}
	})

	// Submit: 2/3 batches (some cancelled), 1/3 videos (some failing).
	start := clock.Now()
	type job struct {
		ref       event.JobRef
		want      event.State
		cancelled bool
	}
	var all []job
	for i := range *jobs {
		if i%3 == 2 {
			prompt := "a bench video"
			want := event.StateSucceeded
			if rng.Float64() < *failVideos {
				prompt, want = gemsim.TriggerFailVideo+" "+prompt, event.StateFailed
			}
			ref, err := submit.Video(ctx, gc, store, submit.VideoRequest{Model: "veo-3.1-generate-preview", Prompt: prompt})
			if err != nil {
				log.Print(err)
				return 1
			}
			all = append(all, job{ref: ref, want: want})
			continue
		}
		ref, err := submit.Batch(ctx, gc, store, submit.BatchRequest{Model: "gemini-2.5-flash", Prompts: []string{"a", "b"}})
		if err != nil {
			log.Print(err)
			return 1
		}
		all = append(all, job{ref: ref, want: event.StateSucceeded, cancelled: rng.Float64() < *cancelBatches})
	}
	log.Printf("submitted %d jobs in %s of sim-time", len(all), clock.Now().Sub(start).Round(time.Second))
	// Cancel some batches a few sim-minutes in.
	time.Sleep(time.Duration(float64(3*time.Minute) / *scale))
	for i, j := range all {
		if j.cancelled {
			if err := gc.Batches.Cancel(ctx, j.ref.Name, nil); err == nil {
				all[i].want = event.StateCancelled
			}
		}
	}
	// The webhook is disabled midway: the Receiver is down for 40 sim-minutes
	// from the first hour, and Gemini disables the webhook after 20 failures
	// in a row (events sent while it is disabled are never delivered).
	wg.Go(func() {
		select {
		case <-runCtx.Done():
			return
		case <-time.After(time.Duration(float64(time.Hour) / *scale)):
		}
		down.Store(true)
		log.Printf("receiver down")
		select {
		case <-runCtx.Done():
		case <-time.After(time.Duration(float64(40*time.Minute) / *scale)):
		}
		down.Store(false)
		log.Printf("receiver up; webhook %s", sim.WebhookState(hookID))
	})

	// Wait until every job is collected in its expected state.
	done := func() (int, error) {
		n := 0
		for _, j := range all {
			d, err := store.GetJob(ctx, j.ref.ID)
			if err != nil {
				return 0, err
			}
			if d.CollectionState == ledger.CollectionDone && d.State == string(j.want) {
				n++
			}
		}
		return n, nil
	}
	for runCtx.Err() == nil {
		n, err := done()
		if err == nil && n == len(all) {
			break
		}
		log.Printf("sim-time %s: %d/%d collected, %d sweeps, %d missed found", clock.Now().Sub(start).Round(time.Minute), n, len(all), sweeps.Load(), sweepMissed.Load())
		time.Sleep(2 * time.Second)
	}
	// Let late webhooks (retries after the outage) arrive and be handled.
	time.Sleep(2 * time.Second)
	stop()
	wg.Wait()

	// Verify and measure.
	resultsPer := map[string]map[string]int{}
	for _, m := range results.Messages() {
		var re event.ResultsEvent
		if json.Unmarshal(m.Data, &re) == nil {
			if resultsPer[re.JobID] == nil {
				resultsPer[re.JobID] = map[string]int{}
			}
			resultsPer[re.JobID][re.EventID]++
		}
	}
	var (
		lost, wrongResults, fromReconciler, fromWebhook int
		recovery                                        []time.Duration
		recReadsNormal, recReadsLost                    []float64
		callsNormal, callsLost, pollCalls, allCalls     []float64
	)
	for _, j := range all {
		d, err := store.GetJob(ctx, j.ref.ID)
		if err != nil || d.CollectionState != ledger.CollectionDone || d.State != string(j.want) {
			lost++
			log.Printf("lost: %s %+v %v", j.ref.ID, d, err)
			continue
		}
		if n := len(resultsPer[j.ref.ID]); n != 1 {
			wrongResults++
		}
		r, c := float64(recCalls.get(j.ref.Name)), float64(recCalls.get(j.ref.Name)+collCalls.get(j.ref.Name))
		allCalls = append(allCalls, c)
		gj, err := client.ReadJob(ctx, j.ref.Kind, j.ref.Name)
		var dur time.Duration
		if err == nil && !gj.EndTime.IsZero() {
			created := d.SubmittedAt
			dur = gj.EndTime.Sub(created)
			pollCalls = append(pollCalls, math.Ceil(dur.Seconds()/30))
		}
		if d.Source == ledger.SourceReconciler {
			fromReconciler++
			recovery = append(recovery, time.Duration(d.CollectLatencyMS)*time.Millisecond)
			recReadsLost, callsLost = append(recReadsLost, r), append(callsLost, c)
		} else {
			fromWebhook++
			recReadsNormal, callsNormal = append(recReadsNormal, r), append(callsNormal, c)
		}
	}
	st := sim.Stats().Deliveries
	sort.Slice(recovery, func(a, b int) bool { return recovery[a] < recovery[b] })
	ok := lost == 0 && wrongResults == 0
	_ = benchutil.Section(*out, "reconcile.md", func(w io.Writer) {
		fmt.Fprintf(w, "## 8. Completeness: the Reconciler (%d jobs, %.0f %% of events lost for good, webhook disabled midway, %.0f %% of videos failing and %.0f %% of batches cancelled without events)\n\n",
			len(all), 100**lose, 100**failVideos, 100**cancelBatches)
		fmt.Fprintf(w, "Sim-time %.0f× wall time; job durations lognormal, median %s, capped at 3 h; the Reconciler sweeps every %s of sim-time (first check 5 min after submission, then doubling, capped at 4 h). ",
			*scale, *median, *sweep)
		fmt.Fprintf(w, "The Receiver is down for 40 sim-minutes from the first hour; Gemini disabled the webhook after 20 failed attempts and the Reconciler re-enabled it (reenable on). Ran %s wall, %s sim-time, %d sweeps.\n\n",
			time.Duration(float64(clock.Now().Sub(start)) / *scale).Round(time.Second), clock.Now().Sub(start).Round(time.Minute), sweeps.Load())
		t := benchutil.Table{Header: []string{"what", "value"}}
		t.Add("jobs collected in their API state", fmt.Sprintf("%d / %d (lost: %d)", len(all)-lost, len(all), lost))
		t.Add("jobs whose results events were not exactly one per job state", wrongResults)
		t.Add("learned from a webhook / found by the sweep (source)", fmt.Sprintf("%d / %d", fromWebhook, fromReconciler))
		t.Add("webhook messages: sent, lost for good, given up (disabled webhook, retry window)", fmt.Sprintf("%d, %d, %d", st.Messages, st.Lost, st.GaveUp))
		t.Add("sweeps that found the webhook disabled", disabledSeen.Load())
		t.Add("dead-lettered events", deadLetters.Load())
		t.Add("recovery delay of jobs found by the sweep (job end → collected, sim-time), p50 / p90 / max",
			fmt.Sprintf("%s / %s / %s", pct(recovery, 0.5), pct(recovery, 0.9), pct(recovery, 1)))
		t.Add("reconciliation reads per job, webhook delivered (mean / max)", fmt.Sprintf("%.2f / %.0f", mean(recReadsNormal), maxf(recReadsNormal)))
		t.Add("reconciliation reads per job, webhook lost (mean / max)", fmt.Sprintf("%.2f / %.0f", mean(recReadsLost), maxf(recReadsLost)))
		t.Add("Gemini job reads per job incl. the Collector's, delivered / lost (mean)", fmt.Sprintf("%.2f / %.2f", mean(callsNormal), mean(callsLost)))
		t.Add("same jobs polled every 30 s (reads per job, mean)", fmt.Sprintf("%.1f", mean(pollCalls)))
		t.Add("polling ÷ geminihooks with the Reconciler (reads per job)", fmt.Sprintf("%.1f×", mean(pollCalls)/mean(allCalls)))
		t.Write(w)
		g := benchutil.Table{Header: []string{"goal", "measured", "verdict"}}
		g.Add("0 lost jobs", lost, benchutil.Verdict(lost == 0))
		g.Add("one results event per job state", fmt.Sprintf("%d jobs off", wrongResults), benchutil.Verdict(wrongResults == 0))
		g.Write(w)
	})
	if !ok {
		return 1
	}
	return 0
}

func pct(d []time.Duration, p float64) string {
	if len(d) == 0 {
		return "-"
	}
	return benchutil.Percentile(d, 100*p).Round(time.Second).String()
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func maxf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
