package health_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/health"
	"github.com/xdplb/xdplb/controlplane/health/healthtest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const wait = 5 * time.Second // bound on any wait for the monitor's goroutines

// recorder collects what a Monitor reports.
type recorder struct {
	results     chan health.Result
	transitions chan health.Transition
}

func newMonitor(t *testing.T, opts health.Options) (*health.Monitor, *recorder) {
	t.Helper()
	r := &recorder{
		results:     make(chan health.Result, 1000),
		transitions: make(chan health.Transition, 1000),
	}
	if opts.Observe == nil {
		opts.Observe = func(res health.Result) { r.results <- res }
	}
	if opts.OnTransition == nil {
		opts.OnTransition = func(tr health.Transition) { r.transitions <- tr }
	}
	m := health.NewMonitor(opts)
	t.Cleanup(m.Stop)
	return m, r
}

func (r *recorder) result(t *testing.T) health.Result {
	t.Helper()
	select {
	case res := <-r.results:
		return res
	case <-time.After(wait):
		t.Fatal("no check result")
	}
	return health.Result{}
}

func (r *recorder) transition(t *testing.T) health.Transition {
	t.Helper()
	select {
	case tr := <-r.transitions:
		return tr
	case <-time.After(wait):
		t.Fatal("no transition")
	}
	return health.Transition{}
}

// step waits until n targets wait on their timers, fires the earliest and
// returns the result of the check it started.
func step(t *testing.T, clk *healthtest.Clock, r *recorder, n int) health.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := clk.WaitTimers(ctx, n); err != nil {
		t.Fatalf("waiting for %d timers: %v (pending %d)", n, err, len(clk.Deadlines()))
	}
	if _, ok := clk.AdvanceToNext(); !ok {
		t.Fatal("no timer to fire")
	}
	return r.result(t)
}

func spec(id string, c health.Checker) health.Spec {
	return health.Spec{
		ID:       id,
		Target:   health.Target{Address: netip.MustParseAddr("198.18.0.21"), Port: 80, Service: "web"},
		Checker:  c,
		Interval: time.Second,
		Timeout:  500 * time.Millisecond,
		Rise:     2,
		Fall:     3,
	}
}

var errStatus = &health.Error{Reason: health.ReasonStatus, Err: errors.New("status 503")}

// scriptOf turns "+-" into scripted check results.
func scriptOf(s string) []error {
	var out []error
	for _, c := range s {
		switch c {
		case '+':
			out = append(out, nil)
		case '-':
			out = append(out, errStatus)
		}
	}
	return out
}

