package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Tracker watches something an instance depends on: a link, a script, the
// backends of a service. The Router runs Track for each tracker in its own
// goroutine, once per Run.
//
// How a tracker's state moves an instance depends on the weight the
// instance gives it (see [Track]), exactly as keepalived's track_script
// and track_interface.
type Tracker interface {
	// Track calls report with the tracked state (true: healthy) as soon as
	// it is known and then on every change, until ctx is done. The Router
	// keeps an instance in Initialize until each of its trackers reported
	// once. report never blocks for long and may be called from any
	// goroutine.
	Track(ctx context.Context, report func(up bool))
}

// Flag is a Tracker whose state the program sets, for example the daemon's
// "this service has a healthy backend" signal.
type Flag struct {
	mu      sync.Mutex
	up      bool
	changed chan struct{} // closed and replaced on every change
}

var _ Tracker = (*Flag)(nil)

// NewFlag returns a Flag in the given state.
func NewFlag(up bool) *Flag { return &Flag{up: up, changed: make(chan struct{})} }

// Set changes the state.
func (f *Flag) Set(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up == up {
		return
	}
	f.up = up
	close(f.changed)
	f.changed = make(chan struct{})
}

// Up returns the state.
func (f *Flag) Up() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up
}

// Track implements [Tracker]. Several Routers may track the same Flag.
func (f *Flag) Track(ctx context.Context, report func(up bool)) {
	first, last := true, false
	for {
		f.mu.Lock()
		up, changed := f.up, f.changed
		f.mu.Unlock()
		if first || up != last {
			report(up)
			first, last = false, up
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// ScriptTracker runs a command periodically, as keepalived's vrrp_script: the
// command succeeds when it exits 0 within the timeout. It runs without a
// shell, in its own process group, which is killed on timeout.
type ScriptTracker struct {
	Name    string   // for logs
	Command []string // argv
	// Interval between the end of one run and the start of the next
	// (default 1s).
	Interval time.Duration
	// Timeout after which a run counts as failed (default Interval).
	Timeout time.Duration
	// Rise successes in a row make a failed script healthy, Fall failures
	// in a row make a healthy one fail (defaults 1 and 1).
	Rise, Fall int
	// InitFail starts the script as failed, so it needs Rise successes;
	// otherwise the first result decides (keepalived's init_fail).
	InitFail bool
	Clock    Clock        // nil: the system clock
	Logger   *slog.Logger // nil: discard
}

var _ Tracker = (*ScriptTracker)(nil)

// Check reports whether the configuration can run.
func (s *ScriptTracker) Check() error {
	if len(s.Command) == 0 || s.Command[0] == "" {
		return fmt.Errorf("track script %q: no command", s.Name)
	}
	if s.Interval < 0 || s.Timeout < 0 || s.Rise < 0 || s.Fall < 0 {
		return fmt.Errorf("track script %q: negative interval, timeout, rise or fall", s.Name)
	}
	return nil
}

// Track implements [Tracker].
func (s *ScriptTracker) Track(ctx context.Context, report func(up bool)) {
	interval := s.Interval
	if interval <= 0 {
		interval = time.Second
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = interval
	}
	clock := s.Clock
	if clock == nil {
		clock = SystemClock()
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rf := newRiseFall(s.Rise, s.Fall, s.InitFail)
	if s.InitFail {
		report(false)
	}
	for {
		err := RunScript(ctx, s.Command, timeout)
		if ctx.Err() != nil {
			return
		}
		if up, changed := rf.observe(err == nil); changed {
			if up {
				log.Info("vrrp track script succeeded", "script", s.Name)
			} else {
				log.Info("vrrp track script failed", "script", s.Name, "err", err)
			}
			report(up)
		}
		if !sleep(clock, ctx.Done(), interval) {
			return
		}
	}
}

// riseFall is keepalived's vrrp_script result counter. result runs from 0 to
// rise+fall-1 and the script is healthy from rise upwards: a success climbs
// one step while failed and jumps to the top once healthy, a failure steps
// down while above rise and drops to 0 otherwise. So a failed script needs
// rise successes in a row, a healthy one fall failures in a row.
type riseFall struct {
	rise, fall int
	result     int
	known      bool
}

func newRiseFall(rise, fall int, initFail bool) riseFall {
	if rise < 1 {
		rise = 1
	}
	if fall < 1 {
		fall = 1
	}
	if initFail {
		return riseFall{rise: rise, fall: fall, result: 0, known: true}
	}
	// Unknown: one step below healthy, and a failure drops to 0, so the
	// first result decides either way.
	return riseFall{rise: rise, fall: fall, result: rise - 1}
}

func (r *riseFall) up() bool { return r.result >= r.rise }

// observe records one result and reports the state, and whether it changed
// (the first result always counts as a change).
func (r *riseFall) observe(ok bool) (up, changed bool) {
	was := r.up()
	if ok {
		if r.result < r.rise-1 {
			r.result++
		} else {
			r.result = r.rise + r.fall - 1
		}
	} else {
		if r.result > r.rise {
			r.result--
		} else {
			r.result = 0
		}
	}
	changed = !r.known || r.up() != was
	r.known = true
	return r.up(), changed
}
