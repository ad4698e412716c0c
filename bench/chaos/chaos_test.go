package chaos_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/bench/chaos"
	"github.com/geminihooks/geminihooks/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestChaosSmall is the small chaos run: 216 jobs of all nine outcome kinds
// (about 300 deliveries with 30 % duplicates and shuffled order), 20 % of the
// functions' Firestore and Pub/Sub RPCs failing, and a Receiver restart
// midway. It must end with every job collected once and nothing lost.
func TestChaosSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run skipped in -short mode")
	}
	var sb strings.Builder
	rep, err := chaos.Run(context.Background(), chaos.Options{
		Project: testenv.Project(t),
		Jobs:    216,
		// Sim-time 1000× faster: Gemini's retry backoff (5 s doubling) and
		// the push retries take milliseconds, so the run fits in a minute.
		TimeScale: 1000,
		Seed:      uint64(time.Now().UnixNano()),
		Timeout:   3 * time.Minute,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	rep.Summary(&sb)
	t.Log("\n" + sb.String())
	if err != nil {
		t.Fatalf("chaos run: %v", err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("%d invariant violations (see summary)", len(rep.Problems))
	}
	// The run must actually have been chaotic.
	if rep.Restarts != 1 || rep.InjectedFaults == 0 || rep.Attempts <= rep.Messages {
		t.Fatalf("faults not exercised: restarts %d, injected %d, attempts %d for %d messages",
			rep.Restarts, rep.InjectedFaults, rep.Attempts, rep.Messages)
	}
}
