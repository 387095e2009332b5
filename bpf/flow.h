/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The flow table: a set-associative hash table in an array map, read and
 * written by the program with plain loads and stores.
 *
 * A flow may live in two buckets, both derived from its flow hash
 * (flow_hash4) by multiply-shift; a bucket's LB_FLOW_WAYS ways
 * hold one flow each. A lookup compares the tags in a bucket's header (the
 * flow hash, low bit set so that 0 means empty) and then the whole 5-tuple
 * of a way whose tag matches, first in the first bucket, then in the
 * second. An insert takes an empty way of the first bucket, else of the
 * second, else the way of the two used least recently (by the jiffies of
 * its last packet): least recently used among 8 flows, not in the whole
 * table. Two choices are what let a table hold nearly as many flows as it
 * has ways before flows push each other out: with one bucket per flow,
 * some buckets overflow at a quarter of the capacity.
 *
 * Why not the kernel's LRU hash map: an update of any kernel hash map takes
 * a bucket lock and an LRU list lock with interrupts off and costs 200-350
 * ns on the machines we measured, more than the rest of the program and
 * the flow's first packet several times over; a lookup hashes the 40-byte
 * key again although the program already has a flow hash. Here the lookup
 * is a few compares on two cache lines and an insert is a handful of
 * stores.
 *
 * CPUs write without locks, so a reader may see a way half written by
 * another CPU (two flows of one bucket opening at once). Every way carries
 * a check word computed from its tag and value (flow_check); a reader
 * copies the value and takes the way only when the check matches it and
 * the key matches the packet, so a torn way is read as a miss: the packet
 * takes the Maglev ring, as a flow whose entry was evicted would. The
 * control plane (loader/flows.go) reads the table through mapped memory
 * and deletes a flow by clearing its tag with a compare-and-swap.
 */
#ifndef XDPLB_FLOW_H
#define XDPLB_FLOW_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lb_types.h"
#include "lb_maps.h"

/* A found or chosen way of the flow table: way of bucket b. alt is the
 * flow's other bucket, which flow_victim may choose instead. */
struct flow_ref {
	struct lb_flow_bucket *b;
	struct lb_flow_bucket *alt;
	__u32 way; /* < LB_FLOW_WAYS */
	__u32 tag; /* the flow's tag (flow_tag) */
};

/* flow_hash4 returns the flow table's hash of an IPv4 5-tuple, the words
 * as loaded from the packet (network order): cheaper than the Maglev hash
 * (hash.h), which must agree between directors while this one only has to
 * spread flows over buckets. Two 64-bit multiplies; the high half of the
 * last product depends on every input bit. Mirrored in Go
 * (loader/flows_test.go). */
static __always_inline __u32 flow_hash4(__be32 saddr, __be32 daddr,
					__be16 sport, __be16 dport, __u8 proto)
{
	__u64 a = ((__u64)saddr << 32) | ((__u32)sport << 16) | dport;
	__u64 b = ((__u64)daddr << 32) | proto;
	__u64 x = (a ^ ((__u64)hash_seed << 16)) * 0x9e3779b97f4a7c15ULL;

	x = (x ^ (x >> 29) ^ b) * 0xbf58476d1ce4e5b9ULL;
	return x >> 32;
}

/* flow_tag returns the tag of a flow whose flow hash is h: never 0, which
 * marks an empty way. */
static __always_inline __u32 flow_tag(__u32 h)
{
	return h | 1;
}

/* flow_check returns the check word of a way holding tag and value
 * (backend_id, vip_index). Mirrored in Go (loader/flows.go). */
static __always_inline __u32 flow_check(__u32 tag, __u32 backend_id,
					__u32 vip_index)
{
	__u32 c = tag ^ (backend_id * 0x9e3779b1U) ^ (vip_index * 0x85ebca6bU);

	return c ^ (c >> 15);
}

/* A flow key held as the five 64-bit words struct lb_flow_key is in
 * memory (little-endian: the program is built for bpfel only), so that it
 * can live in registers: compared against a way and stored into one
 * without being laid out on the stack first. */
