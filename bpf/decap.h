/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Removing the outer header of IPv4-in-IPv4 packets on a backend.
 *
 * The outer header must be a valid, unfragmented IPv4 header (options
 * allowed) with protocol 4 and a destination listed in decap_addrs. The
 * protocol is checked before the fragment bits, so that PASS_FRAGMENT counts
 * only IPIP fragments, the ones that signal a tunnel MTU problem. Removal
 * saves the Ethernet header, shrinks the frame at the front by the outer
 * header length and writes the Ethernet header back in front of the inner
 * packet: nothing is moved in place, so no copy can overlap.
 */
#ifndef XDPLB_DECAP_H
#define XDPLB_DECAP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lb_types.h"
#include "decap_maps.h"
#include "encap.h"
#include "parse.h"

/* decap_parse_outer validates the outer IPv4 header of p (after parse_eth)
 * with parse_ipv4_header, then returns LB_REASON_PASS_NOT_IPIP for any
 * protocol but IPIP before looking at fragment bits, LB_REASON_PASS_FRAGMENT
 * for an IPIP fragment, LB_REASON_PASS_NOT_LOCAL when the outer destination
 * is not in decap_addrs, LB_REASON_PASS_MALFORMED for a bad header, else
 * PARSE_OK. */
static __always_inline int decap_parse_outer(struct parse_pkt *p)
{
	struct decap_addr_key key __attribute__((aligned(8)));
	int reason = parse_ipv4_header(p);

	if (reason != PARSE_OK)
		return reason;
	if (p->iph->protocol != IPPROTO_IPIP)
		return LB_REASON_PASS_NOT_IPIP;
	if (parse_is_fragment(p->iph))
		return LB_REASON_PASS_FRAGMENT;

	/* The decap_addrs key: the IPv4-mapped outer destination. */
	parse_addr_mapped(key.addr, p->iph->daddr);
	if (!bpf_map_lookup_elem(&decap_addrs, &key))
		return LB_REASON_PASS_NOT_LOCAL;
	p->proto = IPPROTO_IPIP;
	return PARSE_OK;
}

/* decap_ipip removes the outer IPv4 header of p (after decap_parse_outer)
 * and puts the Ethernet header, VLAN tag included, back in front of the
 * inner packet with ethertype IPv4. Returns LB_REASON_DECAP_OK, or
 * LB_REASON_DROP_ADJUST when the frame cannot be resized. */
static __always_inline int decap_ipip(struct xdp_md *ctx,
				      const struct parse_pkt *p)
{
	const struct ethhdr *eth = p->data;
	__u8 has_vlan = p->has_vlan;
	__be32 vlan = p->vlan;
	__u8 dst[ETH_ALEN], src[ETH_ALEN];
	void *data, *data_end;

	__builtin_memcpy(dst, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(src, eth->h_source, ETH_ALEN);
	if (bpf_xdp_adjust_head(ctx, (int)p->ip_hlen))
		return LB_REASON_DROP_ADJUST;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (!encap_write_l2(data, data_end, dst, src, has_vlan, vlan))
		return LB_REASON_DROP_ADJUST;
	return LB_REASON_DECAP_OK;
}

#endif /* XDPLB_DECAP_H */
