/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv4 VIP lookup, Maglev backend selection and the flow table.
 *
 * A packet's VIP is found by (destination, port, protocol), falling back to
 * the VIP's all-ports entry (port 0). Its backend comes from the flow table
 * when the flow is known and the pinned backend is still usable (active or
 * draining, same VIP); otherwise from the VIP's Maglev ring, indexed by the
 * flow hash of bpf/hash.h modulo ring_size, which must name an active
 * backend. A new choice is recorded in the flow table, except for a TCP RST,
 * which ends a connection and must not create one. A TCP SYN without ACK
 * opens a new connection even when its 5-tuple has an entry (a client
 * reusing a port): it takes the ring's pick, as if the flow were unknown,
 * so a new connection never follows a closed one to a draining backend.
 * Rings are inner maps swapped whole by the control plane: a packet reads
 * one ring only.
 *
 * Two shortcuts give the same answers with fewer hash lookups. The
 * destination's vip_filter bucket counting no VIP means no VIP lookup can
 * match (lb4_filter). A flow entry records its VIP's index, and when
 * vip_info at that index still describes the VIP the lookup would find,
 * with the pinned backend still usable for it, the flow is forwarded
 * without a VIP lookup (lb4_established); anything else takes the full
 * path (lb4_vip_lookup, lb4_select).
 */
#ifndef XDPLB_LB4_H
#define XDPLB_LB4_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lb_types.h"
#include "lb_maps.h"
#include "hash.h"
#include "flow.h"
#include "parse.h"
#include "stats.h"

/* lb4_prefix_mask returns the host-order netmask of prefix bits; prefixes
 * above 32 count as 32. The 64-bit shift avoids C's undefined shift by 32
 * for prefix 0 and needs no branch. */
static __always_inline __u32 lb4_prefix_mask(__u8 prefix)
{
	if (prefix > 32)
		prefix = 32;
	return (__u32)(0xffffffff00000000ULL >> prefix);
}

/* lb4_opens reports whether the parsed packet p opens a TCP connection: SYN
 * set, ACK and RST clear. Never true for UDP (tcp_flags 0). */
static __always_inline int lb4_opens(const struct parse_pkt *p)
{
	return (p->tcp_flags & (PARSE_TCP_SYN | PARSE_TCP_ACK | PARSE_TCP_RST)) ==
	       PARSE_TCP_SYN;
}

/* lb4_for_us reports whether the frame of the parsed packet p is addressed
 * to the director's MAC, cfg->if_mac; an all-zero if_mac (not configured)
 * accepts every frame. A switch floods frames for a MAC it has not learnt
 * (the old master's, during a VRRP failover) to every port, and a director
 * must not forward a copy meant for another host. */
static __always_inline int lb4_for_us(const struct parse_pkt *p,
				      const struct lb_config *cfg)
{
	/* if_mac is at offset 16 of the 8-byte aligned value: aligned word
	 * loads. Packet loads may be unaligned (the verifier allows it on
	 * the architectures XDP runs on without strict alignment). */
	__u32 mac_hi = *(const __u32 *)cfg->if_mac;
	__u16 mac_lo = *(const __u16 *)(cfg->if_mac + 4);
	const __u8 *dst = p->data;

	if ((mac_hi | mac_lo) == 0)
		return 1;
	return *(const __u32 *)dst == mac_hi &&
	       *(const __u16 *)(dst + 4) == mac_lo;
}

/* lb4_filter returns how many VIPs the vip_filter bucket of the parsed
 * packet p's destination counts: 0 means no VIP has that address, so the
 * packet is for no VIP. The loader never lets a bucket count fewer VIPs
 * than the vips map holds (it may count more for a moment). */
static __always_inline __u32 lb4_filter(const struct parse_pkt *p)
{
	__u32 bucket = hash_vip_bucket4(bpf_ntohl(p->iph->daddr));
	__u32 *n = bpf_map_lookup_elem(&vip_filter, &bucket);

	return n ? *n : 0;
}

/* lb4_flow_key fills key with the words of the 5-tuple of the parsed
 * packet p as struct lb_flow_key lays it out: each address IPv4-mapped
 * (8 zero bytes, then 00 00 ff ff and the address), then the ports, the
 * protocol and 3 zero bytes. */
static __always_inline void lb4_flow_key(const struct parse_pkt *p,
					 struct flow_kw *key)
{
	__u64 mapped = bpf_htonl(0x0000ffff);

	key->w[0] = 0;
	key->w[1] = ((__u64)p->iph->saddr << 32) | mapped;
	key->w[2] = 0;
	key->w[3] = ((__u64)p->iph->daddr << 32) | mapped;
	key->w[4] = (__u64)p->sport | ((__u64)p->dport << 16) |
		    ((__u64)p->proto << 32);
}

