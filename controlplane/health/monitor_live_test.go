package health_test

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/health"
	"github.com/xdplb/xdplb/internal/testenv"
)

// These tests run the Monitor on the system clock against real local
// servers and processes.

// starts records the start of every completed check, by target.
type starts struct {
	mu sync.Mutex
	by map[string][]time.Time
}

func (s *starts) observe(r health.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = make(map[string][]time.Time)
	}
	s.by[r.ID] = append(s.by[r.ID], r.Start)
}

func (s *starts) of(id string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.by[id]...)
}

func TestMonitorSlowBackendDoesNotDelayOthers(t *testing.T) {
	slowTarget, accepted := silentServer(t)
	fast := newBackend(t, false, tls.Certificate{})
	var rec starts
	m := health.NewMonitor(health.Options{Observe: rec.observe})
	t.Cleanup(m.Stop)

	const interval = 50 * time.Millisecond
	slow := health.Spec{ID: "slow", Target: slowTarget, Checker: newHTTP(t, health.HTTPConfig{}),
		Interval: interval, Timeout: 10 * time.Second, Rise: 1, Fall: 1}
	ok := health.Spec{ID: "fast", Target: fast.target(t), Checker: newHTTP(t, health.HTTPConfig{}),
		Interval: interval, Timeout: time.Second, Rise: 1, Fall: 1}
	if err := m.Apply([]health.Spec{slow, ok}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-accepted:
	case <-time.After(time.Second):
		t.Fatal("the slow backend was never checked")
	}
	time.Sleep(time.Second) // the slow check hangs all along
	m.Stop()

	got := rec.of("fast")
	if n := len(got); n < 15 {
		t.Errorf("fast backend checked %d times in a second with a %v interval, want at least 15", n, interval)
	}
	var worst time.Duration
	for i := 1; i < len(got); i++ {
		worst = max(worst, got[i].Sub(got[i-1]))
	}
	t.Logf("fast backend: %d checks, largest gap %v (interval %v)", len(got), worst, interval)
	if worst > interval+100*time.Millisecond {
		t.Errorf("largest gap between checks of the fast backend: %v, want about %v", worst, interval)
	}
	if n := len(rec.of("slow")); n != 0 {
		t.Errorf("slow backend completed %d checks, want 0 (its check hangs for 10s)", n)
	}
}

func TestMonitorLiveTransitions(t *testing.T) {
	b := newBackend(t, false, tls.Certificate{})
	transitions := make(chan health.Transition, 10)
	m := health.NewMonitor(health.Options{OnTransition: func(tr health.Transition) { transitions <- tr }})
	t.Cleanup(m.Stop)
	const interval = 20 * time.Millisecond
	s := health.Spec{ID: "web/127.0.0.1", Target: b.target(t),
		Checker:  newHTTP(t, health.HTTPConfig{Path: "/healthz", ExpectStatus: []int{200}}),
		Interval: interval, Timeout: 200 * time.Millisecond, Rise: 2, Fall: 3, Initial: health.InitFullyUp}
	if err := m.Set(s); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * interval)
	select {
	case tr := <-transitions:
		t.Fatalf("transition while healthy: %+v", tr)
	default:
	}

	flip := func(status int, want health.State) (health.Transition, time.Duration) {
		t.Helper()
		b.status.Store(int32(status))
		start := time.Now()
		select {
		case tr := <-transitions:
			if tr.To != want {
				t.Fatalf("after status %d: want a transition to %s, got %+v", status, want, tr)
			}
			return tr, time.Since(start)
		case <-time.After(2 * time.Second):
			t.Fatalf("after status %d: no transition to %s", status, want)
		}
		return health.Transition{}, 0
	}
	down, took := flip(503, health.Down)
	t.Logf("down after %v (fall 3, interval %v)", took, interval)
	if want, got := health.ReasonStatus, down.Reason; want != got {
		t.Errorf("down reason: want %q, got %q (err %v)", want, got, down.Err)
	}
	if down.Duration <= 0 || down.Duration > 200*time.Millisecond {
		t.Errorf("down check duration %v, want within (0, 200ms]", down.Duration)
	}
	// Fall 3 at 20ms: two further failed checks after the first one. The
	// ticker keeps its schedule by firing a late tick's successor early,
	// so the bound allows a quarter interval of jitter; fall 2 would
	// show about one interval.
	const jitter = interval / 4
	if took < 2*interval-jitter {
		t.Errorf("went down %v after the flip, faster than fall 3 allows", took)
	}
	up, took := flip(200, health.Up)
	t.Logf("up after %v (rise 2, interval %v)", took, interval)
	if up.Err != nil || up.Reason != "" {
		t.Errorf("up transition carries an error: %+v", up)
	}
	if took < interval-jitter {
		t.Errorf("came up %v after the flip, faster than rise 2 allows", took)
	}
}

