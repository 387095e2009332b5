package vrrp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookLog records notify commands instead of running them.
type hookLog struct {
	mu    sync.Mutex
	calls []string
}

func (h *hookLog) run(_ context.Context, argv []string, _ time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, strings.Join(argv, " "))
	return nil
}

func (h *hookLog) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

type running struct {
	r      *Router
	cancel context.CancelFunc
	done   chan error
	hooks  *hookLog
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	r, err := NewRouter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &hookLog{}
	r.hook = h.run
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{r: r, cancel: cancel, done: make(chan error, 1), hooks: h}
	go func() { rr.done <- r.Run(ctx) }()
	t.Cleanup(func() { rr.stop(t) })
	return rr
}

func (rr *running) stop(t *testing.T) {
	t.Helper()
	rr.cancel()
	select {
	case err := <-rr.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		rr.done <- nil // let a second stop return at once
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func (rr *running) state() State {
	in, _ := rr.r.Status().Instance("VI_1")
	return in.State
}

func (rr *running) lastChange(to State) (StateChange, bool) {
	in, _ := rr.r.Status().Instance("VI_1")
	for i := len(in.Transitions) - 1; i >= 0; i-- {
		if in.Transitions[i].To == to {
			return in.Transitions[i], true
		}
	}
	return StateChange{}, false
}

// Two Routers on an in-process link, with their real loops and workers on
// the real clock: election, announcement, notify, crash and graceful
// failover. The namespace tests repeat this over real sockets.
func TestRunFailover(t *testing.T) {
	const margin = 250 * time.Millisecond // scheduling slack on a loaded machine, as in netns_test.go
	mdiB := 300*time.Millisecond + ms(60.9375)
	skewB := ms(60.9375)

	scenario := func(t *testing.T, graceful bool) time.Duration {
		h := &hub{}
		pa, pb := h.port(), h.port()
		annA, annB := &fakeAnnouncer{}, &fakeAnnouncer{}
		ca := baseInstance(pa, annA)
		ca.Priority, ca.GARP, ca.Notify = 200, GARP{Repeat: 2, Delay: -1}, []string{"notify"}
		cb := baseInstance(pb, annB)
		cb.Source = addrB
		a := start(t, Config{Instances: []InstanceConfig{ca}})
		eventually(t, 3*time.Second, "A master", func() bool { return a.state() == Master })
		b := start(t, Config{Instances: []InstanceConfig{cb}})
		eventually(t, 3*time.Second, "B backup", func() bool { return b.state() == Backup })
		time.Sleep(200 * time.Millisecond)

		eventually(t, time.Second, "A's addresses announced", func() bool { return annA.count("garp") == 4 })
		if want, got := []string{
			"remove [198.18.1.100/32 198.18.1.101/32]",
			"add [198.18.1.100/32 198.18.1.101/32]",
			"garp 198.18.1.100", "garp 198.18.1.101", "garp 198.18.1.100", "garp 198.18.1.101",
		}, annA.snapshot(); !slices.Equal(want, got) {
			t.Fatalf("A's announcer:\nwant %q\ngot  %q", want, got)
		}
		if bm, ok := b.lastChange(Master); ok {
			t.Fatalf("B became master while A was: %+v", bm)
		}

		if !graceful {
			pa.setDead(true) // the box dies: nothing more leaves or arrives
		}
		a.stop(t)
		aStop, _ := a.lastChange(Initialize)
		eventually(t, 3*time.Second, "B master", func() bool { return b.state() == Master })
		bm, _ := b.lastChange(Master)
		in, _ := b.r.Status().Instance("VI_1")
		if n := annA.count("remove"); n != 2 {
			t.Fatalf("A removed its addresses %d times, want 2 (startup, stop)", n)
		}
		eventually(t, time.Second, "B's addresses added", func() bool { return annB.count("add") == 1 })
		if want, got := []string{
			"notify INSTANCE VI_1 BACKUP 200",
			"notify INSTANCE VI_1 MASTER 200",
			"notify INSTANCE VI_1 STOP 200",
		}, a.hooks.get(); !slices.Equal(want, got) {
			t.Fatalf("A's notifications:\nwant %q\ngot  %q", want, got)
		}
		if graceful {
			if in.Counters.Priority0Received != 1 {
				t.Fatalf("B received %d priority 0 adverts, want 1", in.Counters.Priority0Received)
			}
			return bm.At.Sub(aStop.At)
		}
		if in.Counters.Priority0Received != 0 {
			t.Fatalf("B received %d priority 0 adverts from a dead master", in.Counters.Priority0Received)
		}
		return bm.At.Sub(in.LastAdvert)
	}
	t.Run("crash", func(t *testing.T) {
		bestOf(t, "crash failover after the last advert", mdiB, mdiB+margin, func(t *testing.T) time.Duration { return scenario(t, false) })
	})
	t.Run("graceful", func(t *testing.T) {
		bestOf(t, "graceful handover after A stopped", skewB, skewB+margin, func(t *testing.T) time.Duration { return scenario(t, true) })
	})
}

// GARP bursts follow garp_master_repeat, garp_interval, garp_master_delay
// and garp_master_refresh on the injected clock.
func TestGARPSchedule(t *testing.T) {
	clk := newFakeClock()
	ann := &fakeAnnouncer{clock: clk}
	c := baseInstance(newFakeTransport(), ann)
	c.GARP = GARP{Repeat: 3, Interval: 100 * time.Millisecond, Delay: 2 * time.Second, Refresh: 10 * time.Second}
	r, err := NewRouter(Config{Instances: []InstanceConfig{c}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	inst := r.insts[0]
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		r.runAnnouncer(context.Background(), stop, inst)
	}()
	inst.ann.set(true)

	var want []time.Duration
	for _, base := range []time.Duration{0, 2 * time.Second, 10 * time.Second, 20 * time.Second} {
		for k := range 6 {
			want = append(want, base+time.Duration(k)*100*time.Millisecond)
		}
	}
	for i, w := range want {
		eventually(t, 2*time.Second, "a garp or a sleep", func() bool { return ann.count("garp") > i || clk.active() > 0 })
		if ann.count("garp") <= i {
			clk.Advance(at(w).Sub(clk.Now()))
			eventually(t, 2*time.Second, fmt.Sprintf("garp %d", i+1), func() bool { return ann.count("garp") > i })
		}
	}
	ann.mu.Lock()
	var got []time.Duration
	for k, call := range ann.calls {
		if strings.HasPrefix(call, "garp") {
			got = append(got, ann.times[k].Sub(t0))
		}
	}
	ann.mu.Unlock()
	if !slices.Equal(want, got) {
		t.Fatalf("garp times:\nwant %v\ngot  %v", want, got)
	}

	inst.ann.set(false)
	eventually(t, 2*time.Second, "addresses removed", func() bool { return ann.count("remove") == 1 })
	close(stop)
	<-done
	calls := ann.snapshot()
	if calls[0] != "add [198.18.1.100/32 198.18.1.101/32]" || calls[len(calls)-1] != "remove [198.18.1.100/32 198.18.1.101/32]" {
		t.Fatalf("announcer calls: %q", calls)
	}
}

func TestRiseFall(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		initFail   bool
		results    string // s: success, f: failure
		want       string // state after each result: U up, D down; lower case when unchanged
	}{
		{"first success decides", 3, 3, false, "s", "U"},
		{"first failure decides", 3, 3, false, "f", "D"},
		{"fall 2", 1, 2, false, "sfsffs", "UuuuDU"},
		{"rise 2 after a fall", 2, 1, false, "sfsss", "UDdUu"},
		{"init fail needs rise", 3, 1, true, "ssss", "ddUu"},
		{"failure resets rise", 2, 2, true, "sfss", "dddU"},
		{"one failure in between", 1, 3, false, "sffsfff", "UuuuuuD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rf := newRiseFall(tt.rise, tt.fall, tt.initFail)
			var got strings.Builder
			for _, c := range tt.results {
				up, changed := rf.observe(c == 's')
				s := "d"
				if up {
					s = "u"
				}
				if changed {
					s = strings.ToUpper(s)
				}
				got.WriteString(s)
			}
			if tt.want != got.String() {
				t.Fatalf("results %s: want %s, got %s", tt.results, tt.want, got.String())
			}
		})
	}
}

func TestFlag(t *testing.T) {
	f := NewFlag(true)
	ctx, cancel := context.WithCancel(context.Background())
	reports := make(chan bool, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Track(ctx, func(up bool) { reports <- up })
	}()
	if want, got := true, <-reports; want != got {
		t.Fatalf("first report: want %v, got %v", want, got)
	}
	f.Set(true) // no change, no report
	f.Set(false)
	if want, got := false, <-reports; want != got {
		t.Fatalf("second report: want %v, got %v", want, got)
	}
	f.Set(true)
	if want, got := true, <-reports; want != got {
		t.Fatalf("third report: want %v, got %v", want, got)
	}
	cancel()
	<-done
	if len(reports) != 0 {
		t.Fatalf("extra reports: %d", len(reports))
	}
}

func TestScriptTracker(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := &ScriptTracker{
		Name:     "chk",
		Command:  []string{"test", "-e", ok},
		Interval: 10 * time.Millisecond,
		Timeout:  5 * time.Second,
		Rise:     2, Fall: 2,
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reports := make(chan bool, 16)
	go s.Track(ctx, func(up bool) { reports <- up })
	next := func() bool {
		select {
		case up := <-reports:
			return up
		case <-time.After(5 * time.Second):
			t.Fatal("no report from the script tracker")
			return false
		}
	}
	if !next() {
		t.Fatal("first report: want up")
	}
	os.Remove(ok)
	if next() {
		t.Fatal("after removing the file: want down")
	}
	os.WriteFile(ok, nil, 0o644)
	if !next() {
		t.Fatal("after restoring the file: want up")
	}
}

func TestRunCommandTimeoutKillsGroup(t *testing.T) {
	begin := time.Now()
	// The shell's child keeps the output pipe open: only killing the whole
	// process group ends it quickly.
	err := RunScript(context.Background(), []string{"sh", "-c", "sleep 30 & sleep 30"}, 100*time.Millisecond)
	took := time.Since(begin)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("want a timeout error, got %v", err)
	}
	if took > 5*time.Second {
		t.Fatalf("timeout took %v", took)
	}
	if err := RunScript(context.Background(), []string{"sh", "-c", "echo broken >&2; exit 3"}, time.Second); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("want the exit error with its output, got %v", err)
	}
	if err := RunScript(context.Background(), []string{"/nonexistent/notify"}, time.Second); err == nil {
		t.Fatal("want an error for a missing command")
	}
	if err := RunScript(context.Background(), []string{"true"}, time.Second); err != nil {
		t.Fatalf("true: %v", err)
	}
}
