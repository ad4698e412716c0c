package collect

import (
	"bufio"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// longLine is an io.Reader of one n-byte line (n-1 'x' and a newline)
// followed by a short line, generated on the fly so the benchmark's own input
// costs no heap.
type longLine struct{ n, off int64 }

func (r *longLine) Read(p []byte) (int, error) {
	const tail = "{\"key\":\"after\"}\n"
	total := r.n + int64(len(tail))
	if r.off >= total {
		return 0, io.EOF
	}
	i := 0
	for ; i < len(p) && r.off < total; i++ {
		switch {
		case r.off < r.n-1:
			p[i] = 'x'
		case r.off == r.n-1:
			p[i] = '\n'
		default:
			p[i] = tail[r.off-r.n]
		}
		r.off++
	}
	return i, nil
}

// BenchmarkLongLinePeakHeap reads a file whose first line is 256 MiB the
// way streamFile does, without a cap (as before MaxLineBytes) and with it,
// and reports the peak heap seen while reading (sampled every millisecond)
// as peak-MiB. Compare the two in one run: the ratio is what the cap saves.
func BenchmarkLongLinePeakHeap(b *testing.B) {
	const lineBytes = 256 << 20
	for _, bc := range []struct {
		name string
		max  int
	}{{"uncapped", math.MaxInt}, {"capped", MaxLineBytes}} {
		b.Run(bc.name, func(b *testing.B) {
			var peak atomic.Uint64
			for b.Loop() {
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() {
					var ms runtime.MemStats
					for {
						runtime.ReadMemStats(&ms)
						if d := ms.HeapAlloc - min(ms.HeapAlloc, base.HeapAlloc); d > peak.Load() {
							peak.Store(d)
						}
						select {
						case <-stop:
							return
						case <-time.After(time.Millisecond):
						}
					}
				})
				br := bufio.NewReaderSize(&longLine{n: lineBytes}, 256<<10)
				var buf []byte
				lines := 0
				for {
					var err error
					_, buf, _, err = readLine(br, buf, bc.max)
					lines++
					if err != nil {
						break
					}
				}
				close(stop)
				wg.Wait()
				runtime.KeepAlive(buf)
				if lines != 3 { // the long line, the short one, EOF
					b.Fatalf("read %d lines", lines)
				}
			}
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-MiB")
		})
	}
}