func TestMonitorRiseFall(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		initial    health.Initial
		results    string
		want       string // state after each check
	}{
		{"starts up, one failure takes it down", 2, 3, health.InitUp, "-", "D"},
		{"starts up, then needs fall failures", 2, 3, health.InitUp, "+--+---", "UUUUUUD"},
		{"down then rise", 2, 3, health.InitUp, "--+-++", "DDDDDU"},
		{"fully down needs rise successes", 3, 2, health.InitFullyDown, "++-+++--", "DDDDDUUD"},
		{"init down, first success", 3, 2, health.InitDown, "+", "U"},
		{"flapping below the thresholds", 3, 3, health.InitFullyUp, "--+--+--+", "UUUUUUUUU"},
		{"rise 1 fall 1", 1, 1, health.InitFullyUp, "-+-+", "DUDU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := healthtest.NewClock(t0)
			m, rec := newMonitor(t, health.Options{Clock: clk})
			s := spec("web/198.18.0.21", healthtest.NewScript(scriptOf(tt.results)...))
			s.Rise, s.Fall, s.Initial = tt.rise, tt.fall, tt.initial
			if err := m.Set(s); err != nil {
				t.Fatal(err)
			}
			initial, _ := m.Status(s.ID)
			prev := initial.State
			var got strings.Builder
			var wantTransitions []health.Transition
			for i := range len(tt.want) {
				res := step(t, clk, rec, 1)
				got.WriteByte("DU"[res.State])
				if want, got := scriptOf(tt.results)[i], res.Err; want != got {
					t.Fatalf("check %d: result error: want %v, got %v", i, want, got)
				}
				if want, got := res.State != prev, res.Changed; want != got {
					t.Errorf("check %d: Changed: want %v, got %v", i, want, got)
				}
				if res.Changed {
					wantTransitions = append(wantTransitions, health.Transition{
						ID: s.ID, Target: s.Target, From: prev, To: res.State,
						At: res.Start.Add(res.Duration), Duration: res.Duration,
						Err: res.Err, Reason: health.ReasonOf(res.Err),
					})
				}
				prev = res.State
			}
			if want, got := tt.want, got.String(); want != got {
				t.Errorf("states after %q: want %s, got %s", tt.results, want, got)
			}
			for i, want := range wantTransitions {
				if got := rec.transition(t); got != want {
					t.Errorf("transition %d:\nwant %+v\n got %+v", i, want, got)
				}
			}
			m.Stop()
			select {
			case tr := <-rec.transitions:
				t.Errorf("unexpected transition %+v", tr)
			default:
			}
			st, _ := m.Status(s.ID)
			if want, got := uint64(len(tt.want)), st.Checks; want != got {
				t.Errorf("Status.Checks: want %d, got %d", want, got)
			}
		})
	}
}

func TestMonitorTransitionFields(t *testing.T) {
	clk := healthtest.NewClock(t0)
	m, rec := newMonitor(t, health.Options{Clock: clk})
	s := spec("web/198.18.0.21", healthtest.NewScript(scriptOf("-++")...))
	if err := m.Set(s); err != nil {
		t.Fatal(err)
	}
	first := step(t, clk, rec, 1)
	down := rec.transition(t)
	if want, got := (health.Transition{
		ID: s.ID, Target: s.Target, From: health.Up, To: health.Down,
		At: first.Start, Err: errStatus, Reason: health.ReasonStatus,
	}), down; want != got {
		t.Errorf("down transition:\nwant %+v\n got %+v", want, got)
	}
	st, _ := m.Status(s.ID)
	if want, got := (health.Status{
		ID: s.ID, Target: s.Target, State: health.Down, Since: first.Start,
		Checks: 1, LastStart: first.Start, LastErr: errStatus,
	}), st; want != got {
		t.Errorf("status after the first check:\nwant %+v\n got %+v", want, got)
	}
	step(t, clk, rec, 1)
	st, _ = m.Status(s.ID)
	if want, got := 1, st.Streak; want != got {
		t.Errorf("streak after one success while down: want %d, got %d", want, got)
	}
	third := step(t, clk, rec, 1)
	up := rec.transition(t)
	if want, got := (health.Transition{
		ID: s.ID, Target: s.Target, From: health.Down, To: health.Up, At: third.Start,
	}), up; want != got {
		t.Errorf("up transition:\nwant %+v\n got %+v", want, got)
	}
}

// TestMonitorSchedule checks the timing of checks: the first within one
// interval of Set, then exactly one interval apart, each with a context
// deadline of the timeout.
func TestMonitorSchedule(t *testing.T) {
	clk := healthtest.NewClock(t0)
	m, rec := newMonitor(t, health.Options{Clock: clk})
	script := healthtest.NewScript(nil)
	s := spec("web/198.18.0.21", script)
	s.Interval, s.Timeout = 2*time.Second, 700*time.Millisecond
	if err := m.Set(s); err != nil {
		t.Fatal(err)
	}
	var starts []time.Time
	for range 5 {
		starts = append(starts, step(t, clk, rec, 1).Start)
	}
	if starts[0].Before(t0) || !starts[0].Before(t0.Add(s.Interval)) {
		t.Errorf("first check at %v, want within [%v, %v)", starts[0], t0, t0.Add(s.Interval))
	}
	for i := 1; i < len(starts); i++ {
		if want, got := s.Interval, starts[i].Sub(starts[i-1]); want != got {
			t.Errorf("check %d started %v after the previous, want %v", i, got, want)
		}
	}
	for i, ctx := range script.Contexts() {
		dl, ok := ctx.Deadline()
		if !ok {
			t.Fatalf("check %d: context has no deadline", i)
		}
		// The deadline is on the system clock, set when the check began.
		if left := time.Until(dl); left > s.Timeout {
			t.Errorf("check %d: deadline %v ahead, more than the timeout %v", i, left, s.Timeout)
		}
		if ctx.Err() == nil {
			t.Errorf("check %d: context still live after the check", i)
		}
	}
}

