// Command pushpoll compares geminihooks' webhook path with the polling loops
// people write today, for N concurrent long-running Gemini batch jobs whose
// durations follow a lognormal mix (median 20 min, p95 3 h, capped at 24 h).
//
//	go run ./bench/cmd/pushpoll [-jobs 1000] [-out results]
//
// Webhook: the local stack (shared/devstack: Gemini simulator on a scaled
// clock → signed webhook → Receiver → Firestore emulator → pstest events
// topic → Collector (Batches.Get via genai) → results topic). Detection delay
// is wall time from the job's end (the webhook's event time, mapped from
// sim-time to wall time) to the results event arriving on a pull
// subscription. The stack's simulator has a fixed job duration, so each job
// is submitted just before its scheduled end: the webhook path makes no call
// while a job runs, so what it does (and costs) after the end is unchanged.
//
// Polling: the same simulator, driven by the real genai SDK
// (client.Batches.Get) every 10 s / 30 s / 60 s, and with exponential
// backoff from 10 s capped at 300 s. Each job's poll loop runs on its own
// virtual sim-time clock (the job is finished in the simulator when that
// clock passes its end), so waits cost no wall time and detection delay is
// exact sim-time: the poll that saw the end minus the end. Request
// processing time (sub-millisecond here) is not added to the poller's delay,
// which favours polling.
//
// Gemini API calls per job come from the simulator's per-route Stats
// (batches.create excluded: both strategies create each job once).
// CPU is this process's rusage delta per strategy (which includes the
// simulator serving the requests; for the webhook path also the in-process
// functions, pstest and dispatcher) plus, for the webhook path, the
// Firestore emulator JVM read from /proc.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/genai"

	"github.com/geminihooks/geminihooks/bench/internal/benchutil"
	"github.com/geminihooks/geminihooks/shared/devstack"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemsim"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

type config struct {
	jobs      int
	seed      uint64
	median    time.Duration
	p95       time.Duration
	maxDur    time.Duration
	window    time.Duration // sim-time over which job ends are spread (beyond their durations)
	wall      time.Duration // wall time the webhook run's end times are compressed into
	workers   int
	warmup    int
	pollJobs  int
	out       string
	skipPush  bool
	strategys string
}

type result struct {
	name         string
	jobs         int
	perJobCalls  []int            // polling: calls for job i
	durations    []time.Duration  // polling: duration of job i
	calls        map[string]int64 // per route, excluding batches.create
	callsTotal   int64
	deliveries   int64 // webhook delivery attempts (inbound to us, not Gemini API calls)
	delays       []time.Duration
	detected     int
	cpu          time.Duration
	emulatorCPU  time.Duration
	wall         time.Duration
	note         string
	extraResults int // duplicate results messages (same event_id) seen by the consumer
}

func main() {
	var c config
	flag.IntVar(&c.jobs, "jobs", 1000, "concurrent jobs per strategy")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the job-duration mix")
	flag.DurationVar(&c.median, "median", 20*time.Minute, "median job duration (sim-time)")
	flag.DurationVar(&c.p95, "p95", 3*time.Hour, "p95 job duration (sim-time)")
	flag.DurationVar(&c.maxDur, "max", 24*time.Hour, "cap on job duration (sim-time)")
	flag.DurationVar(&c.window, "submit-window", 24*time.Hour, "jobs are submitted uniformly over this sim-time window")
	flag.DurationVar(&c.wall, "wall", 120*time.Second, "wall time the webhook run's job ends are compressed into (sets the time scale)")
	flag.IntVar(&c.workers, "workers", 16, "concurrent poll loops in flight (wall-clock parallelism only)")
	flag.IntVar(&c.warmup, "warmup", 20, "webhook jobs run before measuring (JIT and connection warm-up)")
	flag.IntVar(&c.pollJobs, "poll-jobs", 300, "jobs per polling strategy: the first N of the same duration draw (0 = all); per-job figures do not depend on N because poll loops never interact")
	flag.StringVar(&c.out, "out", "results", "directory for pushpoll.md and the PNG plots")
	flag.BoolVar(&c.skipPush, "skip-webhook", false, "skip the webhook run (no Firestore emulator needed)")
	flag.StringVar(&c.strategys, "poll", "10s,30s,60s,backoff", "polling strategies: intervals and/or backoff")
	flag.Parse()
	log.SetFlags(log.Ltime)
	// The in-process functions log JSON to os.Stdout; keep it out of the report.
	if err := benchutil.QuietStdout(filepath.Join(os.TempDir(), "pushpoll-functions.log")); err != nil {
		log.Fatal(err)
	}

	durations := drawDurations(c)
	starts := make([]time.Duration, c.jobs)
	rng := rand.New(rand.NewPCG(c.seed, 7))
	for i := range starts {
		starts[i] = time.Duration(rng.Int64N(int64(c.window)))
	}

	ctx := context.Background()
	var results []result
	if !c.skipPush {
		r, err := runWebhook(ctx, c, starts, durations)
		if err != nil {
			log.Fatalf("webhook run: %v", err)
		}
		results = append(results, r)
	}
	for _, s := range splitComma(c.strategys) {
		pd := durations
		if c.pollJobs > 0 && c.pollJobs < len(pd) {
			pd = pd[:c.pollJobs]
		}
		r, err := runPoll(ctx, c, s, pd)
		if err != nil {
			log.Fatalf("poll %s: %v", s, err)
		}
		results = append(results, r)
	}
	if err := report(c, durations, results); err != nil {
		log.Fatal(err)
	}
}

