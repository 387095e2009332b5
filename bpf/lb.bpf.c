// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdplb_balancer: the director's XDP program.
 *
 * Packets for a configured VIP go to a backend chosen by Maglev and pinned
 * in the flow table, by direct routing (new MACs) or IPIP; everything else
 * goes to the kernel untouched. IPv4 fragments, the first included, are
 * passed to the kernel: the later ones carry no ports, and a datagram must
 * not be split between a backend and the local stack. Each packet counts
 * exactly one reason (stats.h). The steps live in parse.h, lb4.h, encap.h
 * and icmp.h; this file only dispatches.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lb_types.h"
#include "lb_maps.h"
#include "stats.h"
#include "parse.h"
#include "lb4.h"
#include "encap.h"
#include "icmp.h"

/* Referenced so the enums reach the object's BTF and bpf2go emits Go types. */
const enum lb_reason *unused_reason __attribute__((unused));
const enum lb_event *unused_event __attribute__((unused));
const enum lb_backend_state *unused_state __attribute__((unused));

/* lb_tun sends the parsed packet p to backend be over IPIP, or answers or
 * drops it when the encapsulated packet would exceed cfg->mtu (0: no limit).
 * Returns the reason. */
static __always_inline int lb_tun(struct xdp_md *ctx, const struct parse_pkt *p,
				  const struct lb_backend *be,
				  const struct lb_config *cfg)
{
	if (cfg->mtu && p->ip_len + sizeof(struct iphdr) > cfg->mtu) {
		if (p->iph->frag_off & bpf_htons(PARSE_IP_DF))
			return icmp_too_big(ctx, p, cfg);
		return LB_REASON_DROP_TOO_BIG;
	}
	return encap_ipip(ctx, p, be, cfg);
}

SEC("xdp")
int xdplb_balancer(struct xdp_md *ctx)
{
	struct flow_kw key;
	struct lb_vip_meta *vip = NULL;
	struct lb_backend *be = NULL;
	struct lb_flow flow = {};
	struct flow_ref ref;
	struct lb_config *cfg;
	struct parse_pkt pkt;
	__u32 zero = 0, id = 0, nvips, h;
	int known;
	__u64 bytes;
	int reason;

	reason = parse_eth(ctx, &pkt);
	if (reason != PARSE_OK)
		return stats_verdict(reason);
	reason = parse_ipv4(&pkt);
	if (reason != PARSE_OK)
		return stats_verdict(reason);
	reason = parse_l4(&pkt);
	if (reason != PARSE_OK)
		return stats_verdict(reason);

	/* Most packets a director sees that are for no VIP stop here. */
	nvips = lb4_filter(&pkt);
	if (!nvips)
		return stats_verdict(LB_REASON_PASS_NOT_VIP);

	/* A known flow whose entry still names a VIP answering this packet
	 * skips the VIP lookup; everything else, a connection-opening SYN
	 * included, is decided as for a packet without that shortcut
	 * (lb4.h). */
	h = lb4_flow_hash(&pkt);
	lb4_flow_key(&pkt, &key);
	known = flow_find(&key, h, &flow, &ref);
	if (known && !lb4_opens(&pkt))
		id = lb4_established(&pkt, &flow, nvips, &vip, &be);
	if (!id) {
		vip = lb4_vip_lookup(&pkt);
		if (!vip)
			return stats_verdict(LB_REASON_PASS_NOT_VIP);
	}
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return stats_verdict(LB_REASON_DROP_NO_CONFIG);
	/* Checked once the packet is known to be for a VIP, so that other
	 * traffic keeps its usual reason. Nothing was written yet. */
	if (!lb4_for_us(&pkt, cfg))
		return stats_verdict(LB_REASON_PASS_OTHER_HOST);
	if (id) {
		flow_touch(&ref);
		stats_event(LB_EVENT_FLOW_HIT);
	} else {
		id = lb4_select(&pkt, vip, &key, known ? &flow : NULL, &ref, &be);
	}
	if (!id || !be)
		return stats_verdict(LB_REASON_DROP_NO_BACKEND);

	/* The frame length as received, read before any rewrite. The program
	 * is not frags-aware (SEC("xdp"), no BPF_F_XDP_HAS_FRAGS), so the
	 * kernel never hands it a multi-buffer frame: the linear part that
	 * the parser bounded is all of it, and no helper call is needed. */
	bytes = pkt.data_end - pkt.data;
	if (vip->flags & LB_VIP_F_TUN)
		reason = lb_tun(ctx, &pkt, be, cfg);
	else
		reason = encap_dr(&pkt, be, cfg);
	if (reason == LB_REASON_TX_DR || reason == LB_REASON_TX_TUN)
		stats_forwarded(vip->index, id, bytes);
	return stats_verdict(reason);
}

char _license[] SEC("license") = "Dual BSD/GPL";
