package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ErrTruncated is wrapped by decoding errors caused by missing bytes.
var ErrTruncated = errors.New("truncated")

// Decoded is a frame taken apart by Decode. Slices alias the frame.
type Decoded struct {
	Eth Ethernet
	// IP is set when the EtherType is IPv4 and the header decoded.
	IP        *IPv4
	IPOffset  int    // offset of the IPv4 header in the frame
	L4Offset  int    // offset of the IPv4 payload in the frame
	IPPayload []byte // the IPv4 payload, up to the total length
	Trailer   []byte // bytes after the IPv4 total length (padding)
	// At most one of these is set, for an unfragmented packet or a first
	// fragment whose header decoded.
	TCP       *TCP
	UDP       *UDP
	ICMP      *ICMP
	L4Payload []byte // after the TCP, UDP or ICMP header
}

// Decode takes frame apart as far as it can: Ethernet and its VLAN tags,
// then for IPv4 the header and, in packets whose offset is 0, the TCP, UDP
// or ICMP header. It returns what it decoded and the first error met.
func Decode(frame []byte) (Decoded, error) {
	var d Decoded
	eth, rest, err := ParseEthernet(frame)
	if err != nil {
		return d, err
	}
	d.Eth = eth
	d.IPOffset = eth.Len()
	if eth.EtherType != EtherTypeIPv4 {
		return d, nil
	}
	ip, payload, trailer, err := ParseIPv4(rest)
	if err != nil {
		return d, err
	}
	d.IP = &ip
	d.L4Offset = d.IPOffset + int(ip.IHL)*4
	d.IPPayload = payload
	d.Trailer = trailer
	if ip.FragOffset != 0 {
		return d, nil
	}
	switch ip.Protocol {
	case ProtoTCP:
		t, p, err := ParseTCP(payload)
		if err != nil {
			return d, err
		}
		d.TCP, d.L4Payload = &t, p
	case ProtoUDP:
		u, p, err := ParseUDP(payload)
		if err != nil {
			return d, err
		}
		d.UDP, d.L4Payload = &u, p
	case ProtoICMP:
		c, p, err := ParseICMP(payload)
		if err != nil {
			return d, err
		}
		d.ICMP, d.L4Payload = &c, p
	}
	return d, nil
}

// ParseEthernet decodes the Ethernet header of b and every VLAN tag
// (TPID 0x8100 or 0x88a8) that follows, and returns the rest of b.
func ParseEthernet(b []byte) (Ethernet, []byte, error) {
	var e Ethernet
	if len(b) < EthernetLen {
		return e, nil, fmt.Errorf("ethernet: %d bytes, want %d: %w", len(b), EthernetLen, ErrTruncated)
	}
	e.Dst = net.HardwareAddr(b[0:6])
	e.Src = net.HardwareAddr(b[6:12])
	et := binary.BigEndian.Uint16(b[12:])
	b = b[EthernetLen:]
	for et == EtherTypeVLAN || et == EtherTypeQinQ {
		if len(b) < VLANTagLen {
			return e, nil, fmt.Errorf("vlan tag %d: %w", len(e.VLANs)+1, ErrTruncated)
		}
		tci := binary.BigEndian.Uint16(b)
		e.VLANs = append(e.VLANs, VLAN{TPID: et, Priority: uint8(tci >> 13), ID: tci & 0x0fff})
		et = binary.BigEndian.Uint16(b[2:])
		b = b[VLANTagLen:]
	}
	e.EtherType = et
	return e, b, nil
}

