package packet

import (
	"encoding/binary"
	"net/netip"
)

// Checksum returns the Internet checksum (RFC 1071) of the concatenation of
// parts: the value to store in a checksum field that was zero while
// summing. An odd-length part is treated as if the next part continued it.
func Checksum(parts ...[]byte) uint16 {
	return ^fold(sum(parts...))
}

// ChecksumOK reports whether b, including its checksum field, sums to
// 0xffff: that is, whether the stored checksum is valid.
func ChecksumOK(parts ...[]byte) bool {
	return fold(sum(parts...)) == 0xffff
}

func sum(parts ...[]byte) uint64 {
	var s uint64
	var odd bool
	for _, p := range parts {
		for _, c := range p {
			if odd {
				s += uint64(c)
			} else {
				s += uint64(c) << 8
			}
			odd = !odd
		}
	}
	return s
}

func fold(s uint64) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// pseudoHeader returns the IPv4 pseudo-header that TCP and UDP checksums
// cover (RFC 793, RFC 768).
func pseudoHeader(src, dst netip.Addr, proto uint8, length int) []byte {
	b := make([]byte, 12)
	s, d := as4(src), as4(dst)
	copy(b[0:4], s[:])
	copy(b[4:8], d[:])
	b[9] = proto
	binary.BigEndian.PutUint16(b[10:12], uint16(length))
	return b
}