struct flow_kw {
	__u64 w[5];
};

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "struct flow_kw assumes a little-endian target"
#endif

/* flow_key_eq reports whether the way key a (8-byte aligned in the map
 * value) holds the flow key k. */
static __always_inline int flow_key_eq(const struct lb_flow_key *a,
				       const struct flow_kw *k)
{
	const __u64 *x = (const __u64 *)a;

	return ((x[0] ^ k->w[0]) | (x[1] ^ k->w[1]) | (x[2] ^ k->w[2]) |
		(x[3] ^ k->w[3]) | (x[4] ^ k->w[4])) == 0;
}

/* flow_bucket returns bucket index of the flows map, or NULL should the
 * map be smaller than flow_buckets says (it never is: the loader sizes
 * both). */
static __always_inline struct lb_flow_bucket *flow_bucket(__u32 index)
{
	return bpf_map_lookup_elem(&flows, &index);
}

/* flow_index1 and flow_index2 return the two buckets a flow of flow hash h
 * may live in: the multiply-shift reduction of h, and of h mixed once more
 * (so that flows sharing their first bucket spread over the others).
 * Mirrored in Go (loader/flows_test.go). */
static __always_inline __u32 flow_index1(__u32 h)
{
	return ((__u64)h * flow_buckets) >> 32;
}

static __always_inline __u32 flow_index2(__u32 h)
{
	__u32 g = ((h << 16) | (h >> 16)) * 0x9e3779b1U;

	return ((__u64)g * flow_buckets) >> 32;
}

/* flow_scan looks key, of tag, up in bucket b. On a hit it copies the
 * way's value to *val, sets *way and returns 1. */
static __always_inline int flow_scan(struct lb_flow_bucket *b, __u32 tag,
				     const struct flow_kw *key,
				     struct lb_flow *val, __u32 *way)
{
#pragma unroll
	for (__u32 i = 0; i < LB_FLOW_WAYS; i++) {
		struct lb_flow_entry *e = &b->way[i];
		__u32 id, vip;

		if (b->tag[i] != tag || !flow_key_eq(&e->key, key))
			continue;
		id = e->val.backend_id;
		vip = e->val.vip_index;
		if (b->check[i] != flow_check(tag, id, vip))
			continue;
		val->backend_id = id;
		val->vip_index = vip;
		*way = i;
		return 1;
	}
	return 0;
}

/* flow_warm loads one word of each line of bucket b that holds ways, and
 * drops it. BPF has no prefetch instruction; a load whose value is unused
 * is the nearest thing, and volatile keeps the compiler from removing it.
 * The header line is left out: the caller has just read it. */
#define FLOW_CACHE_LINE 64

_Static_assert(__builtin_offsetof(struct lb_flow_bucket, way) == FLOW_CACHE_LINE,
	       "a bucket's header is its first cache line, its ways the rest");

static __always_inline void flow_warm(const struct lb_flow_bucket *b)
{
	const volatile __u64 *w = (const volatile __u64 *)b;

#pragma unroll
	for (__u32 line = 1; line < sizeof(*b) / FLOW_CACHE_LINE; line++)
		(void)w[line * FLOW_CACHE_LINE / sizeof(*w)];
}

/* flow_find looks key, whose flow hash is h, up in its two buckets. On a
 * hit it copies the way's value to *val, points ref at the way and returns
 * 1; otherwise it leaves in ref what flow_victim needs and returns 0.
 *
 * A miss in the first bucket is most often a new flow, which will store
 * into a way of one of the two buckets. Storing into a line that is not in
 * the cache stalls the CPU for as long as the line takes to arrive, after
 * the header reads that chose the way: two memory latencies in a row. So
 * on that miss the way lines of both buckets are loaded at once, while the
 * program goes on (flow_warm). In a 65,536-flow table, larger than the
 * CPU's own cache, that cut a new flow's cost by about a quarter; a hit in
 * the first bucket, every established flow's path, runs none of it. */
static __always_inline int flow_find(const struct flow_kw *key, __u32 h,
				     struct lb_flow *val, struct flow_ref *ref)
{
	struct lb_flow_bucket *b = flow_bucket(flow_index1(h));
	__u32 tag = flow_tag(h);

