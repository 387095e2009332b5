package loader_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/packet"
	"github.com/xdplb/xdplb/loader"
)

// seedFrames are real-world packets, annotated, addressed to the VIPs of
// newStandard or passing by them. Checksums are valid.
var seedFrames = []struct {
	reason loader.Reason // what the balancer does with it
	hex    string
}{
	// Linux TCP SYN to the DR VIP 198.18.1.100:80.
	{loader.ReasonTxDR, `02000000 00d0 020000 0000c1 0800            eth: director <- router, IPv4
	 4500003c 1c464000 400690ec               ipv4: len 60, id 0x1c46, DF, ttl 64, tcp
	 c6120001 c6120164                              198.18.0.1 -> 198.18.1.100
	 9c400050 6b8b4567 00000000 a002faf0 6dfc0000 tcp: 40000 -> 80, SYN, win 64240
	 020405b4 0402080a 01020304 00000000 01030307      MSS 1460, SACK ok, TS, NOP, wscale 7`},

	// Established ACK with an HTTP request to the TUN VIP 198.18.1.101:80.
	{loader.ReasonTxTUN, `0200000000d0 0200000000c1 0800
	 450000511c474000400690d5 c6120001c6120165    ipv4: len 81, DF, tcp, -> 198.18.1.101
	 9c4200506b8b45682a3b4c5d801801f69c570000     tcp: 40002 -> 80, PSH ACK
	 0101080a0001e2400001e23f                     NOP NOP TS
	 474554202f20485454502f312e310d0a486f73743a207669700d0a0d0a  "GET / HTTP/1.1\r\nHost: vip\r\n\r\n"`},

	// DNS query for example.com A to the UDP VIP 198.18.1.100:53.
	{loader.ReasonTxDR, `0200000000d0 0200000000c1 0800
	 450000393e5f00004011aecb c6120001c6120164    ipv4: len 57, udp
	 d0a4003500252605                             udp: 53412 -> 53, len 37
	 abcd01000001000000000000 076578616d706c6503636f6d00 00010001`},

	// The same SYN behind an 802.1Q tag, VLAN 100, priority 3.
	{loader.ReasonTxDR, `0200000000d0 0200000000c1 8100 6064 0800
	 4500003c1c464000400690ecc6120001c6120164
	 9c4000506b8b456700000000a002faf06dfc0000020405b40402080a010203040000000001030307`},

	// Stacked tags (802.1ad outer, 802.1Q inner): passed to the kernel.
	{loader.ReasonPassVLANStacked, `0200000000d0 0200000000c1 88a8 0001 8100 0002 0800
	 4500003c1c464000400690ecc6120001c6120164
	 9c4000506b8b456700000000a002faf06dfc0000020405b40402080a010203040000000001030307`},

	// First and last fragment of a UDP datagram to 198.18.1.100:53.
	{loader.ReasonPassFragment, `0200000000d0 0200000000c1 0800
	 4500002c4242200040118af5c6120001c6120164     ipv4: id 0x4242, MF, offset 0
	 cf08003500302535000102030405060708090a0b0c0d0e0f`},
	{loader.ReasonPassFragment, `0200000000d0 0200000000c1 0800
	 4500002c424200034011aaf2c6120001c6120164     ipv4: id 0x4242, offset 3 (24 bytes)
	 101112131415161718191a1b1c1d1e1f2021222324252627`},

	// ICMP echo request to the VIP address.
	{loader.ReasonPassNotL4, `0200000000d0 0200000000c1 0800
	 4500002555554000400157f9c6120001c6120164
	 0800ca1a123400017864706c6270696e67          echo id 0x1234 seq 1 "xdplbping"`},

	// IPIP from the director to backend 198.18.0.21 carrying the SYN.
	{loader.ReasonPassNotL4, `0200000000d0 0200000000c1 0800
	 450000501c46400040049220c612000ac6120015     ipv4: len 80, proto 4, 198.18.0.10 -> 198.18.0.21
	 4500003c1c464000400690ecc6120001c6120164
	 9c4000506b8b456700000000a002faf06dfc0000020405b40402080a010203040000000001030307`},

	// SYN with a router-alert option to the persistence VIP 198.18.1.103:80.
	{loader.ReasonTxDR, `0200000000d0 0200000000c1 0800
	 4600002c01014000400616eec612004dc612016794040000  ipv4: ihl 6, 198.18.0.77 -> .103
	 c738005000000001000000005002faf05f8f0000`},

	// RST to the all-ports VIP 198.18.1.102, port 8080.
	{loader.ReasonTxDR, `0200000000d0 0200000000c1 0800
	 45000028020240004006ab42c6120001c6120166
	 9c431f90000000050000000050040000667c0000`},

	// ARP who-has 198.18.1.100 tell 198.18.0.1, broadcast, padded to 60.
	{loader.ReasonPassNotIPv4, `ffffffffffff 0200000000c1 0806
	 0001 0800 06 04 0001 0200000000c1 c6120001 000000000000 c6120164
	 000000000000000000000000000000000000`},

	// IPv6 neighbour solicitation (only the header matters: not IPv4).
	{loader.ReasonPassNotIPv4, `3333ff000001 0200000000c1 86dd
	 6000000000203aff fe800000000000000000000000000001 ff0200000000000000000001ff000001
	 8700000000000000 fe800000000000000000000000000001 0101 0200000000c1`},
}

