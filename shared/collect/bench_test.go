package collect_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/collect"
	"github.com/geminihooks/geminihooks/shared/collect/collecttest"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
)

// BenchmarkFileBatch10kEmulator measures results ingested per second into
// the Firestore emulator for a 10,000-line output file (BulkWriter path).
func BenchmarkFileBatch10kEmulator(b *testing.B) {
	e := newBenchEnv(b)
	const n = 10000
	e.gem.SetFile("b10k", collecttest.File{Lines: n, Line: func(i int) []byte {
		return collecttest.Line(fmt.Sprintf("req-%d", i), fmt.Sprintf("answer %d", i))
	}})
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("batches/bench%d", i)
		e.gem.Set(name, collecttest.Batch(name, "BATCH_STATE_SUCCEEDED", map[string]any{"responsesFile": "files/b10k"}))
		m := e.recordB(b, name)
		start := time.Now()
		if err := e.svc.Handle(context.Background(), m); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "results/s")
}

type benchEnv struct {
	*env
}

func newBenchEnv(b *testing.B) *benchEnv {
	return &benchEnv{env: newEnvTB(b, envOpts{})}
}

func (e *benchEnv) recordB(b *testing.B, name string) bus.PushMessage {
	ref, _ := event.ParseRef(event.TypeBatchSucceeded, name)
	ev := event.JobEvent{SchemaVersion: event.SchemaVersion, WebhookID: "wh-" + ref.ID, Type: event.TypeBatchSucceeded,
		JobID: ref.ID, Kind: ref.Kind, GeminiName: ref.Name, State: event.StateSucceeded, EventTime: time.Now(), ReceivedAt: time.Now()}
	if _, err := e.store.Record(context.Background(), ev, "hmac"); err != nil {
		b.Fatal(err)
	}
	return bus.PushMessage{Data: event.Marshal(ev), MessageID: ref.ID, DeliveryAttempt: 1}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, bus.Message) (string, error) { return "1", nil }

// BenchmarkStreamMemory collects a generated output file of 1 MB and of
// 100 MB and reports the peak heap in use while doing so (sampled every
// 20 ms; ReadMemStats stops the world, so ns/op is inflated). Streaming means the two peaks are about equal.
func BenchmarkStreamMemory(b *testing.B) {
	const lineText = 900
	text := strings.Repeat("x", lineText)
	lineLen := len(collecttest.Line("req-0000000", text)) + 1
	for _, size := range []int{1 << 20, 100 << 20} {
		b.Run(fmt.Sprintf("%dMB", size>>20), func(b *testing.B) {
			lines := size / lineLen
			g := collecttest.New()
			defer g.Server.Close()
			g.SetFile("mem", collecttest.File{Lines: lines, Line: func(i int) []byte {
				return collecttest.Line(fmt.Sprintf("req-%07d", i), text)
			}})
			g.Set("batches/mem", collecttest.Batch("batches/mem", "BATCH_STATE_SUCCEEDED", map[string]any{"responsesFile": "files/mem"}))
			gc, err := gemini.New(context.Background(), gemini.Config{APIKey: collecttest.APIKey, BaseURL: g.URL()})
			if err != nil {
				b.Fatal(err)
			}
			l := collecttest.NewCountingLedger()
			svc := collect.New(collect.Options{Ledger: l, Gemini: gc, Publisher: nopPublisher{},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			ev := event.JobEvent{Type: event.TypeBatchSucceeded, JobID: "batch-mem", Kind: event.KindBatch, GeminiName: "batches/mem"}
			m := bus.PushMessage{Data: event.Marshal(ev), MessageID: "1"}

			runtime.GC()
			var peak atomic.Uint64
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				var ms runtime.MemStats
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				}
			}()
			b.SetBytes(int64(lines * lineLen))
			for b.Loop() {
				l.Reset()
				if err := svc.Handle(context.Background(), m); err != nil {
					b.Fatal(err)
				}
				if got := l.Written.Load(); got != int64(lines) {
					b.Fatalf("wrote %d results, want %d", got, lines)
				}
			}
			close(stop)
			<-done
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(lines), "lines")
		})
	}
}
