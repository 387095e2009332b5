package vrrp

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestTimers(t *testing.T) {
	tests := []struct {
		name       string
		p          Params
		learned    time.Duration // v3 Master_Adver_Interval learned from an advert, 0 for none
		effective  uint8         // effective priority, 0 for the configured one
		wantSkew   time.Duration
		wantMDI    time.Duration
		wantMaster time.Duration
	}{
		// RFC 3768 6.1: Skew_Time = (256 - Priority) / 256 seconds.
		{name: "v2 prio 100", p: Params{Version: V2, Priority: 100, Interval: time.Second},
			wantSkew: ms(609.375), wantMDI: 3*time.Second + ms(609.375), wantMaster: time.Second},
		{name: "v2 prio 254", p: Params{Version: V2, Priority: 254, Interval: time.Second},
			wantSkew: ms(7.8125), wantMDI: 3*time.Second + ms(7.8125), wantMaster: time.Second},
		{name: "v2 prio 1", p: Params{Version: V2, Priority: 1, Interval: time.Second},
			wantSkew: ms(996.09375), wantMDI: 3*time.Second + ms(996.09375), wantMaster: time.Second},
		// v2 skew does not scale with the interval.
		{name: "v2 prio 100 interval 3s", p: Params{Version: V2, Priority: 100, Interval: 3 * time.Second},
			wantSkew: ms(609.375), wantMDI: 9*time.Second + ms(609.375), wantMaster: 3 * time.Second},
		// v2 ignores an interval learned from adverts: it must equal its own.
		{name: "v2 learns nothing", p: Params{Version: V2, Priority: 100, Interval: time.Second}, learned: 2 * time.Second,
			wantSkew: ms(609.375), wantMDI: 3*time.Second + ms(609.375), wantMaster: time.Second},
		// RFC 5798 6.1: Skew_Time = ((256 - priority) * Master_Adver_Interval) / 256.
		{name: "v3 prio 100 100ms", p: Params{Version: V3, Priority: 100, Interval: 100 * time.Millisecond},
			wantSkew: ms(60.9375), wantMDI: ms(360.9375), wantMaster: 100 * time.Millisecond},
		{name: "v3 prio 200 10ms", p: Params{Version: V3, Priority: 200, Interval: 10 * time.Millisecond},
			wantSkew: ms(2.1875), wantMDI: ms(32.1875), wantMaster: 10 * time.Millisecond},
		{name: "v3 learned 1s", p: Params{Version: V3, Priority: 100, Interval: 100 * time.Millisecond}, learned: time.Second,
			wantSkew: ms(609.375), wantMDI: 3*time.Second + ms(609.375), wantMaster: time.Second},
		// Trackers change the effective priority, which the skew uses.
		{name: "v3 effective 50", p: Params{Version: V3, Priority: 100, Interval: 100 * time.Millisecond}, effective: 50,
			wantSkew: ms(80.46875), wantMDI: ms(380.46875), wantMaster: 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(tt.p)
			m, _ = m.Step(t0, Startup{})
			if tt.effective != 0 {
				m, _ = m.Step(t0, SetPriority{Priority: tt.effective})
			}
			if tt.learned != 0 {
				m, _ = m.Step(t0, Advert{Priority: 255, Interval: tt.learned, Source: addrB})
			}
			if got := m.SkewTime(); tt.wantSkew != got {
				t.Errorf("SkewTime: want %v, got %v", tt.wantSkew, got)
			}
			if got := m.MasterDownInterval(); tt.wantMDI != got {
				t.Errorf("MasterDownInterval: want %v, got %v", tt.wantMDI, got)
			}
			if got := m.MasterAdverInterval(); tt.wantMaster != got {
				t.Errorf("MasterAdverInterval: want %v, got %v", tt.wantMaster, got)
			}
		})
	}
}

// step is one timed event of a scenario.
type step struct {
	at time.Duration
	ev Event
}

