package loader

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/xdplb/xdplb/internal/packet"
)

// ackFrame is a TCP ACK from src to dst, addressed to filterMAC.
func ackFrame(src, dst netip.AddrPort) []byte { return tcpFrame(src, dst, packet.TCPAck, 2, 1) }

// flowTestBalancer loads a balancer with one DR VIP whose ring names
// backend 4 only, backend 5 existing too, and returns it and the VIP.
func flowTestBalancer(t *testing.T) (*Balancer, VIPEntry) {
	t.Helper()
	b := loadTest(t, smallOptions())
	if err := b.SetConfig(Config{IfMAC: filterMAC, MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	e := addVIP(t, b, "198.18.1.1:80/tcp", VIPConfig{})
	setBackend(t, b, testBackend(4, e.Index, "198.18.0.24"))
	setBackend(t, b, testBackend(5, e.Index, "198.18.0.25"))
	if err := b.SetRing(e.Index, ring(13, 4)); err != nil {
		t.Fatal(err)
	}
	return b, e
}

// events returns b's event counters.
func events(t *testing.T, b *Balancer) map[Event]uint64 {
	t.Helper()
	s, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s.Events
}

// flowHash4 mirrors flow_hash4 in bpf/flow.h: the words are taken as the
// program loads them from the wire (network order in native words).
func flowHash4(seed uint32, f Flow) uint32 {
	s4, d4 := f.Src.Addr().As4(), f.Dst.Addr().As4()
	saddr := binary.NativeEndian.Uint32(s4[:])
	daddr := binary.NativeEndian.Uint32(d4[:])
	a := uint64(saddr)<<32 | uint64(htons(f.Src.Port()))<<16 | uint64(htons(f.Dst.Port()))
	b := uint64(daddr)<<32 | uint64(f.Proto)
	x := (a ^ uint64(seed)<<16) * 0x9e3779b97f4a7c15
	x = (x ^ x>>29 ^ b) * 0xbf58476d1ce4e5b9
	return uint32(x >> 32)
}

// flowTag mirrors flow_tag: the tag of a flow whose flow hash is h.
func flowTag(h uint32) uint32 { return h | 1 }

// flowBucketIndex mirrors flow_index1: the bucket of flow hash h in a
// table of n buckets.
func flowBucketIndex(h, n uint32) uint32 { return uint32(uint64(h) * uint64(n) >> 32) }

// flowIndexes mirrors flow_index1 and flow_index2: the two buckets of flow
// hash h in a table of n buckets.
func flowIndexes(h, n uint32) [2]uint32 {
	return [2]uint32{flowBucketIndex(h, n), flowBucketIndex(bits.RotateLeft32(h, 16)*0x9e3779b1, n)}
}

// putFlow records f, for VIP slot vipIndex, in an empty way of one of its
// buckets, as the program would for a new flow whose bucket has room.
func putFlow(t testing.TB, b *Balancer, f Flow, vipIndex uint32) {
	t.Helper()
	tbl, err := mapFlows(b.maps.Flows, true)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.close()
	h := flowHash4(b.opts.HashSeed, f)
	tag := flowTag(h)
	for _, i := range flowIndexes(h, uint32(tbl.buckets)) {
		bk := tbl.bucket(int(i))
		for w := range FlowWays {
			if atomic.LoadUint32(&bk.Tag[w]) != 0 {
				continue
			}
			bk.Way[w].Key = flowKey(f)
			bk.Way[w].Val = lbLbFlow{BackendId: f.BackendID, VipIndex: vipIndex}
			atomic.StoreUint32(&bk.Check[w], flowCheck(tag, f.BackendID, vipIndex))
			atomic.StoreUint32(&bk.Tag[w], tag)
			return
		}
	}
	t.Fatalf("put flow %+v: both buckets full", f)
}

// flowsOf returns every flow of b's table.
func flowsOf(t testing.TB, b *Balancer) []Flow {
	t.Helper()
	var got []Flow
	if err := b.Flows(func(f Flow) bool { got = append(got, f); return true }); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestFlowTableMirror sends new flows through the program and finds each
// in one of the two buckets the Go mirror of the flow hash names, in a
// whole way: the loader and the program agree on the table's layout.
func TestFlowTableMirror(t *testing.T) {
	b, _ := flowTestBalancer(t)
	tbl, err := mapFlows(b.maps.Flows, false)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.close()
	for i := range 40 {
		f := Flow{Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 7, byte(i)}), uint16(1000+i*7)),
			Dst: netip.MustParseAddrPort("198.18.1.1:80"), Proto: TCP, BackendID: 4}
		if act, reason, _ := runSYN(t, b, f.Src, f.Dst); XDPAction(act) != XDPTx {
			t.Fatalf("SYN %d: %v, %v", i, XDPAction(act), reason)
		}
		h := flowHash4(b.opts.HashSeed, f)
		found := false
		for _, idx := range flowIndexes(h, uint32(tbl.buckets)) {
			bk := tbl.bucket(int(idx))
			for w := range FlowWays {
				if got, tag, ok := way(bk, w); ok && got == f && tag == flowTag(h) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("flow %v not in bucket %v, where the Go mirror of flow_hash4 puts it", f.Src, flowIndexes(h, uint32(tbl.buckets)))
		}
	}
}

// TestFlowTornWay breaks the check word of a recorded flow, as a write by
// another CPU caught half way would: the control plane no longer lists the
// flow, and the program treats its next packet as a new flow instead of
// trusting the way.
func TestFlowTornWay(t *testing.T) {
	b, e := flowTestBalancer(t)
	f := Flow{Src: netip.MustParseAddrPort("198.18.0.9:5000"), Dst: netip.MustParseAddrPort("198.18.1.1:80"), Proto: TCP, BackendID: 5}
	putFlow(t, b, f, e.Index)
	if got := flowsOf(t, b); !slices.Equal(got, []Flow{f}) {
		t.Fatalf("flows %v, want %v", got, []Flow{f})
	}
	tbl, err := mapFlows(b.maps.Flows, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tbl.buckets {
		bk := tbl.bucket(i)
		for w := range FlowWays {
			if atomic.LoadUint32(&bk.Tag[w]) != 0 {
				bk.Way[w].Val.BackendId = 4 // value changed, check not
			}
		}
	}
	tbl.close()
	if got := flowsOf(t, b); len(got) != 0 {
		t.Errorf("flows with a torn way %v, want none", got)
	}
	before := events(t, b)
	if act, reason, _ := runFrame(t, b, ackFrame(f.Src, f.Dst)); XDPAction(act) != XDPTx {
		t.Fatalf("ACK: %v, %v", XDPAction(act), reason)
	}
	after := events(t, b)
	if n, hit := after[EventFlowNew]-before[EventFlowNew], after[EventFlowHit]-before[EventFlowHit]; n != 1 || hit != 0 {
		t.Errorf("ACK on a torn way counted new %d, hit %d; want a new flow", n, hit)
	}
	if got := flowsOf(t, b); len(got) != 1 || got[0].BackendID != 4 {
		t.Errorf("flows after the ACK %v, want the flow on the ring's backend 4", got)
	}
}

// TestFlowEviction fills a one-bucket table: the fifth flow takes the way
// of the flow unused for longest, counting flow_evicted, and the others
// stay.
func TestFlowEviction(t *testing.T) {
	opts := smallOptions()
	opts.MaxFlows = FlowWays
	b := loadTest(t, opts)
	if err := b.SetConfig(Config{IfMAC: filterMAC, MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	e := addVIP(t, b, "198.18.1.1:80/tcp", VIPConfig{})
	setBackend(t, b, testBackend(4, e.Index, "198.18.0.24"))
	if err := b.SetRing(e.Index, ring(13, 4)); err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddrPort("198.18.1.1:80")
	client := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("198.18.0.9"), uint16(2000+i))
	}
	for i := range FlowWays {
		runSYN(t, b, client(i), vip)
	}
	if got := len(flowsOf(t, b)); got != FlowWays {
		t.Fatalf("%d flows after %d SYNs, want %d", got, FlowWays, FlowWays)
	}
	// Age every way by 3,600,000 jiffies (an hour at HZ=1000), the way
	// of client(2) by twice that.
	tbl, err := mapFlows(b.maps.Flows, true)
	if err != nil {
		t.Fatal(err)
	}
	bk := tbl.bucket(0)
	for w := range FlowWays {
		f, _, ok := way(bk, w)
		if !ok {
			t.Fatalf("way %d not whole", w)
		}
		age := uint32(3_600_000)
		if f.Src == client(2) {
			age *= 2
		}
		bk.Used[w] -= age
	}
	tbl.close()

	before := events(t, b)
	runSYN(t, b, client(9), vip)
	after := events(t, b)
	if n, ev := after[EventFlowNew]-before[EventFlowNew], after[EventFlowEvicted]-before[EventFlowEvicted]; n != 1 || ev != 1 {
		t.Errorf("fifth SYN counted flow_new %d, flow_evicted %d; want 1 and 1", n, ev)
	}
	var srcs []netip.AddrPort
	for _, f := range flowsOf(t, b) {
		srcs = append(srcs, f.Src)
	}
	slices.SortFunc(srcs, func(a, c netip.AddrPort) int { return int(a.Port()) - int(c.Port()) })
	if want := []netip.AddrPort{client(0), client(1), client(3), client(9)}; !slices.Equal(srcs, want) {
		t.Errorf("flows after the eviction %v, want %v (client %v least recently used)", srcs, want, client(2))
	}
}