// unhexSeed decodes an annotated seed: hex digits up to the first
// non-hex word of each line.
func unhexSeed(tb testing.TB, s string) []byte {
	tb.Helper()
	var digits strings.Builder
	for _, line := range strings.Split(s, "\n") {
		for _, w := range strings.Fields(line) {
			if _, err := hex.DecodeString(w); err != nil {
				break // the annotation starts
			}
			digits.WriteString(w)
		}
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		tb.Fatalf("seed: %v", err)
	}
	return b
}

// expectation is what the design allows for one frame, computed from the
// frame alone by a reference model of the balancer's rules up to the VIP
// lookup: Ethernet with at most one tag, a valid IPv4 header whose total
// length fits the frame, no fragment, a whole TCP or UDP header inside the
// datagram, then the VIP for the port or else the all-ports VIP, and the
// director's MAC as the frame's destination.
type expectation struct {
	reason loader.Reason    // for frames passed before the VIP lookup
	vip    *loader.VIPEntry // the VIP the frame is for
	l2     int              // Ethernet header length, tag included
	ihl    int              // IPv4 header length in bytes
	tot    int              // IPv4 total length
	src    netip.AddrPort
	dst    netip.AddrPort
}

func classify(frame []byte, vips map[loader.VIP]loader.VIPEntry) expectation {
	mal := expectation{reason: loader.ReasonPassMalformed}
	if len(frame) < 14 {
		return mal
	}
	et, l2 := binary.BigEndian.Uint16(frame[12:]), 14
	if et == packet.EtherTypeVLAN || et == packet.EtherTypeQinQ {
		if len(frame) < 18 {
			return mal
		}
		et, l2 = binary.BigEndian.Uint16(frame[16:]), 18
		if et == packet.EtherTypeVLAN || et == packet.EtherTypeQinQ {
			return expectation{reason: loader.ReasonPassVLANStacked}
		}
	}
	if et != packet.EtherTypeIPv4 {
		return expectation{reason: loader.ReasonPassNotIPv4}
	}
	ip := frame[l2:]
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return mal
	}
	ihl, tot := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:]))
	if ihl < 20 || tot < ihl || len(ip) < tot {
		return mal
	}
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		return expectation{reason: loader.ReasonPassFragment}
	}
	proto := loader.Proto(ip[9])
	switch proto {
	case loader.TCP:
		if ihl+20 > tot || ip[ihl+12]>>4 < 5 {
			return mal
		}
	case loader.UDP:
		if ihl+8 > tot {
			return mal
		}
	default:
		return expectation{reason: loader.ReasonPassNotL4}
	}
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(ip[ihl:]))
	dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(ip[ihl+2:]))
	v, ok := vips[loader.VIP{Addr: dst.Addr(), Port: dst.Port(), Proto: proto}]
	if !ok {
		v, ok = vips[loader.VIP{Addr: dst.Addr(), Proto: proto}]
	}
	if !ok {
		return expectation{reason: loader.ReasonPassNotVIP}
	}
	if !bytes.Equal(frame[:6], directorMAC) {
		return expectation{reason: loader.ReasonPassOtherHost}
	}
	return expectation{vip: &v, l2: l2, ihl: ihl, tot: tot, src: src, dst: dst}
}

