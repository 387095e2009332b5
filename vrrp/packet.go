package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Protocol is the IP protocol number of VRRP.
const Protocol = 112

// TTL is the IPv4 time to live every advertisement is sent with; a receiver
// drops any other value, which proves the sender is on the same link.
const TTL = 255

// TOS is the IPv4 type of service keepalived sends advertisements with
// (precedence "internetwork control"); xdplb does the same.
const TOS = 0xc0

// Group returns 224.0.0.18, the IPv4 multicast group of VRRP.
func Group() netip.Addr { return netip.AddrFrom4([4]byte{224, 0, 0, 18}) }

// Version is the VRRP protocol version.
type Version uint8

// The supported versions.
const (
	V2 Version = 2 // RFC 3768: intervals in seconds, authentication field
	V3 Version = 3 // RFC 5798: intervals in centiseconds, pseudo-header checksum
)

// AuthType is the VRRPv2 authentication type.
type AuthType uint8

// VRRPv2 authentication types. RFC 3768 reserves 1 and 2; keepalived still
// sends 1 for its "auth_type PASS" (the RFC 2338 simple text password) and 2
// for IPsec AH, which xdplb does not implement.
const (
	AuthNone AuthType = 0
	AuthPass AuthType = 1
	AuthAH   AuthType = 2
)

// Wire layout.
const (
	headerLen        = 8 // version/type, VRID, priority, count, v2 auth type+interval or v3 interval, checksum
	authDataLen      = 8 // VRRPv2 authentication data, always present
	typeAdvertisment = 1 // the only VRRP packet type
	maxIntervalV3    = 0xfff
)

// PasswordLen is the longest VRRPv2 simple password, as keepalived's auth_pass.
const PasswordLen = 8

// MaxAddresses is the most addresses one advertisement can carry.
const MaxAddresses = 255

// Advertisement is a decoded VRRP advertisement. Fields keep their wire
// units so that an advertisement re-encodes to exactly the bytes it came
// from.
type Advertisement struct {
	Version  Version
	VRID     uint8
	Priority uint8
	// Interval is the advertisement interval in the version's unit:
	// whole seconds for VRRPv2 (8 bits), centiseconds for VRRPv3 (12 bits).
	// Use [Advertisement.IntervalDuration] and [IntervalField] to convert.
	Interval uint16
	// Reserved holds the four VRRPv3 reserved bits. Senders set them to zero
	// and receivers ignore them; they are kept only to re-encode faithfully.
	Reserved uint8
	// AuthType and AuthData exist only in VRRPv2.
	AuthType AuthType
	AuthData [8]byte
	// Addresses are the virtual IPv4 addresses, in packet order.
	Addresses []netip.Addr
	// Checksum is the value the packet carried; Marshal computes its own.
	Checksum uint16
}

// Len returns the encoded length of a in bytes.
func (a *Advertisement) Len() int {
	n := headerLen + 4*len(a.Addresses)
	if a.Version == V2 {
		n += authDataLen
	}
	return n
}

// IntervalDuration returns the advertisement interval carried by a.
func (a *Advertisement) IntervalDuration() time.Duration {
	if a.Version == V2 {
		return time.Duration(a.Interval) * time.Second
	}
	return time.Duration(a.Interval) * 10 * time.Millisecond
}

// IntervalField converts d to the wire value of version v: whole seconds
// from 1 to 255 for VRRPv2, centiseconds from 1 to 4095 for VRRPv3. It
// rejects durations the field cannot carry exactly.
func IntervalField(v Version, d time.Duration) (uint16, error) {
	switch v {
	case V2:
		if d%time.Second != 0 || d < time.Second || d > 255*time.Second {
			return 0, fmt.Errorf("vrrpv2 advertisement interval %v: must be whole seconds from 1s to 255s", d)
		}
		return uint16(d / time.Second), nil
	case V3:
		cs := 10 * time.Millisecond
		if d%cs != 0 || d < cs || d > maxIntervalV3*cs {
			return 0, fmt.Errorf("vrrpv3 advertisement interval %v: must be a multiple of 10ms from 10ms to 40.95s", d)
		}
		return uint16(d / cs), nil
	}
	return 0, fmt.Errorf("%w: %d", ReasonVersion, v)
}

// Password returns the VRRPv2 authentication data for a simple password:
// its bytes, zero padded to eight, as keepalived sends for auth_type PASS.
// Longer passwords are rejected rather than silently truncated.
func Password(pw string) ([8]byte, error) {
	var d [8]byte
	if len(pw) == 0 || len(pw) > PasswordLen {
		return d, fmt.Errorf("vrrp password: %d bytes, must be 1 to %d", len(pw), PasswordLen)
	}
	copy(d[:], pw)
	return d, nil
}