// TestMonitorSpread checks that targets added together start their checks
// spread over the interval, the same way for the same seed.
func TestMonitorSpread(t *testing.T) {
	const n = 200
	deadlines := func(t *testing.T, seed uint64) []time.Time {
		clk := healthtest.NewClock(t0)
		m, _ := newMonitor(t, health.Options{Clock: clk, Seed: seed})
		for i := range n {
			if err := m.Set(spec(fmt.Sprintf("web/198.18.0.%d", i), healthtest.NewScript())); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := clk.WaitTimers(ctx, n); err != nil {
			t.Fatal(err)
		}
		return clk.Deadlines()
	}
	a := deadlines(t, 1)
	buckets := make([]int, 10)
	for i, d := range a {
		off := d.Sub(t0)
		if off < 0 || off >= time.Second {
			t.Fatalf("first check %d at +%v, outside the first interval", i, off)
		}
		if i > 0 && d.Equal(a[i-1]) {
			t.Errorf("two targets check at the same instant +%v", off)
		}
		buckets[off/(100*time.Millisecond)]++
	}
	t.Logf("first checks per tenth of the interval: %v", buckets)
	for i, b := range buckets {
		// 20 expected in each tenth of the interval.
		if b < 8 || b > 32 {
			t.Errorf("tenth %d of the interval holds %d first checks, want about %d: %v", i, b, n/10, buckets)
		}
	}
	if want, got := a, deadlines(t, 1); !slices.Equal(want, got) {
		t.Error("the same seed spread the checks differently")
	}
	if b := deadlines(t, 2); slices.Equal(a, b) {
		t.Error("another seed spread the checks the same way")
	}
}

func TestMonitorUpdateKeepsState(t *testing.T) {
	clk := healthtest.NewClock(t0)
	m, rec := newMonitor(t, health.Options{Clock: clk})
	s := spec("web/198.18.0.21", healthtest.NewScript(scriptOf("-+")...))
	s.Rise = 3
	if err := m.Set(s); err != nil {
		t.Fatal(err)
	}
	step(t, clk, rec, 1) // down
	step(t, clk, rec, 1) // one success of three
	rec.transition(t)

	// New thresholds, new checker and a longer interval: the state and
	// streak stay, and the next check comes one new interval after the last.
	last, _ := m.Status(s.ID)
	s.Rise, s.Interval = 2, 5*time.Second
	s.Checker = healthtest.NewScript(nil)
	if err := m.Set(s); err != nil {
		t.Fatal(err)
	}
	st, _ := m.Status(s.ID)
	if want, got := (health.Status{ID: s.ID, Target: s.Target, State: health.Down, Since: last.Since,
		Streak: 1, Checks: 2, LastStart: last.LastStart}), st; want != got {
		t.Errorf("status after the update:\nwant %+v\n got %+v", want, got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	wantNext := last.LastStart.Add(5 * time.Second)
	if err := clk.Wait(ctx, func(d []time.Time) bool { return len(d) == 1 && d[0].Equal(wantNext) }); err != nil {
		t.Fatalf("next check not rescheduled at %v: pending %v", wantNext, clk.Deadlines())
	}
	res := step(t, clk, rec, 1)
	if want, got := health.Up, res.State; want != got {
		t.Errorf("after the second success with rise 2: want %s, got %s", want, got)
	}
	if tr := rec.transition(t); tr.To != health.Up {
		t.Errorf("transition: want to up, got %+v", tr)
	}
}

func TestMonitorShorterIntervalTakesEffectAtOnce(t *testing.T) {
	clk := healthtest.NewClock(t0)
	m, rec := newMonitor(t, health.Options{Clock: clk})
	s := spec("web/198.18.0.21", healthtest.NewScript(nil))
	s.Interval = time.Hour
	if err := m.Set(s); err != nil {
		t.Fatal(err)
	}
	first := step(t, clk, rec, 1)
	s.Interval = time.Second
	if err := m.Set(s); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	want := first.Start.Add(time.Second)
	if err := clk.Wait(ctx, func(d []time.Time) bool { return len(d) == 1 && d[0].Equal(want) }); err != nil {
		t.Fatalf("want the next check at %v, pending %v", want, clk.Deadlines())
	}
}

func TestMonitorRemove(t *testing.T) {
	clk := healthtest.NewClock(t0)
	m, rec := newMonitor(t, health.Options{Clock: clk})
	a := healthtest.NewScript(nil)
	b := healthtest.NewScript(nil)
	if err := m.Set(spec("a", a)); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(spec("b", b)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := clk.WaitTimers(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if !m.Remove("a") {
		t.Fatal("Remove(a) found nothing")
	}
	if m.Remove("a") {
		t.Error("second Remove(a) found it again")
	}
	// Remove returned: a's timer is gone already, b's remains.
	if want, got := 1, len(clk.Deadlines()); want != got {
		t.Fatalf("pending timers after Remove: want %d, got %d", want, got)
	}
	if _, ok := m.Status("a"); ok {
		t.Error("Status still knows a")
	}
	for range 3 {
		if res := step(t, clk, rec, 1); res.ID != "b" {
			t.Errorf("check of %q after it was removed", res.ID)
		}
	}
	if want, got := 0, a.Calls(); want != got {
		t.Errorf("checks of the removed target: want %d, got %d", want, got)
	}
}

func TestMonitorApply(t *testing.T) {
	clk := healthtest.NewClock(t0)
	m, rec := newMonitor(t, health.Options{Clock: clk})
	down := spec("keep", healthtest.NewScript(errStatus))
	if err := m.Apply([]health.Spec{down, spec("drop", healthtest.NewScript())}); err != nil {
		t.Fatal(err)
	}
	// Run both once: keep goes down.
	step(t, clk, rec, 2)
	step(t, clk, rec, 2)
	if tr := rec.transition(t); tr.ID != "keep" || tr.To != health.Down {
		t.Fatalf("want keep down, got %+v", tr)
	}

	down.Fall = 5
	if err := m.Apply([]health.Spec{down, spec("new", healthtest.NewScript())}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, st := range m.Statuses() {
		ids = append(ids, st.ID+"="+st.State.String())
	}
	if want, got := "keep=down new=up", strings.Join(ids, " "); want != got {
		t.Errorf("targets after Apply: want %s, got %s", want, got)
	}

	// An invalid set changes nothing.
	bad := spec("other", healthtest.NewScript())
	bad.Rise = 0
	err := m.Apply([]health.Spec{bad})
	if err == nil || !strings.Contains(err.Error(), "rise 0") {
		t.Errorf("Apply with rise 0: want an error naming it, got %v", err)
	}
	if err := m.Apply([]health.Spec{spec("x", healthtest.NewScript()), spec("x", healthtest.NewScript())}); err == nil {
		t.Error("Apply accepted a duplicate ID")
	}
	if want, got := 2, len(m.Statuses()); want != got {
		t.Errorf("targets after refused Apply: want %d, got %d", want, got)
	}
}

func TestSpecValidation(t *testing.T) {
	m := health.NewMonitor(health.Options{Clock: healthtest.NewClock(t0)})
	defer m.Stop()
	tests := []struct {
		name   string
		change func(*health.Spec)
		want   string
	}{
		{"no ID", func(s *health.Spec) { s.ID = "" }, "ID is empty"},
		{"no checker", func(s *health.Spec) { s.Checker = nil }, "Checker is nil"},
		{"zero interval", func(s *health.Spec) { s.Interval = 0 }, "interval 0s"},
		{"negative timeout", func(s *health.Spec) { s.Timeout = -time.Second }, "timeout -1s"},
		{"zero fall", func(s *health.Spec) { s.Fall = 0 }, "fall 0"},
		{"unknown initial", func(s *health.Spec) { s.Initial = 9 }, "initial state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec("web/198.18.0.21", healthtest.NewScript())
			tt.change(&s)
			err := m.Set(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("want an error containing %q, got %v", tt.want, err)
			}
		})
	}
	if want, got := 0, len(m.Statuses()); want != got {
		t.Errorf("targets after invalid specs: want %d, got %d", want, got)
	}
}

// TestMonitorCallbacksHoldNoLock calls back into the Monitor from both
// callbacks; a callback made under the Monitor's lock would deadlock.
func TestMonitorCallbacksHoldNoLock(t *testing.T) {
	clk := healthtest.NewClock(t0)
	var m *health.Monitor
	var mu sync.Mutex
	var seen []string
	results := make(chan health.Result, 10)
	transitions := make(chan health.Transition, 10)
	m, _ = newMonitor(t, health.Options{
		Clock: clk,
		Observe: func(r health.Result) {
			st, _ := m.Status(r.ID)
			mu.Lock()
			seen = append(seen, "observe:"+st.State.String())
			mu.Unlock()
			results <- r
		},
		OnTransition: func(tr health.Transition) {
			// Reconfigure from the callback, as a daemon reacting to a
			// transition might.
			s := spec(tr.ID, healthtest.NewScript(errStatus))
			s.Fall = 4
			if err := m.Set(s); err != nil {
				t.Error(err)
			}
			m.Statuses()
			transitions <- tr
		},
	})
	if err := m.Set(spec("a", healthtest.NewScript(errStatus))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := clk.WaitTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.AdvanceToNext()
	select {
	case <-results:
	case <-ctx.Done():
		t.Fatal("Observe did not return")
	}
	select {
	case <-transitions:
	case <-ctx.Done():
		t.Fatal("OnTransition did not return")
	}
	mu.Lock()
	defer mu.Unlock()
	if want, got := []string{"observe:down"}, seen; !slices.Equal(want, got) {
		t.Errorf("Observe saw %v, want %v (the state already applied)", got, want)
	}
}

func TestMonitorStop(t *testing.T) {
	clk := healthtest.NewClock(t0)
	m := health.NewMonitor(health.Options{Clock: clk})
	for i := range 20 {
		if err := m.Set(spec(fmt.Sprint(i), healthtest.NewScript())); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := clk.WaitTimers(ctx, 20); err != nil {
		t.Fatal(err)
	}
	if len(checkGoroutines()) == 0 {
		t.Fatal("no goroutine of the monitor found while running: the leak check cannot see them")
	}
	m.Stop()
	assertNoCheckGoroutines(t)
	if want, got := 0, len(clk.Deadlines()); want != got {
		t.Errorf("timers pending after Stop: want %d, got %d", want, got)
	}
	m.Stop() // again: no effect, no panic
	if err := m.Set(spec("late", healthtest.NewScript())); !errors.Is(err, health.ErrStopped) {
		t.Errorf("Set after Stop: want ErrStopped, got %v", err)
	}
	if err := m.Apply(nil); !errors.Is(err, health.ErrStopped) {
		t.Errorf("Apply after Stop: want ErrStopped, got %v", err)
	}
	if want, got := 20, len(m.Statuses()); want != got {
		t.Errorf("Statuses after Stop: want %d, got %d", want, got)
	}
}
