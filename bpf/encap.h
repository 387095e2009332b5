/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Forwarding rewrites: direct routing (new MACs) and IPv4-in-IPv4.
 *
 * DR changes only the two MAC addresses; the frame is otherwise sent back
 * out byte for byte, VLAN tag included. IPIP grows the frame at the front by
 * one 20-byte IPv4 header, rewrites the Ethernet header (and VLAN tag) in
 * front of it, and trims Ethernet padding first so that the outer total
 * length covers the whole frame. The Ethernet header is rebuilt from saved
 * values after every head adjustment, never moved, so no copy can overlap.
 */
#ifndef XDPLB_ENCAP_H
#define XDPLB_ENCAP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lb_types.h"
#include "csum.h"
#include "parse.h"

#define ENCAP_DEFAULT_TTL 64

/* encap_set_macs writes the destination dst and source src MACs into the
 * Ethernet header at eth, whose 12 bytes the caller has bounded. dst and
 * src are map-value fields at 4-byte aligned offsets (lb_backend.mac,
 * lb_config.if_mac), read as a word and a half word; the packet stores may
 * be unaligned (allowed where XDP runs without strict alignment, as for
 * lb4_for_us's loads). Four stores instead of the twelve byte moves a
 * memcpy to a packet pointer of unknown alignment becomes. */
static __always_inline void encap_set_macs(void *eth, const __u8 *dst,
					   const __u8 *src)
{
	*(__u32 *)eth = *(const __u32 *)dst;
	*(__u16 *)(eth + 4) = *(const __u16 *)(dst + 4);
	*(__u32 *)(eth + 6) = *(const __u32 *)src;
	*(__u16 *)(eth + 10) = *(const __u16 *)(src + 4);
}

/* encap_write_l2 writes, at data, an Ethernet header with destination dst
 * and source src (6 bytes each), the VLAN tag vlan (TPID and TCI as on the
 * wire) when has_vlan, and ethertype IPv4. Returns a pointer to the first
 * byte after it (where the IPv4 header goes), or NULL when the frame is too
 * short. Each branch has a constant length, so the returned pointer has a
 * fixed offset the verifier can range-check. */
static __always_inline void *encap_write_l2(void *data, void *data_end,
					    const __u8 *dst, const __u8 *src,
					    __u8 has_vlan, __be32 vlan)
{
	struct ethhdr *eth = data;

	if (has_vlan) {
		struct parse_vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end)
			return NULL;
		encap_set_macs(eth, dst, src);
		*(__be32 *)((void *)eth + 2 * ETH_ALEN) = vlan;
		vh->proto = bpf_htons(ETH_P_IP);
		return vh + 1;
	}
	if ((void *)(eth + 1) > data_end)
		return NULL;
	encap_set_macs(eth, dst, src);
	eth->h_proto = bpf_htons(ETH_P_IP);
	return eth + 1;
}

/* encap_trim_padding removes bytes after the IPv4 datagram of p (Ethernet
 * padding) from the end of the frame. Returns 0, or -1 when
 * bpf_xdp_adjust_tail fails. Invalidates p's packet pointers when it trims. */
static __always_inline int encap_trim_padding(struct xdp_md *ctx,
					      const struct parse_pkt *p)
{
	__u32 want = p->l2_len + p->ip_len;
	__u64 frame;

	if ((void *)p->iph + p->ip_len >= p->data_end)
		return 0;
	frame = bpf_xdp_get_buff_len(ctx);
	if (frame <= want)
		return 0;
	return bpf_xdp_adjust_tail(ctx, (int)want - (int)frame) ? -1 : 0;
}

/* encap_dr rewrites the MACs of the parsed frame p for direct routing:
 * destination = the backend's MAC, source = the director's (cfg->if_mac).
 * Returns LB_REASON_TX_DR. parse_eth proved the 14 bytes present. */
static __always_inline int encap_dr(const struct parse_pkt *p,
				    const struct lb_backend *be,
				    const struct lb_config *cfg)
{
	encap_set_macs(p->data, be->mac, cfg->if_mac);
	return LB_REASON_TX_DR;
}

/* encap_ipip wraps the IPv4 datagram of p in an outer IPv4 header to the
 * backend: source cfg->tun_src, destination be->addr, protocol IPIP, TTL
 * cfg->tun_ttl (64 when 0), TOS and id copied from the inner header, DF
 * copied and nothing else of frag_off, a valid checksum. The Ethernet header
 * becomes be->mac <- cfg->if_mac, keeping a VLAN tag. The caller has checked
 * the MTU. Returns LB_REASON_TX_TUN, or LB_REASON_DROP_ADJUST when the frame
 * cannot be resized (the frame may then be partly rewritten: it is dropped). */
static __always_inline int encap_ipip(struct xdp_md *ctx,
				      const struct parse_pkt *p,
				      const struct lb_backend *be,
				      const struct lb_config *cfg)
{
	/* Built on the stack and copied in whole; aligned for csum_ipv4_hdr. */
	struct iphdr outer __attribute__((aligned(8)));
	const struct iphdr *inner = p->iph;
	__u8 has_vlan = p->has_vlan;
	__be32 vlan = p->vlan;
	void *data, *data_end;
	struct iphdr *ip;

	outer.version = 4;
	outer.ihl = sizeof(outer) / 4;
	outer.tos = inner->tos;
	outer.tot_len = bpf_htons(p->ip_len + sizeof(outer));
	outer.id = inner->id;
	outer.frag_off = inner->frag_off & bpf_htons(PARSE_IP_DF);
	outer.ttl = cfg->tun_ttl ? cfg->tun_ttl : ENCAP_DEFAULT_TTL;
	outer.protocol = IPPROTO_IPIP;
	outer.check = 0;
	/* Both addresses are stored IPv4-mapped: the IPv4 address is the last
	 * 4 of the 16 bytes, at a 4-byte aligned offset of the map value. */
	outer.saddr = *(const __be32 *)&cfg->tun_src[12];
	outer.daddr = *(const __be32 *)&be->addr[12];
	outer.check = csum_ipv4_hdr(&outer);

	if (encap_trim_padding(ctx, p))
		return LB_REASON_DROP_ADJUST;
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(outer)))
		return LB_REASON_DROP_ADJUST;

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	ip = encap_write_l2(data, data_end, be->mac, cfg->if_mac, has_vlan,
			    vlan);
	if (!ip || (void *)(ip + 1) > data_end)
		return LB_REASON_DROP_ADJUST;
	__builtin_memcpy(ip, &outer, sizeof(outer));
	return LB_REASON_TX_TUN;
}

#endif /* XDPLB_ENCAP_H */