// TestMonitorStopCancelsChecksInFlight stops a Monitor while an HTTP check
// and an exec check hang: Stop returns at once and leaves no goroutine and
// no process behind.
func TestMonitorStopCancelsChecksInFlight(t *testing.T) {
	testenv.Command(t, "sleep")
	hung, accepted := silentServer(t)
	pids := filepath.Join(t.TempDir(), "pids")
	hangs := newExec(t, health.ExecConfig{Command: []string{script(t, `
sleep 300 &
echo $! > "$1"
wait
`), pids}})
	var rec starts
	m := health.NewMonitor(health.Options{Observe: rec.observe})
	t.Cleanup(m.Stop)
	specs := []health.Spec{
		{ID: "http", Target: hung, Checker: newHTTP(t, health.HTTPConfig{}), Interval: 10 * time.Millisecond, Timeout: time.Minute, Rise: 1, Fall: 1},
		{ID: "exec", Target: galera, Checker: hangs, Interval: 10 * time.Millisecond, Timeout: time.Minute, Rise: 1, Fall: 1},
	}
	if err := m.Apply(specs); err != nil {
		t.Fatal(err)
	}
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("the HTTP check never connected")
	}
	grandchild := readPID(t, pids)
	if len(checkGoroutines()) == 0 {
		t.Fatal("no check goroutine found while checks hang: the leak check cannot see them")
	}

	start := time.Now()
	m.Stop()
	elapsed := time.Since(start)
	t.Logf("Stop with two hung checks took %v", elapsed)
	if elapsed > 500*time.Millisecond {
		t.Errorf("Stop took %v with checks in flight", elapsed)
	}
	assertNoCheckGoroutines(t)
	waitGone(t, grandchild)
	if n := len(rec.of("http")) + len(rec.of("exec")); n != 0 {
		t.Errorf("%d checks cut short by Stop were reported", n)
	}
}

func TestMonitorRemoveCancelsCheckInFlight(t *testing.T) {
	hung, accepted := silentServer(t)
	m := health.NewMonitor(health.Options{})
	t.Cleanup(m.Stop)
	s := health.Spec{ID: "http", Target: hung, Checker: newHTTP(t, health.HTTPConfig{}),
		Interval: 10 * time.Millisecond, Timeout: time.Minute, Rise: 1, Fall: 1}
	if err := m.Set(s); err != nil {
		t.Fatal(err)
	}
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("the check never connected")
	}
	start := time.Now()
	m.Remove("http")
	if elapsed := time.Since(start); elapsed > 500*time.Millisecond {
		t.Errorf("Remove took %v with a check in flight", elapsed)
	}
	// The dispatcher remains until Stop; nothing of the check does.
	assertGone(t, func() []string {
		return slices.DeleteFunc(checkGoroutines(), func(g string) bool {
			return strings.Contains(g, "(*Monitor).dispatch")
		})
	})
}

// slowToCancel is a check that hangs until canceled and then takes a while
// to clean up, recording when it returned.
func slowToCancel() (health.Checker, <-chan struct{}, <-chan time.Time) {
	started := make(chan struct{}, 1)
	returned := make(chan time.Time, 1)
	c := health.CheckerFunc(func(ctx context.Context, _ health.Target) error {
		started <- struct{}{}
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
		returned <- time.Now()
		return ctx.Err()
	})
	return c, started, returned
}

// TestMonitorStopAndRemoveWait checks that Stop and Remove return only
// after the check they cancel has returned.
func TestMonitorStopAndRemoveWait(t *testing.T) {
	for _, how := range []string{"Stop", "Remove"} {
		t.Run(how, func(t *testing.T) {
			c, started, returned := slowToCancel()
			m := health.NewMonitor(health.Options{})
			t.Cleanup(m.Stop)
			s := health.Spec{ID: "a", Target: galera, Checker: c, Interval: time.Millisecond, Timeout: time.Minute, Rise: 1, Fall: 1}
			if err := m.Set(s); err != nil {
				t.Fatal(err)
			}
			select {
			case <-started:
			case <-time.After(wait):
				t.Fatal("check never started")
			}
			if how == "Stop" {
				m.Stop()
			} else {
				m.Remove("a")
			}
			done := time.Now()
			select {
			case at := <-returned:
				if at.After(done) {
					t.Errorf("%s returned %v before the check did", how, at.Sub(done))
				}
			default:
				t.Errorf("%s returned while the check was still running", how)
			}
		})
	}
}
