package loader_test

// Tests of the real balancer and decap objects through BPF_PROG_TEST_RUN:
// crafted frames in; the action, every byte of the frame out and every
// counter checked against the data-plane design. Expected frames are built
// from the same ingredients as the input with internal/packet, never by
// editing the program's output, so a wrong byte shows as a hex diff.

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/packet"
	"github.com/xdplb/xdplb/internal/testenv"
	"github.com/xdplb/xdplb/loader"
)

var (
	directorMAC = packet.MustMAC("02:00:00:00:00:d0") // config.if_mac
	routerMAC   = packet.MustMAC("02:00:00:00:00:c1") // source of frames from clients
	// otherHostMAC is the destination of frames meant for another host.
	otherHostMAC = packet.MustMAC("02:00:00:00:00:e7")
	tunSource    = netip.MustParseAddr("198.18.0.10") // config.tun_src
	client       = netip.MustParseAddr("198.18.0.1")
)

const testMTU = 1500

// lbEnv is a freshly loaded balancer with small maps.
type lbEnv struct {
	t    testing.TB
	b    *loader.Balancer
	opts loader.Options
}

// newLB loads the balancer with ringSize slots per ring and the test
// config (tun source, director MAC, MTU 1500, TTL default).
func newLB(t testing.TB, ringSize uint32) *lbEnv {
	t.Helper()
	testenv.Privileged(t)
	opts := loader.DefaultOptions()
	opts.RingSize = ringSize
	opts.MaxVIPs = 16
	opts.MaxBackends = 64
	opts.MaxFlows = 4096
	b, err := loader.Load(opts)
	if err != nil {
		t.Fatalf("Load: %+v", err) // %+v prints the verifier log
	}
	t.Cleanup(func() { b.Close() })
	e := &lbEnv{t: t, b: b, opts: opts}
	e.must(b.SetConfig(loader.Config{TunSource: tunSource, IfMAC: directorMAC, MTU: testMTU}))
	return e
}

func (e *lbEnv) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *lbEnv) addVIP(s string, c loader.VIPConfig) loader.VIPEntry {
	e.t.Helper()
	v, err := loader.ParseVIP(s)
	e.must(err)
	ent, err := e.b.AddVIP(v, c)
	e.must(err)
	return ent
}

// backendAddr and backendMAC give backend id its own address and MAC.
func backendAddr(id uint32) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(20 + id)}) }
func backendMAC(id uint32) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0, 0, 0, 0x01, byte(id)}
}

// addBackend writes backend id for VIP v in state s and returns it.
func (e *lbEnv) addBackend(v loader.VIPEntry, id uint32, s loader.BackendState) loader.Backend {
	e.t.Helper()
	be := loader.Backend{ID: id, VIPIndex: v.Index, Addr: backendAddr(id), MAC: backendMAC(id), State: s, Weight: 1}
	e.must(e.b.SetBackend(be))
	return be
}

// setState changes the state of backend id.
func (e *lbEnv) setState(id uint32, s loader.BackendState) {
	e.t.Helper()
	be, err := e.b.Backend(id)
	e.must(err)
	be.State = s
	e.must(e.b.SetBackend(be))
}

// setRing fills v's ring with ids in turn: slot i holds ids[i % len(ids)].
func (e *lbEnv) setRing(v loader.VIPEntry, ids ...uint32) {
	e.t.Helper()
	ring := make([]uint32, e.opts.RingSize)
	for i := range ring {
		ring[i] = ids[i%len(ids)]
	}
	e.must(e.b.SetRing(v.Index, ring))
}

// pick returns the backend id v's ring holds for a new flow src -> dst.
func (e *lbEnv) pick(v loader.VIPEntry, src, dst netip.AddrPort) uint32 {
	e.t.Helper()
	ring, err := e.b.Ring(v.Index)
	e.must(err)
	return ring[e.b.Slot(v, src, dst)]
}

// run runs the balancer once on in.
func (e *lbEnv) run(in []byte) (loader.XDPAction, []byte) {
	e.t.Helper()
	return runProg(e.t, e.b.Program(), in)
}

func runProg(t testing.TB, p *ebpf.Program, in []byte) (loader.XDPAction, []byte) {
	t.Helper()
	opts := &ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+512)}
	ret, err := p.Run(opts)
	if err != nil {
		t.Fatalf("run program on %d-byte frame: %v", len(in), err)
	}
	return loader.XDPAction(ret), opts.DataOut // resliced to the output length
}

func (e *lbEnv) stats() loader.Stats {
	e.t.Helper()
	s, err := e.b.Stats()
	e.must(err)
	return s
}

// flows returns the flow table as "src dst proto" -> backend id.
func (e *lbEnv) flows() map[string]uint32 {
	e.t.Helper()
	m := make(map[string]uint32)
	e.must(e.b.Flows(func(f loader.Flow) bool {
		m[flowName(f.Src, f.Dst, f.Proto)] = f.BackendID
		return true
	}))
	return m
}

func flowName(src, dst netip.AddrPort, p loader.Proto) string {
	return fmt.Sprintf("%s %s %s", src, dst, p)
}

// standard is the set of VIPs most cases run against.
type standard struct {
	*lbEnv
	dr, udp, tun, all, all443, persist, empty loader.VIPEntry
}

// Backends of the standard set, by id.
const (
	idDR1, idDR2         = 1, 2
	idUDP                = 3
	idTUN1, idTUN2       = 4, 5
	idAll, idAll443      = 6, 7
	idPersist0, idPersMx = 8, 11 // 8..11
)

// newStandard loads a balancer with ring size 13 and:
//
//	198.18.1.100:80/tcp  dr   backends 1, 2
//	198.18.1.100:53/udp  dr   backend 3
//	198.18.1.101:80/tcp  tun  backends 4, 5
//	198.18.1.102/tcp     dr   backend 6 (all ports)
//	198.18.1.102:443/tcp tun  backend 7
//	198.18.1.103:80/tcp  dr   backends 8..11, source persistence /24
//	198.18.1.104:80/tcp  dr   no backend, no ring
func newStandard(t testing.TB) *standard {
	t.Helper()
	s := &standard{lbEnv: newLB(t, 13)}
	s.dr = s.addVIP("198.18.1.100:80/tcp", loader.VIPConfig{})
	s.addBackend(s.dr, idDR1, loader.StateActive)
	s.addBackend(s.dr, idDR2, loader.StateActive)
	s.setRing(s.dr, idDR1, idDR2)

	s.udp = s.addVIP("198.18.1.100:53/udp", loader.VIPConfig{})
	s.addBackend(s.udp, idUDP, loader.StateActive)
	s.setRing(s.udp, idUDP)

	s.tun = s.addVIP("198.18.1.101:80/tcp", loader.VIPConfig{Forwarding: loader.ForwardTUN})
	s.addBackend(s.tun, idTUN1, loader.StateActive)
	s.addBackend(s.tun, idTUN2, loader.StateActive)
	s.setRing(s.tun, idTUN1, idTUN2)

	s.all = s.addVIP("198.18.1.102/tcp", loader.VIPConfig{})
	s.addBackend(s.all, idAll, loader.StateActive)
	s.setRing(s.all, idAll)
	s.all443 = s.addVIP("198.18.1.102:443/tcp", loader.VIPConfig{Forwarding: loader.ForwardTUN})
	s.addBackend(s.all443, idAll443, loader.StateActive)
	s.setRing(s.all443, idAll443)

	s.persist = s.addVIP("198.18.1.103:80/tcp", loader.VIPConfig{Persist: true, PersistPrefix: 24})
	var ids []uint32
	for id := uint32(idPersist0); id <= idPersMx; id++ {
		s.addBackend(s.persist, id, loader.StateActive)
		ids = append(ids, id)
	}
	s.setRing(s.persist, ids...)

	s.empty = s.addVIP("198.18.1.104:80/tcp", loader.VIPConfig{})
	return s
}

// ap parses "a.b.c.d:port".
func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// pkt describes one test packet: an IPv4 header, a TCP or UDP header and
// payload, in an Ethernet frame with optional VLAN tags and padding.
type pkt struct {
	src, dst netip.AddrPort
	udp      bool
	flags    uint8 // TCP flags; ACK when zero
	ip       packet.IPv4
	payload  []byte
	vlans    []packet.VLAN
	pad      int // zero bytes after the IPv4 datagram
	ethSrc   net.HardwareAddr
}

// l3 returns the IPv4 packet of p.
func (p pkt) l3() []byte {
	ip := p.ip
	ip.Src, ip.Dst = p.src.Addr(), p.dst.Addr()
	if ip.TTL == 0 {
		ip.TTL = 64
	}
	if p.udp {
		return packet.UDPPacket(ip, packet.UDP{SrcPort: p.src.Port(), DstPort: p.dst.Port()}, p.payload)
	}
	flags := p.flags
	if flags == 0 {
		flags = packet.TCPAck
	}
	return packet.TCPPacket(ip, packet.TCP{SrcPort: p.src.Port(), DstPort: p.dst.Port(), Seq: 1000, Ack: 2000, Flags: flags, Window: 502}, p.payload)
}

