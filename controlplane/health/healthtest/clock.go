package healthtest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/xdplb/xdplb/controlplane/health"
)

// Clock is a health.Clock whose time moves only when Advance is called.
// Code waiting on its timers can be synchronised with Wait instead of
// sleeping.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer
	changed chan struct{} // closed and replaced whenever timers change
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires once Advance reaches now+d.
func (c *Clock) NewTimer(d time.Duration) health.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, when: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	c.signalLocked()
	return t
}

// Advance moves the clock forward by d and fires, in deadline order, every
// timer that is due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	slices.SortStableFunc(c.timers, func(a, b *timer) int { return a.when.Compare(b.when) })
	n := 0
	for _, t := range c.timers {
		if t.when.After(c.now) {
			break
		}
		t.ch <- t.when
		n++
	}
	if n > 0 {
		c.timers = slices.Delete(c.timers, 0, n)
		c.signalLocked()
	}
}

// AdvanceToNext moves the clock to the earliest pending deadline and fires
// the timers due then. It reports false, leaving the clock alone, when no
// timer is pending.
func (c *Clock) AdvanceToNext() (time.Time, bool) {
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		return time.Time{}, false
	}
	next := c.timers[0].when
	for _, t := range c.timers[1:] {
		if t.when.Before(next) {
			next = t.when
		}
	}
	d := next.Sub(c.now)
	c.mu.Unlock()
	c.Advance(d)
	return next, true
}

// Deadlines returns the deadlines of the pending timers, earliest first.
func (c *Clock) Deadlines() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, len(c.timers))
	for i, t := range c.timers {
		out[i] = t.when
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// Wait blocks until cond, given the pending deadlines (earliest first),
// returns true, or until ctx is done. cond is evaluated again each time a
// timer is created, stopped or fired.
func (c *Clock) Wait(ctx context.Context, cond func(deadlines []time.Time) bool) error {
	for {
		c.mu.Lock()
		changed := c.changed
		c.mu.Unlock()
		if cond(c.Deadlines()) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitTimers blocks until exactly n timers are pending, or ctx is done.
func (c *Clock) WaitTimers(ctx context.Context, n int) error {
	return c.Wait(ctx, func(d []time.Time) bool { return len(d) == n })
}

func (c *Clock) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type timer struct {
	c    *Clock
	when time.Time
	ch   chan time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.timers, t)
	if i < 0 {
		return false
	}
	c.timers = slices.Delete(c.timers, i, i+1)
	c.signalLocked()
	return true
}