/* lb4_flow_hash returns the flow-table hash (flow.h) of the parsed packet
 * p's 5-tuple. */
static __always_inline __u32 lb4_flow_hash(const struct parse_pkt *p)
{
	return flow_hash4(p->iph->saddr, p->iph->daddr, p->sport, p->dport,
			  p->proto);
}

/* lb4_vip_key_of fills key with the VIP key (daddr, dport, proto) of the
 * parsed packet p. key must be 4-byte aligned. */
static __always_inline void lb4_vip_key_of(const struct parse_pkt *p,
					   struct lb_vip_key *key)
{
	parse_addr_mapped(key->addr, p->iph->daddr);
	key->port = p->dport;
	key->proto = p->proto;
	key->pad = 0;
}

/* lb4_vip_lookup returns the VIP the parsed packet p is addressed to: the
 * entry for (daddr, dport, proto), else the all-ports entry (daddr, 0,
 * proto), else NULL. */
static __always_inline struct lb_vip_meta *
lb4_vip_lookup(const struct parse_pkt *p)
{
	/* Aligned so parse_addr_mapped's word stores are aligned stack writes,
	 * which the verifier requires. */
	struct lb_vip_key key __attribute__((aligned(8)));
	struct lb_vip_meta *vip;

	lb4_vip_key_of(p, &key);
	vip = bpf_map_lookup_elem(&vips, &key);
	if (vip)
		return vip;
	key.port = 0;
	return bpf_map_lookup_elem(&vips, &key);
}

/* lb4_info_matches reports whether info, read from vip_info[index],
 * describes a VIP at that index that the parsed packet p may belong to:
 * the IPv4-mapped address is p's destination, the protocol p's, and the
 * port p's destination port or 0 (all ports). */
static __always_inline int lb4_info_matches(const struct lb_vip_info *info,
					    __u32 index,
					    const struct parse_pkt *p)
{
	/* The address is compared as four words, the IPv4-mapped prefix
	 * included, so a future IPv6 VIP never matches an IPv4 packet. The
	 * value is 8-byte aligned in the map, so the loads are aligned. */
	const __u32 *a = (const __u32 *)info->key.addr;

	return info->key.proto == p->proto &&
	       (info->key.port == p->dport || info->key.port == 0) &&
	       a[3] == p->iph->daddr && (a[0] | a[1]) == 0 &&
	       a[2] == bpf_htonl(0x0000ffff) && info->meta.index == index;
}

/* lb4_usable reports whether backend b, pinned by a flow of VIP slot
 * vip_index, may keep receiving that flow: it is active or draining and
 * still belongs to the VIP. */
static __always_inline int lb4_usable(const struct lb_backend *b,
				      __u32 vip_index)
{
	return (b->state == LB_BACKEND_ACTIVE ||
		b->state == LB_BACKEND_DRAINING) &&
	       b->vip_index == vip_index;
}

/* lb4_established tries the established-flow shortcut for the parsed
 * packet p, whose flow entry is flow and whose vip_filter bucket counts
 * nvips VIPs. It succeeds when vip_info[flow->vip_index] describes a VIP
 * that the full lookup (lb4_vip_lookup) would return for p, and the pinned
 * backend is usable for it (lb4_usable): it then sets *vip to that VIP's
 * meta and *be to the backend, and returns the backend id. It counts
 * nothing and returns 0 when the full path must decide.
 *
 * An all-ports VIP is what the lookup returns only if no VIP exists for
 * p's own port. When the bucket counts that one VIP alone, none can;
 * otherwise the port's entry is looked up (one hash lookup, still one
 * fewer than the full path). */
static __always_inline __u32 lb4_established(const struct parse_pkt *p,
					     const struct lb_flow *flow,
					     __u32 nvips,
					     struct lb_vip_meta **vip,
					     struct lb_backend **be)
{
	__u32 index = flow->vip_index;
	__u32 id = flow->backend_id;
	struct lb_vip_info *info;
	struct lb_backend *b;

	info = bpf_map_lookup_elem(&vip_info, &index);
	if (!info || !lb4_info_matches(info, index, p))
		return 0;
	if (info->key.port == 0 && p->dport != 0 && nvips > 1) {
		struct lb_vip_key key __attribute__((aligned(8)));

		lb4_vip_key_of(p, &key);
		if (bpf_map_lookup_elem(&vips, &key))
			return 0;
	}
	b = bpf_map_lookup_elem(&backends, &id);
	if (!b || !lb4_usable(b, index))
		return 0;
	*vip = &info->meta;
	*be = b;
	return id;
}