// Unmarshal decodes the VRRP message b (the IP payload) into a, checking its
// structure: version, type, address count and length. It does not check
// the checksum, which for VRRPv3 needs the IP addresses; see [Parse] and
// [VerifyChecksum]. Errors wrap a [Reason].
func (a *Advertisement) Unmarshal(b []byte) error {
	if len(b) < 1 {
		return fmt.Errorf("%w: empty message", ReasonTruncated)
	}
	v := Version(b[0] >> 4)
	if v != V2 && v != V3 {
		return fmt.Errorf("%w: version %d", ReasonVersion, v)
	}
	if t := b[0] & 0x0f; t != typeAdvertisment {
		return fmt.Errorf("%w: type %d", ReasonType, t)
	}
	if len(b) < headerLen {
		return fmt.Errorf("%w: %d bytes, header needs %d", ReasonTruncated, len(b), headerLen)
	}
	count := int(b[3])
	if count == 0 {
		return fmt.Errorf("%w", ReasonZeroCount)
	}
	need := headerLen + 4*count
	if v == V2 {
		need += authDataLen
	}
	if len(b) < need {
		return fmt.Errorf("%w: %d bytes, %d addresses need %d", ReasonTruncated, len(b), count, need)
	}
	if len(b) > need {
		return fmt.Errorf("%w: %d bytes, %d addresses need %d", ReasonCount, len(b), count, need)
	}

	*a = Advertisement{
		Version:   v,
		VRID:      b[1],
		Priority:  b[2],
		Checksum:  binary.BigEndian.Uint16(b[6:8]),
		Addresses: make([]netip.Addr, count),
	}
	if v == V2 {
		a.AuthType = AuthType(b[4])
		a.Interval = uint16(b[5])
		copy(a.AuthData[:], b[need-authDataLen:])
	} else {
		a.Reserved = b[4] >> 4
		a.Interval = binary.BigEndian.Uint16(b[4:6]) & maxIntervalV3
	}
	for i := range a.Addresses {
		a.Addresses[i] = netip.AddrFrom4([4]byte(b[headerLen+4*i:]))
	}
	return nil
}

// Parse decodes and checks the VRRP message b received from src for dst:
// [Advertisement.Unmarshal] followed by [VerifyChecksum].
func Parse(b []byte, src, dst netip.Addr) (Advertisement, error) {
	var a Advertisement
	if err := a.Unmarshal(b); err != nil {
		return Advertisement{}, err
	}
	if err := VerifyChecksum(b, src, dst); err != nil {
		return Advertisement{}, err
	}
	return a, nil
}

// Marshal encodes a for sending from src to dst. The addresses matter only
// to the VRRPv3 checksum, which covers an IPv4 pseudo-header (source,
// destination, zero, protocol 112, VRRP length) as RFC 5798 section 5.2.8
// and keepalived compute it. The checksum is computed, never taken from
// a.Checksum.
func (a *Advertisement) Marshal(src, dst netip.Addr) ([]byte, error) {
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("marshal vrrp advertisement: %w", err)
	}
	if a.Version == V3 && (!src.Is4() || !dst.Is4()) {
		return nil, fmt.Errorf("marshal vrrpv3 advertisement: checksum needs IPv4 source and destination, got %v and %v", src, dst)
	}
	b := make([]byte, a.Len())
	b[0] = byte(a.Version)<<4 | typeAdvertisment
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = byte(len(a.Addresses))
	if a.Version == V2 {
		b[4] = byte(a.AuthType)
		b[5] = byte(a.Interval)
		copy(b[len(b)-authDataLen:], a.AuthData[:])
	} else {
		binary.BigEndian.PutUint16(b[4:6], uint16(a.Reserved)<<12|a.Interval)
	}
	for i, addr := range a.Addresses {
		ip := addr.As4()
		copy(b[headerLen+4*i:], ip[:])
	}
	binary.BigEndian.PutUint16(b[6:8], Checksum(b, src, dst))
	return b, nil
}

func (a *Advertisement) check() error {
	switch a.Version {
	case V2:
		if a.Interval > 0xff {
			return fmt.Errorf("vrrpv2 interval %d does not fit 8 bits", a.Interval)
		}
	case V3:
		if a.Interval > maxIntervalV3 {
			return fmt.Errorf("vrrpv3 interval %d does not fit 12 bits", a.Interval)
		}
		if a.Reserved > 0xf {
			return fmt.Errorf("vrrpv3 reserved bits %#x do not fit 4 bits", a.Reserved)
		}
	default:
		return fmt.Errorf("%w: %d", ReasonVersion, a.Version)
	}
	if len(a.Addresses) == 0 {
		return ReasonZeroCount
	}
	if len(a.Addresses) > MaxAddresses {
		return fmt.Errorf("%d addresses, at most %d fit", len(a.Addresses), MaxAddresses)
	}
	for _, addr := range a.Addresses {
		if !addr.Is4() {
			return fmt.Errorf("address %v is not IPv4", addr)
		}
	}
	return nil
}

// Checksum returns the checksum the VRRP message b must carry when sent
// from src to dst, treating its checksum field as zero. VRRPv2 sums the
// message alone (RFC 3768 5.3.8); VRRPv3 prepends the IPv4 pseudo-header
// (RFC 5798 5.2.8). b must hold at least the 8-byte header.
func Checksum(b []byte, src, dst netip.Addr) uint16 {
	var sum uint32
	if Version(b[0]>>4) == V3 {
		s, d := src.As4(), dst.As4()
		sum = onesSum(sum, s[:])
		sum = onesSum(sum, d[:])
		sum += Protocol
		sum += uint32(len(b))
	}
	sum = onesSum(sum, b[:6])
	sum = onesSum(sum, b[8:])
	return ^fold(sum)
}

// VerifyChecksum checks the checksum of the VRRP message b received from src
// for dst. It wants the exact value [Checksum] computes, so the one's
// complement "negative zero" 0xffff is refused where 0x0000 is due, as RFC
// 1071 arithmetic produces.
func VerifyChecksum(b []byte, src, dst netip.Addr) error {
	if len(b) < headerLen {
		return fmt.Errorf("%w: %d bytes", ReasonTruncated, len(b))
	}
	if Version(b[0]>>4) == V3 && (!src.Is4() || !dst.Is4()) {
		return fmt.Errorf("%w: vrrpv3 needs IPv4 source and destination, got %v and %v", ReasonChecksum, src, dst)
	}
	got := binary.BigEndian.Uint16(b[6:8])
	if want := Checksum(b, src, dst); got != want {
		return fmt.Errorf("%w: advert carries %#04x, computed %#04x", ReasonChecksum, got, want)
	}
	return nil
}

// onesSum adds b to sum as big-endian 16-bit words, padding an odd tail.
func onesSum(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}