// expectVIP returns the reason and output frame the design gives for a
// frame to VIP x.vip, sent to backend be (nil when the VIP has none).
func expectVIP(in []byte, x expectation, be *loader.Backend) (loader.Reason, []byte) {
	if be == nil {
		return loader.ReasonDropNoBackend, nil
	}
	if x.vip.Config.Forwarding == loader.ForwardDR {
		out := bytes.Clone(in)
		copy(out[0:6], be.MAC)
		copy(out[6:12], directorMAC)
		return loader.ReasonTxDR, out
	}
	ip := in[x.l2 : x.l2+x.tot]
	df := binary.BigEndian.Uint16(ip[6:])&0x4000 != 0
	// The Ethernet header sent: new MACs, then the frame's own tag (if
	// any) and ethertype IPv4.
	l2 := func(dst []byte) []byte {
		return append(append(bytes.Clone(dst), directorMAC...), in[12:x.l2]...)
	}
	if x.tot+20 > testMTU {
		if !df {
			return loader.ReasonDropTooBig, nil
		}
		reply := packet.IPv4{TTL: 64, Protocol: packet.ProtoICMP, Src: x.dst.Addr(), Dst: x.src.Addr()}.
			Marshal(packet.FragNeeded(testMTU - 20).Marshal(ip[:x.ihl+8]))
		return loader.ReasonTxICMPTooBig, append(l2(in[6:12]), reply...)
	}
	outer := packet.IPv4{TOS: ip[1], ID: binary.BigEndian.Uint16(ip[4:]), DF: df, TTL: 64, Src: tunSource, Dst: be.Addr}
	return loader.ReasonTxTUN, append(l2(be.MAC), packet.IPIPPacket(outer, ip)...)
}

// FuzzBalancer feeds arbitrary frames to the balancer with the standard
// VIPs configured and checks the design's invariants on every run:
//   - the action is XDP_PASS, XDP_TX or XDP_DROP;
//   - a frame not addressed to a VIP, or to a VIP but at another host's
//     MAC, is passed, byte for byte unchanged, counted with the reason a
//     reference model of the parser predicts;
//   - a frame for a VIP at the director's MAC is never passed: it is sent
//     to the backend the ring
//     predicts (DR, IPIP or the ICMP answer, compared byte for byte) or
//     dropped for the reason the model gives;
//   - exactly one reason moves per run, so the reasons sum to the runs.
func FuzzBalancer(f *testing.F) {
	for _, s := range seedFrames {
		f.Add(unhexSeed(f, s.hex))
	}
	big := pkt{src: cli1, dst: vipTUN, ip: packet.IPv4{DF: true}, payload: make([]byte, 1500)}
	f.Add(big.frame()) // too big to encapsulate: ICMP
	big.ip.DF = false
	f.Add(big.frame()) // too big, no DF: dropped
	other := pkt{src: cli1, dst: vipDR}.frame()
	copy(other[:6], routerMAC)
	f.Add(other) // for a VIP, flooded to us for another host: passed

	s := newStandard(f)
	vips := make(map[loader.VIP]loader.VIPEntry)
	all, err := s.b.VIPs()
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range all {
		vips[v.VIP] = v
	}
	rings := make(map[uint32][]uint32)
	for _, v := range all {
		if rings[v.Index], err = s.b.Ring(v.Index); err != nil {
			f.Fatal(err)
		}
	}
	backends, err := s.b.Backends()
	if err != nil {
		f.Fatal(err)
	}
	byID := make(map[uint32]loader.Backend)
	for _, be := range backends {
		byID[be.ID] = be
	}
	var runs uint64

	f.Fuzz(func(t *testing.T, in []byte) {
		// The kernel refuses test frames shorter than an Ethernet header
		// or longer than a page minus head- and tailroom.
		if len(in) < packet.EthernetLen || len(in) > 3000 {
			return
		}
		orig := bytes.Clone(in)
		before, err := s.b.Stats()
		if err != nil {
			t.Fatal(err)
		}
		got, out := runProg(t, s.b.Program(), in)
		runs++
		after, err := s.b.Stats()
		if err != nil {
			t.Fatal(err)
		}

		var sum uint64
		var moved []loader.Reason
		for r, n := range after.Reasons {
			sum += n
			if n != before.Reasons[r] {
				moved = append(moved, r)
			}
		}
		if sum != runs {
			t.Errorf("reasons sum to %d after %d runs", sum, runs)
		}
		if len(moved) != 1 || after.Reasons[moved[0]]-before.Reasons[moved[0]] != 1 {
			t.Fatalf("reasons moved: %v, want exactly one by one", moved)
		}
		reason := moved[0]

		switch got {
		case loader.XDPPass, loader.XDPTx, loader.XDPDrop:
		default:
			t.Fatalf("action %v is not one the design allows", got)
		}

		x := classify(orig, vips)
		if x.vip == nil {
			if got != loader.XDPPass {
				t.Errorf("frame not for a VIP: action %v, want XDP_PASS", got)
			}
			if d := packet.Diff(orig, out); d != "" {
				t.Errorf("frame not for a VIP was modified:\n%s", d)
			}
			if reason != x.reason {
				t.Errorf("reason %s, want %s", reason, x.reason)
			}
			return
		}

		var be *loader.Backend
		if ring := rings[x.vip.Index]; ring != nil {
			if b, ok := byID[ring[s.b.Slot(*x.vip, x.src, x.dst)]]; ok {
				be = &b
			}
		}
		wantReason, wantOut := expectVIP(orig, x, be)
		if reason != wantReason {
			t.Errorf("frame for %s: reason %s, want %s", x.vip.VIP, reason, wantReason)
		}
		wantAct := loader.XDPTx
		if wantOut == nil {
			wantAct = loader.XDPDrop
		}
		if got != wantAct {
			t.Errorf("frame for %s: action %v, want %v", x.vip.VIP, got, wantAct)
		}
		if wantOut != nil {
			if d := packet.Diff(wantOut, out); d != "" {
				t.Errorf("frame for %s sent as:\n%s", x.vip.VIP, d)
			}
		}
	})
}