// frameWith returns l3 in an Ethernet frame dst <- src with p's tags and
// padding.
func (p pkt) frameWith(dst, src net.HardwareAddr, l3 []byte) []byte {
	f := packet.Frame(packet.Ethernet{Dst: dst, Src: src, VLANs: p.vlans}, l3)
	return append(f, make([]byte, p.pad)...)
}

// frame is the frame as it arrives at the director.
func (p pkt) frame() []byte {
	src := p.ethSrc
	if src == nil {
		src = routerMAC
	}
	return p.frameWith(directorMAC, src, p.l3())
}

// dr is the frame the balancer sends to backend be by direct routing:
// only the MACs differ.
func (p pkt) dr(be loader.Backend) []byte {
	return p.frameWith(be.MAC, directorMAC, p.l3())
}

// tun is the frame the balancer sends to backend be over IPIP with outer
// TTL ttl: padding is trimmed, TOS, id and DF come from the inner header.
func (p pkt) tun(be loader.Backend, ttl uint8) []byte {
	outer := packet.IPv4{TOS: p.ip.TOS, ID: p.ip.ID, DF: p.ip.DF, TTL: ttl, Src: tunSource, Dst: be.Addr}
	q := p
	q.pad = 0
	return q.frameWith(be.MAC, directorMAC, packet.IPIPPacket(outer, p.l3()))
}

// icmpTooBig is the fragmentation-needed reply to p, from the VIP to the
// client, quoting p's IPv4 header and 8 payload bytes.
func (p pkt) icmpTooBig(mtu uint16) []byte {
	l3 := p.l3()
	quote := l3[:p.ip.HeaderLen()+8]
	ip := packet.IPv4{TTL: 64, Protocol: packet.ProtoICMP, Src: p.dst.Addr(), Dst: p.src.Addr()}
	q := p
	q.pad = 0
	src := p.ethSrc
	if src == nil {
		src = routerMAC
	}
	return q.frameWith(src, directorMAC, ip.Marshal(packet.FragNeeded(mtu).Marshal(quote)))
}

// counts are the counters a case expects to move.
type counts struct {
	reason  loader.Reason
	events  map[loader.Event]uint64
	vip     *loader.VIPEntry // forwarded: this VIP and backend count the frame
	backend uint32
}

// checkCounters asserts that exactly the counters in want moved between
// before and after, for a frame of n bytes.
func checkCounters(t *testing.T, before, after loader.Stats, want counts, n int) {
	t.Helper()
	for r, v := range after.Reasons {
		d := v - before.Reasons[r]
		w := uint64(0)
		if r == want.reason {
			w = 1
		}
		if d != w {
			t.Errorf("reason %s moved by %d, want %d", r, d, w)
		}
	}
	for ev, v := range after.Events {
		if d, w := v-before.Events[ev], want.events[ev]; d != w {
			t.Errorf("event %s moved by %d, want %d", ev, d, w)
		}
	}
	for idx, c := range after.VIPs {
		w := loader.Counter{}
		if want.vip != nil && want.vip.Index == idx {
			w = loader.Counter{Packets: 1, Bytes: uint64(n)}
		}
		d := loader.Counter{Packets: c.Packets - before.VIPs[idx].Packets, Bytes: c.Bytes - before.VIPs[idx].Bytes}
		if d != w {
			t.Errorf("vip_stats[%d] moved by %+v, want %+v", idx, d, w)
		}
	}
	for id, c := range after.Backends {
		w := loader.Counter{}
		if want.backend == id {
			w = loader.Counter{Packets: 1, Bytes: uint64(n)}
		}
		d := loader.Counter{Packets: c.Packets - before.Backends[id].Packets, Bytes: c.Bytes - before.Backends[id].Bytes}
		if d != w {
			t.Errorf("backend_stats[%d] moved by %+v, want %+v", id, d, w)
		}
	}
}

func ev(e loader.Event) map[loader.Event]uint64 { return map[loader.Event]uint64{e: 1} }

// xdpCase is one row of the balancer table.
type xdpCase struct {
	name  string
	setup func(s *standard) // runs before the packet (may send packets)
	in    func(s *standard) []byte
	want  loader.XDPAction
	// out is the expected frame; nil means the input, unchanged (checked
	// for every action but XDP_DROP, whose frame goes nowhere).
	out   func(s *standard) []byte
	count func(s *standard) counts
	check func(t *testing.T, s *standard) // further assertions
}

