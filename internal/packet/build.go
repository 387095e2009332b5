package packet

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// EtherTypes, IP protocol numbers and TCP flags used by xdplb.
const (
	EtherTypeIPv4  = 0x0800
	EtherTypeARP   = 0x0806
	EtherTypeIPv6  = 0x86dd
	EtherTypeVLAN  = 0x8100 // 802.1Q
	EtherTypeQinQ  = 0x88a8 // 802.1ad
	ProtoICMP      = 1
	ProtoIPIP      = 4
	ProtoTCP       = 6
	ProtoUDP       = 17
	TCPFin         = 0x01
	TCPSyn         = 0x02
	TCPRst         = 0x04
	TCPPsh         = 0x08
	TCPAck         = 0x10
	EthernetLen    = 14
	VLANTagLen     = 4
	IPv4MinLen     = 20
	TCPMinLen      = 20
	UDPLen         = 8
	ICMPHeaderLen  = 8
	ICMPUnreach    = 3
	ICMPFragNeeded = 4
)

// Ethernet is an Ethernet II header with optional VLAN tags.
type Ethernet struct {
	Dst, Src net.HardwareAddr // 6 bytes each; nil encodes as zeros
	VLANs    []VLAN           // outermost first
	// EtherType of the payload; 0 means IPv4 when building.
	EtherType uint16
}

// VLAN is one 802.1Q or 802.1ad tag.
type VLAN struct {
	TPID     uint16 // 0 means EtherTypeVLAN when building
	Priority uint8  // PCP, 3 bits
	ID       uint16 // VID, 12 bits
}

// Len returns the header length in bytes, tags included.
func (e Ethernet) Len() int { return EthernetLen + VLANTagLen*len(e.VLANs) }

// Marshal returns the header bytes.
func (e Ethernet) Marshal() []byte {
	b := make([]byte, 0, e.Len())
	b = appendMAC(b, e.Dst)
	b = appendMAC(b, e.Src)
	for _, v := range e.VLANs {
		tpid := v.TPID
		if tpid == 0 {
			tpid = EtherTypeVLAN
		}
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, uint16(v.Priority&7)<<13|v.ID&0x0fff)
	}
	et := e.EtherType
	if et == 0 {
		et = EtherTypeIPv4
	}
	return binary.BigEndian.AppendUint16(b, et)
}

func appendMAC(b []byte, m net.HardwareAddr) []byte {
	var a [6]byte
	copy(a[:], m)
	return append(b, a[:]...)
}

// Frame returns the Ethernet header e followed by payload.
func Frame(e Ethernet, payload []byte) []byte {
	return append(e.Marshal(), payload...)
}

// IPv4 is an IPv4 header. Zero values of the derived fields (Version, IHL,
// TotalLen) are computed by Marshal; set them to build malformed headers.
type IPv4 struct {
	Version    uint8 // 0 means 4
	IHL        uint8 // in 32-bit words; 0 means 5 + options
	TOS        uint8
	TotalLen   uint16 // 0 means header + payload
	ID         uint16
	RF, DF, MF bool   // reserved, don't fragment, more fragments
	FragOffset uint16 // in 8-byte units, 13 bits
	TTL        uint8
	Protocol   uint8
	Checksum   uint16 // set by Decode; Marshal always computes it
	Src, Dst   netip.Addr
	Options    []byte // padded with zeros (end of options) to 4 bytes
}

// HeaderLen returns the length Marshal writes for the header: 20 bytes plus
// the options rounded up to 4.
func (h IPv4) HeaderLen() int { return IPv4MinLen + (len(h.Options)+3)&^3 }

// Marshal returns the header with a valid checksum followed by payload.
func (h IPv4) Marshal(payload []byte) []byte {
	hl := h.HeaderLen()
	b := make([]byte, hl, hl+len(payload))
	ver, ihl := h.Version, h.IHL
	if ver == 0 {
		ver = 4
	}
	if ihl == 0 {
		ihl = uint8(hl / 4)
	}
	tot := h.TotalLen
	if tot == 0 {
		tot = uint16(hl + len(payload))
	}
	b[0] = ver<<4 | ihl&0x0f
	b[1] = h.TOS
	binary.BigEndian.PutUint16(b[2:], tot)
	binary.BigEndian.PutUint16(b[4:], h.ID)
	frag := h.FragOffset & 0x1fff
	if h.DF {
		frag |= 0x4000
	}
	if h.MF {
		frag |= 0x2000
	}
	if h.RF {
		frag |= 0x8000
	}
	binary.BigEndian.PutUint16(b[6:], frag)
	b[8] = h.TTL
	b[9] = h.Protocol
	s, d := as4(h.Src), as4(h.Dst)
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	copy(b[20:], h.Options)
	binary.BigEndian.PutUint16(b[10:], Checksum(b[:hl]))
	return append(b, payload...)
}

func as4(a netip.Addr) [4]byte {
	if !a.IsValid() {
		return [4]byte{}
	}
	return a.Unmap().As4()
}

