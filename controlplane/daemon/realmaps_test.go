package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/controlplane"

	"github.com/xdplb/xdplb/internal/packet"
	"github.com/xdplb/xdplb/internal/testenv"
	"github.com/xdplb/xdplb/loader"
)

var (
	directorMAC = net.HardwareAddr{2, 0xd0, 0, 0, 0, 1}
	clientMAC   = net.HardwareAddr{2, 0xc0, 0, 0, 0, 1}
)

// loadBalancer loads a private balancer (not attached) with small maps.
func loadBalancer(t *testing.T) *loader.Balancer {
	t.Helper()
	testenv.Privileged(t)
	opts := loader.DefaultOptions()
	opts.RingSize = 1021
	opts.MaxVIPs = 8
	opts.MaxBackends = 64
	opts.MaxFlows = 4096
	b, err := loader.Load(opts)
	if err != nil {
		t.Fatalf("load balancer: %+v", err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.SetConfig(loader.Config{IfMAC: directorMAC, MTU: 1500, TunSource: netip.MustParseAddr("198.18.0.10"), TunTTL: 64}); err != nil {
		t.Fatal(err)
	}
	return b
}

// tcpFrame is a TCP segment from client to vip with the given flags.
func tcpFrame(client netip.AddrPort, vip loader.VIP, flags uint8) []byte {
	ip := packet.IPv4{TTL: 64, Src: client.Addr(), Dst: vip.Addr}
	seg := packet.TCP{SrcPort: client.Port(), DstPort: vip.Port, Flags: flags, Window: 65535}
	return packet.Frame(packet.Ethernet{Dst: directorMAC, Src: clientMAC}, packet.TCPPacket(ip, seg, nil))
}

// send runs one frame through the program and returns its verdict and, for
// XDP_TX, the last byte of the destination MAC (macOf's backend number).
func send(t *testing.T, b *loader.Balancer, frame []byte) (loader.XDPAction, byte) {
	t.Helper()
	out := make([]byte, len(frame)+64)
	ret, err := b.Program().Run(&ebpf.RunOptions{Data: frame, DataOut: out})
	if err != nil {
		t.Fatalf("run program: %v", err)
	}
	return loader.XDPAction(ret), out[5]
}

func client(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), uint16(20000+i))
}

// TestEngineOnRealMaps drives the real program: a failing backend stops
// receiving anything as soon as the fast path has written its slot, before
// the table is rebuilt; established flows to the others never move; after
// the rebuild, flows of the failed backend are re-hashed to live ones.
func TestEngineOnRealMaps(t *testing.T) {
	b := loadBalancer(t)
	var logs logBuffer
	e := newTestEngine(t, b, engineYAML, &logs)

	const n = 600
	pinned := make(map[int]byte, n) // client -> backend
	for i := range n {
		act, be := send(t, b, tcpFrame(client(i), webVIP, packet.TCPSyn))
		if act != loader.XDPTx {
			t.Fatalf("SYN %d: %v, want XDP_TX", i, act)
		}
		pinned[i] = be
	}
	count := map[byte]int{}
	for _, be := range pinned {
		count[be]++
	}
	if count[21] == 0 || count[22] == 0 || count[23] == 0 || count[22] < count[21] {
		t.Fatalf("first flows spread %v: want all three backends, .22 (weight 2) the most", count)
	}

	// .22 fails: the fast path alone.
	if !e.setHealth(bkey{webVIP, netipAddr("198.18.0.22")}, false) {
		t.Fatal("fast path did not write")
	}
	before, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for i := range n {
		act, be := send(t, b, tcpFrame(client(i), webVIP, packet.TCPAck))
		switch {
		case pinned[i] == 22 && act != loader.XDPDrop:
			t.Errorf("flow %d of the failed backend: %v to .%d, want dropped until the table is rebuilt", i, act, be)
		case pinned[i] == 22:
			dropped++
		case act != loader.XDPTx || be != pinned[i]:
			t.Errorf("established flow %d moved from .%d to %v .%d", i, pinned[i], act, be)
		}
	}
	for i := n; i < 2*n; i++ {
		if act, be := send(t, b, tcpFrame(client(i), webVIP, packet.TCPSyn)); act == loader.XDPTx && be == 22 {
			t.Fatalf("new flow %d sent to the failed backend", i)
		}
	}
	after, _ := b.Stats()
	if got := after.Reasons[loader.ReasonDropNoBackend] - before.Reasons[loader.ReasonDropNoBackend]; got < uint64(dropped) {
		t.Errorf("drop_no_backend rose by %d, want at least the %d dropped flows", got, dropped)
	}

	// The table is rebuilt: everything is forwarded again, nothing to .22.
	e.applyAll()
	moved := 0
	for i := range n {
		act, be := send(t, b, tcpFrame(client(i), webVIP, packet.TCPAck))
		if act != loader.XDPTx || be == 22 {
			t.Fatalf("flow %d after the rebuild: %v to .%d", i, act, be)
		}
		if pinned[i] != 22 && be != pinned[i] {
			t.Errorf("established flow %d moved from .%d to .%d by the rebuild", i, pinned[i], be)
		}
		if pinned[i] == 22 {
			moved++
		}
	}
	if moved != count[22] {
		t.Errorf("re-hashed %d flows, want the %d of the failed backend", moved, count[22])
	}
	t.Logf("flows: %v; %d dropped during the rebuild window, then re-hashed", count, dropped)
}

// TestEngineRealMapsReadBack: what the engine writes reads back from the
// real maps as the services it was given, so a restarted daemon that reads
// them finds nothing to change.
func TestEngineRealMapsReadBack(t *testing.T) {
	b := loadBalancer(t)
	var logs logBuffer
	first := newTestEngine(t, b, engineYAML, &logs)
	first.setHealth(bkey{dbVIP, netipAddr("198.18.0.32")}, false)
	first.applyAll()

	e := newEngine(b, "eth0", logs.logger())
	inMaps, err := e.adopt()
	if err != nil {
		t.Fatal(err)
	}
	svcs, _ := buildServices(mustParse(t, engineYAML), nil, newRuntimeState())
	e.setServices(svcs)
	e.initialStates(inMaps)
	var wrote []string
	e.onApplied = func(v loader.VIP, r controlplane.Result) {
		if r.Changed() {
			wrote = append(wrote, v.String())
		}
	}
	e.applyAll()
	if len(wrote) != 0 {
		t.Errorf("adopting its own maps rewrote %v", wrote)
	}
	if got := fmt.Sprint(e.health[bkey{dbVIP, netipAddr("198.18.0.32")}]); got != "false" {
		t.Errorf("failed backend adopted as up=%s, want down", got)
	}
}