func runCases(t *testing.T, cases []xdpCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStandard(t)
			if tc.setup != nil {
				tc.setup(s)
			}
			in := tc.in(s)
			orig := bytes.Clone(in)
			before := s.stats()
			got, out := s.run(in)
			after := s.stats()
			if got != tc.want {
				t.Errorf("action = %v, want %v", got, tc.want)
			}
			switch {
			case tc.out != nil:
				if d := packet.Diff(tc.out(s), out); d != "" {
					t.Errorf("output frame:\n%s", d)
				}
			case tc.want != loader.XDPDrop:
				if d := packet.Diff(orig, out); d != "" {
					t.Errorf("frame was modified:\n%s", d)
				}
			}
			checkCounters(t, before, after, tc.count(s), len(orig))
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

// Flows used across cases.
var (
	cli1    = ap("198.18.0.1:40001")
	cli2    = ap("198.18.0.1:40002")
	vipDR   = ap("198.18.1.100:80")
	vipUDP  = ap("198.18.1.100:53")
	vipTUN  = ap("198.18.1.101:80")
	vipAll  = ap("198.18.1.102:8080")
	vip443  = ap("198.18.1.102:443")
	vipPers = ap("198.18.1.103:80")
	vipNone = ap("198.18.1.104:80")
)

func (s *standard) backend(id uint32) loader.Backend {
	s.t.Helper()
	be, err := s.b.Backend(id)
	s.must(err)
	return be
}

// pickBackend is the backend v's ring gives the flow of p.
func (s *standard) pickBackend(v loader.VIPEntry, p pkt) loader.Backend {
	s.t.Helper()
	return s.backend(s.pick(v, p.src, p.dst))
}

// send runs p through the balancer and fails unless it was sent out.
func (s *standard) send(p pkt) {
	s.t.Helper()
	if got, _ := s.run(p.frame()); got != loader.XDPTx {
		s.t.Fatalf("setup packet %s -> %s: action %v, want XDP_TX", p.src, p.dst, got)
	}
}

// wantFlow asserts the flow table pins p's flow to backend id (0: absent).
func wantFlow(t *testing.T, s *standard, p pkt, id uint32) {
	t.Helper()
	proto := loader.TCP
	if p.udp {
		proto = loader.UDP
	}
	got, ok := s.flows()[flowName(p.src, p.dst, proto)]
	switch {
	case id == 0 && ok:
		t.Errorf("flow %s -> %s pinned to backend %d, want no entry", p.src, p.dst, got)
	case id != 0 && got != id:
		t.Errorf("flow %s -> %s pinned to backend %d (present %v), want %d", p.src, p.dst, got, ok, id)
	}
}

func fwd(v func(s *standard) loader.VIPEntry, p pkt, event loader.Event) func(s *standard) counts {
	return func(s *standard) counts {
		vip := v(s)
		return counts{reason: reasonFor(vip), events: ev(event), vip: &vip, backend: s.pick(vip, p.src, p.dst)}
	}
}

func reasonFor(v loader.VIPEntry) loader.Reason {
	if v.Config.Forwarding == loader.ForwardTUN {
		return loader.ReasonTxTUN
	}
	return loader.ReasonTxDR
}

func pass(r loader.Reason) func(*standard) counts {
	return func(*standard) counts { return counts{reason: r} }
}

func vDR(s *standard) loader.VIPEntry     { return s.dr }
func vUDP(s *standard) loader.VIPEntry    { return s.udp }
func vTUN(s *standard) loader.VIPEntry    { return s.tun }
func vAll(s *standard) loader.VIPEntry    { return s.all }
func vAll443(s *standard) loader.VIPEntry { return s.all443 }

func frameOf(p pkt) func(*standard) []byte { return func(*standard) []byte { return p.frame() } }

func drTo(v func(*standard) loader.VIPEntry, p pkt) func(*standard) []byte {
	return func(s *standard) []byte { return p.dr(s.pickBackend(v(s), p)) }
}

func tunTo(v func(*standard) loader.VIPEntry, p pkt, ttl uint8) func(*standard) []byte {
	return func(s *standard) []byte { return p.tun(s.pickBackend(v(s), p), ttl) }
}

func TestXDPForwarding(t *testing.T) {
	syn := pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn, ip: packet.IPv4{ID: 0x1c46, DF: true}}
	ack := pkt{src: cli1, dst: vipDR, payload: []byte("GET / HTTP/1.1\r\n\r\n"), ip: packet.IPv4{ID: 0x1c47, DF: true}}
	udp := pkt{src: cli1, dst: vipUDP, udp: true, payload: []byte("query")}
	tunSyn := pkt{src: cli1, dst: vipTUN, flags: packet.TCPSyn, ip: packet.IPv4{TOS: 0x28, ID: 0xbeef, DF: true}}
	tunNoDF := pkt{src: cli2, dst: vipTUN, payload: []byte{1, 2, 3}, ip: packet.IPv4{ID: 7}}
	tunRF := pkt{src: cli2, dst: vipTUN, payload: []byte{4}, ip: packet.IPv4{ID: 8, DF: true, RF: true}}
	opts := pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn, ip: packet.IPv4{ID: 3, DF: true,
		Options: []byte{0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00}}} // router alert, NOP, NOP, NOP, EOL
	tunOpts := pkt{src: cli1, dst: vipTUN, flags: packet.TCPSyn, ip: opts.ip}
	vlan := pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn, vlans: []packet.VLAN{{Priority: 3, ID: 100}}}
	qinq := pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn, vlans: []packet.VLAN{{TPID: packet.EtherTypeQinQ, ID: 4094}}}
	tunVLAN := pkt{src: cli1, dst: vipTUN, flags: packet.TCPSyn, vlans: []packet.VLAN{{ID: 10}}, ip: packet.IPv4{DF: true}}
	padded := pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn, pad: 6} // 54-byte frame padded to 60
	tunPadded := pkt{src: cli1, dst: vipTUN, flags: packet.TCPSyn, pad: 6}
	rst := pkt{src: cli2, dst: vipDR, flags: packet.TCPRst | packet.TCPAck}
	tunRST := pkt{src: cli2, dst: vipTUN, flags: packet.TCPRst}
	allPorts := pkt{src: cli1, dst: vipAll, flags: packet.TCPSyn}
	specific := pkt{src: cli1, dst: vip443, flags: packet.TCPSyn}

	runCases(t, []xdpCase{
		{
			name: "tcp syn to dr vip creates a flow", in: frameOf(syn), want: loader.XDPTx,
			out: drTo(vDR, syn), count: fwd(vDR, syn, loader.EventFlowNew),
			check: func(t *testing.T, s *standard) { wantFlow(t, s, syn, s.pick(s.dr, syn.src, syn.dst)) },
		},
		{
			name: "established flow hits its entry", setup: func(s *standard) { s.send(syn) },
			in: frameOf(ack), want: loader.XDPTx, out: drTo(vDR, ack), count: fwd(vDR, ack, loader.EventFlowHit),
		},
		{
			name: "udp to dr vip", in: frameOf(udp), want: loader.XDPTx, out: drTo(vUDP, udp),
			count: fwd(vUDP, udp, loader.EventFlowNew),
			check: func(t *testing.T, s *standard) { wantFlow(t, s, udp, idUDP) },
		},
		{
			name: "ipv4 options forwarded untouched by dr", in: frameOf(opts), want: loader.XDPTx,
			out: drTo(vDR, opts), count: fwd(vDR, opts, loader.EventFlowNew),
		},
		{
			name: "802.1q tag kept by dr", in: frameOf(vlan), want: loader.XDPTx,
			out: drTo(vDR, vlan), count: fwd(vDR, vlan, loader.EventFlowNew),
		},
		{
			name: "802.1ad tag kept by dr", in: frameOf(qinq), want: loader.XDPTx,
			out: drTo(vDR, qinq), count: fwd(vDR, qinq, loader.EventFlowNew),
		},
		{
			name: "ethernet padding kept by dr", in: frameOf(padded), want: loader.XDPTx,
			out: drTo(vDR, padded), count: fwd(vDR, padded, loader.EventFlowNew),
			check: func(t *testing.T, s *standard) {
				if n := len(padded.frame()); n != 60 {
					t.Fatalf("padded frame is %d bytes, want 60", n)
				}
			},
		},
		{
			name: "tun encapsulates with tos, id and df copied", in: frameOf(tunSyn), want: loader.XDPTx,
			out: tunTo(vTUN, tunSyn, 64), count: fwd(vTUN, tunSyn, loader.EventFlowNew),
			check: func(t *testing.T, s *standard) {
				_, out := s.run(tunSyn.frame())
				checkOuter(t, out, tunSyn, s.pickBackend(s.tun, tunSyn), 64)
			},
		},
		{
			name: "tun without df clears outer df", in: frameOf(tunNoDF), want: loader.XDPTx,
			out: tunTo(vTUN, tunNoDF, 64), count: fwd(vTUN, tunNoDF, loader.EventFlowNew),
		},
		{
			// The reserved flag is the inner packet's business: only DF is
			// copied to the outer header.
			name: "tun copies only df from frag_off", in: frameOf(tunRF), want: loader.XDPTx,
			out: tunTo(vTUN, tunRF, 64), count: fwd(vTUN, tunRF, loader.EventFlowNew),
		},
		{
			name: "tun outer ttl from config",
			setup: func(s *standard) {
				s.must(s.b.SetConfig(loader.Config{TunSource: tunSource, IfMAC: directorMAC, MTU: testMTU, TunTTL: 7}))
			},
			in: frameOf(tunSyn), want: loader.XDPTx, out: tunTo(vTUN, tunSyn, 7), count: fwd(vTUN, tunSyn, loader.EventFlowNew),
		},
		{
			name: "tun keeps inner ipv4 options", in: frameOf(tunOpts), want: loader.XDPTx,
			out: tunTo(vTUN, tunOpts, 64), count: fwd(vTUN, tunOpts, loader.EventFlowNew),
		},
		{
			name: "tun keeps the vlan tag", in: frameOf(tunVLAN), want: loader.XDPTx,
			out: tunTo(vTUN, tunVLAN, 64), count: fwd(vTUN, tunVLAN, loader.EventFlowNew),
		},
		{
			name: "tun trims ethernet padding", in: frameOf(tunPadded), want: loader.XDPTx,
			out: tunTo(vTUN, tunPadded, 64), count: fwd(vTUN, tunPadded, loader.EventFlowNew),
		},
		{
			name: "rst without a flow is forwarded and creates none", in: frameOf(rst), want: loader.XDPTx,
			out: drTo(vDR, rst), count: fwd(vDR, rst, loader.EventFlowRSTSkipped),
			check: func(t *testing.T, s *standard) { wantFlow(t, s, rst, 0) },
		},
		{
			name: "tun rst without a flow creates none", in: frameOf(tunRST), want: loader.XDPTx,
			out: tunTo(vTUN, tunRST, 64), count: fwd(vTUN, tunRST, loader.EventFlowRSTSkipped),
			check: func(t *testing.T, s *standard) { wantFlow(t, s, tunRST, 0) },
		},
		{
			name: "rst of an established flow follows it",
			setup: func(s *standard) {
				s.send(pkt{src: rst.src, dst: rst.dst, flags: packet.TCPSyn})
			},
			in: frameOf(rst), want: loader.XDPTx, out: drTo(vDR, rst), count: fwd(vDR, rst, loader.EventFlowHit),
			check: func(t *testing.T, s *standard) { wantFlow(t, s, rst, s.pick(s.dr, rst.src, rst.dst)) },
		},
		{
			name: "all-ports vip catches any port", in: frameOf(allPorts), want: loader.XDPTx,
			out: drTo(vAll, allPorts), count: fwd(vAll, allPorts, loader.EventFlowNew),
		},
		{
			name: "port vip wins over all-ports vip", in: frameOf(specific), want: loader.XDPTx,
			out: tunTo(vAll443, specific, 64), count: fwd(vAll443, specific, loader.EventFlowNew),
		},
	})
}

// checkOuter decodes the outer header of an IPIP frame and checks it field
// by field, independently of the byte comparison: a failure names the field.
func checkOuter(t *testing.T, frame []byte, p pkt, be loader.Backend, ttl uint8) {
	t.Helper()
	d, err := packet.Decode(frame)
	if err != nil || d.IP == nil {
		t.Fatalf("decode IPIP frame: %v", err)
	}
	o := d.IP
	inner := p.l3()
	if o.Version != 4 || o.IHL != 5 || o.Protocol != packet.ProtoIPIP || o.TTL != ttl ||
		o.Src != tunSource || o.Dst != be.Addr || int(o.TotalLen) != 20+len(inner) ||
		o.TOS != p.ip.TOS || o.ID != p.ip.ID || o.DF != p.ip.DF || o.MF || o.FragOffset != 0 {
		t.Errorf("outer header = %+v", *o)
	}
	if !packet.ChecksumOK(frame[d.IPOffset : d.IPOffset+20]) {
		t.Errorf("outer header checksum %#04x invalid", o.Checksum)
	}
	if !bytes.Equal(d.IPPayload, inner) {
		t.Errorf("inner packet changed:\n%s", packet.Diff(inner, d.IPPayload))
	}
	if !bytes.Equal(d.Eth.Dst, be.MAC) || !bytes.Equal(d.Eth.Src, directorMAC) {
		t.Errorf("MACs %s <- %s, want %s <- %s", d.Eth.Dst, d.Eth.Src, be.MAC, directorMAC)
	}
}