// TestFuzzSeedsAreWhatTheySay keeps the annotations honest: each seed
// decodes, its checksums are valid, and the balancer gives it the reason
// its entry names.
func TestFuzzSeedsAreWhatTheySay(t *testing.T) {
	s := newStandard(t)
	for i, seed := range seedFrames {
		b := unhexSeed(t, seed.hex)
		before := s.stats()
		s.run(bytes.Clone(b))
		after := s.stats()
		if n := after.Reasons[seed.reason] - before.Reasons[seed.reason]; n != 1 {
			t.Errorf("seed %d: not counted as %s", i, seed.reason)
		}
		d, err := packet.Decode(b)
		if err != nil {
			t.Errorf("seed %d: %v", i, err)
			continue
		}
		if d.IP == nil {
			continue
		}
		if !packet.ChecksumOK(b[d.IPOffset:d.L4Offset]) {
			t.Errorf("seed %d: IPv4 checksum invalid", i)
		}
		switch {
		case d.TCP != nil && !packet.TCPChecksumOK(d.IP.Src, d.IP.Dst, d.IPPayload):
			t.Errorf("seed %d: TCP checksum invalid", i)
		case d.UDP != nil && !d.IP.MF && !packet.UDPChecksumOK(d.IP.Src, d.IP.Dst, d.IPPayload):
			t.Errorf("seed %d: UDP checksum invalid", i)
		case d.ICMP != nil && !packet.ChecksumOK(d.IPPayload):
			t.Errorf("seed %d: ICMP checksum invalid", i)
		}
	}
}

// FuzzDecap feeds arbitrary frames to the decap program accepting IPIP for
// backendAddr(1): every frame is passed; a valid, unfragmented IPIP packet
// to that address loses exactly its outer header (Ethernet header and tag
// kept, ethertype IPv4), and anything else is not modified.
func FuzzDecap(f *testing.F) {
	for _, s := range seedFrames {
		f.Add(unhexSeed(f, s.hex))
	}
	inner := pkt{src: cli1, dst: vipTUN, flags: packet.TCPSyn}.l3()
	f.Add(packet.Frame(packet.Ethernet{VLANs: []packet.VLAN{{ID: 1}}},
		packet.IPIPPacket(packet.IPv4{TTL: 64, Src: tunSource, Dst: backendAddr(1), Options: []byte{1, 1, 1, 0}}, inner)))
	d := newDecap(f)
	local := backendAddr(1).As4()

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < packet.EthernetLen || len(in) > 3000 {
			return
		}
		orig := bytes.Clone(in)
		got, out := runProg(t, d.Program(), in)
		if got != loader.XDPPass {
			t.Fatalf("action %v, want XDP_PASS", got)
		}
		want := orig
		if l2, ihl, ok := decapModel(orig, local); ok {
			want = append(bytes.Clone(orig[:l2]), orig[l2+ihl:]...)
		}
		if diff := packet.Diff(want, out); diff != "" {
			t.Errorf("output:\n%s", diff)
		}
	})
}

// decapModel reports whether frame is an IPIP packet the decap program
// strips, with its Ethernet and outer header lengths.
func decapModel(frame []byte, local [4]byte) (l2, ihl int, ok bool) {
	et, l2 := binary.BigEndian.Uint16(frame[12:]), 14
	if et == packet.EtherTypeVLAN || et == packet.EtherTypeQinQ {
		if len(frame) < 18 {
			return 0, 0, false
		}
		et, l2 = binary.BigEndian.Uint16(frame[16:]), 18
	}
	ip := frame[l2:]
	if et != packet.EtherTypeIPv4 || len(ip) < 20 || ip[0]>>4 != 4 {
		return 0, 0, false
	}
	ihl, tot := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:]))
	if ihl < 20 || tot < ihl || len(ip) < tot || ip[9] != packet.ProtoIPIP ||
		binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 || [4]byte(ip[16:20]) != local {
		return 0, 0, false
	}
	return l2, ihl, true
}