/* lb4_ring_pick hashes the packet p as vip asks (5-tuple, or the client
 * address masked to persist_prefix with LB_VIP_F_PERSIST) and reads the
 * backend id at slot hash % ring_size of the VIP's ring. Returns the id
 * and sets *be when that backend exists and is active; returns 0 when the
 * VIP has no ring, the slot is empty, or the backend is not active. */
static __always_inline __u32 lb4_ring_pick(const struct parse_pkt *p,
					   const struct lb_vip_meta *vip,
					   struct lb_backend **be)
{
	__u32 saddr = bpf_ntohl(p->iph->saddr);
	__u32 index = vip->index;
	struct lb_backend *b;
	__u32 h, slot, id;
	__u32 *idp;
	void *ring;

	if (vip->flags & LB_VIP_F_PERSIST)
		h = hash_src4(hash_seed,
			      saddr & lb4_prefix_mask(vip->persist_prefix));
	else
		h = hash_flow4(hash_seed, saddr, bpf_ntohl(p->iph->daddr),
			       bpf_ntohs(p->sport), bpf_ntohs(p->dport),
			       p->proto);
	slot = h % ring_size;

	ring = bpf_map_lookup_elem(&rings, &index);
	if (!ring)
		return 0;
	idp = bpf_map_lookup_elem(ring, &slot);
	if (!idp)
		return 0;
	id = *idp;
	if (!id)
		return 0;
	b = bpf_map_lookup_elem(&backends, &id);
	if (!b || b->state != LB_BACKEND_ACTIVE)
		return 0;
	*be = b;
	return id;
}

/* lb4_select picks the backend for packet p of vip, whose flow key is key,
 * and keeps the flow table up to date. flow is the flow's entry (NULL when
 * the flow is unknown) and ref its way, or the bucket a new entry goes to
 * (flow_find). It counts one flow event when a backend is found:
 *   known flow, usable backend     -> that backend, FLOW_HIT;
 *   known flow, unusable backend   -> ring pick, entry overwritten,
 *                                     FLOW_REHASH;
 *   known flow, TCP SYN (lb4_opens) -> ring pick, entry overwritten,
 *                                     FLOW_SYN_REUSE;
 *   unknown flow                   -> ring pick, entry created (FLOW_NEW,
 *                                     plus FLOW_EVICTED when it replaces
 *                                     a live flow), except for a TCP RST
 *                                     (FLOW_RST_SKIPPED).
 * Without a bucket (never, with the loader's sizes) it counts
 * FLOW_INSERT_FAILED instead of FLOW_NEW; the packet is still forwarded.
 * Entries record vip->index.
 * Returns the backend id and sets *be, or 0 when the ring gives no active
 * backend (the caller drops with LB_REASON_DROP_NO_BACKEND). */
static __always_inline __u32 lb4_select(const struct parse_pkt *p,
					const struct lb_vip_meta *vip,
					const struct flow_kw *key,
					const struct lb_flow *flow,
					struct flow_ref *ref,
					struct lb_backend **be)
{
	__u32 event, id, now;

	if (flow && lb4_opens(p)) {
		event = LB_EVENT_FLOW_SYN_REUSE;
	} else if (flow) {
		struct lb_backend *b;

		id = flow->backend_id;
		b = bpf_map_lookup_elem(&backends, &id);
		if (b && lb4_usable(b, vip->index)) {
			/* The entry names another VIP index (its VIP was
			 * deleted and added again): record the current one,
			 * so the next packet takes lb4_established. */
			if (flow->vip_index != vip->index)
				flow_store(ref, key, id, vip->index,
					   (__u32)bpf_jiffies64());
			else
				flow_touch(ref);
			stats_event(LB_EVENT_FLOW_HIT);
			*be = b;
			return id;
		}
		event = LB_EVENT_FLOW_REHASH;
	} else {
		event = LB_EVENT_FLOW_NEW;
	}

	id = lb4_ring_pick(p, vip, be);
	if (!id)
		return 0;
	if (event == LB_EVENT_FLOW_NEW && (p->tcp_flags & PARSE_TCP_RST)) {
		/* tcp_flags is 0 for UDP, so only a TCP RST gets here. */
		stats_event(LB_EVENT_FLOW_RST_SKIPPED);
		return id;
	}
	if (!ref->b) {
		stats_event(LB_EVENT_FLOW_INSERT_FAILED);
		return id;
	}
	now = (__u32)bpf_jiffies64();
	/* A known flow is rewritten in its own way; a new one takes an
	 * empty or the least recently used way of its two buckets. */
	if (!flow && flow_victim(ref, now))
		stats_event(LB_EVENT_FLOW_EVICTED);
	flow_store(ref, key, id, vip->index, now);
	stats_event(event);
	return id;
}

#endif /* XDPLB_LB4_H */