func TestXDPPassesWhatIsNotForAVIP(t *testing.T) {
	arp := packet.Frame(packet.Ethernet{Dst: packet.MustMAC("ff:ff:ff:ff:ff:ff"), Src: routerMAC, EtherType: packet.EtherTypeARP},
		[]byte{0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0xc1, 198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 1, 100})
	ipv6 := packet.Frame(packet.Ethernet{Dst: directorMAC, Src: routerMAC, EtherType: packet.EtherTypeIPv6}, make([]byte, 60))
	vlanARP := packet.Frame(packet.Ethernet{Dst: directorMAC, Src: routerMAC, VLANs: []packet.VLAN{{ID: 5}}, EtherType: packet.EtherTypeARP}, make([]byte, 28))
	stacked := pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn, vlans: []packet.VLAN{{TPID: packet.EtherTypeQinQ, ID: 1}, {ID: 2}}}
	otherAddr := pkt{src: cli1, dst: ap("198.18.1.99:80"), flags: packet.TCPSyn}
	otherPort := pkt{src: cli1, dst: ap("198.18.1.100:81"), flags: packet.TCPSyn}
	otherProto := pkt{src: cli1, dst: vipDR, udp: true}
	icmp := packet.Frame(packet.Ethernet{Dst: directorMAC, Src: routerMAC},
		packet.IPv4{TTL: 64, Protocol: packet.ProtoICMP, Src: client, Dst: vipDR.Addr()}.Marshal(packet.ICMP{Type: 8}.Marshal([]byte("ping"))))
	gre := packet.Frame(packet.Ethernet{Dst: directorMAC, Src: routerMAC},
		packet.IPv4{TTL: 64, Protocol: 47, Src: client, Dst: vipDR.Addr()}.Marshal(make([]byte, 8)))
	ipip := packet.Frame(packet.Ethernet{Dst: directorMAC, Src: routerMAC},
		packet.IPIPPacket(packet.IPv4{TTL: 64, Src: client, Dst: vipDR.Addr()}, pkt{src: cli1, dst: vipDR}.l3()))
	// A reply from a backend passing through: source is the VIP, not the destination.
	reply := pkt{src: vipDR, dst: cli1, flags: packet.TCPSyn | packet.TCPAck}
	raw := func(b []byte) func(*standard) []byte { return func(*standard) []byte { return b } }
	// A frame for a VIP that a switch floods to every port because it has
	// not learnt the destination MAC (another director's, during a VRRP
	// failover): the host it is for forwards it, this one must not.
	flooded := func(p pkt) func(*standard) []byte {
		return func(*standard) []byte {
			f := p.frame()
			copy(f[:6], otherHostMAC)
			return f
		}
	}
	syn := pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn}
	ack := pkt{src: cli1, dst: vipDR}
	noFlow := func(t *testing.T, s *standard) { wantFlow(t, s, ack, 0) }

	runCases(t, []xdpCase{
		{name: "syn for a vip sent to another host's mac", in: flooded(syn), want: loader.XDPPass,
			count: pass(loader.ReasonPassOtherHost), check: noFlow},
		{name: "established flow's frame sent to another host's mac",
			setup: func(s *standard) { s.send(syn) }, in: flooded(ack), want: loader.XDPPass,
			count: pass(loader.ReasonPassOtherHost),
			check: func(t *testing.T, s *standard) { wantFlow(t, s, ack, s.pick(s.dr, ack.src, ack.dst)) }},
		{name: "udp for a vip sent to another host's mac", in: flooded(pkt{src: cli1, dst: vipUDP, udp: true}),
			want: loader.XDPPass, count: pass(loader.ReasonPassOtherHost)},
		{name: "arp", in: raw(arp), want: loader.XDPPass, count: pass(loader.ReasonPassNotIPv4)},
		{name: "ipv6", in: raw(ipv6), want: loader.XDPPass, count: pass(loader.ReasonPassNotIPv4)},
		{name: "vlan-tagged arp", in: raw(vlanARP), want: loader.XDPPass, count: pass(loader.ReasonPassNotIPv4)},
		{name: "stacked vlan tags", in: frameOf(stacked), want: loader.XDPPass, count: pass(loader.ReasonPassVLANStacked)},
		{name: "address without vip", in: frameOf(otherAddr), want: loader.XDPPass, count: pass(loader.ReasonPassNotVIP)},
		{name: "vip address, other port", in: frameOf(otherPort), want: loader.XDPPass, count: pass(loader.ReasonPassNotVIP)},
		{name: "vip address and port, other protocol", in: frameOf(otherProto), want: loader.XDPPass, count: pass(loader.ReasonPassNotVIP)},
		{name: "reply from a backend", in: frameOf(reply), want: loader.XDPPass, count: pass(loader.ReasonPassNotVIP)},
		{name: "icmp to vip", in: raw(icmp), want: loader.XDPPass, count: pass(loader.ReasonPassNotL4)},
		{name: "gre to vip", in: raw(gre), want: loader.XDPPass, count: pass(loader.ReasonPassNotL4)},
		{name: "ipip to vip", in: raw(ipip), want: loader.XDPPass, count: pass(loader.ReasonPassNotL4)},
	})
}

func TestXDPFragments(t *testing.T) {
	seg := packet.TCP{SrcPort: cli1.Port(), DstPort: vipDR.Port(), Flags: packet.TCPAck}.Marshal(client, vipDR.Addr(), make([]byte, 100))
	frags, err := packet.Fragment(packet.IPv4{ID: 77, TTL: 64, Protocol: packet.ProtoTCP, Src: client, Dst: vipDR.Addr()}, seg, 64)
	if err != nil {
		t.Fatal(err)
	}
	udpSeg := packet.UDP{SrcPort: cli1.Port(), DstPort: vipUDP.Port()}.Marshal(client, vipUDP.Addr(), make([]byte, 100))
	udpFrags, err := packet.Fragment(packet.IPv4{ID: 78, TTL: 64, Protocol: packet.ProtoUDP, Src: client, Dst: vipUDP.Addr()}, udpSeg, 64)
	if err != nil {
		t.Fatal(err)
	}
	// A "fragment" whose offset is set and MF clear: the last one.
	eth := func(l3 []byte) func(*standard) []byte {
		return func(*standard) []byte { return packet.Frame(packet.Ethernet{Dst: directorMAC, Src: routerMAC}, l3) }
	}
	noFlows := func(t *testing.T, s *standard) {
		if f := s.flows(); len(f) != 0 {
			t.Errorf("flow table = %v, want empty", f)
		}
	}
	frag := pass(loader.ReasonPassFragment)
	runCases(t, []xdpCase{
		{name: "first tcp fragment", in: eth(frags[0]), want: loader.XDPPass, count: frag, check: noFlows},
		{name: "middle tcp fragment", in: eth(frags[1]), want: loader.XDPPass, count: frag, check: noFlows},
		{name: "last tcp fragment", in: eth(frags[len(frags)-1]), want: loader.XDPPass, count: frag, check: noFlows},
		{name: "first udp fragment", in: eth(udpFrags[0]), want: loader.XDPPass, count: frag, check: noFlows},
		{name: "last udp fragment", in: eth(udpFrags[len(udpFrags)-1]), want: loader.XDPPass, count: frag, check: noFlows},
	})
}