func TestStep(t *testing.T) {
	v3 := Params{Version: V3, Priority: 100, Interval: 100 * time.Millisecond, Addr: addrA}
	v2 := Params{Version: V2, Priority: 100, Interval: time.Second, Addr: addrA}
	owner := v3
	owner.Priority = 255
	nopreempt := v3
	nopreempt.NoPreempt = true
	delayed := v2
	delayed.PreemptDelay = 2 * time.Second
	sync := v3
	sync.Sync = true

	mdi := ms(360.9375) // v3 prio 100 at 100ms
	skew := ms(60.9375)
	higher := netip.MustParseAddr("198.18.0.9")
	lower := netip.MustParseAddr("198.18.0.0")

	tests := []struct {
		name         string
		p            Params
		setup        []step
		now          time.Duration
		ev           Event
		wantState    State
		wantActs     []Action
		wantDeadline time.Duration // from t0; -1 for none
		wantMaster   netip.Addr
	}{
		{
			name: "startup becomes backup and arms Master_Down_Timer", p: v3,
			now: 0, ev: Startup{},
			wantState: Backup, wantActs: []Action{Transition{Initialize, Backup, CauseStartup}},
			wantDeadline: mdi,
		},
		{
			name: "owner goes straight to master", p: owner,
			now: 0, ev: Startup{},
			wantState: Master, wantActs: []Action{SendAdvert{255}, Transition{Initialize, Master, CauseOwner}},
			wantDeadline: 100 * time.Millisecond, wantMaster: addrA,
		},
		{
			name: "fault before startup starts in fault", p: v3,
			setup: []step{{0, SetFault{true}}},
			now:   0, ev: Startup{},
			wantState: Fault, wantActs: []Action{Transition{Initialize, Fault, CauseFault}},
			wantDeadline: -1,
		},
		{
			name: "backup waits until Master_Down_Interval", p: v3,
			setup: []step{{0, Startup{}}},
			now:   mdi - 1, ev: Tick{},
			wantState: Backup, wantDeadline: mdi,
		},
		{
			name: "backup becomes master when Master_Down_Timer fires", p: v3,
			setup: []step{{0, Startup{}}},
			now:   mdi, ev: Tick{},
			wantState: Master, wantActs: []Action{SendAdvert{100}, Transition{Backup, Master, CauseMasterDown}},
			wantDeadline: mdi + 100*time.Millisecond, wantMaster: addrA,
		},
		{
			name: "backup resets timer on higher priority", p: v3,
			setup: []step{{0, Startup{}}},
			now:   200 * time.Millisecond, ev: Advert{Priority: 150, Interval: 100 * time.Millisecond, Source: addrB},
			wantState: Backup, wantDeadline: 200*time.Millisecond + mdi, wantMaster: addrB,
		},
		{
			name: "backup accepts equal priority whatever the address", p: v3,
			setup: []step{{0, Startup{}}},
			now:   200 * time.Millisecond, ev: Advert{Priority: 100, Interval: 100 * time.Millisecond, Source: lower},
			wantState: Backup, wantDeadline: 200*time.Millisecond + mdi, wantMaster: lower,
		},
		{
			name: "preempting backup ignores lower priority", p: v3,
			setup: []step{{0, Startup{}}},
			now:   200 * time.Millisecond, ev: Advert{Priority: 50, Interval: 100 * time.Millisecond, Source: addrB},
			wantState: Backup, wantDeadline: mdi,
		},
		{
			name: "preempting backup takes over from lower priority master", p: v3,
			setup: []step{{0, Startup{}}, {100 * time.Millisecond, Advert{Priority: 50, Interval: 100 * time.Millisecond, Source: addrB}},
				{200 * time.Millisecond, Advert{Priority: 50, Interval: 100 * time.Millisecond, Source: addrB}}},
			now: mdi, ev: Tick{},
			wantState: Master, wantActs: []Action{SendAdvert{100}, Transition{Backup, Master, CauseMasterDown}},
			wantDeadline: mdi + 100*time.Millisecond, wantMaster: addrA,
		},
		{
			name: "nopreempt backup accepts lower priority", p: nopreempt,
			setup: []step{{0, Startup{}}},
			now:   200 * time.Millisecond, ev: Advert{Priority: 50, Interval: 100 * time.Millisecond, Source: addrB},
			wantState: Backup, wantDeadline: 200*time.Millisecond + mdi, wantMaster: addrB,
		},
		{
			name: "preempt_delay accepts lower priority until it runs out", p: delayed,
			setup: []step{{0, Startup{}}, {time.Second, Advert{Priority: 50, Source: addrB}}},
			now:   2 * time.Second, ev: Advert{Priority: 50, Source: addrB},
			wantState: Backup, wantDeadline: 2*time.Second + 3*time.Second + ms(609.375), wantMaster: addrB,
		},
		{
			name: "preempt_delay expired ignores lower priority", p: delayed,
			setup: []step{{0, Startup{}}, {time.Second, Advert{Priority: 50, Source: addrB}}, {2 * time.Second, Advert{Priority: 50, Source: addrB}}},
			now:   3 * time.Second, ev: Advert{Priority: 50, Source: addrB},
			wantState: Backup, wantDeadline: 2*time.Second + 3*time.Second + ms(609.375), wantMaster: addrB,
		},
		{
			name: "preempt_delay restarts after a higher master", p: delayed,
			setup: []step{{0, Startup{}}, {time.Second, Advert{Priority: 50, Source: addrB}},
				{2 * time.Second, Advert{Priority: 150, Source: addrB}}, {3500 * time.Millisecond, Advert{Priority: 50, Source: addrB}}},
			now: 4 * time.Second, ev: Advert{Priority: 50, Source: addrB},
			wantState: Backup, wantDeadline: 4*time.Second + 3*time.Second + ms(609.375), wantMaster: addrB,
		},
		{
			name: "backup takes over Skew_Time after priority 0", p: v3,
			setup: []step{{0, Startup{}}, {100 * time.Millisecond, Advert{Priority: 150, Interval: 100 * time.Millisecond, Source: addrB}}},
			now:   150 * time.Millisecond, ev: Advert{Priority: 0, Interval: 100 * time.Millisecond, Source: addrB},
			wantState: Backup, wantDeadline: 150*time.Millisecond + skew, wantMaster: addrB,
		},
		{
			name: "v3 backup learns the master's interval", p: v3,
			setup: []step{{0, Startup{}}},
			now:   0, ev: Advert{Priority: 150, Interval: time.Second, Source: addrB},
			wantState: Backup, wantDeadline: 3*time.Second + ms(609.375), wantMaster: addrB,
		},
		{
			name: "v2 backup keeps its own interval", p: v2,
			setup: []step{{0, Startup{}}},
			now:   0, ev: Advert{Priority: 150, Interval: 5 * time.Second, Source: addrB},
			wantState: Backup, wantDeadline: 3*time.Second + ms(609.375), wantMaster: addrB,
		},
		{
			name: "master advertises every interval", p: owner,
			setup: []step{{0, Startup{}}},
			now:   100 * time.Millisecond, ev: Tick{},
			wantState: Master, wantActs: []Action{SendAdvert{255}},
			wantDeadline: 200 * time.Millisecond, wantMaster: addrA,
		},
		{
			name: "master keeps its cadence on a slightly late tick", p: owner,
			setup: []step{{0, Startup{}}},
			now:   130 * time.Millisecond, ev: Tick{},
			wantState: Master, wantActs: []Action{SendAdvert{255}},
			wantDeadline: 200 * time.Millisecond, wantMaster: addrA,
		},
		{
			name: "master restarts its cadence after a very late tick", p: owner,
			setup: []step{{0, Startup{}}},
			now:   250 * time.Millisecond, ev: Tick{},
			wantState: Master, wantActs: []Action{SendAdvert{255}},
			wantDeadline: 350 * time.Millisecond, wantMaster: addrA,
		},
		{
			name: "early tick sends nothing", p: owner,
			setup: []step{{0, Startup{}}},
			now:   99 * time.Millisecond, ev: Tick{},
			wantState: Master, wantDeadline: 100 * time.Millisecond, wantMaster: addrA,
		},
		{
			name: "master steps down for higher priority and learns its interval", p: v3,
			setup: []step{{0, Startup{}}, {mdi, Tick{}}},
			now:   time.Second, ev: Advert{Priority: 150, Interval: 200 * time.Millisecond, Source: addrB},
			wantState: Backup, wantActs: []Action{Transition{Master, Backup, CauseHigherPriority}},
			wantDeadline: time.Second + 600*time.Millisecond + ms(121.875), wantMaster: addrB,
		},
		{
			name: "master steps down on equal priority from a higher address", p: v3,
			setup: []step{{0, Startup{}}, {mdi, Tick{}}},
			now:   time.Second, ev: Advert{Priority: 100, Interval: 100 * time.Millisecond, Source: higher},
			wantState: Backup, wantActs: []Action{Transition{Master, Backup, CauseTieBreak}},
			wantDeadline: time.Second + mdi, wantMaster: higher,
		},
		{
			name: "master stays on equal priority from a lower address", p: v3,
			setup: []step{{0, Startup{}}, {mdi, Tick{}}},
			now:   time.Second, ev: Advert{Priority: 100, Interval: 100 * time.Millisecond, Source: lower},
			wantState: Master, wantDeadline: mdi + 100*time.Millisecond, wantMaster: addrA,
		},
		{
			name: "master ignores its own address at equal priority", p: v3,
			setup: []step{{0, Startup{}}, {mdi, Tick{}}},
			now:   time.Second, ev: Advert{Priority: 100, Interval: 100 * time.Millisecond, Source: addrA},
			wantState: Master, wantDeadline: mdi + 100*time.Millisecond, wantMaster: addrA,
		},
		{
			name: "master ignores lower priority", p: v3,
			setup: []step{{0, Startup{}}, {mdi, Tick{}}},
			now:   time.Second, ev: Advert{Priority: 99, Interval: 100 * time.Millisecond, Source: higher},
			wantState: Master, wantDeadline: mdi + 100*time.Millisecond, wantMaster: addrA,
		},
		{
			name: "master answers priority 0 at once", p: v3,
			setup: []step{{0, Startup{}}, {mdi, Tick{}}},
			now:   400 * time.Millisecond, ev: Advert{Priority: 0, Interval: 100 * time.Millisecond, Source: higher},
			wantState: Master, wantActs: []Action{SendAdvert{100}},
			wantDeadline: 500 * time.Millisecond, wantMaster: addrA,
		},
		{
			name: "master shutdown sends priority 0", p: owner,
			setup: []step{{0, Startup{}}},
			now:   50 * time.Millisecond, ev: Shutdown{},
			wantState: Initialize, wantActs: []Action{SendAdvert{0}, Transition{Master, Initialize, CauseShutdown}},
			wantDeadline: -1,
		},
		{
			name: "backup shutdown sends nothing", p: v3,
			setup: []step{{0, Startup{}}},
			now:   50 * time.Millisecond, ev: Shutdown{},
			wantState: Initialize, wantActs: []Action{Transition{Backup, Initialize, CauseShutdown}},
			wantDeadline: -1,
		},
		{
			name: "faulting master resigns with priority 0", p: owner,
			setup: []step{{0, Startup{}}},
			now:   50 * time.Millisecond, ev: SetFault{true},
			wantState: Fault, wantActs: []Action{SendAdvert{0}, Transition{Master, Fault, CauseFault}},
			wantDeadline: -1,
		},
		{
			name: "fault ignores adverts", p: v3,
			setup: []step{{0, Startup{}}, {0, SetFault{true}}},
			now:   50 * time.Millisecond, ev: Advert{Priority: 150, Interval: 100 * time.Millisecond, Source: addrB},
			wantState: Fault, wantDeadline: -1,
		},
		{
			name: "recovered instance becomes backup", p: v3,
			setup: []step{{0, Startup{}}, {0, SetFault{true}}},
			now:   time.Second, ev: SetFault{false},
			wantState: Backup, wantActs: []Action{Transition{Fault, Backup, CauseRecovered}},
			wantDeadline: time.Second + mdi,
		},
		{
			name: "recovered owner becomes master", p: owner,
			setup: []step{{0, Startup{}}, {0, SetFault{true}}},
			now:   time.Second, ev: SetFault{false},
			wantState: Master, wantActs: []Action{SendAdvert{255}, Transition{Fault, Master, CauseOwner}},
			wantDeadline: time.Second + 100*time.Millisecond, wantMaster: addrA,
		},
		{
			name: "lower effective priority lengthens the skew", p: v3,
			setup: []step{{0, Startup{}}, {0, SetPriority{50}}},
			now:   0, ev: Advert{Priority: 150, Interval: 100 * time.Millisecond, Source: addrB},
			wantState: Backup, wantDeadline: ms(380.46875), wantMaster: addrB,
		},
		{
			name: "effective priority decides preemption", p: v3,
			setup: []step{{0, Startup{}}, {0, SetPriority{150}}},
			now:   100 * time.Millisecond, ev: Advert{Priority: 120, Interval: 100 * time.Millisecond, Source: addrB},
			wantState: Backup, wantDeadline: mdi,
		},
		{
			name: "owner keeps 255 whatever the trackers say", p: owner,
			setup: []step{{0, Startup{}}, {0, SetPriority{10}}},
			now:   100 * time.Millisecond, ev: Tick{},
			wantState: Master, wantActs: []Action{SendAdvert{255}},
			wantDeadline: 200 * time.Millisecond, wantMaster: addrA,
		},
		{
			name: "sync member waits for its group", p: sync,
			setup: []step{{0, Startup{}}},
			now:   mdi, ev: Tick{},
			wantState: Backup, wantDeadline: -1,
		},
		{
			name: "ready sync member becomes master with its group", p: sync,
			setup: []step{{0, Startup{}}, {mdi, Tick{}}},
			now:   mdi + time.Millisecond, ev: GroupMaster{},
			wantState: Master, wantActs: []Action{SendAdvert{100}, Transition{Backup, Master, CauseGroup}},
			wantDeadline: mdi + 101*time.Millisecond, wantMaster: addrA,
		},
		{
			name: "a master's advert cancels readiness", p: sync,
			setup: []step{{0, Startup{}}, {mdi, Tick{}}, {time.Second, Advert{Priority: 150, Interval: 100 * time.Millisecond, Source: addrB}}},
			now:   time.Second, ev: GroupMaster{},
			wantState: Backup, wantDeadline: time.Second + mdi, wantMaster: addrB,
		},
		{
			name: "group backup moves a master back", p: sync,
			setup: []step{{0, Startup{}}, {mdi, Tick{}}, {mdi, GroupMaster{}}},
			now:   time.Second, ev: GroupBackup{},
			wantState: Backup, wantActs: []Action{Transition{Master, Backup, CauseGroup}},
			wantDeadline: time.Second + mdi,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(tt.p)
			for _, s := range tt.setup {
				m, _ = m.Step(at(s.at), s.ev)
			}
			m, acts := m.Step(at(tt.now), tt.ev)
			if got := m.State(); tt.wantState != got {
				t.Errorf("state: want %v, got %v", tt.wantState, got)
			}
			if !reflect.DeepEqual(tt.wantActs, acts) {
				t.Errorf("actions:\nwant %v\ngot  %v", tt.wantActs, acts)
			}
			var want time.Time
			if tt.wantDeadline >= 0 {
				want = at(tt.wantDeadline)
			}
			if got := m.Deadline(); !want.Equal(got) {
				t.Errorf("deadline: want %v, got %v", tt.wantDeadline, got.Sub(t0))
			}
			if got, _ := m.Master(); tt.wantMaster != got {
				t.Errorf("master: want %v, got %v", tt.wantMaster, got)
			}
		})
	}
}

// A v3 backup learns the master's interval; once master itself it
// advertises, and reports, its own.
func TestMasterUsesItsOwnInterval(t *testing.T) {
	m := NewMachine(Params{Version: V3, Priority: 100, Interval: 100 * time.Millisecond, Addr: addrA})
	m, _ = m.Step(t0, Startup{})
	m, _ = m.Step(t0, Advert{Priority: 150, Interval: time.Second, Source: addrB})
	if want, got := time.Second, m.MasterAdverInterval(); want != got {
		t.Fatalf("learned interval: want %v, got %v", want, got)
	}
	m, _ = m.Step(at(10*time.Second), Tick{})
	if want, got := Master, m.State(); want != got {
		t.Fatalf("state: want %v, got %v", want, got)
	}
	if want, got := 100*time.Millisecond, m.MasterAdverInterval(); want != got {
		t.Fatalf("master interval: want %v, got %v", want, got)
	}
	if want, got := at(10*time.Second+100*time.Millisecond), m.Deadline(); !want.Equal(got) {
		t.Fatalf("next advert: want %v, got %v", want.Sub(t0), got.Sub(t0))
	}
}
