package loader

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/packet"
)

// Tests of the maps derived from vips (filter.go): the loader keeps them
// right through adds, deletes and updates, and repairs them after a
// process died between two writes. What the program does with them is
// asserted by packets and counters, as a user would see it.

var filterMAC = net.HardwareAddr{2, 0, 0, 0, 0, 0xd0}

// tcpFrame is a TCP segment from src to dst with flags, seq and ack and no
// payload, addressed to filterMAC.
func tcpFrame(src, dst netip.AddrPort, flags uint8, seq, ack uint32) []byte {
	return packet.Frame(packet.Ethernet{Dst: filterMAC, Src: net.HardwareAddr{2, 0, 0, 0, 0, 0xc1}},
		packet.TCPPacket(packet.IPv4{TTL: 64, Src: src.Addr(), Dst: dst.Addr()},
			packet.TCP{SrcPort: src.Port(), DstPort: dst.Port(), Seq: seq, Ack: ack, Flags: flags, Window: 512}, nil))
}

// synFrame is a TCP SYN from src to dst, addressed to filterMAC.
func synFrame(src, dst netip.AddrPort) []byte { return tcpFrame(src, dst, packet.TCPSyn, 1, 0) }

// runFrame runs in through b's program and returns the action, the one
// reason counted and the frame out.
func runFrame(t *testing.T, b *Balancer, in []byte) (uint32, Reason, []byte) {
	t.Helper()
	before, err := readReasons(b.maps.ReasonStats)
	if err != nil {
		t.Fatal(err)
	}
	opts := &ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+256)}
	act, err := b.prog.Run(opts)
	if err != nil {
		t.Fatalf("run program: %v", err)
	}
	after, err := readReasons(b.maps.ReasonStats)
	if err != nil {
		t.Fatal(err)
	}
	var moved []Reason
	for r, n := range after {
		if n != before[r] {
			moved = append(moved, r)
		}
	}
	if len(moved) != 1 {
		t.Fatalf("reasons moved: %v, want exactly one", moved)
	}
	return act, moved[0], opts.DataOut
}

// runSYN runs a TCP SYN from src to dst through b's program.
func runSYN(t *testing.T, b *Balancer, src, dst netip.AddrPort) (uint32, Reason, []byte) {
	t.Helper()
	return runFrame(t, b, synFrame(src, dst))
}