func TestXDPMalformed(t *testing.T) {
	base := pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn}
	// mutate returns base's frame with f applied to its bytes (L3 at 14).
	mutate := func(p pkt, f func(b []byte)) func(*standard) []byte {
		return func(*standard) []byte {
			b := p.frame()
			f(b)
			return b
		}
	}
	fixIPSum := func(b []byte, off, hl int) {
		b[off+10], b[off+11] = 0, 0
		c := packet.Checksum(b[off : off+hl])
		b[off+10], b[off+11] = byte(c>>8), byte(c)
	}
	mal := pass(loader.ReasonPassMalformed)
	runCases(t, []xdpCase{
		{name: "ip version 6 in an ipv4 ethertype", in: mutate(base, func(b []byte) { b[14] = 0x65; fixIPSum(b, 14, 20) }),
			want: loader.XDPPass, count: mal},
		{name: "ihl 4", in: mutate(base, func(b []byte) { b[14] = 0x44; fixIPSum(b, 14, 20) }),
			want: loader.XDPPass, count: mal},
		{name: "ihl 4, udp", in: mutate(pkt{src: cli1, dst: vipUDP, udp: true, payload: make([]byte, 8)}, func(b []byte) { b[14] = 0x44; fixIPSum(b, 14, 20) }),
			want: loader.XDPPass, count: mal},
		{name: "ihl beyond the frame", in: mutate(base, func(b []byte) { b[14] = 0x4f; fixIPSum(b, 14, 20) }),
			want: loader.XDPPass, count: mal},
		{name: "total length below header length", in: mutate(base, func(b []byte) { b[16], b[17] = 0, 19; fixIPSum(b, 14, 20) }),
			want: loader.XDPPass, count: mal},
		{name: "total length beyond the frame", in: mutate(base, func(b []byte) { b[16], b[17] = 0, 41; fixIPSum(b, 14, 20) }),
			want: loader.XDPPass, count: mal},
		{name: "tcp data offset 4", in: mutate(base, func(b []byte) { b[34+12] = 0x40 }),
			want: loader.XDPPass, count: mal},
		{
			// The frame is long enough, but the datagram ends 10 bytes into
			// the TCP header: padding is not taken for header bytes.
			name: "tcp header beyond total length, frame padded",
			in: mutate(pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn, pad: 10}, func(b []byte) {
				b[16], b[17] = 0, 30
				fixIPSum(b, 14, 20)
			}),
			want: loader.XDPPass, count: mal,
		},
		{
			name: "udp header beyond total length, frame padded",
			in: mutate(pkt{src: cli1, dst: vipUDP, udp: true, pad: 10}, func(b []byte) {
				b[16], b[17] = 0, 24
				fixIPSum(b, 14, 20)
			}),
			want: loader.XDPPass, count: mal,
		},
	})
}

// TestXDPTruncated cuts frames for VIPs at every length from the Ethernet
// header on: each one must reach the kernel untouched as malformed. (The
// kernel refuses test frames shorter than an Ethernet header.)
func TestXDPTruncated(t *testing.T) {
	s := newStandard(t)
	frames := map[string][]byte{
		"vlan tcp with options": pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn, vlans: []packet.VLAN{{ID: 9}},
			ip: packet.IPv4{Options: []byte{1, 1, 1, 0}}, payload: []byte{0xaa}}.frame(),
		"udp":             pkt{src: cli1, dst: vipUDP, udp: true}.frame(),
		"tun tcp":         pkt{src: cli1, dst: vipTUN, flags: packet.TCPSyn}.frame(),
		"all-ports vlan":  pkt{src: cli1, dst: vipAll, vlans: []packet.VLAN{{TPID: packet.EtherTypeQinQ, ID: 9}}}.frame(),
		"persistence vip": pkt{src: cli1, dst: vipPers, ip: packet.IPv4{Options: make([]byte, 40)}}.frame(),
	}
	for name, full := range frames {
		t.Run(name, func(t *testing.T) {
			for n := packet.EthernetLen; n < len(full); n++ {
				in := bytes.Clone(full[:n])
				before := s.stats()
				got, out := s.run(in)
				after := s.stats()
				if got != loader.XDPPass {
					t.Errorf("%d of %d bytes: action %v, want XDP_PASS", n, len(full), got)
				}
				if d := packet.Diff(full[:n], out); d != "" {
					t.Errorf("%d of %d bytes: frame modified:\n%s", n, len(full), d)
				}
				checkCounters(t, before, after, counts{reason: loader.ReasonPassMalformed}, n)
			}
			if f := s.flows(); len(f) != 0 {
				t.Errorf("flow table = %v, want empty", f)
			}
		})
	}
}

func TestXDPTooBigForTunnel(t *testing.T) {
	// An inner packet of 1480 bytes is 1500 once encapsulated: it fits.
	// One byte more does not.
	sized := func(n int, df bool, vlans []packet.VLAN, opts []byte) pkt {
		p := pkt{src: cli1, dst: vipTUN, ip: packet.IPv4{ID: 9, DF: df, Options: opts}, vlans: vlans}
		p.payload = make([]byte, n-p.ip.HeaderLen()-20)
		for i := range p.payload {
			p.payload[i] = byte(i)
		}
		return p
	}
	fits := sized(1480, true, nil, nil)
	big := sized(1481, true, nil, nil)
	bigVLANOpts := sized(1500, true, []packet.VLAN{{ID: 42}}, []byte{0x94, 0x04, 0, 0})
	bigNoDF := sized(1481, false, nil, nil)
	tooBig := func(*standard) counts {
		return counts{reason: loader.ReasonTxICMPTooBig, events: ev(loader.EventFlowNew)}
	}

	runCases(t, []xdpCase{
		{name: "exactly the mtu once encapsulated", in: frameOf(fits), want: loader.XDPTx,
			out: tunTo(vTUN, fits, 64), count: fwd(vTUN, fits, loader.EventFlowNew)},
		{name: "one byte over with df gets icmp", in: frameOf(big), want: loader.XDPTx,
			out: func(*standard) []byte { return big.icmpTooBig(testMTU - 20) }, count: tooBig,
			check: func(t *testing.T, s *standard) {
				_, out := s.run(big.frame())
				checkICMP(t, out, big)
			}},
		{name: "icmp keeps vlan tag and quotes options", in: frameOf(bigVLANOpts), want: loader.XDPTx,
			out: func(*standard) []byte { return bigVLANOpts.icmpTooBig(testMTU - 20) }, count: tooBig,
			check: func(t *testing.T, s *standard) {
				_, out := s.run(bigVLANOpts.frame())
				checkICMP(t, out, bigVLANOpts)
			}},
		{name: "one byte over without df is dropped", in: frameOf(bigNoDF), want: loader.XDPDrop,
			count: func(*standard) counts {
				return counts{reason: loader.ReasonDropTooBig, events: ev(loader.EventFlowNew)}
			}},
		{name: "smaller mtu from config",
			setup: func(s *standard) {
				s.must(s.b.SetConfig(loader.Config{TunSource: tunSource, IfMAC: directorMAC, MTU: 1400}))
			},
			in: frameOf(fits), want: loader.XDPTx,
			out:   func(*standard) []byte { return fits.icmpTooBig(1380) },
			count: tooBig},
		{name: "mtu 0 means no limit",
			setup: func(s *standard) {
				s.must(s.b.SetConfig(loader.Config{TunSource: tunSource, IfMAC: directorMAC}))
			},
			in: frameOf(bigVLANOpts), want: loader.XDPTx, out: tunTo(vTUN, bigVLANOpts, 64),
			count: fwd(vTUN, bigVLANOpts, loader.EventFlowNew)},
		{name: "dr has no mtu check", in: frameOf(pkt{src: cli1, dst: vipDR, payload: big.payload}), want: loader.XDPTx,
			out:   drTo(vDR, pkt{src: cli1, dst: vipDR, payload: big.payload}),
			count: fwd(vDR, pkt{src: cli1, dst: vipDR}, loader.EventFlowNew)},
	})
}

// checkICMP decodes a fragmentation-needed reply to p and checks each
// field, so a failure names it.
func checkICMP(t *testing.T, frame []byte, p pkt) {
	t.Helper()
	d, err := packet.Decode(frame)
	if err != nil || d.IP == nil || d.ICMP == nil {
		t.Fatalf("decode ICMP reply: %v", err)
	}
	ip := d.IP
	if ip.IHL != 5 || ip.TTL != 64 || ip.DF || ip.ID != 0 || ip.Src != p.dst.Addr() || ip.Dst != p.src.Addr() {
		t.Errorf("reply IPv4 header = %+v", *ip)
	}
	if !packet.ChecksumOK(frame[d.IPOffset : d.IPOffset+20]) {
		t.Error("reply IPv4 checksum invalid")
	}
	if !packet.ChecksumOK(d.IPPayload) {
		t.Error("ICMP checksum invalid")
	}
	if d.ICMP.Type != 3 || d.ICMP.Code != 4 || d.ICMP.Rest != testMTU-20 {
		t.Errorf("ICMP = %+v, want type 3 code 4 mtu %d", *d.ICMP, testMTU-20)
	}
	l3 := p.l3()
	if want := l3[:p.ip.HeaderLen()+8]; !bytes.Equal(want, d.L4Payload) {
		t.Errorf("quote:\n%s", packet.Diff(want, d.L4Payload))
	}
	if len(p.vlans) != len(d.Eth.VLANs) {
		t.Errorf("reply has %d VLAN tags, want %d", len(d.Eth.VLANs), len(p.vlans))
	}
}