// drawDurations draws the lognormal mix: median m, p95 = m·e^(1.645σ).
func drawDurations(c config) []time.Duration {
	rng := rand.New(rand.NewPCG(c.seed, 1))
	mu := math.Log(c.median.Seconds())
	sigma := math.Log(c.p95.Seconds()/c.median.Seconds()) / 1.6448536
	d := make([]time.Duration, c.jobs)
	for i := range d {
		s := math.Exp(mu + sigma*rng.NormFloat64())
		d[i] = min(max(time.Duration(s*float64(time.Second)), time.Minute), c.maxDur)
	}
	return d
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func newGenai(ctx context.Context, baseURL, key string) (*genai.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return genai.NewClient(ctx, &genai.ClientConfig{APIKey: key, Backend: genai.BackendGeminiAPI,
		HTTPClient: &http.Client{Transport: tr}, HTTPOptions: genai.HTTPOptions{BaseURL: baseURL}})
}

func inlineSource(i int) *genai.BatchJobSource {
	return &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{
		Contents: []*genai.Content{genai.NewContentFromText(fmt.Sprintf("bench job %d", i), genai.RoleUser)}}}}
}

// ---------------------------------------------------------------- webhook

func runWebhook(ctx context.Context, c config, starts, durations []time.Duration) (result, error) {
	ends := make([]time.Duration, c.jobs)
	var last time.Duration
	for i := range ends {
		ends[i] = starts[i] + durations[i]
		last = max(last, ends[i])
	}
	scale := float64(last) / float64(c.wall)
	log.Printf("webhook: starting the local stack (time scale %.0f: %s of sim-time in %s)", scale, last, c.wall)
	s, err := devstack.Start(ctx, devstack.Options{Faults: fmt.Sprintf("timescale=%g", scale)})
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	sub, err := s.SubscribeResults(ctx, "bench-pushpoll-results")
	if err != nil {
		return result{}, err
	}
	// sim-time → wall-time mapping of the scaled clock.
	w0, s0 := time.Now(), s.Sim.Clock().Now()
	wallOf := func(sim time.Time) time.Time { return w0.Add(time.Duration(float64(sim.Sub(s0)) / scale)) }

	// Results events by Gemini name: first arrival (wall) and event time.
	type arrival struct {
		at        time.Time
		eventTime time.Time
	}
	var (
		mu       sync.Mutex
		seen     = map[string]arrival{}
		eventIDs = map[string]bool{}
		dupes    int
		byName   = map[string]bool{}
	)
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	recvDone := make(chan error, 1)
	go func() {
		recvDone <- sub.Receive(recvCtx, func(_ context.Context, m *pubsub.Message) {
			at := time.Now()
			m.Ack()
			var re event.ResultsEvent
			if err := json.Unmarshal(m.Data, &re); err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if eventIDs[re.EventID] {
				dupes++
				return
			}
			eventIDs[re.EventID] = true
			if _, ok := seen[re.GeminiName]; !ok {
				seen[re.GeminiName] = arrival{at: at, eventTime: re.EventTime}
			}
		})
	}()
	detected := func() (n int, delays []time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		for name := range byName {
			if a, ok := seen[name]; ok {
				n++
				delays = append(delays, a.at.Sub(wallOf(a.eventTime)))
			}
		}
		return n, delays
	}

	// Warm-up (not measured): the emulator's JVM and the functions' clients
	// are cold at first, which says nothing about steady-state latency.
	if c.warmup > 0 {
		warm := map[string]bool{}
		for i := range c.warmup {
			job, err := s.Gemini.Batches.Create(ctx, devstack.BatchModel, inlineSource(-1-i), &genai.CreateBatchJobConfig{DisplayName: "warmup"})
			if err != nil {
				return result{}, fmt.Errorf("warm-up batches.create: %w", err)
			}
			warm[job.Name] = true
		}
		wd := time.Now().Add(time.Minute)
		for time.Now().Before(wd) {
			mu.Lock()
			n := 0
			for name := range warm {
				if _, ok := seen[name]; ok {
					n++
				}
			}
			mu.Unlock()
			if n == len(warm) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		log.Printf("webhook: warm-up of %d jobs done", c.warmup)
		w0, s0 = time.Now(), s.Sim.Clock().Now()
	}
	s.Sim.ResetStats()
	cpu0, emu0, t0 := benchutil.CPU(), benchutil.EmulatorCPU(s.FirestoreHost), time.Now()
	var wg sync.WaitGroup
	var submitErrs atomic.Int64
	for i := range c.jobs {
		wg.Go(func() {
			// The simulator finishes a job DefaultJobDuration (sim-time) after
			// creation: submit so that it ends at its scheduled time.
			at := w0.Add(time.Duration(float64(ends[i]-gemsim.DefaultJobDuration) / scale))
			time.Sleep(time.Until(at))
			job, err := s.Gemini.Batches.Create(ctx, devstack.BatchModel, inlineSource(i),
				&genai.CreateBatchJobConfig{DisplayName: fmt.Sprintf("pushpoll-%d", i)})
			if err != nil {
				submitErrs.Add(1)
				log.Printf("webhook: batches.create: %v", err)
				return
			}
			mu.Lock()
			byName[job.Name] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, _ := detected()
		if n >= c.jobs-int(submitErrs.Load()) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	wall := time.Since(t0)
	cpu, emu := benchutil.CPU()-cpu0, benchutil.EmulatorCPU(s.FirestoreHost)-emu0
	time.Sleep(time.Second) // late duplicates
	stopRecv()
	<-recvDone
	st := s.Sim.Stats()
	r := result{name: "webhook (geminihooks)", jobs: c.jobs, calls: map[string]int64{}, deliveries: st.Deliveries.Attempts,
		cpu: cpu, emulatorCPU: emu, wall: wall,
		note: "devstack: simulator → Receiver → Firestore emulator → pstest → Collector → results topic"}
	for k, v := range st.Requests {
		if k == "batches.create" || k == "webhooks.create" {
			continue
		}
		r.calls[k] = v
		r.callsTotal += v
	}
	r.detected, r.delays = detected()
	// Where the time goes: Receiver's first receipt and Collector's
	// collected_at, both relative to the job's end (wall).
	var recvD, collD []time.Duration
	mu.Lock()
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	mu.Unlock()
	for _, n := range names {
		ref, err := event.RefForName(event.KindBatch, n)
		if err != nil {
			continue
		}
		j, err := s.Ledger.GetJob(ctx, ref.ID)
		if err != nil || j.EventTime.IsZero() {
			continue
		}
		end := wallOf(j.EventTime)
		recvD = append(recvD, j.FirstReceivedAt.Sub(end))
		if !j.CollectedAt.IsZero() {
			collD = append(collD, j.CollectedAt.Sub(end))
		}
	}
	r.note += fmt.Sprintf("; from job end: recorded by the Receiver p50 %s s / p95 %s s, collected p50 %s s / p95 %s s",
		benchutil.Secs(benchutil.Percentile(recvD, 50)), benchutil.Secs(benchutil.Percentile(recvD, 95)),
		benchutil.Secs(benchutil.Percentile(collD, 50)), benchutil.Secs(benchutil.Percentile(collD, 95)))
	mu.Lock()
	r.extraResults = dupes
	mu.Unlock()
	log.Printf("webhook: %d/%d jobs detected in %s; %d Gemini calls; %d deliveries", r.detected, c.jobs, wall.Round(time.Millisecond), r.callsTotal, r.deliveries)
	return r, nil
}

// ---------------------------------------------------------------- polling

// pollSchedule returns the wait before poll k+1 (k = 0 after the first poll).
func pollSchedule(strategy string) (func(k int) time.Duration, string, error) {
	if strategy == "backoff" {
		return func(k int) time.Duration {
			d := 10 * time.Second << min(k, 10)
			return min(d, 300*time.Second)
		}, "poll, backoff 10 s ×2 → 300 s cap", nil
	}
	d, err := time.ParseDuration(strategy)
	if err != nil || d <= 0 {
		return nil, "", fmt.Errorf("poll strategy %q: want a duration or \"backoff\"", strategy)
	}
	return func(int) time.Duration { return d }, fmt.Sprintf("poll every %s", d), nil
}

func terminal(s genai.JobState) bool {
	switch s {
	case genai.JobStateSucceeded, genai.JobStateFailed, genai.JobStateCancelled, genai.JobStateExpired:
		return true
	}
	return false
}

func runPoll(ctx context.Context, c config, strategy string, durations []time.Duration) (result, error) {
	wait, name, err := pollSchedule(strategy)
	if err != nil {
		return result{}, err
	}
	// Jobs never end on the simulator's own clock; each poll loop ends its
	// job (FinishJob) when its virtual clock passes the job's end.
	sim := gemsim.New(gemsim.Options{Clock: gemsim.NewFakeClock(time.Time{}),
		Durations: gemsim.Durations{Batch: 10000 * time.Hour}, Seed: int64(c.seed)})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	defer sim.Close()
	client, err := newGenai(ctx, url, "bench")
	if err != nil {
		return result{}, err
	}
	n := len(durations)
	names := make([]string, n)
	if err := parallel(n, c.workers, func(i int) error {
		job, err := client.Batches.Create(ctx, "gemini-2.5-flash", inlineSource(i), &genai.CreateBatchJobConfig{DisplayName: fmt.Sprintf("poll-%d", i)})
		if err != nil {
			return fmt.Errorf("batches.create: %w", err)
		}
		names[i] = job.Name
		return nil
	}); err != nil {
		return result{}, err
	}
	sim.ResetStats()
	delays := make([]time.Duration, n)
	calls := make([]int, n)
	cpu0, t0 := benchutil.CPU(), time.Now()
	err = parallel(n, c.workers, func(i int) error {
		// The loop people write: get, stop when terminal, else sleep and
		// get again. Sleep advances this job's virtual clock.
		var now time.Duration
		finished := false
		for k := 0; ; k++ {
			if !finished && now >= durations[i] {
				if err := sim.FinishJob(names[i]); err != nil {
					return err
				}
				finished = true
			}
			job, err := client.Batches.Get(ctx, names[i], nil)
			if err != nil {
				return fmt.Errorf("batches.get %s: %w", names[i], err)
			}
			calls[i]++
			if terminal(job.State) {
				delays[i] = now - durations[i]
				return nil
			}
			now += wait(k)
		}
	})
	if err != nil {
		return result{}, err
	}
	st := sim.Stats()
	r := result{name: name, jobs: n, calls: map[string]int64{}, cpu: benchutil.CPU() - cpu0, wall: time.Since(t0),
		delays: delays, detected: n, perJobCalls: calls, durations: durations, note: "real genai SDK against the simulator; per-job virtual sim-time"}
	for k, v := range st.Requests {
		r.calls[k] = v
		r.callsTotal += v
	}
	log.Printf("%s: %d calls in %s wall", name, r.callsTotal, r.wall.Round(time.Millisecond))
	return r, nil
}

func (r result) perJob(v int64) float64 { return float64(v) / float64(max(r.jobs, 1)) }

func parallel(n, workers int, f func(i int) error) error {
	var (
		next     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// ---------------------------------------------------------------- report

func report(c config, durations []time.Duration, rs []result) error {
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	var base *result
	for i := range rs {
		if rs[i].name == "poll every 30s" {
			base = &rs[i]
		}
	}
	ds := append([]time.Duration(nil), durations...)
	var series []benchutil.Series
	var names []string
	var perJob []float64
	err := benchutil.Section(c.out, "pushpoll.md", func(w io.Writer) {
		fmt.Fprintf(w, "## 1. Push vs poll (%d concurrent batch jobs; polling strategies on the first %d of the same draw)\n\n", c.jobs, rs[len(rs)-1].jobs)
		fmt.Fprintf(w, "Job durations: lognormal, median %s, p95 %s, capped at %s (drawn: p50 %s, p95 %s, max %s); jobs submitted uniformly over %s of sim-time.\n",
			c.median, c.p95, c.maxDur, benchutil.Percentile(ds, 50).Round(time.Second), benchutil.Percentile(ds, 95).Round(time.Second),
			benchutil.Percentile(ds, 100).Round(time.Second), c.window)
		fmt.Fprintf(w, "Webhook run: job ends compressed into %s of wall time (≈ %.0f job ends/s on average), after %d warm-up jobs.\n\n",
			c.wall, float64(c.jobs)/c.wall.Seconds(), c.warmup)
		t := benchutil.Table{Header: []string{"strategy", "jobs detected", "Gemini API calls / job", "webhook deliveries / job",
			"delay p50 (s)", "delay p95 (s)", "delay p99 (s)", "own CPU (s)", "CPU / job (ms)", "wall (s)"}}
		for _, r := range rs {
			d := append([]time.Duration(nil), r.delays...)
			cpu := r.cpu + r.emulatorCPU
			cpuCell := benchutil.Secs(cpu)
			if r.emulatorCPU > 0 {
				cpuCell = fmt.Sprintf("%s (process %s + Firestore emulator %s)", benchutil.Secs(cpu), benchutil.Secs(r.cpu), benchutil.Secs(r.emulatorCPU))
			}
			t.Add(r.name, fmt.Sprintf("%d/%d", r.detected, r.jobs), fmt.Sprintf("%.2f", r.perJob(r.callsTotal)),
				fmt.Sprintf("%.2f", r.perJob(r.deliveries)),
				benchutil.Secs(benchutil.Percentile(d, 50)), benchutil.Secs(benchutil.Percentile(d, 95)), benchutil.Secs(benchutil.Percentile(d, 99)),
				cpuCell, benchutil.Ms(cpu/time.Duration(max(r.jobs, 1))), benchutil.Secs(r.wall))
			series = append(series, benchutil.Series{Name: shortName(r.name), Values: r.delays})
			names = append(names, shortName(r.name))
			perJob = append(perJob, r.perJob(r.callsTotal))
		}
		t.Write(w)
		for _, r := range rs {
			fmt.Fprintf(w, "- %s: %s; calls by route %v", r.name, r.note, r.calls)
			if r.extraResults > 0 {
				fmt.Fprintf(w, "; %d redelivered results messages (same event_id, de-duplicated)", r.extraResults)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
		if len(rs) > 0 && base != nil && rs[0].name == "webhook (geminihooks)" {
			wh := rs[0]
			callRatio := base.perJob(base.callsTotal) / math.Max(wh.perJob(wh.callsTotal), 1e-9)
			d1 := append([]time.Duration(nil), wh.delays...)
			d2 := append([]time.Duration(nil), base.delays...)
			p1, p2 := benchutil.Percentile(d1, 50), benchutil.Percentile(d2, 50)
			delayRatio := float64(p2) / math.Max(float64(p1), 1)
			cpuRatio := (float64(base.cpu) / float64(base.jobs)) / math.Max(float64(wh.cpu+wh.emulatorCPU)/float64(wh.jobs), 1)
			g := benchutil.Table{Header: []string{"goal (vs 30 s polling)", "measured", "verdict"}}
			g.Add("≥ 100× fewer Gemini API calls", fmt.Sprintf("%.0f× (%.2f vs %.1f per job)", callRatio, wh.perJob(wh.callsTotal), base.perJob(base.callsTotal)), benchutil.Verdict(callRatio >= 100))
			g.Add("≥ 100× lower median detection delay", fmt.Sprintf("%.0f× (%s s vs %s s)", delayRatio, benchutil.Secs(p1), benchutil.Secs(p2)), benchutil.Verdict(delayRatio >= 100))
			g.Add("own CPU per job (informational)", fmt.Sprintf("30 s polling / webhook = %.2f×", cpuRatio), "—")
			if len(base.durations) > 0 {
				// The Reconciler checks every job on its schedule whether or
				// not its webhook arrives: its reads for these durations.
				var checks float64
				for _, d := range base.durations {
					checks += float64(ledger.DefaultSchedule.Checks(event.KindBatch, d))
				}
				withRec := wh.perJob(wh.callsTotal) + checks/float64(len(base.durations))
				recRatio := base.perJob(base.callsTotal) / withRec
				g.Add("with the Reconciler on (its scheduled reads for the same durations added)",
					fmt.Sprintf("%.1f× (%.2f vs %.1f per job)", recRatio, withRec, base.perJob(base.callsTotal)), "—")
			}
			g.Write(w)
		}
		if base != nil && len(base.perJobCalls) > 0 {
			bt := benchutil.Table{Header: []string{"job duration", "jobs", "30 s polling calls / job", "webhook calls / job", "ratio", "webhook + Reconciler calls / job", "ratio"}}
			buckets := []struct {
				name   string
				lo, hi time.Duration
			}{{"< 10 min", 0, 10 * time.Minute}, {"10–60 min", 10 * time.Minute, time.Hour}, {"1–6 h", time.Hour, 6 * time.Hour}, {"≥ 6 h", 6 * time.Hour, 1 << 62}}
			whPer := 1.0
			if len(rs) > 0 && rs[0].name == "webhook (geminihooks)" {
				whPer = rs[0].perJob(rs[0].callsTotal)
			}
			for _, b := range buckets {
				var n, sum, checks int
				for i, d := range base.durations {
					if d >= b.lo && d < b.hi {
						n++
						sum += base.perJobCalls[i]
						checks += ledger.DefaultSchedule.Checks(event.KindBatch, d)
					}
				}
				if n == 0 {
					continue
				}
				per := float64(sum) / float64(n)
				withRec := whPer + float64(checks)/float64(n)
				bt.Add(b.name, n, fmt.Sprintf("%.1f", per), fmt.Sprintf("%.2f", whPer), fmt.Sprintf("%.0f×", per/whPer),
					fmt.Sprintf("%.2f", withRec), fmt.Sprintf("%.0f×", per/withRec))
			}
			fmt.Fprintln(w, "Calls by job duration (the ratio grows with the duration; the mix's mean decides the overall figure):")
			fmt.Fprintln(w)
			bt.Write(w)
		}
		fmt.Fprintln(w, "Webhook delay is wall time on this machine (sim delivery → Receiver → Firestore emulator → pstest → Collector → results subscriber), so it includes")
		fmt.Fprintln(w, "emulator and scheduling costs that production would replace with Cloud Functions and Pub/Sub latency (tens to hundreds of ms). Polling delay is exact")
		fmt.Fprintln(w, "sim-time (≈ interval/2 on average) without request time. CPU for polling counts the genai client and the simulator answering it (same process);")
		fmt.Fprintln(w, "for the webhook it counts the simulator, every in-process function, pstest and the push dispatcher, plus the Firestore emulator JVM.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "![detection delay](pushpoll-delay.png) ![calls per job](pushpoll-calls.png)")
		fmt.Fprintln(w)
	})
	if err != nil {
		return err
	}
	if err := benchutil.BoxPlotSeconds(filepath.Join(c.out, "pushpoll-delay.png"), "Detection delay (job end → results available)", "seconds (log)", series); err != nil {
		return err
	}
	return benchutil.BarPlot(filepath.Join(c.out, "pushpoll-calls.png"), "Gemini API calls per job", "calls per job", names, perJob, false)
}

func shortName(n string) string {
	switch n {
	case "webhook (geminihooks)":
		return "webhook"
	case "poll, backoff 10 s ×2 → 300 s cap":
		return "backoff≤300s"
	}
	if len(n) > 11 && n[:11] == "poll every " {
		return "poll " + n[11:]
	}
	return n
}
