package controlplane

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/testenv"
	"github.com/xdplb/xdplb/loader"
)

// directorMAC is the balancer's interface MAC in these tests: frames for a
// VIP must be addressed to it.
var directorMAC = net.HardwareAddr{2, 0xd1, 0, 0, 0, 1}

// synFrame builds an Ethernet/IPv4/TCP SYN from src to dst. The balancer
// does not verify checksums, so they are left zero.
func synFrame(src, dst netip.AddrPort) []byte {
	f := make([]byte, 14+20+20)
	copy(f[0:6], directorMAC)
	copy(f[6:12], []byte{2, 0xcc, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 40)
	ip[8] = 64
	ip[9] = 6
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	tcp := f[34:]
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	return f
}

// TestProgrammerDrivesRealBalancer applies services to a loaded balancer
// and sends SYNs through its program: every new flow must reach the
// backend the Maglev table predicts, never a draining or down one, and
// the service must read back from the real maps as applied.
func TestProgrammerDrivesRealBalancer(t *testing.T) {
	testenv.Privileged(t)
	opts := loader.DefaultOptions()
	opts.RingSize = 1021
	opts.MaxBackends = 64
	opts.MaxFlows = 4096
	b, err := loader.Load(opts)
	if err != nil {
		t.Fatalf("Load: %+v", err)
	}
	t.Cleanup(func() { b.Close() })
	ifMAC := directorMAC
	if err := b.SetConfig(loader.Config{IfMAC: ifMAC, MTU: 1500}); err != nil {
		t.Fatal(err)
	}

	p := NewProgrammer(b, nil)
	vip := loader.VIP{Addr: netip.MustParseAddr("198.18.1.100"), Port: 80, Proto: loader.TCP}
	s := Service{
		VIP:    vip,
		Config: loader.VIPConfig{Forwarding: loader.ForwardDR},
		Backends: []Backend{be(21, 1), be(22, 1), be(23, 2), withState(be(24, 1), loader.StateDraining),
			// Down and never resolved: kept without a MAC.
			{Addr: netip.MustParseAddr("198.18.0.25"), Weight: 1, State: loader.StateDown}},
	}
	rng := rand.New(rand.NewPCG(1, 2))

	// send runs n new flows through the program and counts the backends
	// they reached, by the last byte of the destination MAC.
	send := func(t *testing.T, n int) map[byte]int {
		t.Helper()
		entry, err := b.LookupVIP(vip)
		if err != nil {
			t.Fatal(err)
		}
		ring, err := b.Ring(entry.Index)
		if err != nil {
			t.Fatal(err)
		}
		got := map[byte]int{}
		out := make([]byte, 128)
		for range n {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(rng.IntN(256)), byte(rng.IntN(256))}), uint16(1024+rng.IntN(60000)))
			dst := netip.AddrPortFrom(vip.Addr, vip.Port)
			ret, err := b.Program().Run(&ebpf.RunOptions{Data: synFrame(src, dst), DataOut: out})
			if err != nil {
				t.Fatalf("run program: %v", err)
			}
			if ret != uint32(loader.XDPTx) {
				t.Fatalf("flow %v: action %v, want XDP_TX", src, loader.XDPAction(ret))
			}
			be, err := b.Backend(ring[b.Slot(entry, src, dst)])
			if err != nil {
				t.Fatalf("predicted backend: %v", err)
			}
			if want, got := be.MAC, net.HardwareAddr(out[0:6]); want.String() != got.String() {
				t.Fatalf("flow %v: destination MAC %v, want %v (backend %v)", src, got, want, be.Addr)
			}
			if want, got := ifMAC, net.HardwareAddr(out[6:12]); want.String() != got.String() {
				t.Fatalf("flow %v: source MAC %v, want %v", src, got, want)
			}
			got[out[5]]++
		}
		return got
	}

	if _, err := p.Apply(s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	got := send(t, 2000)
	if got[24] != 0 || got[25] != 0 || got[0] != 0 {
		t.Errorf("draining .24, down .25 or no backend got new flows: %v", got)
	}
	if got[23] < got[21]*3/2 || got[23] < got[22]*3/2 {
		t.Errorf("weight-2 backend .23 got %d flows, weight-1 ones %d and %d: want about twice", got[23], got[21], got[22])
	}

	// The same service again writes nothing: the ring read back equals
	// the one built.
	res, err := p.Apply(s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() {
		t.Errorf("second Apply changed %+v", res)
	}

	// Down: no new flow reaches it.
	s.Backends[0].State = loader.StateDown
	if _, err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	if got := send(t, 500); got[21] != 0 || got[24] != 0 {
		t.Errorf("down .21 got %d, draining .24 got %d new flows", got[21], got[24])
	}

	// Failover, read back from the maps and extended: still failover.
	s.Scheduler = SchedulerFailover
	s.Backends = []Backend{be(22, 1)}
	if _, err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	back, err := p.Service(vip)
	if err != nil {
		t.Fatal(err)
	}
	if d := serviceDiff(s, back); d != "" {
		t.Errorf("read back: %s", d)
	}
	back.Backends = append(back.Backends, be(30, 5))
	if _, err := p.Apply(back); err != nil {
		t.Fatal(err)
	}
	if got := send(t, 200); got[30] != 200 {
		t.Errorf("failover sent %v, want all 200 flows to .30 (highest weight)", got)
	}
	backends, err := b.Backends()
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, be := range backends {
		addrs = append(addrs, be.Addr.String())
	}
	slices.Sort(addrs)
	if want := []string{"198.18.0.22", "198.18.0.30"}; !slices.Equal(want, addrs) {
		t.Errorf("backend slots %v, want %v (removed ones freed)", addrs, want)
	}

	if err := p.Delete(vip); err != nil {
		t.Fatal(err)
	}
	if all, err := p.Services(); err != nil || len(all) != 0 {
		t.Errorf("Services after Delete = %v, %v; want none", all, err)
	}
}

// BenchmarkApply measures what a health change costs on a real balancer
// with the default 65537-slot table: re-applying an unchanged service
// (rebuilds the table and compares its hash with the one last written)
// and moving one backend's weight (rebuilds and swaps the table).
func BenchmarkApply(b *testing.B) {
	testenv.Privileged(b)
	for _, n := range []int{10, 100, 1000} {
		lb, err := loader.Load(loader.DefaultOptions())
		if err != nil {
			b.Fatalf("Load: %+v", err)
		}
		p := NewProgrammer(lb, nil)
		s := Service{VIP: loader.VIP{Addr: netip.MustParseAddr("198.18.1.100"), Port: 80, Proto: loader.TCP},
			Config: loader.VIPConfig{Forwarding: loader.ForwardDR}}
		for i := range n {
			s.Backends = append(s.Backends, Backend{
				Addr: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Weight: 1,
				MAC: net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)}, State: loader.StateActive,
			})
		}
		if _, err := p.Apply(s); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("unchanged/%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := p.Apply(s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("weight/%d", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				s.Backends[0].Weight = uint32(1 + i%2)
				if _, err := p.Apply(s); err != nil {
					b.Fatal(err)
				}
			}
		})
		lb.Close()
	}
}
