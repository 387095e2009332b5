package packet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var (
	client = netip.MustParseAddr("198.18.0.1")
	vip    = netip.MustParseAddr("198.18.1.100")
	macA   = MustMAC("02:00:00:00:00:0a")
	macB   = MustMAC("02:00:00:00:00:0b")
)

// unhex decodes hex that may contain spaces and newlines.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChecksumRFC1071Example(t *testing.T) {
	// A classic IPv4 header with its correct checksum 0xb861 at bytes 10-11.
	hdr := unhex(t, "4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")
	if !ChecksumOK(hdr) {
		t.Errorf("ChecksumOK(valid header) = false")
	}
	hdr[10], hdr[11] = 0, 0
	if want, got := uint16(0xb861), Checksum(hdr); want != got {
		t.Errorf("Checksum = %#04x, want %#04x", got, want)
	}
	// Split at an odd offset: the sum must not depend on how it is cut.
	if want, got := uint16(0xb861), Checksum(hdr[:7], hdr[7:]); want != got {
		t.Errorf("Checksum(split) = %#04x, want %#04x", got, want)
	}
}

func TestMarshalKnownPackets(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{
			// A Linux-style SYN: MSS 1460, SACK permitted, timestamps,
			// NOP, window scale 7; DF set, TTL 64. Checksums computed by
			// an independent implementation.
			name: "tcp syn with options",
			got: TCPPacket(
				IPv4{ID: 0x1c46, DF: true, TTL: 64, Src: client, Dst: vip},
				TCP{SrcPort: 40000, DstPort: 80, Seq: 0x6b8b4567, Flags: TCPSyn, Window: 64240,
					Options: unhex(t, "020405b4 0402 080a0102030400000000 01 030307")},
				nil),
			want: `4500003c 1c464000 400690ec c6120001 c6120164
			       9c400050 6b8b4567 00000000 a002faf0 6dfc0000
			       020405b4 0402080a 01020304 00000000 01030307`,
		},
		{
			name: "udp with payload",
			got: UDPPacket(IPv4{ID: 0xbeef, TTL: 64, Src: client, Dst: vip},
				UDP{SrcPort: 53000, DstPort: 53}, []byte("xdplb")),
			want: `45000021 beef0000 40112e53 c6120001 c6120164
			       cf080035 000d583b 7864706c 62`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := Diff(unhex(t, tt.want), tt.got); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestEthernetVLAN(t *testing.T) {
	e := Ethernet{Dst: macA, Src: macB, VLANs: []VLAN{{TPID: EtherTypeQinQ, ID: 100}, {Priority: 5, ID: 4095}}}
	want := unhex(t, "02000000000a 02000000000b 88a8 0064 8100 afff 0800")
	if d := Diff(want, e.Marshal()); d != "" {
		t.Fatal(d)
	}
	got, rest, err := ParseEthernet(append(e.Marshal(), 0xaa))
	if err != nil {
		t.Fatal(err)
	}
	if want, got := 2, len(got.VLANs); want != got {
		t.Fatalf("VLANs = %d, want %d", got, want)
	}
	if want, got := (VLAN{TPID: EtherTypeVLAN, Priority: 5, ID: 4095}), got.VLANs[1]; want != got {
		t.Errorf("inner tag = %+v, want %+v", got, want)
	}
	if want, got := uint16(EtherTypeIPv4), got.EtherType; want != got {
		t.Errorf("EtherType = %#x, want %#x", got, want)
	}
	if !bytes.Equal(rest, []byte{0xaa}) {
		t.Errorf("rest = %x, want aa", rest)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	ip := IPv4{TOS: 0x10, ID: 7, DF: true, TTL: 61, Src: client, Dst: vip, Options: []byte{0x94, 0x04, 0, 0}}
	seg := TCP{SrcPort: 1234, DstPort: 443, Seq: 1, Ack: 2, Flags: TCPAck | TCPPsh, Window: 512}
	frame := Frame(Ethernet{Dst: macA, Src: macB, VLANs: []VLAN{{ID: 10}}}, TCPPacket(ip, seg, []byte("hello")))
	frame = append(frame, 0, 0, 0) // Ethernet padding

	d, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if d.IP == nil || d.TCP == nil {
		t.Fatalf("Decode: IP %v TCP %v, want both", d.IP, d.TCP)
	}
	if want, got := 18, d.IPOffset; want != got {
		t.Errorf("IPOffset = %d, want %d", got, want)
	}
	if want, got := 18+24, d.L4Offset; want != got {
		t.Errorf("L4Offset = %d, want %d", got, want)
	}
	if want, got := uint8(6), d.IP.IHL; want != got {
		t.Errorf("IHL = %d, want %d", got, want)
	}
	if !ChecksumOK(frame[d.IPOffset:d.L4Offset]) {
		t.Error("IPv4 checksum invalid")
	}
	if !TCPChecksumOK(client, vip, d.IPPayload) {
		t.Error("TCP checksum invalid")
	}
	if want, got := "hello", string(d.L4Payload); want != got {
		t.Errorf("payload = %q, want %q", got, want)
	}
	if want, got := []byte{0, 0, 0}, d.Trailer; !bytes.Equal(want, got) {
		t.Errorf("trailer = %x, want %x", got, want)
	}
	if d.IP.Src != client || d.IP.Dst != vip || d.TCP.DstPort != 443 || d.TCP.Flags != TCPAck|TCPPsh || !d.IP.DF {
		t.Errorf("decoded fields wrong: %+v %+v", d.IP, d.TCP)
	}
}

func TestUDPAndICMP(t *testing.T) {
	dg := UDP{SrcPort: 1, DstPort: 2}.Marshal(client, vip, []byte{1, 2, 3})
	if !UDPChecksumOK(client, vip, dg) {
		t.Error("UDP checksum invalid")
	}
	quote := UDPPacket(IPv4{TTL: 1, Src: client, Dst: vip}, UDP{SrcPort: 1, DstPort: 2}, nil)
	msg := FragNeeded(1480).Marshal(quote)
	if !ChecksumOK(msg) {
		t.Error("ICMP checksum invalid")
	}
	c, body, err := ParseICMP(msg)
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != 3 || c.Code != 4 || c.Rest != 1480 || !bytes.Equal(body, quote) {
		t.Errorf("ParseICMP = %+v body %x", c, body)
	}
}

func TestIPIP(t *testing.T) {
	inner := UDPPacket(IPv4{TTL: 64, Src: client, Dst: vip}, UDP{SrcPort: 9, DstPort: 9}, nil)
	outer := IPIPPacket(IPv4{TTL: 64, Src: netip.MustParseAddr("198.18.0.10"), Dst: netip.MustParseAddr("198.18.0.21")}, inner)
	h, payload, _, err := ParseIPv4(outer)
	if err != nil {
		t.Fatal(err)
	}
	if h.Protocol != ProtoIPIP || int(h.TotalLen) != 20+len(inner) || !bytes.Equal(payload, inner) {
		t.Errorf("outer = %+v payload %x", h, payload)
	}
}

func TestFragment(t *testing.T) {
	payload := bytes.Repeat([]byte{0xab}, 50)
	frags, err := Fragment(IPv4{ID: 9, TTL: 64, Protocol: ProtoUDP, Src: client, Dst: vip}, payload, 20)
	if err != nil {
		t.Fatal(err)
	}
	if want, got := 4, len(frags); want != got {
		t.Fatalf("fragments = %d, want %d", got, want)
	}
	var joined []byte
	for i, f := range frags {
		h, p, _, err := ParseIPv4(f)
		if err != nil {
			t.Fatal(err)
		}
		if want, got := uint16(i*16/8), h.FragOffset; want != got {
			t.Errorf("fragment %d offset = %d, want %d", i, got, want)
		}
		if want, got := i < 3, h.MF; want != got {
			t.Errorf("fragment %d MF = %v, want %v", i, got, want)
		}
		if !ChecksumOK(f[:20]) {
			t.Errorf("fragment %d checksum invalid", i)
		}
		joined = append(joined, p...)
	}
	if !bytes.Equal(payload, joined) {
		t.Error("reassembled payload differs")
	}
	if _, err := Fragment(IPv4{}, payload, 7); err == nil {
		t.Error("Fragment(size 7) succeeded, want error")
	}
}

func TestMalformedOverrides(t *testing.T) {
	b := IPv4{Version: 6, IHL: 4, TotalLen: 10, Src: client, Dst: vip}.Marshal(nil)
	if want, got := byte(0x64), b[0]; want != got {
		t.Errorf("version/ihl byte = %#x, want %#x", got, want)
	}
	if _, _, _, err := ParseIPv4(b); err == nil {
		t.Error("ParseIPv4(version 6) succeeded")
	}
	tcp := TCP{DataOffset: 4}.Marshal(client, vip, nil)
	if _, _, err := ParseTCP(tcp); err == nil {
		t.Error("ParseTCP(doff 4) succeeded")
	}
}

func TestDecodeTruncated(t *testing.T) {
	frame := Frame(Ethernet{VLANs: []VLAN{{ID: 1}}}, TCPPacket(IPv4{Src: client, Dst: vip}, TCP{}, nil))
	for n := 0; n < len(frame); n++ {
		if _, err := Decode(frame[:n]); err == nil {
			t.Errorf("Decode(first %d of %d bytes) succeeded", n, len(frame))
		} else if n >= 18 && n < 38 && !errors.Is(err, ErrTruncated) {
			t.Errorf("Decode(first %d bytes) = %v, want ErrTruncated", n, err)
		}
	}
}

func TestDiff(t *testing.T) {
	if d := Diff([]byte{1, 2}, []byte{1, 2}); d != "" {
		t.Errorf("Diff(equal) = %q, want empty", d)
	}
	d := Diff([]byte{1, 2, 3}, []byte{1, 9})
	for _, want := range []string{"want 3 bytes, got 2", "01 02 03", "01 09 --", "   ^^ ^^"} {
		if !strings.Contains(d, want) {
			t.Errorf("Diff output lacks %q:\n%s", want, d)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Frame(Ethernet{}, TCPPacket(IPv4{Src: client, Dst: vip}, TCP{Flags: TCPSyn}, nil)))
	f.Add(Frame(Ethernet{VLANs: []VLAN{{ID: 1}, {ID: 2}}}, UDPPacket(IPv4{Options: []byte{1}}, UDP{}, []byte{1})))
	f.Fuzz(func(t *testing.T, frame []byte) {
		d, err := Decode(frame)
		if err != nil || d.IP == nil {
			return
		}
		// Whatever decoded must re-encode to the same header bytes.
		h := *d.IP
		re := h.Marshal(nil)
		got := frame[d.IPOffset : d.IPOffset+len(re)]
		re[10], re[11] = got[10], got[11] // the checksum is recomputed by Marshal
		if !bytes.Equal(re, got) {
			t.Errorf("header re-encoded differently:\n%s", Diff(got, re))
		}
	})
}