// readFilter returns every non-zero vip_filter bucket.
func readFilter(t *testing.T, b *Balancer) map[uint32]uint32 {
	t.Helper()
	got := make(map[uint32]uint32)
	err := dumpMap(b.maps.VipFilter, func(bucket, n uint32) bool {
		if n != 0 {
			got[bucket] = n
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// readVIPInfo returns every non-zero vip_info entry.
func readVIPInfo(t *testing.T, b *Balancer) map[uint32]lbLbVipInfo {
	t.Helper()
	got := make(map[uint32]lbLbVipInfo)
	err := dumpMap(b.maps.VipInfo, func(index uint32, v lbLbVipInfo) bool {
		if v != (lbLbVipInfo{}) {
			got[index] = v
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// checkDerived compares vip_filter and vip_info with what the configured
// VIPs, listed independently of the maps' code, call for.
func checkDerived(t *testing.T, b *Balancer, vips []VIPEntry) {
	t.Helper()
	wantFilter := make(map[uint32]uint32)
	wantInfo := make(map[uint32]lbLbVipInfo)
	for _, e := range vips {
		wantFilter[vipBucket(e.VIP.Addr)]++
		wantInfo[e.Index] = vipInfo(e.VIP, e.Config, e.Index)
	}
	if got := readFilter(t, b); fmt.Sprint(wantFilter) != fmt.Sprint(got) {
		t.Errorf("vip_filter buckets = %v, want %v", got, wantFilter)
	}
	if got := readVIPInfo(t, b); fmt.Sprint(wantInfo) != fmt.Sprint(got) {
		t.Errorf("vip_info = %+v, want %+v", got, wantInfo)
	}
}

// sameBucket returns n IPv4 addresses in 198.18.0.0/15 that share one
// vip_filter bucket, and one address in another bucket.
func sameBucket(t *testing.T, n int) ([]netip.Addr, netip.Addr) {
	t.Helper()
	byBucket := make(map[uint32][]netip.Addr)
	for i := range 1 << 17 {
		a := netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
		bk := vipBucket(a)
		byBucket[bk] = append(byBucket[bk], a)
		if len(byBucket[bk]) == n {
			other := netip.MustParseAddr("198.18.1.1")
			for vipBucket(other) == bk {
				other = other.Next()
			}
			return byBucket[bk], other
		}
	}
	t.Fatalf("no %d addresses share a bucket", n)
	return nil, netip.Addr{}
}

func TestVIPBucketSpread(t *testing.T) {
	// The 4096 addresses of a /20 fill most buckets: a multiplicative hash
	// of consecutive numbers spreads them almost evenly.
	seen := make(map[uint32]int)
	for i := range vipFilterSize {
		seen[vipBucket(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}))]++
	}
	if len(seen) < vipFilterSize*9/10 {
		t.Errorf("a /20 covers %d of %d buckets, want at least 90%%", len(seen), vipFilterSize)
	}
	for bk := range seen {
		if bk >= vipFilterSize {
			t.Fatalf("bucket %d out of range", bk)
		}
	}
}

func TestVIPFilterFollowsVIPs(t *testing.T) {
	b := loadTest(t, Options{MaxVIPs: 8, MaxBackends: 8, MaxFlows: 64, RingSize: 13, HashSeed: 1})
	shared, other := sameBucket(t, 2)
	a, c := shared[0], shared[1]
	tun := VIPConfig{Forwarding: ForwardTUN}
	var vips []VIPEntry
	add := func(v VIP, cfg VIPConfig) VIPEntry {
		t.Helper()
		e, err := b.AddVIP(v, cfg)
		if err != nil {
			t.Fatal(err)
		}
		vips = append(vips, e)
		checkDerived(t, b, vips)
		return e
	}
	del := func(e VIPEntry) {
		t.Helper()
		if err := b.DeleteVIP(e.VIP); err != nil {
			t.Fatal(err)
		}
		for i := range vips {
			if vips[i] == e {
				vips = append(vips[:i], vips[i+1:]...)
				break
			}
		}
		checkDerived(t, b, vips)
	}

	port := add(VIP{Addr: a, Port: 80, Proto: TCP}, VIPConfig{})
	all := add(VIP{Addr: a, Proto: TCP}, tun)                   // same address: bucket counts 2
	udp := add(VIP{Addr: c, Port: 53, Proto: UDP}, VIPConfig{}) // other address, same bucket: 3
	add(VIP{Addr: other, Port: 443, Proto: TCP}, VIPConfig{Persist: true, PersistPrefix: 24})
	if got := readFilter(t, b)[vipBucket(a)]; got != 3 {
		t.Errorf("bucket of %s and %s counts %d, want 3", a, c, got)
	}

	// UpdateVIP rewrites the info, not the filter.
	if err := b.UpdateVIP(port.VIP, tun); err != nil {
		t.Fatal(err)
	}
	vips[0].Config = tun
	checkDerived(t, b, vips)

	del(all)
	del(udp)
	if _, err := b.AddVIP(port.VIP, VIPConfig{}); err == nil {
		t.Fatal("adding an existing VIP succeeded")
	}
	checkDerived(t, b, vips) // a refused add leaves both maps as they were
	del(vips[0])
	del(vips[0])
	if got := readFilter(t, b); len(got) != 0 {
		t.Errorf("filter after deleting every VIP = %v, want all zero", got)
	}
}

// setupVIP adds v with one active backend and a full ring.
func setupVIP(t *testing.T, b *Balancer, v VIP, c VIPConfig, id uint32) VIPEntry {
	t.Helper()
	e, err := b.AddVIP(v, c)
	if err != nil {
		t.Fatal(err)
	}
	be := testBackend(id, e.Index, "198.18.0.21")
	if err := b.SetBackend(be); err != nil {
		t.Fatal(err)
	}
	if err := b.SetRing(e.Index, ring(b.opts.RingSize, id)); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestVIPFilterRepair simulates processes that died between two writes,
// for many VIP addresses, and checks that packets are never passed for a
// configured VIP once the maps are repaired (as Open and Attach do).
func TestVIPFilterRepair(t *testing.T) {
	b := loadTest(t, Options{MaxVIPs: 4, MaxBackends: 8, MaxFlows: 1024, RingSize: 13, HashSeed: 1})
	if err := b.SetConfig(Config{IfMAC: filterMAC, MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort("198.19.0.1:40000")
	rng := rand.New(rand.NewPCG(2, 3))
	for range 32 {
		addr := netip.AddrFrom4([4]byte{198, 18 + byte(rng.IntN(2)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		v := VIP{Addr: addr, Port: 80, Proto: TCP}
		dst := netip.AddrPortFrom(addr, 80)
		e := setupVIP(t, b, v, VIPConfig{}, 1)
		bucket := vipBucket(addr)

		if act, r, _ := runSYN(t, b, client, dst); act != uint32(XDPTx) || r != ReasonTxDR {
			t.Fatalf("%s: %s, want tx_dr", v, r)
		}
		// The key written, the filter not (what AddVIP's order rules
		// out): the program passes the VIP's packets to the kernel.
		if err := b.setFilter(bucket, 0); err != nil {
			t.Fatal(err)
		}
		if _, r, _ := runSYN(t, b, client, dst); r != ReasonPassNotVIP {
			t.Fatalf("%s with its bucket at 0: %s, want pass_not_vip", v, r)
		}
		// Open's repair raises the bucket.
		if err := b.repairDerived(false); err != nil {
			t.Fatal(err)
		}
		if got := readFilter(t, b)[bucket]; got != 1 {
			t.Errorf("%s: bucket after repair counts %d, want 1", v, got)
		}
		if act, r, _ := runSYN(t, b, client, dst); act != uint32(XDPTx) || r != ReasonTxDR {
			t.Fatalf("%s after repair: %s, want tx_dr", v, r)
		}

		// A delete that died after removing the key, before lowering the
		// bucket: the packets are passed, as they must be, and only the
		// exact repair (Attach's) lowers the bucket.
		if err := b.maps.Vips.Delete(vipKey(v)); err != nil {
			t.Fatal(err)
		}
		if err := b.setVIPInfo(e.Index, lbLbVipInfo{}); err != nil {
			t.Fatal(err)
		}
		if _, r, _ := runSYN(t, b, client, dst); r != ReasonPassNotVIP {
			t.Fatalf("%s deleted: %s, want pass_not_vip", v, r)
		}
		if err := b.repairDerived(false); err != nil {
			t.Fatal(err)
		}
		if got := readFilter(t, b)[bucket]; got != 1 {
			t.Errorf("%s: a raise-only repair changed a bucket counting too many to %d", v, got)
		}
		if err := b.repairDerived(true); err != nil {
			t.Fatal(err)
		}
		checkDerived(t, b, nil)
		if err := b.clearIndex(e.Index); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenAndAdoptRepairDerivedMaps leaves the derived maps of an
// attached balancer wrong, as a process that died mid-change could, and
// checks what Open and a second Attach make of them.
func TestOpenAndAdoptRepairDerivedMaps(t *testing.T) {
	l := newLab(t)
	b, _ := l.mustAttach(t, ModeAuto, smallOptions())
	e := addVIP(t, b, "198.18.1.100:80/tcp", VIPConfig{Forwarding: ForwardTUN})
	bucket := vipBucket(e.VIP.Addr)
	stale := (bucket + 1) % vipFilterSize
	for _, err := range []error{
		b.setFilter(bucket, 0),                          // a VIP the filter misses
		b.setFilter(stale, 5),                           // a bucket counting VIPs that are gone
		b.setVIPInfo(e.Index, lbLbVipInfo{}),            // info of a VIP missing
		b.setVIPInfo(3, vipInfo(e.VIP, VIPConfig{}, 3)), // info of an index no VIP has
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	b.Close()

	o, err := Open(l.dev, l.pinRoot)
	if err != nil {
		t.Fatalf("Open: %+v", err)
	}
	got := readFilter(t, o)
	if got[bucket] != 1 || got[stale] != 5 {
		t.Errorf("after Open: buckets %d = %d and %d = %d, want 1 (raised) and 5 (left: too many is harmless)", bucket, got[bucket], stale, got[stale])
	}
	if info := readVIPInfo(t, o); len(info) != 1 || info[3] == (lbLbVipInfo{}) {
		t.Errorf("after Open: vip_info = %+v, want it untouched (Open is not the writer)", info)
	}
	o.Close()

	a, info := l.mustAttach(t, ModeAuto, smallOptions())
	if !info.Adopted {
		t.Fatalf("second Attach did not adopt: %+v", info)
	}
	checkDerived(t, a, []VIPEntry{e})
}

// TestFilterSharedBucket sends frames to addresses whose filter bucket
// counts a VIP without being that VIP: they take the VIP lookup and are
// passed, unchanged, for the reason they always were.
func TestFilterSharedBucket(t *testing.T) {
	b := loadTest(t, Options{MaxVIPs: 4, MaxBackends: 8, MaxFlows: 64, RingSize: 13, HashSeed: 1})
	shared, other := sameBucket(t, 2)
	vip, neighbour := shared[0], shared[1]
	if _, err := b.AddVIP(VIP{Addr: vip, Port: 80, Proto: TCP}, VIPConfig{}); err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort("198.19.0.1:40000")
	tests := []struct {
		dst  netip.AddrPort
		want Reason
	}{
		{netip.AddrPortFrom(neighbour, 80), ReasonPassNotVIP}, // same bucket, other address
		{netip.AddrPortFrom(vip, 81), ReasonPassNotVIP},       // the VIP's address, other port
		{netip.AddrPortFrom(other, 80), ReasonPassNotVIP},     // a bucket that counts nothing
		{netip.AddrPortFrom(vip, 80), ReasonDropNoBackend},    // the VIP (no backend yet)
	}
	for _, tt := range tests {
		in := synFrame(client, tt.dst)
		act, r, out := runFrame(t, b, bytes.Clone(in))
		if r != tt.want {
			t.Errorf("SYN to %s: %s, want %s", tt.dst, r, tt.want)
		}
		if tt.want == ReasonPassNotVIP && (act != uint32(XDPPass) || !bytes.Equal(in, out)) {
			t.Errorf("SYN to %s: action %d, frame changed %v; want XDP_PASS, unchanged", tt.dst, act, !bytes.Equal(in, out))
		}
	}
}