func TestXDPBackendStates(t *testing.T) {
	flowA := pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn}
	ackA := pkt{src: cli1, dst: vipDR}
	// pinA sends flow A's SYN while the ring holds backend 1 only, so the
	// flow is pinned to 1; then the ring is rebuilt with backend 2 only.
	pinA := func(s *standard) {
		s.setRing(s.dr, idDR1)
		s.send(flowA)
		s.setRing(s.dr, idDR2)
	}
	to := func(id uint32) func(*standard) []byte {
		return func(s *standard) []byte { return ackA.dr(s.backend(id)) }
	}
	synTo := func(id uint32) func(*standard) []byte {
		return func(s *standard) []byte { return flowA.dr(s.backend(id)) }
	}
	hit := func(id uint32, e loader.Event) func(*standard) counts {
		return func(s *standard) counts {
			return counts{reason: loader.ReasonTxDR, events: ev(e), vip: &s.dr, backend: id}
		}
	}
	pinned := func(id uint32) func(*testing.T, *standard) {
		return func(t *testing.T, s *standard) { wantFlow(t, s, ackA, id) }
	}
	noBackend := func(*standard) counts { return counts{reason: loader.ReasonDropNoBackend} }

	runCases(t, []xdpCase{
		{name: "ring swap under an established flow keeps its backend", setup: pinA,
			in: frameOf(ackA), want: loader.XDPTx, out: to(idDR1), count: hit(idDR1, loader.EventFlowHit), check: pinned(idDR1)},
		{name: "new flow after the swap uses the new ring", setup: pinA,
			in: frameOf(pkt{src: cli2, dst: vipDR}), want: loader.XDPTx,
			out:   func(s *standard) []byte { return pkt{src: cli2, dst: vipDR}.dr(s.backend(idDR2)) },
			count: hit(idDR2, loader.EventFlowNew)},
		{name: "draining backend keeps its flow",
			setup: func(s *standard) { pinA(s); s.setState(idDR1, loader.StateDraining) },
			in:    frameOf(ackA), want: loader.XDPTx, out: to(idDR1), count: hit(idDR1, loader.EventFlowHit), check: pinned(idDR1)},
		{name: "draining backend gets no new flow",
			setup: func(s *standard) { pinA(s); s.setState(idDR1, loader.StateDraining) },
			in:    frameOf(pkt{src: cli2, dst: vipDR}), want: loader.XDPTx,
			out:   func(s *standard) []byte { return pkt{src: cli2, dst: vipDR}.dr(s.backend(idDR2)) },
			count: hit(idDR2, loader.EventFlowNew)},
		{name: "syn on a draining backend's 5-tuple opens a new connection through the ring",
			setup: func(s *standard) { pinA(s); s.setState(idDR1, loader.StateDraining) },
			in:    frameOf(flowA), want: loader.XDPTx, out: synTo(idDR2), count: hit(idDR2, loader.EventFlowSYNReuse), check: pinned(idDR2)},
		{name: "syn on an active backend's 5-tuple follows a swapped ring", setup: pinA,
			in: frameOf(flowA), want: loader.XDPTx, out: synTo(idDR2), count: hit(idDR2, loader.EventFlowSYNReuse), check: pinned(idDR2)},
		{name: "retransmitted syn keeps its backend while the ring holds it",
			setup: func(s *standard) { s.setRing(s.dr, idDR1); s.send(flowA) },
			in:    frameOf(flowA), want: loader.XDPTx, out: synTo(idDR1), count: hit(idDR1, loader.EventFlowSYNReuse), check: pinned(idDR1)},
		{name: "syn-ack on a known flow is not an opening syn", setup: pinA,
			in: frameOf(pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn | packet.TCPAck}), want: loader.XDPTx,
			out: func(s *standard) []byte {
				return pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn | packet.TCPAck}.dr(s.backend(idDR1))
			},
			count: hit(idDR1, loader.EventFlowHit), check: pinned(idDR1)},
		{name: "down backend's flow is re-hashed",
			setup: func(s *standard) { pinA(s); s.setState(idDR1, loader.StateDown) },
			in:    frameOf(ackA), want: loader.XDPTx, out: to(idDR2), count: hit(idDR2, loader.EventFlowRehash), check: pinned(idDR2)},
		{name: "deleted backend's flow is re-hashed",
			setup: func(s *standard) { pinA(s); s.must(s.b.DeleteBackend(idDR1)) },
			in:    frameOf(ackA), want: loader.XDPTx, out: to(idDR2), count: hit(idDR2, loader.EventFlowRehash), check: pinned(idDR2)},
		{name: "backend moved to another vip: flow re-hashed",
			setup: func(s *standard) {
				pinA(s)
				be := s.backend(idDR1)
				be.VIPIndex = s.udp.Index
				s.must(s.b.SetBackend(be))
			},
			in: frameOf(ackA), want: loader.XDPTx, out: to(idDR2), count: hit(idDR2, loader.EventFlowRehash), check: pinned(idDR2)},
		{name: "down backend with no replacement drops",
			setup: func(s *standard) { pinA(s); s.setState(idDR1, loader.StateDown); s.setState(idDR2, loader.StateDown) },
			in:    frameOf(ackA), want: loader.XDPDrop, count: noBackend, check: pinned(idDR1)},
		{name: "ring slot naming a draining backend drops a new flow",
			setup: func(s *standard) { s.setRing(s.dr, idDR1); s.setState(idDR1, loader.StateDraining) },
			in:    frameOf(flowA), want: loader.XDPDrop, count: noBackend, check: pinned(0)},
		{name: "vip without ring drops", in: frameOf(pkt{src: cli1, dst: vipNone, flags: packet.TCPSyn}),
			want: loader.XDPDrop, count: noBackend},
		{name: "empty ring slot drops",
			setup: func(s *standard) { s.setRing(s.dr, 0) },
			in:    frameOf(flowA), want: loader.XDPDrop, count: noBackend, check: pinned(0)},
	})
}

