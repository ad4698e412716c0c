package devstack

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/geminihooks/geminihooks/shared/gemsim"
)

// DefaultShuffle is the reordering window of a bare "shuffle" knob (sim-time).
const DefaultShuffle = 2 * time.Second

// DefaultJobDuration is how long a simulated job runs (wall time), long
// enough for a submission to be recorded before its webhook arrives, short
// enough for a demo.
const DefaultJobDuration = 500 * time.Millisecond

// Faults is a parsed Options.Faults.
type Faults struct {
	// Sim holds the simulator's delivery fault knobs.
	Sim gemsim.Faults
	// JobDuration is how long each simulated job runs in wall time,
	// whatever the time scale (knob jobs=D; default DefaultJobDuration).
	JobDuration time.Duration
	// IDs is the form of data.id in the simulator's events (knob ids=).
	IDs gemsim.IDForm
	// FileTTL is how long simulated files live, in sim-time (knob
	// filettl=D; default gemsim.DefaultFileTTL).
	FileTTL time.Duration
	// Redirect makes downloads answer with a redirect to another host
	// (knob redirect).
	Redirect bool
	// NoRange makes downloads ignore Range requests (knob norange), so a
	// resumed collection skips bytes instead.
	NoRange bool
}

// simDurations converts JobDuration to the simulator's sim-time.
func (f Faults) simDurations() gemsim.Durations {
	d := f.JobDuration
	if f.Sim.TimeScale > 0 {
		d = time.Duration(float64(d) * f.Sim.TimeScale)
	}
	return gemsim.Durations{Batch: d, Video: d, Interaction: d}
}

// ErrInvalidFaults wraps every Options.Faults parse error; fix the string,
// retrying cannot help.
var ErrInvalidFaults = errors.New("devstack: invalid faults")

// ParseFaults reads the comma-separated simulator fault knobs of
// Options.Faults:
//
//	dup=P          probability (0..1) that a delivered webhook is sent again
//	drop=P         probability (0..1) that an attempt is lost (and retried)
//	lose=P         probability (0..1) that an event is lost for good: every
//	               attempt of it is dropped (only the Reconciler finds the job)
//	delay=D        fixed sim-time delay before every attempt (Go duration)
//	shuffle[=D]    random extra delay in [0,D) so events arrive out of order
//	               (bare "shuffle": DefaultShuffle)
//	timescale=X    run sim-time X times faster than wall time (Gemini retry
//	               backoff, delays); the push dispatcher's retry backoff is
//	               divided by X too
//	jobs=D         wall time each simulated job runs (default 500ms)
//	ids=FORM       data.id form in events: canonical (default), bare,
//	               prefixed or mixed (see gemsim.IDForm)
//	filettl=D      sim-time a simulated file lives (default 48h)
//	redirect       downloads answer 302 to a signed URL on another host
//	norange        downloads ignore Range (always 200 with the whole file)
//
// An empty string means no faults.
func ParseFaults(s string) (Faults, error) {
	out := Faults{JobDuration: DefaultJobDuration}
	f := &out.Sim
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, hasVal := strings.Cut(item, "=")
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		prob := func() (float64, error) {
			p, err := strconv.ParseFloat(val, 64)
			if err != nil || p < 0 || p > 1 {
				return 0, fmt.Errorf("%w: %s=%q: want a probability between 0 and 1", ErrInvalidFaults, key, val)
			}
			return p, nil
		}
		dur := func() (time.Duration, error) {
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				return 0, fmt.Errorf("%w: %s=%q: want a Go duration such as 200ms", ErrInvalidFaults, key, val)
			}
			return d, nil
		}
		var err error
		switch key {
		case "dup", "duplicate", "duplicates":
			f.DuplicateRate, err = prob()
		case "drop":
			f.DropRate, err = prob()
		case "lose":
			f.LoseRate, err = prob()
		case "delay":
			f.Delay, err = dur()
		case "shuffle":
			f.Shuffle = DefaultShuffle
			if hasVal {
				f.Shuffle, err = dur()
			}
		case "jobs":
			out.JobDuration, err = dur()
		case "ids":
			out.IDs, err = gemsim.ParseIDForm(val)
			if err != nil {
				err = fmt.Errorf("%w: %w", ErrInvalidFaults, err)
			}
		case "filettl":
			out.FileTTL, err = dur()
			if err == nil && out.FileTTL == 0 {
				err = fmt.Errorf("%w: filettl=%q: want a positive duration", ErrInvalidFaults, val)
			}
		case "redirect":
			out.Redirect = true
			if hasVal {
				if out.Redirect, err = strconv.ParseBool(val); err != nil {
					err = fmt.Errorf("%w: redirect=%q: want true or false", ErrInvalidFaults, val)
				}
			}
		case "norange":
			out.NoRange = true
			if hasVal {
				if out.NoRange, err = strconv.ParseBool(val); err != nil {
					err = fmt.Errorf("%w: norange=%q: want true or false", ErrInvalidFaults, val)
				}
			}
		case "timescale":
			f.TimeScale, err = strconv.ParseFloat(val, 64)
			if err != nil || f.TimeScale <= 0 {
				err = fmt.Errorf("%w: timescale=%q: want a positive number", ErrInvalidFaults, val)
			}
		default:
			err = fmt.Errorf("%w: unknown knob %q (known: dup, drop, lose, delay, shuffle, timescale, jobs, ids, filettl, redirect, norange)", ErrInvalidFaults, key)
		}
		if err != nil {
			return Faults{}, err
		}
		if !hasVal && key != "shuffle" && key != "redirect" && key != "norange" {
			return Faults{}, fmt.Errorf("%w: %s needs a value (%s=...)", ErrInvalidFaults, key, key)
		}
	}
	return out, nil
}