	ref->tag = tag;
	ref->way = 0;
	ref->b = b;
	ref->alt = NULL;
	if (b && flow_scan(b, tag, key, val, &ref->way))
		return 1;
	/* Most flows live in their first bucket: the second is read on a
	 * miss there only. */
	b = flow_bucket(flow_index2(h));
	ref->alt = b;
	if (b && ref->b) {
		flow_warm(ref->b);
		flow_warm(b);
	}
	if (b && flow_scan(b, tag, key, val, &ref->way)) {
		ref->b = b;
		return 1;
	}
	return 0;
}

/* flow_touch records that the way ref was used now, writing only when the
 * jiffy changed, so a busy flow dirties its bucket at most once a tick. */
static __always_inline void flow_touch(const struct flow_ref *ref)
{
	__u32 now = (__u32)bpf_jiffies64();
	__u32 w = ref->way & (LB_FLOW_WAYS - 1);

	if (ref->b && ref->b->used[w] != now)
		ref->b->used[w] = now;
}

/* flow_empty returns the first empty way of b, or LB_FLOW_WAYS. */
static __always_inline __u32 flow_empty(const struct lb_flow_bucket *b)
{
#pragma unroll
	for (__u32 i = 0; i < LB_FLOW_WAYS; i++)
		if (b->tag[i] == 0)
			return i;
	return LB_FLOW_WAYS;
}

/* flow_oldest returns the way of b unused for longest at now, and its age
 * in *age. */
static __always_inline __u32 flow_oldest(const struct lb_flow_bucket *b,
					 __u32 now, __u32 *age)
{
	__u32 oldest = 0, way = 0;

#pragma unroll
	for (__u32 i = 0; i < LB_FLOW_WAYS; i++) {
		__u32 a = now - b->used[i];

		if (a > oldest) {
			oldest = a;
			way = i;
		}
	}
	*age = oldest;
	return way;
}

/* flow_victim picks the way a new flow takes, among the two buckets
 * flow_find left in ref (the first exists: the caller checked ref->b; the
 * second may be NULL): the first empty way of the first bucket, else of the
 * second, else the way unused for longest of both. Points ref at it and
 * returns whether a live flow is evicted. */
static __always_inline int flow_victim(struct flow_ref *ref, __u32 now)
{
	struct lb_flow_bucket *b1 = ref->b, *b2 = ref->alt;
	__u32 w1, w2, age1, age2;

	w1 = flow_empty(b1);
	if (w1 < LB_FLOW_WAYS) {
		ref->way = w1;
		return 0;
	}
	if (b2) {
		w2 = flow_empty(b2);
		if (w2 < LB_FLOW_WAYS) {
			ref->b = b2;
			ref->way = w2;
			return 0;
		}
	}
	w1 = flow_oldest(b1, now, &age1);
	ref->way = w1;
	if (b2) {
		w2 = flow_oldest(b2, now, &age2);
		if (age2 > age1) {
			ref->b = b2;
			ref->way = w2;
		}
	}
	return 1;
}

/* flow_store writes key and its value into the way ref, tag last. */
static __always_inline void flow_store(const struct flow_ref *ref,
				       const struct flow_kw *key,
				       __u32 backend_id, __u32 vip_index,
				       __u32 now)
{
	struct lb_flow_bucket *b = ref->b;
	__u32 w = ref->way & (LB_FLOW_WAYS - 1);
	struct lb_flow_entry *e = &b->way[w];
	__u64 *dst = (__u64 *)&e->key;

	b->tag[w] = 0;
	dst[0] = key->w[0];
	dst[1] = key->w[1];
	dst[2] = key->w[2];
	dst[3] = key->w[3];
	dst[4] = key->w[4];
	e->val.backend_id = backend_id;
	e->val.vip_index = vip_index;
	b->check[w] = flow_check(ref->tag, backend_id, vip_index);
	b->used[w] = now;
	b->tag[w] = ref->tag;
}

#endif /* XDPLB_FLOW_H */