// TestXDPEstablishedFlowsAndVIPChanges changes VIPs under established
// flows. An established flow is forwarded by the VIP its entry records
// when that VIP still answers the packet, and is otherwise judged by the
// VIP lookup exactly as a packet without that record would be.
func TestXDPEstablishedFlowsAndVIPChanges(t *testing.T) {
	syn := pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn}
	ack := pkt{src: cli1, dst: vipDR, payload: []byte("more")}
	tunSyn := pkt{src: cli1, dst: vipTUN, flags: packet.TCPSyn}
	tunAck := pkt{src: cli1, dst: vipTUN, payload: []byte("more")}
	allSyn := pkt{src: cli1, dst: vipAll, flags: packet.TCPSyn}
	allAck := pkt{src: cli1, dst: vipAll}
	lone := ap("198.18.1.106:5353")
	loneSyn := pkt{src: cli1, dst: lone, udp: true, payload: []byte("q1")}
	loneAck := pkt{src: cli1, dst: lone, udp: true, payload: []byte("q2")}
	const idNew, idLone = 12, 13

	lookup := func(s *standard, v string) loader.VIPEntry {
		s.t.Helper()
		pv, err := loader.ParseVIP(v)
		s.must(err)
		e, err := s.b.LookupVIP(pv)
		s.must(err)
		return e
	}
	counted := func(v string, r loader.Reason, e loader.Event, id uint32) func(*standard) counts {
		return func(s *standard) counts {
			vip := lookup(s, v)
			return counts{reason: r, events: ev(e), vip: &vip, backend: id}
		}
	}
	// readd pins ack's flow to backend 1, then deletes the DR VIP and adds
	// it again at another index (index 0 goes to another VIP meanwhile),
	// with backend 1 back in it and backend 2 alone in its ring. Backend 1
	// is lent to the UDP VIP meanwhile, so the flow entry survives the
	// delete, as one written by a packet racing the delete would.
	readd := func(s *standard) {
		s.setRing(s.dr, idDR1)
		s.send(syn)
		be := s.backend(idDR1)
		be.VIPIndex = s.udp.Index
		s.must(s.b.SetBackend(be))
		s.must(s.b.DeleteVIP(s.dr.VIP))
		filler := s.addVIP("198.18.1.105:80/tcp", loader.VIPConfig{})
		again := s.addVIP("198.18.1.100:80/tcp", loader.VIPConfig{})
		if filler.Index != s.dr.Index || again.Index == s.dr.Index {
			s.t.Fatalf("indexes: filler %d, VIP again %d; want %d and another", filler.Index, again.Index, s.dr.Index)
		}
		be.VIPIndex = again.Index
		s.must(s.b.SetBackend(be))
		s.addBackend(again, idDR2, loader.StateActive)
		s.setRing(again, idDR2)
	}

	runCases(t, []xdpCase{
		{name: "forwarding changed from dr to tun under an established flow",
			setup: func(s *standard) {
				s.send(syn)
				s.must(s.b.UpdateVIP(s.dr.VIP, loader.VIPConfig{Forwarding: loader.ForwardTUN}))
			},
			in: frameOf(ack), want: loader.XDPTx, out: tunTo(vDR, ack, 64),
			count: func(s *standard) counts {
				return counts{reason: loader.ReasonTxTUN, events: ev(loader.EventFlowHit), vip: &s.dr, backend: s.pick(s.dr, ack.src, ack.dst)}
			},
			check: func(t *testing.T, s *standard) { wantFlow(t, s, ack, s.pick(s.dr, ack.src, ack.dst)) }},
		{name: "forwarding changed from tun to dr under an established flow",
			setup: func(s *standard) {
				s.send(tunSyn)
				s.must(s.b.UpdateVIP(s.tun.VIP, loader.VIPConfig{}))
			},
			in: frameOf(tunAck), want: loader.XDPTx, out: drTo(vTUN, tunAck),
			count: func(s *standard) counts {
				return counts{reason: loader.ReasonTxDR, events: ev(loader.EventFlowHit), vip: &s.tun, backend: s.pick(s.tun, tunAck.src, tunAck.dst)}
			}},
		{name: "vip deleted and added at another index keeps its established flow", setup: readd,
			in: frameOf(ack), want: loader.XDPTx, out: func(s *standard) []byte { return ack.dr(s.backend(idDR1)) },
			count: counted("198.18.1.100:80/tcp", loader.ReasonTxDR, loader.EventFlowHit, idDR1),
			check: func(t *testing.T, s *standard) {
				wantFlow(t, s, ack, idDR1)
				// And again, now that the entry may record the new index.
				before := s.stats()
				if got, out := s.run(ack.frame()); got != loader.XDPTx || !bytes.Equal(out, ack.dr(s.backend(idDR1))) {
					t.Errorf("second packet: %v, want XDP_TX to backend %d", got, idDR1)
				}
				checkCounters(t, before, s.stats(), counted("198.18.1.100:80/tcp", loader.ReasonTxDR, loader.EventFlowHit, idDR1)(s), len(ack.frame()))
			}},
		{name: "vip deleted, its index taken by another port of the address: flow passed",
			setup: func(s *standard) {
				// Both backends are lent to the UDP VIP, so the flow
				// entry survives the delete whichever one it names.
				s.send(syn)
				for _, id := range []uint32{idDR1, idDR2} {
					be := s.backend(id)
					be.VIPIndex = s.udp.Index
					s.must(s.b.SetBackend(be))
				}
				s.must(s.b.DeleteVIP(s.dr.VIP))
				other := s.addVIP("198.18.1.100:8080/tcp", loader.VIPConfig{})
				if other.Index != s.dr.Index {
					s.t.Fatalf("new VIP index %d, want the freed %d", other.Index, s.dr.Index)
				}
				for _, id := range []uint32{idDR1, idDR2} {
					be := s.backend(id)
					be.VIPIndex = other.Index
					s.must(s.b.SetBackend(be))
				}
				s.setRing(other, idDR1, idDR2)
			},
			in: frameOf(ack), want: loader.XDPPass, count: pass(loader.ReasonPassNotVIP)},
		{name: "established flow of an all-ports vip hits", setup: func(s *standard) { s.send(allSyn) },
			in: frameOf(allAck), want: loader.XDPTx, out: drTo(vAll, allAck), count: fwd(vAll, allAck, loader.EventFlowHit)},
		{name: "established flow of an all-ports vip alone on its address hits",
			setup: func(s *standard) {
				v := s.addVIP("198.18.1.106/udp", loader.VIPConfig{})
				s.addBackend(v, idLone, loader.StateActive)
				s.setRing(v, idLone)
				s.send(loneSyn)
			},
			in: frameOf(loneAck), want: loader.XDPTx, out: func(s *standard) []byte { return loneAck.dr(s.backend(idLone)) },
			count: counted("198.18.1.106/udp", loader.ReasonTxDR, loader.EventFlowHit, idLone)},
		{name: "port vip added under an established all-ports flow takes it over",
			setup: func(s *standard) {
				s.send(allSyn)
				v := s.addVIP("198.18.1.102:8080/tcp", loader.VIPConfig{Forwarding: loader.ForwardTUN})
				s.addBackend(v, idNew, loader.StateActive)
				s.setRing(v, idNew)
			},
			in: frameOf(allAck), want: loader.XDPTx, out: func(s *standard) []byte { return allAck.tun(s.backend(idNew), 64) },
			count: counted("198.18.1.102:8080/tcp", loader.ReasonTxTUN, loader.EventFlowRehash, idNew),
			check: func(t *testing.T, s *standard) { wantFlow(t, s, allAck, idNew) }},
		{name: "port vip deleted under its established flow: the all-ports vip takes it",
			setup: func(s *standard) {
				s.send(pkt{src: cli1, dst: vip443, flags: packet.TCPSyn})
				s.must(s.b.DeleteVIP(s.all443.VIP))
			},
			in: frameOf(pkt{src: cli1, dst: vip443}), want: loader.XDPTx,
			out:   func(s *standard) []byte { return pkt{src: cli1, dst: vip443}.dr(s.backend(idAll)) },
			count: fwd(vAll, pkt{src: cli1, dst: vip443}, loader.EventFlowNew),
			check: func(t *testing.T, s *standard) { wantFlow(t, s, pkt{src: cli1, dst: vip443}, idAll) }},
	})
}

func TestXDPSourcePersistence(t *testing.T) {
	s := newStandard(t)
	ring, err := s.b.Ring(s.persist.Index)
	s.must(err)
	clients := []string{"198.18.0.1", "198.18.0.77", "198.18.0.254", "198.19.7.1", "198.19.7.200", "198.18.200.3"}
	byPrefix := make(map[netip.Prefix]uint32)
	for i, c := range clients {
		for port := uint16(1000); port < 1004; port++ {
			src := netip.AddrPortFrom(netip.MustParseAddr(c), port+uint16(i)*10)
			p := pkt{src: src, dst: vipPers, flags: packet.TCPSyn}
			// The program's slot is the hash of the /24 only: check it
			// against SourceHash directly, not only through Slot.
			slot := loader.SourceHash(s.opts.HashSeed, netip.MustParsePrefix(c+"/24").Masked().Addr(), 24) % s.opts.RingSize
			want := ring[slot]
			got, out := s.run(p.frame())
			if got != loader.XDPTx {
				t.Fatalf("%s: action %v, want XDP_TX", src, got)
			}
			if d := packet.Diff(p.dr(s.backend(want)), out); d != "" {
				t.Errorf("%s: want backend %d:\n%s", src, want, d)
			}
			pfx := netip.PrefixFrom(src.Addr(), 24).Masked()
			if prev, ok := byPrefix[pfx]; ok && prev != want {
				t.Errorf("%s: backend %d, but %s went to %d", src, want, pfx, prev)
			}
			byPrefix[pfx] = want
		}
	}
	if len(byPrefix) != 3 {
		t.Errorf("saw %d prefixes, want 3", len(byPrefix))
	}
}

func TestXDPPersistencePrefixes(t *testing.T) {
	// Prefix 0 sends every client to one backend; 32 hashes each address.
	for _, prefix := range []uint8{0, 16, 32} {
		t.Run(fmt.Sprint(prefix), func(t *testing.T) {
			e := newLB(t, 251)
			v := e.addVIP("198.18.1.100:80/tcp", loader.VIPConfig{Persist: true, PersistPrefix: prefix})
			var ids []uint32
			for id := uint32(1); id <= 8; id++ {
				e.addBackend(v, id, loader.StateActive)
				ids = append(ids, id)
			}
			e.setRing(v, ids...)
			seen := make(map[uint32]bool)
			for i := 0; i < 64; i++ {
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i * 4), byte(i * 7)}), uint16(2000+i))
				p := pkt{src: src, dst: vipDR, flags: packet.TCPSyn}
				want := e.pick(v, src, vipDR)
				got, out := e.run(p.frame())
				if got != loader.XDPTx {
					t.Fatalf("action %v, want XDP_TX", got)
				}
				be, err := e.b.Backend(want)
				e.must(err)
				if d := packet.Diff(p.dr(be), out); d != "" {
					t.Fatalf("%s: want backend %d:\n%s", src, want, d)
				}
				seen[want] = true
			}
			if prefix == 0 && len(seen) != 1 {
				t.Errorf("prefix 0 spread clients over %d backends, want 1", len(seen))
			}
			if prefix == 32 && len(seen) < 4 {
				t.Errorf("prefix 32 used %d backends for 64 clients, want at least 4", len(seen))
			}
		})
	}
}

