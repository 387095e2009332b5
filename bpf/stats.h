/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-CPU counters, and the mapping from a reason to the XDP action.
 *
 * Every packet ends in exactly one enum lb_reason, counted in reason_stats;
 * the reason alone decides the action (stats_action), so a program cannot
 * pass a packet while counting it as sent. Flow-table events are counted in
 * event_stats in addition to the reason. Forwarded packets also count
 * packets and bytes per VIP and per backend. The maps are per-CPU, so plain
 * increments are race-free. A program includes this header after its maps
 * header (lb_maps.h or decap_maps.h), which declares reason_stats; the
 * event, VIP and backend counters exist only with lb_maps.h.
 */
#ifndef XDPLB_STATS_H
#define XDPLB_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lb_types.h"

/* stats_action returns the XDP action a packet leaving with reason takes:
 * XDP_TX for the TX_* reasons, XDP_DROP for the DROP_* reasons, XDP_PASS for
 * every other reason (the packet goes to the kernel unmodified, or decapped). */
static __always_inline int stats_action(__u32 reason)
{
	switch (reason) {
	case LB_REASON_TX_DR:
	case LB_REASON_TX_TUN:
	case LB_REASON_TX_ICMP_TOO_BIG:
		return XDP_TX;
	case LB_REASON_DROP_NO_BACKEND:
	case LB_REASON_DROP_TOO_BIG:
	case LB_REASON_DROP_ADJUST:
	case LB_REASON_DROP_NO_CONFIG:
		return XDP_DROP;
	default:
		return XDP_PASS;
	}
}

/* stats_verdict counts reason in reason_stats and returns its action. It is
 * the one exit of every program: `return stats_verdict(reason);`. */
static __always_inline int stats_verdict(__u32 reason)
{
	__u64 *cnt = bpf_map_lookup_elem(&reason_stats, &reason);

	if (cnt)
		*cnt += 1;
	return stats_action(reason);
}

#ifdef XDPLB_LB_MAPS_H
/* stats_event counts one flow-table event (enum lb_event). */
static __always_inline void stats_event(__u32 event)
{
	__u64 *cnt = bpf_map_lookup_elem(&event_stats, &event);

	if (cnt)
		*cnt += 1;
}

/* stats_forwarded adds one packet of bytes (the frame length as received)
 * to the counters of VIP slot vip_index and backend id. Indexes beyond the
 * arrays are ignored. */
static __always_inline void stats_forwarded(__u32 vip_index, __u32 id,
					    __u64 bytes)
{
	struct lb_counter *c;

	c = bpf_map_lookup_elem(&vip_stats, &vip_index);
	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
	c = bpf_map_lookup_elem(&backend_stats, &id);
	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}
#endif /* XDPLB_LB_MAPS_H */

#endif /* XDPLB_STATS_H */
