// Command chaos runs the chaos run (bench/chaos) in rounds until the wanted
// number of webhook delivery attempts is reached, and writes the report to
// OUT/chaos.md. Each round is a complete, separately verified run: its own
// project, jobs of all kinds, duplicates, shuffling, injected failures and a
// Receiver restart. Rounds keep the Firestore emulator's working set small
// (one 6,000-job round overloads the emulator JVM on a 2-core machine).
// Exit status 1 when an invariant is violated.
//
//	go run ./bench/cmd/chaos [-deliveries 10000] [-jobs 2500] [-out results]
//
// It starts a Firestore emulator unless FIRESTORE_EMULATOR_HOST is set.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/geminihooks/geminihooks/bench/chaos"
	"github.com/geminihooks/geminihooks/bench/internal/benchutil"
	"github.com/geminihooks/geminihooks/internal/emulator"
)

func main() { os.Exit(run()) }

// run returns the exit status, so deferred cleanup (the emulator) runs.
func run() int {
	var o chaos.Options
	out := flag.String("out", "results", "directory for chaos.md")
	deliveries := flag.Int64("deliveries", 10000, "run rounds until this many delivery attempts were made")
	maxRounds := flag.Int("max-rounds", 8, "bound on the number of rounds")
	flag.IntVar(&o.Jobs, "jobs", 2500, "jobs per round (each job's webhook takes 1.9–3.3 delivery attempts under the default faults)")
	flag.Float64Var(&o.DuplicateRate, "dup", 0.3, "duplicate delivery rate")
	flag.DurationVar(&o.Shuffle, "shuffle", 20*time.Second, "random delivery delay (sim-time)")
	flag.Float64Var(&o.FailureRate, "fail", 0.2, "share of Firestore/Pub/Sub RPCs failed with Unavailable")
	flag.Float64Var(&o.TimeScale, "timescale", 10, "sim-time speed-up (Gemini's 5 s initial retry backoff becomes 0.5 s); higher values compress retries relative to the emulator's unscaled processing time and can start retry storms")
	flag.DurationVar(&o.Timeout, "timeout", 6*time.Minute, "bound on each round")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "seed of the first round")
	flag.Parse()
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

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
	type round struct {
		rep chaos.Report
		err error
	}
	var (
		rounds   []round
		attempts int64
		problems int
		failed   bool
	)
	for i := 0; i < *maxRounds && attempts < *deliveries; i++ {
		o.Seed = *seed + uint64(i)
		o.Project = fmt.Sprintf("chaos-%d-%d", time.Now().Unix(), i)
		rep, err := chaos.Run(ctx, o)
		if err != nil {
			log.Printf("chaos round %d: %v", i+1, err)
			failed = true
		}
		log.Printf("chaos round %d: %d jobs, %d attempts, %d violations, %s", i+1, rep.Jobs, rep.Attempts, len(rep.Problems), rep.Duration.Round(time.Second))
		rounds = append(rounds, round{rep, err})
		attempts += rep.Attempts
		problems += len(rep.Problems)
		if err != nil || len(rep.Problems) > 0 {
			break
		}
	}
	_ = benchutil.Section(*out, "chaos.md", func(w io.Writer) {
		fmt.Fprintf(w, "## 3. Chaos run (%d round(s) of %d jobs: %.0f %% duplicates, shuffle %s sim-time, %.0f %% injected Firestore/Pub/Sub failures, a Receiver restart per round)\n\n",
			len(rounds), o.Jobs, 100*o.DuplicateRate, o.Shuffle, 100*o.FailureRate)
		fmt.Fprintln(w, "Each round: the simulator runs jobs of all nine outcome kinds and delivers their webhooks (static HMAC and dynamic JWT); the Receiver")
		fmt.Fprintln(w, "and Collector handlers use Firestore and Pub/Sub clients behind a gRPC interceptor that fails the given share of RPCs with")
		fmt.Fprintln(w, "Unavailable (half before the call, half after it succeeded); the Receiver's server and instance are replaced after half the")
		fmt.Fprintln(w, "webhooks were acknowledged. The checks read every delivery and job document and both topics (see bench/chaos).")
		fmt.Fprintln(w)
		for i, r := range rounds {
			fmt.Fprintf(w, "Round %d:\n\n", i+1)
			r.rep.Summary(w)
			if r.err != nil {
				fmt.Fprintf(w, "Round error: %v\n\n", r.err)
			}
		}
		g := benchutil.Table{Header: []string{"goal", "measured", "verdict"}}
		ok := !failed && problems == 0
		g.Add("every job in its expected state, collected, one delivery, one results event id; zero lost; zero duplicated effects",
			fmt.Sprintf("%d violations in %d rounds", problems, len(rounds)), benchutil.Verdict(ok))
		g.Add(fmt.Sprintf("≥ %d deliveries", *deliveries), attempts, benchutil.Verdict(attempts >= *deliveries))
		g.Write(w)
	})
	if failed || problems > 0 {
		return 1
	}
	return 0
}