// ParseIPv4 decodes the IPv4 header at the start of b and returns it with
// the payload (up to the total length) and the trailer after it. It checks
// lengths, not the checksum: see ChecksumOK.
func ParseIPv4(b []byte) (IPv4, []byte, []byte, error) {
	var h IPv4
	if len(b) < IPv4MinLen {
		return h, nil, nil, fmt.Errorf("ipv4: %d bytes, want %d: %w", len(b), IPv4MinLen, ErrTruncated)
	}
	h.Version = b[0] >> 4
	h.IHL = b[0] & 0x0f
	h.TOS = b[1]
	h.TotalLen = binary.BigEndian.Uint16(b[2:])
	h.ID = binary.BigEndian.Uint16(b[4:])
	frag := binary.BigEndian.Uint16(b[6:])
	h.RF = frag&0x8000 != 0
	h.DF = frag&0x4000 != 0
	h.MF = frag&0x2000 != 0
	h.FragOffset = frag & 0x1fff
	h.TTL = b[8]
	h.Protocol = b[9]
	h.Checksum = binary.BigEndian.Uint16(b[10:])
	h.Src = netip.AddrFrom4([4]byte(b[12:16]))
	h.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	if h.Version != 4 {
		return h, nil, nil, fmt.Errorf("ipv4: version %d", h.Version)
	}
	hl := int(h.IHL) * 4
	if hl < IPv4MinLen {
		return h, nil, nil, fmt.Errorf("ipv4: header length %d below 20", hl)
	}
	if len(b) < hl {
		return h, nil, nil, fmt.Errorf("ipv4: options need %d bytes, have %d: %w", hl, len(b), ErrTruncated)
	}
	h.Options = b[IPv4MinLen:hl]
	tot := int(h.TotalLen)
	if tot < hl {
		return h, nil, nil, fmt.Errorf("ipv4: total length %d below header length %d", tot, hl)
	}
	if len(b) < tot {
		return h, nil, nil, fmt.Errorf("ipv4: total length %d, have %d: %w", tot, len(b), ErrTruncated)
	}
	return h, b[hl:tot], b[tot:], nil
}

// ParseTCP decodes the TCP header at the start of b and returns it with
// the payload after its options.
func ParseTCP(b []byte) (TCP, []byte, error) {
	var t TCP
	if len(b) < TCPMinLen {
		return t, nil, fmt.Errorf("tcp: %d bytes, want %d: %w", len(b), TCPMinLen, ErrTruncated)
	}
	t.SrcPort = binary.BigEndian.Uint16(b[0:])
	t.DstPort = binary.BigEndian.Uint16(b[2:])
	t.Seq = binary.BigEndian.Uint32(b[4:])
	t.Ack = binary.BigEndian.Uint32(b[8:])
	t.DataOffset = b[12] >> 4
	t.Flags = b[13]
	t.Window = binary.BigEndian.Uint16(b[14:])
	t.Checksum = binary.BigEndian.Uint16(b[16:])
	t.Urgent = binary.BigEndian.Uint16(b[18:])
	hl := int(t.DataOffset) * 4
	if hl < TCPMinLen {
		return t, nil, fmt.Errorf("tcp: data offset %d below 5", t.DataOffset)
	}
	if len(b) < hl {
		return t, nil, fmt.Errorf("tcp: options need %d bytes, have %d: %w", hl, len(b), ErrTruncated)
	}
	t.Options = b[TCPMinLen:hl]
	return t, b[hl:], nil
}

// ParseUDP decodes the UDP header at the start of b and returns it with
// the bytes after it.
func ParseUDP(b []byte) (UDP, []byte, error) {
	var u UDP
	if len(b) < UDPLen {
		return u, nil, fmt.Errorf("udp: %d bytes, want %d: %w", len(b), UDPLen, ErrTruncated)
	}
	u.SrcPort = binary.BigEndian.Uint16(b[0:])
	u.DstPort = binary.BigEndian.Uint16(b[2:])
	u.Length = binary.BigEndian.Uint16(b[4:])
	u.Checksum = binary.BigEndian.Uint16(b[6:])
	return u, b[UDPLen:], nil
}

// ParseICMP decodes the ICMP header at the start of b and returns it with
// the body after it.
func ParseICMP(b []byte) (ICMP, []byte, error) {
	var c ICMP
	if len(b) < ICMPHeaderLen {
		return c, nil, fmt.Errorf("icmp: %d bytes, want %d: %w", len(b), ICMPHeaderLen, ErrTruncated)
	}
	c.Type, c.Code = b[0], b[1]
	c.Checksum = binary.BigEndian.Uint16(b[2:])
	c.Rest = binary.BigEndian.Uint32(b[4:])
	return c, b[ICMPHeaderLen:], nil
}

// TCPChecksumOK reports whether the TCP segment seg (header and payload)
// carries a valid checksum for an IPv4 packet from src to dst.
func TCPChecksumOK(src, dst netip.Addr, seg []byte) bool {
	return ChecksumOK(pseudoHeader(src, dst, ProtoTCP, len(seg)), seg)
}

// UDPChecksumOK reports whether the UDP datagram dg carries a valid
// checksum for an IPv4 packet from src to dst (0 means none and is valid).
func UDPChecksumOK(src, dst netip.Addr, dg []byte) bool {
	if len(dg) >= UDPLen && dg[6] == 0 && dg[7] == 0 {
		return true
	}
	return ChecksumOK(pseudoHeader(src, dst, ProtoUDP, len(dg)), dg)
}
