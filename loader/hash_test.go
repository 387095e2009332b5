package loader

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"testing"
)

// murmur3 is a plain MurmurHash3_x86_32 over a byte string (blocks read
// little-endian), written from the algorithm's description so FlowHash is
// checked against an independent implementation, not against itself.
func murmur3(data []byte, seed uint32) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	h := seed
	n := len(data) / 4
	for i := 0; i < n; i++ {
		k := binary.LittleEndian.Uint32(data[4*i:])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	tail := data[4*n:]
	var k uint32
	switch len(tail) {
	case 3:
		k ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(tail[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(len(data))
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// The reference itself against published MurmurHash3_x86_32 vectors.
func TestMurmur3Reference(t *testing.T) {
	tests := []struct {
		in   string
		seed uint32
		want uint32
	}{
		{"", 0, 0},
		{"", 1, 0x514e28b7},
		{"\x00\x00\x00\x00", 0, 0x2362f9de},
		{"test", 0, 0xba6bd213},
		{"Hello, world!", 1234, 0xfaf6cdb3},
		{"The quick brown fox jumps over the lazy dog", 0, 0x2e4ff723},
	}
	for _, tt := range tests {
		if got := murmur3([]byte(tt.in), tt.seed); got != tt.want {
			t.Errorf("murmur3(%q, %#x) = %#x, want %#x", tt.in, tt.seed, got, tt.want)
		}
	}
}

// words lays host-order words out as MurmurHash3 reads its blocks.
func words(ws ...uint32) []byte {
	b := make([]byte, 0, 4*len(ws))
	for _, w := range ws {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

func TestHashSteps(t *testing.T) {
	// One block of 0 from seed 0: k stays 0, so h = rotl(0,13)*5 + n.
	if want, got := uint32(0xe6546b64), hashMix(0, 0); want != got {
		t.Errorf("hashMix(0, 0) = %#x, want %#x", got, want)
	}
	// k = 1: k*c1 = 0xcc9e2d51, rotated left 15 = 0x16a8e64f, then *c2,
	// then h = rotl(k, 13)*5 + 0xe6546b64, all mod 2^32.
	k := uint32(1) * 0xcc9e2d51
	if want, got := uint32(0x16a8e64f), bits.RotateLeft32(k, 15); want != got {
		t.Fatalf("rotl step = %#x, want %#x", got, want)
	}
	k, c2 := uint32(0x16a8e64f), uint32(0x1b873593)
	want := bits.RotateLeft32(k*c2, 13)*5 + 0xe6546b64
	if got := hashMix(0, 1); got != want {
		t.Errorf("hashMix(0, 1) = %#x, want %#x", got, want)
	}
	// fmix32 of 0 is 0; with length 4 folded in it is fmix32(4).
	if got := hashFinal(0, 0); got != 0 {
		t.Errorf("hashFinal(0, 0) = %#x, want 0", got)
	}
}

func TestSourceHash(t *testing.T) {
	tests := []struct {
		name   string
		seed   uint32
		src    string
		prefix uint8
		want   uint32
	}{
		// "\0\0\0\0" and "test" are published vectors; "test" read as a
		// little-endian block is 0x74736574, the address 116.115.101.116.
		{"zero address", 0, "0.0.0.0", 32, 0x2362f9de},
		{"test vector", 0, "116.115.101.116", 32, 0xba6bd213},
		{"prefix 0 hashes 0", 0, "116.115.101.116", 0, 0x2362f9de},
		{"prefix over 32 clamps", 0, "116.115.101.116", 40, 0xba6bd213},
		{"prefix 24", 7, "198.18.5.77", 24, murmur3(words(0xc6120500), 7)},
		{"prefix 17", 7, "198.18.255.77", 17, murmur3(words(0xc6128000), 7)},
		{"default seed", DefaultHashSeed, "198.18.0.1", 32, murmur3(words(0xc6120001), DefaultHashSeed)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SourceHash(tt.seed, netip.MustParseAddr(tt.src), tt.prefix)
			if tt.want != got {
				t.Errorf("SourceHash = %#x, want %#x", got, tt.want)
			}
		})
	}
	// The same /24 gives the same hash; another /24 (almost surely) not.
	a := SourceHash(1, netip.MustParseAddr("198.18.7.1"), 24)
	b := SourceHash(1, netip.MustParseAddr("198.18.7.254"), 24)
	c := SourceHash(1, netip.MustParseAddr("198.18.8.1"), 24)
	if a != b || a == c {
		t.Errorf("/24 persistence: %#x %#x %#x, want first two equal, third different", a, b, c)
	}
}

func TestFlowHash(t *testing.T) {
	tests := []struct {
		name     string
		seed     uint32
		src, dst string
		proto    Proto
		words    []uint32 // saddr, daddr, sport<<16|dport, proto as numbers
	}{
		{"tcp", DefaultHashSeed, "198.18.0.10:40000", "198.18.1.100:80", TCP,
			[]uint32{0xc612000a, 0xc6120164, 40000<<16 | 80, 6}},
		{"udp seed 0", 0, "198.18.200.3:53", "198.18.1.100:5353", UDP,
			[]uint32{0xc612c803, 0xc6120164, 53<<16 | 5353, 17}},
		{"max ports", 0xffffffff, "255.255.255.255:65535", "0.0.0.0:65535", TCP,
			[]uint32{0xffffffff, 0, 0xffffffff, 6}},
		{"ipv4-mapped source", 9, "[::ffff:198.18.0.10]:1", "198.18.1.100:2", TCP,
			[]uint32{0xc612000a, 0xc6120164, 1<<16 | 2, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := murmur3(words(tt.words...), tt.seed)
			got := FlowHash(tt.seed, netip.MustParseAddrPort(tt.src), netip.MustParseAddrPort(tt.dst), tt.proto)
			if want != got {
				t.Errorf("FlowHash = %#x, want %#x", got, want)
			}
		})
	}
	// Swapping ports changes the hash: sport is the high half.
	s, d := netip.MustParseAddrPort("198.18.0.1:1000"), netip.MustParseAddrPort("198.18.0.2:2000")
	s2, d2 := netip.MustParseAddrPort("198.18.0.1:2000"), netip.MustParseAddrPort("198.18.0.2:1000")
	if FlowHash(1, s, d, TCP) == FlowHash(1, s2, d2, TCP) {
		t.Error("FlowHash ignores which port is the source")
	}
}

func TestSlot(t *testing.T) {
	b := &Balancer{opts: Options{RingSize: 65537, HashSeed: 77}}
	src, dst := netip.MustParseAddrPort("198.18.0.10:40000"), netip.MustParseAddrPort("198.18.1.100:80")
	flow := VIPEntry{VIP: VIP{dst.Addr(), 80, UDP}}
	if want, got := FlowHash(77, src, dst, UDP)%65537, b.Slot(flow, src, dst); want != got {
		t.Errorf("Slot = %d, want %d", got, want)
	}
	persist := VIPEntry{VIP: VIP{dst.Addr(), 80, TCP}, Config: VIPConfig{Persist: true, PersistPrefix: 24}}
	if want, got := SourceHash(77, src.Addr(), 24)%65537, b.Slot(persist, src, dst); want != got {
		t.Errorf("persistent Slot = %d, want %d", got, want)
	}
	other := netip.MustParseAddrPort("198.18.0.200:1")
	if b.Slot(persist, src, dst) != b.Slot(persist, other, dst) {
		t.Error("persistent Slot differs within one /24")
	}
}
