package loader

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// The Go mirror of bpf/hash.h. Every input word is the big-endian number of
// its wire bytes, so the result does not depend on the host's byte order.

// hashMix is hash_mix: MurmurHash3's 32-bit block step.
func hashMix(h, k uint32) uint32 {
	k *= 0xcc9e2d51
	k = bits.RotateLeft32(k, 15)
	k *= 0x1b873593
	h ^= k
	h = bits.RotateLeft32(h, 13)
	return h*5 + 0xe6546b64
}

// hashFinal is hash_final: fold in the length, then MurmurHash3's fmix32.
func hashFinal(h, length uint32) uint32 {
	h ^= length
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// ipv4Word is the host-order number of an IPv4 address's wire bytes. For
// an IPv4-mapped address it uses the embedded IPv4 address; for anything
// else (the program hashes IPv4 only) the low 32 bits.
func ipv4Word(a netip.Addr) uint32 {
	b := a.As16()
	return binary.BigEndian.Uint32(b[12:])
}

// FlowHash is the hash the balancer computes over an IPv4 5-tuple
// (hash_flow4 in bpf/hash.h): the program's ring slot for a new flow is
// FlowHash(seed, src, dst, proto) % RingSize.
func FlowHash(seed uint32, src, dst netip.AddrPort, proto Proto) uint32 {
	h := seed
	h = hashMix(h, ipv4Word(src.Addr()))
	h = hashMix(h, ipv4Word(dst.Addr()))
	h = hashMix(h, uint32(src.Port())<<16|uint32(dst.Port()))
	h = hashMix(h, uint32(proto))
	return hashFinal(h, 16)
}

// prefixMask4 is the IPv4 netmask of a prefix length, clamped to 32.
func prefixMask4(prefix uint8) uint32 {
	if prefix == 0 {
		return 0
	}
	if prefix >= 32 {
		return ^uint32(0)
	}
	return ^uint32(0) << (32 - prefix)
}

// SourceHash is the hash the balancer computes for a VIP with source
// persistence (hash_src4 in bpf/hash.h): only the client address, masked
// to prefix bits (clamped to 32), is hashed.
func SourceHash(seed uint32, src netip.Addr, prefix uint8) uint32 {
	return hashFinal(hashMix(seed, ipv4Word(src)&prefixMask4(prefix)), 4)
}
