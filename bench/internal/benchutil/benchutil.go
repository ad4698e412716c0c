// Package benchutil holds what the geminihooks benchmark mains share:
// percentiles, process CPU and memory readings, the CPU of the Firestore
// emulator's JVM, Markdown tables and gonum plots. Nothing here asserts on
// timing: the mains print figures and compare them with goals as ratios.
package benchutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of d,
// or 0 for an empty slice. d is sorted in place.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(float64(len(d))*p/100+0.999999) - 1
	return d[max(0, min(i, len(d)-1))]
}

// CPU returns the process's user+system CPU time so far (getrusage
// RUSAGE_SELF): all goroutines of this process, whatever they run.
func CPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PeakRSS returns the process's peak resident set size in bytes (VmHWM from
// /proc/self/status, falling back to getrusage maxrss).
func PeakRSS() int64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						return kb << 10
					}
				}
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss << 10
}

// clockTick is USER_HZ, 100 on every Linux this runs on.
const clockTick = 100

// ProcsCPU sums user+system CPU of every process whose command line
// contains all of the given substrings (e.g. the Firestore emulator's
// "--port=NNNN"), read from /proc/<pid>/stat. It is how the benchmarks
// account for the emulator JVM, which is not part of this process.
func ProcsCPU(substrs ...string) time.Duration {
	var total time.Duration
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(d + "/cmdline")
		if err != nil || len(cmd) == 0 {
			continue
		}
		c := string(cmd)
		match := true
		for _, s := range substrs {
			if !strings.Contains(c, s) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		st, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command name; utime and stime are
		// fields 14 and 15 of the whole line.
		s := string(st)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 13 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				k, _ := strconv.ParseInt(f[12], 10, 64)
				total += time.Duration(u+k) * time.Second / clockTick
			}
		}
	}
	return total
}

// EmulatorCPU is the CPU used so far by the Firestore emulator listening on
// host ("127.0.0.1:PORT"): its launcher script and its JVM.
func EmulatorCPU(host string) time.Duration {
	_, port, ok := strings.Cut(host, ":")
	if !ok {
		return 0
	}
	return ProcsCPU("--port=" + port)
}

// Table is a Markdown table.
type Table struct {
	Header []string
	Rows   [][]string
}

// Add appends a row, formatting each cell with fmt.Sprint.
func (t *Table) Add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = fmt.Sprint(c)
	}
	t.Rows = append(t.Rows, row)
}

// Write renders the table.
func (t *Table) Write(w io.Writer) {
	fmt.Fprintln(w, "| "+strings.Join(t.Header, " | ")+" |")
	sep := make([]string, len(t.Header))
	for i := range sep {
		sep[i] = "---"
	}
	fmt.Fprintln(w, "| "+strings.Join(sep, " | ")+" |")
	for _, r := range t.Rows {
		fmt.Fprintln(w, "| "+strings.Join(r, " | ")+" |")
	}
	fmt.Fprintln(w)
}

// Verdict formats a goal check: "met" or "NOT met".
func Verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**NOT met**"
}

// Ms formats a duration in milliseconds with adaptive precision.
func Ms(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 1:
		return strconv.FormatFloat(ms, 'f', 3, 64)
	case ms < 100:
		return strconv.FormatFloat(ms, 'f', 2, 64)
	}
	return strconv.FormatFloat(ms, 'f', 0, 64)
}

// Secs formats a duration in seconds.
func Secs(d time.Duration) string {
	s := d.Seconds()
	switch {
	case s < 1:
		return strconv.FormatFloat(s, 'f', 3, 64)
	case s < 100:
		return strconv.FormatFloat(s, 'f', 1, 64)
	}
	return strconv.FormatFloat(s, 'f', 0, 64)
}

// MiB formats bytes as MiB.
func MiB(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) }

// Stdout is where Section echoes report fragments. Mains that host
// functions (which log JSON to os.Stdout) keep the real stdout here and
// point os.Stdout elsewhere with [QuietStdout].
var Stdout io.Writer = os.Stdout

// QuietStdout sends everything later written to os.Stdout (the functions'
// JSON logs) to path, keeping the real stdout in [Stdout].
func QuietStdout(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	Stdout = os.Stdout
	os.Stdout = f
	return nil
}

// Section writes a report fragment to dir/name (creating dir) and also to
// stdout, so a run shows its figures and bench.sh can assemble the report.
func Section(dir, name string, render func(w io.Writer)) error {
	var b strings.Builder
	render(&b)
	fmt.Fprint(Stdout, b.String())
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}