// TestXDPCountersAddUp sends a mix of frames and checks that reasons sum
// to the frames sent and that VIP and backend counters match TX_DR+TX_TUN.
func TestXDPCountersAddUp(t *testing.T) {
	s := newStandard(t)
	frames := [][]byte{
		pkt{src: cli1, dst: vipDR, flags: packet.TCPSyn}.frame(),
		pkt{src: cli1, dst: vipDR}.frame(),
		pkt{src: cli2, dst: vipTUN, flags: packet.TCPSyn}.frame(),
		pkt{src: cli1, dst: vipUDP, udp: true}.frame(),
		pkt{src: cli1, dst: ap("198.18.1.1:80")}.frame(),
		pkt{src: cli1, dst: vipNone}.frame(),
	}
	var bytesFwd uint64
	var fwdN uint64
	for i := 0; i < 10; i++ {
		for _, f := range frames {
			if got, _ := s.run(f); got == loader.XDPTx {
				fwdN++
				bytesFwd += uint64(len(f))
			}
		}
	}
	st := s.stats()
	var total uint64
	for _, n := range st.Reasons {
		total += n
	}
	if want := uint64(10 * len(frames)); total != want {
		t.Errorf("reasons sum to %d, want %d", total, want)
	}
	if got := st.Reasons[loader.ReasonTxDR] + st.Reasons[loader.ReasonTxTUN]; got != fwdN {
		t.Errorf("tx reasons = %d, want %d", got, fwdN)
	}
	var vp, vb, bp, bb uint64
	for _, c := range st.VIPs {
		vp, vb = vp+c.Packets, vb+c.Bytes
	}
	for _, c := range st.Backends {
		bp, bb = bp+c.Packets, bb+c.Bytes
	}
	if vp != fwdN || bp != fwdN || vb != bytesFwd || bb != bytesFwd {
		t.Errorf("vip %d pkts %d bytes, backend %d pkts %d bytes; want %d pkts %d bytes", vp, vb, bp, bb, fwdN, bytesFwd)
	}
	if got, want := st.Events[loader.EventFlowNew], uint64(3); got != want {
		t.Errorf("flow_new = %d, want %d", got, want)
	}
	// Repeated SYNs open new connections on known 5-tuples: 2 x 9 reuses.
	// The ACK hits 10 times, the UDP flow 9 times after creating its entry.
	if got, want := st.Events[loader.EventFlowSYNReuse], uint64(2*9); got != want {
		t.Errorf("flow_syn_reuse = %d, want %d", got, want)
	}
	if got, want := st.Events[loader.EventFlowHit], uint64(10+9); got != want {
		t.Errorf("flow_hit = %d, want %d", got, want)
	}
}

// newDecap loads the decap program accepting IPIP for backendAddr(1).
func newDecap(t testing.TB) *loader.Decap {
	t.Helper()
	testenv.Privileged(t)
	d, err := loader.LoadDecap()
	if err != nil {
		t.Fatalf("LoadDecap: %+v", err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.AddAddr(backendAddr(1)); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDecap(t *testing.T) {
	inner := pkt{src: cli1, dst: vipTUN, flags: packet.TCPSyn, ip: packet.IPv4{ID: 5, DF: true}}.l3()
	local := backendAddr(1)
	ipipFrame := func(outer packet.IPv4, vlans []packet.VLAN, pad int) []byte {
		if outer.TTL == 0 {
			outer.TTL = 64
		}
		if !outer.Src.IsValid() {
			outer.Src = tunSource
		}
		f := packet.Frame(packet.Ethernet{Dst: backendMAC(1), Src: directorMAC, VLANs: vlans}, packet.IPIPPacket(outer, inner))
		return append(f, make([]byte, pad)...)
	}
	decapped := func(vlans []packet.VLAN, pad int) []byte {
		f := packet.Frame(packet.Ethernet{Dst: backendMAC(1), Src: directorMAC, VLANs: vlans}, inner)
		return append(f, make([]byte, pad)...)
	}
	frag, err := packet.Fragment(packet.IPv4{TTL: 64, Protocol: packet.ProtoIPIP, Src: tunSource, Dst: local}, inner, 16)
	if err != nil {
		t.Fatal(err)
	}
	udpFrag, err := packet.Fragment(packet.IPv4{TTL: 64, Protocol: packet.ProtoUDP, Src: tunSource, Dst: local}, make([]byte, 40), 16)
	if err != nil {
		t.Fatal(err)
	}
	eth := func(l3 []byte) []byte { return packet.Frame(packet.Ethernet{Dst: backendMAC(1), Src: directorMAC}, l3) }
	truncated := ipipFrame(packet.IPv4{Dst: local}, nil, 0)[:14+19]
	tests := []struct {
		name   string
		in     []byte
		out    []byte // nil: unchanged
		reason loader.Reason
	}{
		{name: "ipip to a local address", in: ipipFrame(packet.IPv4{Dst: local}, nil, 0), out: decapped(nil, 0), reason: loader.ReasonDecapOK},
		{name: "vlan tag kept", in: ipipFrame(packet.IPv4{Dst: local}, []packet.VLAN{{ID: 7}}, 0),
			out: decapped([]packet.VLAN{{ID: 7}}, 0), reason: loader.ReasonDecapOK},
		{name: "outer options removed", in: ipipFrame(packet.IPv4{Dst: local, Options: []byte{1, 1, 1, 1, 1, 1, 1, 0}}, nil, 0),
			out: decapped(nil, 0), reason: loader.ReasonDecapOK},
		{name: "padding kept after the inner packet", in: ipipFrame(packet.IPv4{Dst: local}, nil, 4),
			out: decapped(nil, 4), reason: loader.ReasonDecapOK},
		{name: "ipip for another host", in: ipipFrame(packet.IPv4{Dst: backendAddr(2)}, nil, 0), reason: loader.ReasonPassNotLocal},
		{name: "tcp to the host", in: eth(inner), reason: loader.ReasonPassNotIPIP},
		{name: "arp", in: packet.Frame(packet.Ethernet{EtherType: packet.EtherTypeARP}, make([]byte, 28)), reason: loader.ReasonPassNotIPv4},
		{name: "ipip fragment", in: eth(frag[0]), reason: loader.ReasonPassFragment},
		{name: "ipip last fragment", in: eth(frag[len(frag)-1]), reason: loader.ReasonPassFragment},
		{name: "udp fragment is not ipip", in: eth(udpFrag[0]), reason: loader.ReasonPassNotIPIP},
		{name: "truncated outer header", in: truncated, reason: loader.ReasonPassMalformed},
		{name: "stacked vlan", in: ipipFrame(packet.IPv4{Dst: local}, []packet.VLAN{{ID: 1}, {ID: 2}}, 0), reason: loader.ReasonPassVLANStacked},
	}
	d := newDecap(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := bytes.Clone(tt.in)
			before, err := d.Stats()
			if err != nil {
				t.Fatal(err)
			}
			got, out := runProg(t, d.Program(), tt.in)
			after, err := d.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if got != loader.XDPPass {
				t.Errorf("action = %v, want XDP_PASS", got)
			}
			want := tt.out
			if want == nil {
				want = orig
			}
			if diff := packet.Diff(want, out); diff != "" {
				t.Errorf("output frame:\n%s", diff)
			}
			for r, n := range after {
				w := uint64(0)
				if r == tt.reason {
					w = 1
				}
				if n-before[r] != w {
					t.Errorf("reason %s moved by %d, want %d", r, n-before[r], w)
				}
			}
		})
	}
}

// TestXDPTunThroughDecap sends a TUN frame from the balancer to the decap
// program: the backend's kernel must get the client's packet intact.
func TestXDPTunThroughDecap(t *testing.T) {
	s := newLB(t, 13)
	v := s.addVIP("198.18.1.101:80/tcp", loader.VIPConfig{Forwarding: loader.ForwardTUN})
	be := s.addBackend(v, 1, loader.StateActive)
	s.setRing(v, 1)
	d := newDecap(t)

	for _, p := range []pkt{
		{src: cli1, dst: vipTUN, flags: packet.TCPSyn, ip: packet.IPv4{DF: true, ID: 1}},
		{src: cli2, dst: vipTUN, payload: []byte("data"), vlans: []packet.VLAN{{ID: 3}}, pad: 0},
		{src: cli1, dst: vipTUN, payload: []byte{1}, ip: packet.IPv4{Options: []byte{7, 3, 4, 0}}, pad: 1},
	} {
		act, enc := s.run(p.frame())
		if act != loader.XDPTx {
			t.Fatalf("balancer action %v, want XDP_TX", act)
		}
		act, dec := runProg(t, d.Program(), enc)
		if act != loader.XDPPass {
			t.Fatalf("decap action %v, want XDP_PASS", act)
		}
		q := p
		q.pad = 0
		want := q.frameWith(be.MAC, directorMAC, p.l3())
		if diff := packet.Diff(want, dec); diff != "" {
			t.Errorf("frame after decap:\n%s", diff)
		}
		dd, err := packet.Decode(dec)
		if err != nil || dd.IP == nil || !packet.ChecksumOK(dec[dd.IPOffset:dd.L4Offset]) ||
			!packet.TCPChecksumOK(dd.IP.Src, dd.IP.Dst, dd.IPPayload) {
			t.Errorf("inner packet not intact after decap: %v", err)
		}
	}
}