// TCP is a TCP header. Marshal computes the checksum over the IPv4
// pseudo-header of src and dst.
type TCP struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	DataOffset       uint8 // in 32-bit words; 0 means 5 + options
	Flags            uint8 // TCPSyn, TCPAck, ...
	Window           uint16
	Checksum         uint16 // set by Decode; Marshal always computes it
	Urgent           uint16
	Options          []byte // padded with zeros to 4 bytes
}

// Marshal returns the segment: header, options and payload, with the
// checksum for an IPv4 packet from src to dst.
func (t TCP) Marshal(src, dst netip.Addr, payload []byte) []byte {
	hl := TCPMinLen + (len(t.Options)+3)&^3
	b := make([]byte, hl, hl+len(payload))
	off := t.DataOffset
	if off == 0 {
		off = uint8(hl / 4)
	}
	binary.BigEndian.PutUint16(b[0:], t.SrcPort)
	binary.BigEndian.PutUint16(b[2:], t.DstPort)
	binary.BigEndian.PutUint32(b[4:], t.Seq)
	binary.BigEndian.PutUint32(b[8:], t.Ack)
	b[12] = off << 4
	b[13] = t.Flags
	binary.BigEndian.PutUint16(b[14:], t.Window)
	binary.BigEndian.PutUint16(b[18:], t.Urgent)
	copy(b[20:], t.Options)
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[16:], Checksum(pseudoHeader(src, dst, ProtoTCP, len(b)), b))
	return b
}

// UDP is a UDP header. Marshal computes the length and the checksum.
type UDP struct {
	SrcPort, DstPort uint16
	Length           uint16 // set by Decode; Marshal computes it
	Checksum         uint16 // set by Decode; Marshal computes it
}

// Marshal returns the datagram with a checksum for an IPv4 packet from
// src to dst (a computed 0 is sent as 0xffff, RFC 768).
func (u UDP) Marshal(src, dst netip.Addr, payload []byte) []byte {
	b := make([]byte, UDPLen, UDPLen+len(payload))
	binary.BigEndian.PutUint16(b[0:], u.SrcPort)
	binary.BigEndian.PutUint16(b[2:], u.DstPort)
	binary.BigEndian.PutUint16(b[4:], uint16(UDPLen+len(payload)))
	b = append(b, payload...)
	c := Checksum(pseudoHeader(src, dst, ProtoUDP, len(b)), b)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[6:], c)
	return b
}

// ICMP is an ICMPv4 header: type, code and the 4 bytes that depend on the
// type (for fragmentation needed: 2 unused bytes and the next-hop MTU).
type ICMP struct {
	Type, Code uint8
	Checksum   uint16 // set by Decode; Marshal always computes it
	Rest       uint32
}

// FragNeeded returns the ICMP header of a "fragmentation needed" message
// (type 3, code 4) announcing next-hop MTU mtu (RFC 1191).
func FragNeeded(mtu uint16) ICMP {
	return ICMP{Type: ICMPUnreach, Code: ICMPFragNeeded, Rest: uint32(mtu)}
}

// Marshal returns the message: header with checksum, then body.
func (c ICMP) Marshal(body []byte) []byte {
	b := make([]byte, ICMPHeaderLen, ICMPHeaderLen+len(body))
	b[0], b[1] = c.Type, c.Code
	binary.BigEndian.PutUint32(b[4:], c.Rest)
	b = append(b, body...)
	binary.BigEndian.PutUint16(b[2:], Checksum(b))
	return b
}

// TCPPacket returns an IPv4 packet carrying a TCP segment; ip.Protocol is
// set to TCP.
func TCPPacket(ip IPv4, t TCP, payload []byte) []byte {
	ip.Protocol = ProtoTCP
	return ip.Marshal(t.Marshal(ip.Src, ip.Dst, payload))
}

// UDPPacket returns an IPv4 packet carrying a UDP datagram; ip.Protocol is
// set to UDP.
func UDPPacket(ip IPv4, u UDP, payload []byte) []byte {
	ip.Protocol = ProtoUDP
	return ip.Marshal(u.Marshal(ip.Src, ip.Dst, payload))
}

// IPIPPacket returns the IPv4 packet inner wrapped in outer; outer.Protocol
// is set to IPIP.
func IPIPPacket(outer IPv4, inner []byte) []byte {
	outer.Protocol = ProtoIPIP
	return outer.Marshal(inner)
}

// Fragment splits the payload of the packet with header h into IPv4
// fragments carrying at most size payload bytes each (size is rounded down
// to a multiple of 8 and must leave at least 8). Every fragment repeats h's
// header, options included, with its own offset and MF flag; h's own MF and
// FragOffset are ignored.
func Fragment(h IPv4, payload []byte, size int) ([][]byte, error) {
	size &^= 7
	if size < 8 {
		return nil, fmt.Errorf("fragment: size %d leaves fewer than 8 bytes per fragment", size)
	}
	h.TotalLen = 0
	var out [][]byte
	for off := 0; off < len(payload); off += size {
		end := min(off+size, len(payload))
		f := h
		f.FragOffset = uint16(off / 8)
		f.MF = end < len(payload)
		out = append(out, f.Marshal(payload[off:end]))
	}
	return out, nil
}

// MustMAC parses a MAC address such as "02:00:00:00:00:01" and panics on
// error: for constants in tests.
func MustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}
