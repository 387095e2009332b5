/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The flow hash that picks a Maglev slot.
 *
 * Both directors of a pair, and the Go control plane (loader.FlowHash), must
 * compute the same value for the same flow, so the definition is byte-order
 * independent: every word is taken as the big-endian number of its wire
 * bytes. The mixing is MurmurHash3's 32-bit block and finalisation steps.
 *
 *   5-tuple:     h = seed; mix saddr, daddr, sport<<16|dport, proto; h ^= 16
 *   persistence: h = seed; mix (saddr & mask); h ^= 4
 *   then fmix32(h), and the slot is h % ring_size.
 *
 * The VIP pre-filter uses a cheaper hash of the destination alone, also
 * mirrored in Go (loader/filter.go): Knuth's multiplicative hash, the top
 * LB_VIP_FILTER_BITS bits of daddr * 0x9e3779b1 (mod 2^32), daddr being
 * the big-endian number of the address. Multiplication carries every input
 * bit into the top bits, so addresses that differ only in the last octet
 * still land in different buckets.
 */
#ifndef XDPLB_HASH_H
#define XDPLB_HASH_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#include "lb_types.h"

static __always_inline __u32 hash_rotl32(__u32 x, __u32 r)
{
	return (x << r) | (x >> (32 - r));
}

/* hash_mix folds the 32-bit word k into the running hash h. */
static __always_inline __u32 hash_mix(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = hash_rotl32(k, 15);
	k *= 0x1b873593;
	h ^= k;
	h = hash_rotl32(h, 13);
	return h * 5 + 0xe6546b64;
}

/* hash_final is MurmurHash3's fmix32 after folding in the input length. */
static __always_inline __u32 hash_final(__u32 h, __u32 len)
{
	h ^= len;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* hash_flow4 hashes an IPv4 5-tuple. Arguments are host-order numbers. */
static __always_inline __u32 hash_flow4(__u32 seed, __u32 saddr, __u32 daddr,
					__u16 sport, __u16 dport, __u8 proto)
{
	__u32 h = seed;

	h = hash_mix(h, saddr);
	h = hash_mix(h, daddr);
	h = hash_mix(h, ((__u32)sport << 16) | dport);
	h = hash_mix(h, proto);
	return hash_final(h, 16);
}

/* hash_src4 hashes only a (masked) IPv4 client address, host order. */
static __always_inline __u32 hash_src4(__u32 seed, __u32 saddr)
{
	return hash_final(hash_mix(seed, saddr), 4);
}

/* hash_vip_bucket4 returns the vip_filter bucket of an IPv4 destination
 * (host order): 0 .. (1 << LB_VIP_FILTER_BITS) - 1. */
static __always_inline __u32 hash_vip_bucket4(__u32 daddr)
{
	return (daddr * 0x9e3779b1U) >> (32 - LB_VIP_FILTER_BITS);
}

#endif /* XDPLB_HASH_H */
