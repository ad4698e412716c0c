package gemsim

import (
	"sort"
	"sync"
	"time"
)

// Clock is the simulator's notion of time ("sim-time"). Job durations, retry
// backoff, the delivery retry window and the 24h rotation grace period are all
// measured on it, so tests can compress a day into milliseconds
// ([NewScaledClock]) or step through it explicitly ([FakeClock]).
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once d of sim-time has elapsed.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer created by a [Clock].
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did so.
	Stop() bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer wraps time.NewTimer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// ScaledClock runs sim-time Scale times faster than the wall clock, starting
// at the wall time of its creation: with Scale 3600 one sim-hour passes per
// wall second, so a 24h retry window or rotation grace period ends after 24
// wall seconds.
type ScaledClock struct {
	scale  float64
	origin time.Time
}

// NewScaledClock returns a clock running scale times faster than the wall
// clock. A scale <= 0 is treated as 1.
func NewScaledClock(scale float64) *ScaledClock {
	if scale <= 0 {
		scale = 1
	}
	return &ScaledClock{scale: scale, origin: time.Now()}
}

// Now returns the current sim-time.
func (c *ScaledClock) Now() time.Time {
	elapsed := time.Since(c.origin)
	return c.origin.Add(time.Duration(float64(elapsed) * c.scale))
}

// NewTimer fires after d/scale of wall time.
func (c *ScaledClock) NewTimer(d time.Duration) Timer {
	return realTimer{time.NewTimer(time.Duration(float64(d) / c.scale))}
}

// FakeClock only moves when Advance or Set is called. Timers whose deadline
// is reached fire synchronously inside Advance (their channels are buffered),
// so a test can advance the clock and then wait for the resulting effect
// (a webhook delivery, a job state) without sleeping.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFakeClock returns a FakeClock set to start (the zero time means
// 2026-01-01T00:00:00Z).
func NewFakeClock(start time.Time) *FakeClock {
	if start.IsZero() {
		start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return &FakeClock{now: start}
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer registers a timer that fires when the clock reaches now+d. A
// non-positive d fires immediately.
func (c *FakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1), at: c.now.Add(d)}
	if d <= 0 {
		t.fired = true
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock forward by d, firing every timer that comes due
// in deadline order.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.setLocked(c.now.Add(d))
	c.mu.Unlock()
}

// Set moves the clock to t (never backwards) and fires due timers.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.setLocked(t)
	}
	c.mu.Unlock()
}

// Waiters reports how many timers are pending; tests use it to know that a
// goroutine has armed its timer before advancing the clock.
func (c *FakeClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func (c *FakeClock) setLocked(t time.Time) {
	c.now = t
	sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
	keep := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(t) {
			tm.fired = true
			tm.ch <- tm.at
			continue
		}
		keep = append(keep, tm)
	}
	for i := len(keep); i < len(c.timers); i++ {
		c.timers[i] = nil
	}
	c.timers = keep
}

type fakeTimer struct {
	c     *FakeClock
	ch    chan time.Time
	at    time.Time
	fired bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.fired {
		return false
	}
	for i, tm := range t.c.timers {
		if tm == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return true
		}
	}
	return false
}
