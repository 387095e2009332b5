package loader

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/testenv"
)

// smallOptions keep test maps small: a ring of 13, 4 VIPs, 8 backend slots.
func smallOptions() Options {
	return Options{MaxVIPs: 4, MaxBackends: 8, MaxFlows: 64, RingSize: 13, HashSeed: 1}
}

func loadTest(t *testing.T, opts Options) *Balancer {
	t.Helper()
	testenv.Privileged(t)
	b, err := Load(opts)
	if err != nil {
		t.Fatalf("Load: %+v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func mustVIP(t *testing.T, s string) VIP {
	t.Helper()
	v, err := ParseVIP(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func addVIP(t *testing.T, b *Balancer, s string, c VIPConfig) VIPEntry {
	t.Helper()
	e, err := b.AddVIP(mustVIP(t, s), c)
	if err != nil {
		t.Fatalf("AddVIP(%s): %v", s, err)
	}
	return e
}

func testBackend(id, vipIndex uint32, addr string) Backend {
	return Backend{ID: id, VIPIndex: vipIndex, Addr: netip.MustParseAddr(addr),
		MAC: net.HardwareAddr{2, 0, 0, 0, byte(id >> 8), byte(id)}, State: StateActive, Weight: 1}
}

func setBackend(t *testing.T, b *Balancer, be Backend) {
	t.Helper()
	if err := b.SetBackend(be); err != nil {
		t.Fatalf("SetBackend(%v): %v", be, err)
	}
}

// ring returns a ring of n slots cycling through ids.
func ring(n uint32, ids ...uint32) []uint32 {
	r := make([]uint32, n)
	for i := range r {
		r[i] = ids[i%len(ids)]
	}
	return r
}

func TestLoadSizes(t *testing.T) {
	opts := Options{MaxVIPs: 3, MaxBackends: 17, MaxFlows: 129, RingSize: 31, HashSeed: 5}
	b := loadTest(t, opts)
	// MaxFlows as the table holds it: whole buckets.
	wantOpts := opts
	wantOpts.MaxFlows = 132
	if got := b.Options(); wantOpts != got {
		t.Errorf("Options() = %+v, want %+v", got, wantOpts)
	}
	e := addVIP(t, b, "198.18.1.1:80/tcp", VIPConfig{})
	if err := b.SetRing(e.Index, ring(31, 0)); err != nil {
		t.Fatal(err)
	}
	infos, err := b.MapInfos()
	if err != nil {
		t.Fatal(err)
	}
	// The flows map holds buckets of FlowWays flows.
	flows := uint32((129 + FlowWays - 1) / FlowWays)
	want := map[string]uint32{
		"vips": 3, "rings": 3, "vip_stats": 3, "vip_info": 3, "backends": 17, "backend_stats": 17,
		"flows": flows, "rings[0]": 31, "config": 1, "vip_filter": vipFilterSize,
		"reason_stats": uint32(NumReasons), "event_stats": uint32(NumEvents),
	}
	got := make(map[string]uint32)
	for _, mi := range infos {
		got[mi.Name] = mi.MaxEntries
		if mi.Memlock == 0 {
			t.Errorf("map %s: memlock 0", mi.Name)
		}
	}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("map %s: max entries %d, want %d", name, got[name], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("maps %v, want exactly %v", got, want)
	}
	if b.Program() == nil || b.Program().Type() != ebpf.XDP {
		t.Errorf("Program() = %v, want an XDP program", b.Program())
	}
}

func TestLoadRejectsBadOptions(t *testing.T) {
	_, err := Load(Options{MaxVIPs: 1, MaxBackends: 2, MaxFlows: 1, RingSize: 15})
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Load with ring 15 = %v, want ErrInvalidOptions", err)
	}
}

func TestVIPs(t *testing.T) {
	b := loadTest(t, smallOptions())
	tun := VIPConfig{Forwarding: ForwardTUN}
	e0 := addVIP(t, b, "198.18.1.2:80/tcp", VIPConfig{})
	e1 := addVIP(t, b, "198.18.1.1/udp", tun)
	e2 := addVIP(t, b, "198.18.1.1:53/udp", VIPConfig{Persist: true, PersistPrefix: 24})
	for i, e := range []VIPEntry{e0, e1, e2} {
		if uint32(i) != e.Index {
			t.Errorf("VIP %s: index %d, want %d", e.VIP, e.Index, i)
		}
	}
	if _, err := b.AddVIP(e0.VIP, tun); !errors.Is(err, ErrVIPExists) {
		t.Errorf("AddVIP of an existing VIP = %v, want ErrVIPExists", err)
	}
	got, err := b.LookupVIP(e1.VIP)
	if err != nil || got != e1 {
		t.Errorf("LookupVIP = %+v, %v; want %+v", got, err, e1)
	}
	list, err := b.VIPs()
	if err != nil {
		t.Fatal(err)
	}
	if want := []VIPEntry{e1, e2, e0}; !slices.Equal(want, list) {
		t.Errorf("VIPs() = %+v, want %+v (sorted)", list, want)
	}

	if err := b.UpdateVIP(e0.VIP, tun); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.LookupVIP(e0.VIP); got.Config != tun || got.Index != e0.Index {
		t.Errorf("after UpdateVIP: %+v, want config %+v index %d", got, tun, e0.Index)
	}

	// Deleting frees the index for the next VIP: the lowest free one.
	if err := b.DeleteVIP(e1.VIP); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"DeleteVIP": b.DeleteVIP(e1.VIP),
		"UpdateVIP": b.UpdateVIP(e1.VIP, tun),
		"LookupVIP": func() error { _, err := b.LookupVIP(e1.VIP); return err }(),
	} {
		if !errors.Is(err, ErrVIPNotFound) || !strings.Contains(err.Error(), "198.18.1.1/udp") {
			t.Errorf("%s of a deleted VIP = %v, want ErrVIPNotFound naming the VIP", name, err)
		}
	}
	e3 := addVIP(t, b, "198.18.1.3:443/tcp", VIPConfig{})
	if e3.Index != 1 {
		t.Errorf("new VIP got index %d, want the freed index 1", e3.Index)
	}
	addVIP(t, b, "198.18.1.4:443/tcp", VIPConfig{})
	if _, err := b.AddVIP(mustVIP(t, "198.18.1.5:443/tcp"), VIPConfig{}); !errors.Is(err, ErrTableFull) {
		t.Errorf("fifth VIP with MaxVIPs 4 = %v, want ErrTableFull", err)
	}
}

func TestAddVIPInvalid(t *testing.T) {
	b := loadTest(t, smallOptions())
	tests := []struct {
		name string
		v    VIP
		c    VIPConfig
		want string
	}{
		{"ipv6", mustVIP(t, "[2001:db8::1]:80/tcp"), VIPConfig{}, "only IPv4"},
		{"no address", VIP{Port: 80, Proto: TCP}, VIPConfig{}, "address missing"},
		{"icmp", VIP{Addr: netip.MustParseAddr("198.18.1.1"), Proto: 1}, VIPConfig{}, "want tcp or udp"},
		{"forwarding", mustVIP(t, "198.18.1.1/tcp"), VIPConfig{Forwarding: 7}, "want dr or tun"},
		{"prefix", mustVIP(t, "198.18.1.1/tcp"), VIPConfig{Persist: true, PersistPrefix: 33}, "0..32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.AddVIP(tt.v, tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AddVIP = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if list, _ := b.VIPs(); len(list) != 0 {
		t.Errorf("invalid VIPs were stored: %+v", list)
	}
}

func TestAddVIPConcurrent(t *testing.T) {
	b := loadTest(t, Options{MaxVIPs: 32, MaxBackends: 2, MaxFlows: 1, RingSize: 13})
	var wg sync.WaitGroup
	idx := make([]uint32, 32)
	errs := make([]error, 32)
	for i := range 32 {
		wg.Go(func() {
			e, err := b.AddVIP(VIP{Addr: netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}), Port: 80, Proto: TCP}, VIPConfig{})
			idx[i], errs[i] = e.Index, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	slices.Sort(idx)
	for i, got := range idx {
		if uint32(i) != got {
			t.Fatalf("indexes %v, want 0..31 each once", idx)
		}
	}
}

func TestBackends(t *testing.T) {
	b := loadTest(t, smallOptions())
	e := addVIP(t, b, "198.18.1.1:80/tcp", VIPConfig{})
	if id, err := b.FreeBackendID(); err != nil || id != 1 {
		t.Fatalf("FreeBackendID() = %d, %v; want 1 (0 is never used)", id, err)
	}
	be := testBackend(1, e.Index, "198.18.0.21")
	be.State, be.Weight = StateDraining, 7
	setBackend(t, b, be)
	got, err := b.Backend(1)
	if err != nil || got.String() != be.String() {
		t.Errorf("Backend(1) = %v, %v; want %v", got, err, be)
	}
	if id, _ := b.FreeBackendID(); id != 2 {
		t.Errorf("FreeBackendID() = %d, want 2", id)
	}

	bad := func(f func(*Backend)) Backend {
		x := testBackend(2, e.Index, "198.18.0.22")
		f(&x)
		return x
	}
	tests := []struct {
		name string
		be   Backend
		want string
	}{
		{"id 0", bad(func(x *Backend) { x.ID = 0 }), "out of range 1..7"},
		{"id too big", bad(func(x *Backend) { x.ID = 8 }), "out of range 1..7"},
		{"unused state", bad(func(x *Backend) { x.State = StateUnused }), "want active, draining or down"},
		{"bad state", bad(func(x *Backend) { x.State = 9 }), "want active, draining or down"},
		{"ipv6", bad(func(x *Backend) { x.Addr = netip.MustParseAddr("2001:db8::1") }), "only IPv4"},
		{"no MAC", bad(func(x *Backend) { x.MAC = nil }), "6-byte"},
		{"no such VIP", bad(func(x *Backend) { x.VIPIndex = 3 }), "no VIP has index 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := b.SetBackend(tt.be)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SetBackend = %v, want an error containing %q", err, tt.want)
			}
		})
	}

	for id := uint32(2); id < 8; id++ {
		setBackend(t, b, testBackend(id, e.Index, fmt.Sprintf("198.18.0.%d", 20+id)))
	}
	if _, err := b.FreeBackendID(); !errors.Is(err, ErrTableFull) {
		t.Errorf("FreeBackendID with every slot used = %v, want ErrTableFull", err)
	}
	if err := b.DeleteBackend(4); err != nil {
		t.Fatal(err)
	}
	if id, _ := b.FreeBackendID(); id != 4 {
		t.Errorf("FreeBackendID() after deleting 4 = %d, want 4", id)
	}
	if _, err := b.Backend(4); !errors.Is(err, ErrBackendNotFound) {
		t.Errorf("Backend(4) after delete = %v, want ErrBackendNotFound", err)
	}
	if err := b.DeleteBackend(4); !errors.Is(err, ErrBackendNotFound) {
		t.Errorf("second DeleteBackend(4) = %v, want ErrBackendNotFound", err)
	}
	list, err := b.Backends()
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for _, x := range list {
		ids = append(ids, x.ID)
	}
	if want := []uint32{1, 2, 3, 5, 6, 7}; !slices.Equal(want, ids) {
		t.Errorf("Backends() ids = %v, want %v", ids, want)
	}
}

func TestSetRing(t *testing.T) {
	b := loadTest(t, smallOptions())
	e := addVIP(t, b, "198.18.1.1:80/tcp", VIPConfig{})
	if r, err := b.Ring(e.Index); r != nil || err != nil {
		t.Fatalf("Ring of a new VIP = %v, %v; want nil, nil", r, err)
	}
	for _, tt := range []struct {
		name  string
		index uint32
		ids   []uint32
		want  string
	}{
		{"short", e.Index, ring(12, 1), "12 entries, want RingSize 13"},
		{"long", e.Index, ring(14, 1), "14 entries, want RingSize 13"},
		{"backend id too big", e.Index, ring(13, 1, 8), "backend id 8 out of range"},
		{"unknown VIP index", 3, ring(13, 1), "no VIP has this index"},
	} {
		if err := b.SetRing(tt.index, tt.ids); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: SetRing = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}

	first := ring(13, 1, 2, 3)
	if err := b.SetRing(e.Index, first); err != nil {
		t.Fatal(err)
	}
	got, err := b.Ring(e.Index)
	if err != nil || !slices.Equal(first, got) {
		t.Fatalf("Ring = %v, %v; want %v", got, err, first)
	}
	var oldID uint32
	if err := b.maps.Rings.Lookup(e.Index, &oldID); err != nil {
		t.Fatal(err)
	}

	second := ring(13, 5, 0, 7, 6)
	if err := b.SetRing(e.Index, second); err != nil {
		t.Fatal(err)
	}
	if got, err = b.Ring(e.Index); err != nil || !slices.Equal(second, got) {
		t.Fatalf("Ring after swap = %v, %v; want %v (nothing of the old table)", got, err, second)
	}
	var newID uint32
	if err := b.maps.Rings.Lookup(e.Index, &newID); err != nil {
		t.Fatal(err)
	}
	if oldID == newID {
		t.Fatalf("ring slot still holds map %d: the table was written in place, not swapped", oldID)
	}
	// Nothing holds the old table any more: the kernel frees it after an
	// RCU grace period.
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := ebpf.NewMapFromID(ebpf.MapID(oldID))
		if err != nil {
			break
		}
		m.Close()
		if time.Now().After(deadline) {
			t.Fatalf("old table (map %d) still exists 5s after the swap", oldID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDeleteVIPCleanup(t *testing.T) {
	b := loadTest(t, smallOptions())
	a := addVIP(t, b, "198.18.1.1:80/tcp", VIPConfig{})
	c := addVIP(t, b, "198.18.1.2:80/tcp", VIPConfig{})
	setBackend(t, b, testBackend(1, a.Index, "198.18.0.21"))
	setBackend(t, b, testBackend(2, a.Index, "198.18.0.22"))
	setBackend(t, b, testBackend(3, c.Index, "198.18.0.23"))
	if err := b.SetRing(a.Index, ring(13, 1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := b.SetRing(c.Index, ring(13, 3)); err != nil {
		t.Fatal(err)
	}
	flowTo := func(port uint16, dst string, id uint32) Flow {
		return Flow{Src: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.100"), port),
			Dst: netip.MustParseAddrPort(dst), Proto: TCP, BackendID: id}
	}
	flows := []Flow{flowTo(1000, "198.18.1.1:80", 1), flowTo(1001, "198.18.1.1:80", 2), flowTo(1002, "198.18.1.2:80", 3)}
	for _, f := range flows {
		putFlow(t, b, f, 0)
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	hit := slices.Repeat([]lbLbCounter{{Packets: 1, Bytes: 100}}, cpus)
	for _, m := range []*ebpf.Map{b.maps.VipStats, b.maps.BackendStats} {
		for _, k := range []uint32{0, 1, 3} {
			if err := m.Put(k, hit); err != nil {
				t.Fatal(err)
			}
		}
	}

	if err := b.DeleteVIP(a.VIP); err != nil {
		t.Fatal(err)
	}

	if r, err := b.Ring(a.Index); r != nil || err != nil {
		t.Errorf("ring of the deleted VIP = %v, %v; want none", r, err)
	}
	if r, _ := b.Ring(c.Index); !slices.Equal(ring(13, 3), r) {
		t.Errorf("ring of the other VIP = %v, want it untouched", r)
	}
	list, _ := b.Backends()
	if len(list) != 1 || list[0].ID != 3 {
		t.Errorf("backends after delete = %v, want only backend 3", list)
	}
	var left []Flow
	if err := b.Flows(func(f Flow) bool { left = append(left, f); return true }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != flows[2] {
		t.Errorf("flows after delete = %+v, want only %+v", left, flows[2])
	}
	s, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Counter{Packets: uint64(cpus), Bytes: 100 * uint64(cpus)}
	if _, ok := s.VIPs[a.Index]; ok || s.VIPs[c.Index] != want {
		t.Errorf("VIP counters = %v, want only index %d = %v", s.VIPs, c.Index, want)
	}
	if _, ok := s.Backends[1]; ok || s.Backends[3] != want {
		t.Errorf("backend counters = %v, want only 3 = %v", s.Backends, want)
	}
	if sum, err := sumPerCPU(b.maps.VipStats, a.Index, addCounter); err != nil || sum.Packets != 0 || sum.Bytes != 0 {
		t.Errorf("counter of the deleted VIP = %+v, %v; want zeroed", sum, err)
	}
	if sum, err := sumPerCPU(b.maps.BackendStats, 1, addCounter); err != nil || sum.Packets != 0 || sum.Bytes != 0 {
		t.Errorf("counter of freed backend 1 = %+v, %v; want zeroed", sum, err)
	}

	// The freed index is reused and starts empty.
	n := addVIP(t, b, "198.18.1.3:80/tcp", VIPConfig{})
	if n.Index != a.Index {
		t.Errorf("new VIP index %d, want the freed %d", n.Index, a.Index)
	}
}

func TestFlows(t *testing.T) {
	b := loadTest(t, smallOptions())
	var want []Flow
	for i := range 20 {
		f := Flow{
			Src:       netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), uint16(40000+i)),
			Dst:       netip.MustParseAddrPort("198.18.1.1:443"),
			Proto:     []Proto{TCP, UDP}[i%2],
			BackendID: uint32(i%3 + 1),
		}
		want = append(want, f)
		putFlow(t, b, f, 0)
	}
	var got []Flow
	if err := b.Flows(func(f Flow) bool { got = append(got, f); return true }); err != nil {
		t.Fatal(err)
	}
	byPort := func(a, c Flow) int { return int(a.Src.Port()) - int(c.Src.Port()) }
	slices.SortFunc(got, byPort)
	if !slices.Equal(want, got) {
		t.Errorf("Flows =\n%+v\nwant\n%+v", got, want)
	}
	seen := 0
	if err := b.Flows(func(Flow) bool { seen++; return seen < 5 }); err != nil || seen != 5 {
		t.Errorf("Flows stopped after %d calls (%v), want 5", seen, err)
	}
	n, err := b.DeleteFlows(func(f Flow) bool { return f.BackendID == 2 })
	if err != nil || n != 7 {
		t.Errorf("DeleteFlows = %d, %v; want 7", n, err)
	}
	got = got[:0]
	b.Flows(func(f Flow) bool { got = append(got, f); return true })
	if len(got) != 13 || slices.ContainsFunc(got, func(f Flow) bool { return f.BackendID == 2 }) {
		t.Errorf("after DeleteFlows: %d flows %+v, want 13 and none to backend 2", len(got), got)
	}
}

func TestConfig(t *testing.T) {
	b := loadTest(t, smallOptions())
	c, err := b.Config()
	if err != nil || c.TunSource.IsValid() || c.MTU != 0 {
		t.Errorf("initial Config = %+v, %v; want zero", c, err)
	}
	want := Config{TunSource: netip.MustParseAddr("198.18.0.1"), IfMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, MTU: 1500, TunTTL: 32}
	if err := b.SetConfig(want); err != nil {
		t.Fatal(err)
	}
	got, err := b.Config()
	if err != nil || fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("Config() = %+v, %v; want %+v", got, err, want)
	}
	if err := b.SetConfig(Config{TunSource: netip.MustParseAddr("2001:db8::1")}); err == nil {
		t.Error("SetConfig with an IPv6 tunnel source succeeded")
	}
	if err := b.SetConfig(Config{IfMAC: net.HardwareAddr{1, 2}}); err == nil {
		t.Error("SetConfig with a 2-byte MAC succeeded")
	}
	// MTU: 0 (no limit) or at least 68 + 20, so the next-hop MTU of a
	// fragmentation-needed answer is one IPv4 allows.
	stored := want.MTU
	for _, tt := range []struct {
		mtu uint16
		ok  bool
	}{{0, true}, {1, false}, {68, false}, {87, false}, {88, true}, {9000, true}} {
		c := want
		c.MTU = tt.mtu
		err := b.SetConfig(c)
		switch {
		case tt.ok && err != nil:
			t.Errorf("SetConfig with MTU %d: %v", tt.mtu, err)
		case !tt.ok && (err == nil || !strings.Contains(err.Error(), "0 means no limit")):
			t.Errorf("SetConfig with MTU %d = %v, want an error saying 0 means no limit", tt.mtu, err)
		}
		if tt.ok {
			stored = tt.mtu
		}
		if got, err := b.Config(); err != nil || got.MTU != stored {
			t.Errorf("after SetConfig with MTU %d: MTU %d, %v; want %d", tt.mtu, got.MTU, err, stored)
		}
	}
}

func TestStats(t *testing.T) {
	b := loadTest(t, smallOptions())
	e := addVIP(t, b, "198.18.1.1:80/tcp", VIPConfig{})
	setBackend(t, b, testBackend(5, e.Index, "198.18.0.25"))
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	perCPU := func(f func(cpu int) uint64) []uint64 {
		v := make([]uint64, cpus)
		for i := range v {
			v[i] = f(i)
		}
		return v
	}
	if err := b.maps.ReasonStats.Put(uint32(ReasonTxDR), perCPU(func(c int) uint64 { return uint64(10 + c) })); err != nil {
		t.Fatal(err)
	}
	if err := b.maps.EventStats.Put(uint32(EventFlowNew), perCPU(func(c int) uint64 { return 3 })); err != nil {
		t.Fatal(err)
	}
	ctr := make([]lbLbCounter, cpus)
	for i := range ctr {
		ctr[i] = lbLbCounter{Packets: 2, Bytes: uint64(60 * (i + 1))}
	}
	b.maps.VipStats.Put(e.Index, ctr)
	b.maps.BackendStats.Put(uint32(5), ctr)
	b.maps.BackendStats.Put(uint32(6), ctr) // unused slot: not reported

	s, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Reasons) != NumReasons || len(s.Events) != NumEvents {
		t.Errorf("%d reasons and %d events, want all %d and %d", len(s.Reasons), len(s.Events), NumReasons, NumEvents)
	}
	wantDR := uint64(10*cpus + cpus*(cpus-1)/2)
	if s.Reasons[ReasonTxDR] != wantDR || s.Reasons[ReasonPassNotVIP] != 0 {
		t.Errorf("reasons tx_dr %d pass_not_vip %d, want %d and 0", s.Reasons[ReasonTxDR], s.Reasons[ReasonPassNotVIP], wantDR)
	}
	if s.Events[EventFlowNew] != uint64(3*cpus) {
		t.Errorf("flow_new = %d, want %d", s.Events[EventFlowNew], 3*cpus)
	}
	want := Counter{Packets: uint64(2 * cpus), Bytes: uint64(60 * cpus * (cpus + 1) / 2)}
	if len(s.VIPs) != 1 || s.VIPs[e.Index] != want {
		t.Errorf("VIPs = %v, want {%d: %v}", s.VIPs, e.Index, want)
	}
	if len(s.Backends) != 1 || s.Backends[5] != want {
		t.Errorf("Backends = %v, want {5: %v}", s.Backends, want)
	}
}

// TestDefaultMemlock measures what the default sizes lock in kernel memory,
// and what each VIP's Maglev table adds.
func TestDefaultMemlock(t *testing.T) {
	b := loadTest(t, DefaultOptions())
	e := addVIP(t, b, "198.18.1.1:80/tcp", VIPConfig{})
	if err := b.SetRing(e.Index, ring(DefaultRingSize, 0)); err != nil {
		t.Fatal(err)
	}
	infos, err := b.MapInfos()
	if err != nil {
		t.Fatal(err)
	}
	var total, ringBytes uint64
	for _, mi := range infos {
		t.Logf("%-14s %-12s key %3d value %3d entries %6d memlock %9d", mi.Name, mi.Type, mi.KeySize, mi.ValueSize, mi.MaxEntries, mi.Memlock)
		if mi.Name == "rings[0]" {
			ringBytes = mi.Memlock
			continue
		}
		total += mi.Memlock
	}
	prog, err := fdMemlock(b.Program().FD())
	if err != nil || prog == 0 {
		t.Errorf("program memlock = %d, %v", prog, err)
	}
	t.Logf("maps with default sizes: %d bytes (%.1f MiB), program %d bytes; each VIP's ring adds %d bytes",
		total, float64(total)/(1<<20), prog, ringBytes)
	if ringBytes < 4*DefaultRingSize {
		t.Errorf("ring memlock %d, want at least %d (4 bytes per slot)", ringBytes, 4*DefaultRingSize)
	}
	if total == 0 {
		t.Error("no memlock reported")
	}
	if _, err := fdMemlock(1 << 20); err == nil {
		t.Error("fdMemlock of a closed fd succeeded")
	}
}

// BenchmarkSetRing replaces a default-sized (65537-slot) Maglev table: a
// new inner map filled and swapped in, as on every backend change.
func BenchmarkSetRing(b *testing.B) {
	testenv.Privileged(b)
	bal, err := Load(DefaultOptions())
	if err != nil {
		b.Fatalf("Load: %+v", err)
	}
	defer bal.Close()
	e, err := bal.AddVIP(mustParseVIPB(b, "198.18.1.100:80/tcp"), VIPConfig{})
	if err != nil {
		b.Fatal(err)
	}
	ids := ring(bal.opts.RingSize, 1, 2, 3)
	for b.Loop() {
		if err := bal.SetRing(e.Index, ids); err != nil {
			b.Fatal(err)
		}
	}
}

func mustParseVIPB(b *testing.B, s string) VIP {
	v, err := ParseVIP(s)
	if err != nil {
		b.Fatal(err)
	}
	return v
}
