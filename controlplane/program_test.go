package controlplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/controlplane/maglev"
	"github.com/xdplb/xdplb/loader"
)

const testRing = 251 // prime, small enough to compare whole tables

func mustVIP(t *testing.T, s string) loader.VIP {
	t.Helper()
	v, err := loader.ParseVIP(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// be returns an active backend 198.18.0.N with MAC 02:00:00:00:00:N.
func be(n byte, weight uint32) Backend {
	return Backend{
		Addr:   netip.AddrFrom4([4]byte{198, 18, 0, n}),
		Weight: weight,
		MAC:    net.HardwareAddr{2, 0, 0, 0, 0, n},
		State:  loader.StateActive,
	}
}

func withState(b Backend, s loader.BackendState) Backend {
	b.State = s
	return b
}

func service(t *testing.T, sched Scheduler, bs ...Backend) Service {
	t.Helper()
	return Service{
		VIP:       mustVIP(t, "198.18.1.100:80/tcp"),
		Config:    loader.VIPConfig{Forwarding: loader.ForwardDR},
		Scheduler: sched,
		Backends:  bs,
	}
}

// applied applies s to a fresh memDataplane and discards the writes.
func applied(t *testing.T, s Service) (*memDataplane, *Programmer) {
	t.Helper()
	dp := newMem(testRing)
	p := NewProgrammer(dp, nil)
	if _, err := p.Apply(s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	dp.takeWrites()
	return dp, p
}

// idOf returns the slot id the data plane holds for addr.
func idOf(t *testing.T, dp *memDataplane, addr netip.Addr) uint32 {
	t.Helper()
	for id, b := range dp.backends {
		if b.Addr == addr {
			return id
		}
	}
	t.Fatalf("no backend slot for %v", addr)
	return 0
}

// share counts the ring slots of each backend address; "none" counts
// empty slots.
func share(t *testing.T, dp *memDataplane, vipIndex uint32) map[string]int {
	t.Helper()
	ring, ok := dp.rings[vipIndex]
	if !ok {
		t.Fatalf("VIP index %d has no ring", vipIndex)
	}
	out := map[string]int{}
	for _, id := range ring {
		if id == 0 {
			out["none"]++
			continue
		}
		b, ok := dp.backends[id]
		if !ok {
			t.Fatalf("ring names id %d, which has no backend", id)
		}
		if b.VIPIndex != vipIndex {
			t.Fatalf("ring of VIP %d names id %d of VIP %d", vipIndex, id, b.VIPIndex)
		}
		out[b.Addr.String()]++
	}
	return out
}

func TestApplyNewService(t *testing.T) {
	dp := newMem(testRing)
	p := NewProgrammer(dp, nil)
	s := service(t, SchedulerMaglev, be(21, 1), be(22, 1), be(23, 2))

	res, err := p.Apply(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"AddVIP 198.18.1.100:80/tcp",
		"SetBackend 1 198.18.0.21 active w=1",
		"SetBackend 2 198.18.0.22 active w=1",
		"SetBackend 3 198.18.0.23 active w=2",
		"SetRing 0",
	}
	if got := dp.takeWrites(); !slices.Equal(want, got) {
		t.Errorf("writes:\nwant %q\ngot  %q", want, got)
	}
	if !res.VIPAdded || !res.RingWritten || len(res.Added) != 3 {
		t.Errorf("result = %+v, want VIP added, 3 backends added, ring written", res)
	}

	// The ring is the Maglev table of the three addresses, in slot ids.
	table, err := maglev.Build([]maglev.Backend{
		{Name: "198.18.0.21", Weight: 1}, {Name: "198.18.0.22", Weight: 1}, {Name: "198.18.0.23", Weight: 2},
	}, testRing)
	if err != nil {
		t.Fatal(err)
	}
	wantRing := make([]uint32, testRing)
	for i, owner := range table {
		wantRing[i] = uint32(owner) + 1
	}
	if got := dp.rings[0]; !slices.Equal(wantRing, got) {
		t.Errorf("ring differs from the Maglev table of the backends")
	}
	sh := share(t, dp, 0)
	if sh["198.18.0.23"] < sh["198.18.0.21"]*3/2 {
		t.Errorf("weight 2 backend has %d slots, weight 1 has %d: want about twice", sh["198.18.0.23"], sh["198.18.0.21"])
	}
}

func TestApplySameServiceTwiceWritesNothing(t *testing.T) {
	for _, sched := range []Scheduler{SchedulerMaglev, SchedulerSourceHash, SchedulerFailover} {
		t.Run(sched.String(), func(t *testing.T) {
			s := service(t, sched, be(21, 1), be(22, 3),
				withState(be(23, 1), loader.StateDraining), withState(be(24, 1), loader.StateDown), be(25, 0))
			s.Config.PersistPrefix = 24
			if sched != SchedulerSourceHash {
				s.Config.PersistPrefix = 0
			}
			dp, p := applied(t, s)
			res, err := p.Apply(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := dp.takeWrites(); len(got) != 0 {
				t.Errorf("second Apply wrote %q, want nothing", got)
			}
			if res.Changed() {
				t.Errorf("second Apply result %+v reports a change", res)
			}
		})
	}
}

func TestApplyChanges(t *testing.T) {
	base := []Backend{be(21, 1), be(22, 1), be(23, 1)}
	tests := []struct {
		name       string
		sched      Scheduler
		change     func(s *Service)
		wantWrites []string
		// wantShare lists the backends that must own ring slots.
		wantShare []string
		wantState map[string]loader.BackendState // backends still in the map
	}{
		{
			name:       "one weight changes: that backend and the ring",
			change:     func(s *Service) { s.Backends[1].Weight = 5 },
			wantWrites: []string{"SetBackend 2 198.18.0.22 active w=5", "SetRing 0"},
			wantShare:  []string{"198.18.0.21", "198.18.0.22", "198.18.0.23"},
		},
		{
			name:       "MAC changes: only that backend",
			change:     func(s *Service) { s.Backends[0].MAC = net.HardwareAddr{2, 0, 0, 0, 0, 0x99} },
			wantWrites: []string{"SetBackend 1 198.18.0.21 active w=1"},
			wantShare:  []string{"198.18.0.21", "198.18.0.22", "198.18.0.23"},
		},
		{
			name:       "backend added: new id, then the ring",
			change:     func(s *Service) { s.Backends = append(s.Backends, be(24, 1)) },
			wantWrites: []string{"SetBackend 4 198.18.0.24 active w=1", "SetRing 0"},
			wantShare:  []string{"198.18.0.21", "198.18.0.22", "198.18.0.23", "198.18.0.24"},
		},
		{
			name:       "backend removed: ring first, then the slot is freed",
			change:     func(s *Service) { s.Backends = s.Backends[:2] },
			wantWrites: []string{"SetRing 0", "DeleteBackend 3"},
			wantShare:  []string{"198.18.0.21", "198.18.0.22"},
		},
		{
			name:       "draining: out of the ring first, then marked",
			change:     func(s *Service) { s.Backends[2].State = loader.StateDraining },
			wantWrites: []string{"SetRing 0", "SetBackend 3 198.18.0.23 draining w=1"},
			wantShare:  []string{"198.18.0.21", "198.18.0.22"},
			wantState:  map[string]loader.BackendState{"198.18.0.23": loader.StateDraining},
		},
		{
			name:       "down: out of the ring first, then marked",
			change:     func(s *Service) { s.Backends[0].State = loader.StateDown },
			wantWrites: []string{"SetRing 0", "SetBackend 1 198.18.0.21 down w=1"},
			wantShare:  []string{"198.18.0.22", "198.18.0.23"},
			wantState:  map[string]loader.BackendState{"198.18.0.21": loader.StateDown},
		},
		{
			name:       "weight 0: stays active in the map, out of the ring",
			change:     func(s *Service) { s.Backends[1].Weight = 0 },
			wantWrites: []string{"SetBackend 2 198.18.0.22 active w=0", "SetRing 0"},
			wantShare:  []string{"198.18.0.21", "198.18.0.23"},
			wantState:  map[string]loader.BackendState{"198.18.0.22": loader.StateActive},
		},
		{
			name: "all down: ring of empty slots",
			change: func(s *Service) {
				for i := range s.Backends {
					s.Backends[i].State = loader.StateDown
				}
			},
			wantWrites: []string{
				"SetRing 0",
				"SetBackend 1 198.18.0.21 down w=1",
				"SetBackend 2 198.18.0.22 down w=1",
				"SetBackend 3 198.18.0.23 down w=1",
			},
			wantShare: []string{"none"},
		},
		{
			name:       "forwarding changes: the VIP only",
			change:     func(s *Service) { s.Config.Forwarding = loader.ForwardTUN },
			wantWrites: []string{"UpdateVIP 198.18.1.100:80/tcp"},
			wantShare:  []string{"198.18.0.21", "198.18.0.22", "198.18.0.23"},
		},
		{
			name:       "maglev to failover: the VIP and the ring",
			change:     func(s *Service) { s.Scheduler = SchedulerFailover },
			wantWrites: []string{"UpdateVIP 198.18.1.100:80/tcp", "SetRing 0"},
			wantShare:  []string{"198.18.0.21"},
		},
		{
			// Source hash uses the same table; only the VIP's flags change.
			name:       "maglev to source-hash: the VIP only",
			change:     func(s *Service) { s.Scheduler = SchedulerSourceHash; s.Config.PersistPrefix = 24 },
			wantWrites: []string{"UpdateVIP 198.18.1.100:80/tcp"},
			wantShare:  []string{"198.18.0.21", "198.18.0.22", "198.18.0.23"},
		},
		{
			name:       "everything removed: empty ring, then slots freed",
			change:     func(s *Service) { s.Backends = nil },
			wantWrites: []string{"SetRing 0", "DeleteBackend 1", "DeleteBackend 2", "DeleteBackend 3"},
			wantShare:  []string{"none"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := service(t, SchedulerMaglev, slices.Clone(base)...)
			dp, p := applied(t, s)
			tt.change(&s)
			if _, err := p.Apply(s); err != nil {
				t.Fatal(err)
			}
			if got := dp.takeWrites(); !slices.Equal(tt.wantWrites, got) {
				t.Errorf("writes:\nwant %q\ngot  %q", tt.wantWrites, got)
			}
			var got []string
			for addr := range share(t, dp, 0) {
				got = append(got, addr)
			}
			slices.Sort(got)
			if !slices.Equal(tt.wantShare, got) {
				t.Errorf("ring owners: want %v, got %v", tt.wantShare, got)
			}
			for addr, want := range tt.wantState {
				b, ok := dp.backends[idOf(t, dp, netip.MustParseAddr(addr))]
				if !ok || b.State != want {
					t.Errorf("backend %s: want state %v, got %v", addr, want, b.State)
				}
			}
			// What is in the maps now is the service, read back.
			back, err := p.Service(s.VIP)
			if err != nil {
				t.Fatal(err)
			}
			if diff := serviceDiff(s, back); diff != "" {
				t.Errorf("read back: %s", diff)
			}
			// And applying it again writes nothing.
			if _, err := p.Apply(s); err != nil {
				t.Fatal(err)
			}
			if got := dp.takeWrites(); len(got) != 0 {
				t.Errorf("re-Apply wrote %q, want nothing", got)
			}
		})
	}
}

// serviceDiff compares a desired service with one read back, after the
// normalisation Apply does (backends by address, Persist from scheduler).
func serviceDiff(want, got Service) string {
	want.Backends = slices.Clone(want.Backends)
	sortBackends(want.Backends)
	want.Scheduler = effectiveScheduler(want)
	want.Config.Persist = want.Scheduler == SchedulerSourceHash
	if !want.Config.Persist {
		want.Config.PersistPrefix = 0
	}
	w := fmt.Sprintf("%v %+v %v %v", want.VIP, want.Config, want.Scheduler, want.Backends)
	g := fmt.Sprintf("%v %+v %v %v", got.VIP, got.Config, got.Scheduler, got.Backends)
	if w != g {
		return fmt.Sprintf("\nwant %s\ngot  %s", w, g)
	}
	return ""
}

func TestApplyKeepsIDsAndMostSlots(t *testing.T) {
	s := service(t, SchedulerMaglev, be(21, 1), be(22, 1), be(23, 1), be(24, 1))
	dp, p := applied(t, s)
	before := slices.Clone(dp.rings[0])
	ids := map[netip.Addr]uint32{}
	for _, b := range s.Backends {
		ids[b.Addr] = idOf(t, dp, b.Addr)
	}

	s.Backends = append(s.Backends, be(25, 1))
	if _, err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	for addr, id := range ids {
		if got := idOf(t, dp, addr); got != id {
			t.Errorf("backend %v moved from id %d to %d", addr, id, got)
		}
	}
	// Maglev's promise: the newcomer takes about a fifth of the slots and
	// few slots change hands between the backends that stayed.
	newID := idOf(t, dp, be(25, 1).Addr)
	toNew, between := 0, 0
	for i, id := range dp.rings[0] {
		switch {
		case id == before[i]:
		case id == newID:
			toNew++
		default:
			between++
		}
	}
	if toNew < testRing/5-testRing/20 || toNew > testRing/5+testRing/20 {
		t.Errorf("%d of %d slots went to the new backend, want about a fifth", toNew, testRing)
	}
	if between > testRing/10 {
		t.Errorf("%d of %d slots changed hands between old backends, want under a tenth", between, testRing)
	}
}

func TestFailoverPicksHighestWeightThenLowestAddress(t *testing.T) {
	tests := []struct {
		name     string
		backends []Backend
		want     string
	}{
		{"highest weight wins", []Backend{be(21, 1), be(22, 5), be(23, 2)}, "198.18.0.22"},
		// .9 sorts after .10 as text; the lower address is .9.
		{"tie: lowest address", []Backend{be(10, 3), be(9, 3), be(200, 1)}, "198.18.0.9"},
		{"down and draining skipped", []Backend{
			withState(be(21, 9), loader.StateDown), withState(be(22, 8), loader.StateDraining), be(23, 1), be(24, 1),
		}, "198.18.0.23"},
		{"weight 0 skipped", []Backend{be(21, 0), be(22, 1)}, "198.18.0.22"},
		{"nobody: empty slots", []Backend{withState(be(21, 1), loader.StateDown)}, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dp, _ := applied(t, service(t, SchedulerFailover, tt.backends...))
			got := share(t, dp, 0)
			if want := map[string]int{tt.want: testRing}; fmt.Sprint(want) != fmt.Sprint(got) {
				t.Errorf("ring owners: want %v, got %v", want, got)
			}
		})
	}
}

func TestFailoverSurvivesReadBackWithOneBackend(t *testing.T) {
	// With one backend the ring of failover and maglev is the same; the
	// scheduler must still come back from the maps so that adding a
	// second backend keeps failover.
	s := service(t, SchedulerFailover, be(21, 1))
	dp, p := applied(t, s)
	back, err := p.Service(s.VIP)
	if err != nil {
		t.Fatal(err)
	}
	if back.Scheduler != SchedulerFailover {
		t.Fatalf("read back scheduler %v, want failover", back.Scheduler)
	}
	back.Backends = append(back.Backends, be(22, 1))
	if _, err := p.Apply(back); err != nil {
		t.Fatal(err)
	}
	if got := share(t, dp, 0); got["198.18.0.21"] != testRing {
		t.Errorf("ring owners %v, want all slots on 198.18.0.21", got)
	}
}

func TestSourceHashStoresPersistence(t *testing.T) {
	tests := []struct {
		name string
		s    func(t *testing.T) Service
	}{
		{"scheduler source-hash", func(t *testing.T) Service {
			s := service(t, SchedulerSourceHash, be(21, 1))
			s.Config.PersistPrefix = 24
			return s
		}},
		{"maglev with Persist", func(t *testing.T) Service {
			s := service(t, SchedulerMaglev, be(21, 1))
			s.Config.Persist, s.Config.PersistPrefix = true, 24
			return s
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s(t)
			dp, p := applied(t, s)
			want := loader.VIPConfig{Forwarding: loader.ForwardDR, Persist: true, PersistPrefix: 24}
			if got := dp.vips[s.VIP].Config; got != want {
				t.Errorf("vips map config: want %+v, got %+v", want, got)
			}
			back, err := p.Service(s.VIP)
			if err != nil {
				t.Fatal(err)
			}
			if back.Scheduler != SchedulerSourceHash || back.Config != want {
				t.Errorf("read back %v %+v, want source-hash %+v", back.Scheduler, back.Config, want)
			}
		})
	}
}

func TestApplyRejectsInvalidServices(t *testing.T) {
	tests := []struct {
		name    string
		change  func(s *Service)
		wantMsg string
	}{
		{"IPv6 VIP", func(s *Service) { s.VIP.Addr = netip.MustParseAddr("2001:db8::1") }, "only IPv4"},
		{"protocol", func(s *Service) { s.VIP.Proto = 1 }, "want tcp or udp"},
		{"forwarding", func(s *Service) { s.Config.Forwarding = 7 }, "want dr or tun"},
		{"scheduler", func(s *Service) { s.Scheduler = 9 }, "unknown scheduler(9)"},
		{"prefix", func(s *Service) { s.Scheduler = SchedulerSourceHash; s.Config.PersistPrefix = 33 }, "want 0..32"},
		{"persist with failover", func(s *Service) { s.Scheduler = SchedulerFailover; s.Config.Persist = true }, "failover"},
		{"duplicate backend", func(s *Service) { s.Backends = append(s.Backends, be(21, 4)) }, "more than once"},
		{"IPv6 backend", func(s *Service) { s.Backends[0].Addr = netip.MustParseAddr("2001:db8::21") }, "only IPv4"},
		{"unused state", func(s *Service) { s.Backends[0].State = loader.StateUnused }, "want active, draining or down"},
		{"short MAC", func(s *Service) { s.Backends[0].MAC = net.HardwareAddr{1, 2, 3} }, "6-byte"},
		{"active without MAC", func(s *Service) { s.Backends[0].MAC = nil }, "no next-hop MAC"},
		{"active with zero MAC", func(s *Service) { s.Backends[0].MAC = make(net.HardwareAddr, 6) }, "no next-hop MAC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := service(t, SchedulerMaglev, be(21, 1))
			tt.change(&s)
			dp := newMem(testRing)
			_, err := NewProgrammer(dp, nil).Apply(s)
			if !errors.Is(err, ErrInvalidService) {
				t.Fatalf("Apply error %v, want ErrInvalidService", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			if len(dp.writes) != 0 {
				t.Errorf("invalid service wrote %q", dp.writes)
			}
		})
	}
}

func TestDownBackendWithoutMACIsAccepted(t *testing.T) {
	// A backend that is down may not answer ARP; it is kept without a MAC
	// until it comes up.
	s := service(t, SchedulerMaglev, be(21, 1), Backend{Addr: netip.MustParseAddr("198.18.0.22"), Weight: 1, State: loader.StateDown})
	dp, _ := applied(t, s)
	if got := share(t, dp, 0); got["198.18.0.21"] != testRing {
		t.Errorf("ring owners %v, want all on 198.18.0.21", got)
	}
}

// failingRing is a memDataplane whose SetRing fails.
type failingRing struct {
	*memDataplane
	err error
}

func (f failingRing) SetRing(uint32, []uint32) error { return f.err }

func TestApplyFailureFreesNothingAndRetryCompletes(t *testing.T) {
	s := service(t, SchedulerMaglev, be(21, 1), be(22, 1))
	dp, _ := applied(t, s)
	boom := errors.New("map update failed")
	s.Backends = s.Backends[:1]

	_, err := NewProgrammer(failingRing{dp, boom}, nil).Apply(s)
	if !errors.Is(err, boom) {
		t.Fatalf("Apply error %v, want %v", err, boom)
	}
	if got := dp.takeWrites(); len(got) != 0 {
		t.Errorf("failed Apply wrote %q; a slot the old ring names must not be freed", got)
	}

	if _, err := NewProgrammer(dp, nil).Apply(s); err != nil {
		t.Fatal(err)
	}
	if want, got := []string{"SetRing 0", "DeleteBackend 2"}, dp.takeWrites(); !slices.Equal(want, got) {
		t.Errorf("retry writes: want %q, got %q", want, got)
	}
}

func TestApplyFreesDuplicateSlots(t *testing.T) {
	s := service(t, SchedulerMaglev, be(21, 1))
	dp, p := applied(t, s)
	// A second slot for the same address, as an interrupted writer could
	// leave it: not in the ring, freed by the next Apply.
	// The writer that left it was another process, so the maps are
	// read by a new Programmer; the warm one trusts what it wrote.
	dup := dp.backends[1]
	dup.ID = 7
	dp.backends[7] = dup

	if _, err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	if got := dp.takeWrites(); len(got) != 0 {
		t.Errorf("warm Programmer wrote %q, want nothing", got)
	}
	if _, err := NewProgrammer(dp, nil).Apply(s); err != nil {
		t.Fatal(err)
	}
	if want, got := []string{"DeleteBackend 7"}, dp.takeWrites(); !slices.Equal(want, got) {
		t.Errorf("writes: want %q, got %q", want, got)
	}
}

func TestServicesAndDelete(t *testing.T) {
	dp := newMem(testRing)
	p := NewProgrammer(dp, nil)
	a := service(t, SchedulerFailover, be(21, 1), be(22, 2))
	b := service(t, SchedulerMaglev, be(31, 1))
	b.VIP = mustVIP(t, "198.18.1.99/udp")
	for _, s := range []Service{a, b} {
		if _, err := p.Apply(s); err != nil {
			t.Fatal(err)
		}
	}

	all, err := p.Services()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("Services returned %d, want 2", len(all))
	}
	// Ordered by VIP address: .99 before .100.
	if d := serviceDiff(b, all[0]); d != "" {
		t.Errorf("first: %s", d)
	}
	if d := serviceDiff(a, all[1]); d != "" {
		t.Errorf("second: %s", d)
	}

	if err := p.Delete(a.VIP); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Service(a.VIP); !errors.Is(err, loader.ErrVIPNotFound) {
		t.Errorf("Service after Delete: %v, want ErrVIPNotFound", err)
	}
	if err := p.Delete(a.VIP); !errors.Is(err, loader.ErrVIPNotFound) {
		t.Errorf("second Delete: %v, want ErrVIPNotFound", err)
	}
	if got := share(t, dp, 1); got["198.18.0.31"] != testRing {
		t.Errorf("remaining VIP's ring %v, want all on 198.18.0.31", got)
	}
}

func TestParseScheduler(t *testing.T) {
	for _, s := range []Scheduler{SchedulerMaglev, SchedulerSourceHash, SchedulerFailover} {
		got, err := ParseScheduler(strings.ToUpper(s.String()))
		if err != nil || got != s {
			t.Errorf("ParseScheduler(%q) = %v, %v", s.String(), got, err)
		}
	}
	if _, err := ParseScheduler("rr"); err == nil || !strings.Contains(err.Error(), "maglev, source-hash or failover") {
		t.Errorf("ParseScheduler(rr) error %v, want the choices listed", err)
	}
}

// countingBackends is a memDataplane that counts reads of the whole
// backends map.
type countingBackends struct {
	*memDataplane
	reads int
}

func (c *countingBackends) Backends() ([]loader.Backend, error) {
	c.reads++
	return c.memDataplane.Backends()
}

// Programming many services reads the backends map once, not once per
// service: at start-up with 1,000 services that read was most of the time.
func TestApplyReadsBackendsOnce(t *testing.T) {
	dp := &countingBackends{memDataplane: newMem(testRing)}
	p := NewProgrammer(dp, nil)
	var all []Service
	for i := range 8 { // the fake's MaxVIPs
		s := service(t, SchedulerMaglev, be(byte(2*i+1), 1), be(byte(2*i+2), 2))
		s.VIP.Port = uint16(1000 + i)
		all = append(all, s)
		if _, err := p.Apply(s); err != nil {
			t.Fatal(err)
		}
	}
	// Change every service: one backend removed, one reweighted.
	for _, s := range all {
		s.Backends = []Backend{s.Backends[0]}
		s.Backends[0].Weight = 5
		if _, err := p.Apply(s); err != nil {
			t.Fatal(err)
		}
	}
	if dp.reads != 1 {
		t.Errorf("backends map read %d times for 16 Applies, want 1", dp.reads)
	}
	for _, s := range all {
		got, err := NewProgrammer(dp, nil).Service(s.VIP)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Backends) != 1 || got.Backends[0].Weight != 5 {
			t.Errorf("%v in the maps: %+v, want its one backend at weight 5", s.VIP, got.Backends)
		}
	}
}
