/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP "fragmentation needed" replies for packets too big to encapsulate.
 *
 * A client whose DF packet would exceed the MTU once wrapped in IPIP gets
 * ICMP type 3 code 4 from the VIP, carrying next-hop MTU = MTU - 20, so its
 * path-MTU discovery settles on a size the tunnel can carry (RFC 1191). The
 * reply is built in place: the frame is cut to the original IPv4 header plus
 * 8 payload bytes (the quote, RFC 792), grown at the front by an IPv4 and
 * an ICMP header, and sent back out the way it came.
 */
#ifndef XDPLB_ICMP_H
#define XDPLB_ICMP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lb_types.h"
#include "csum.h"
#include "encap.h"
#include "parse.h"

#define ICMP_REPLY_TTL 64
#define ICMP_QUOTE_PAYLOAD 8
#define ICMP_TYPE_DEST_UNREACH 3
#define ICMP_CODE_FRAG_NEEDED 4

/* The ICMP header of a fragmentation-needed message (RFC 1191). Declared
 * here because linux/icmp.h pulls in libc headers. */
struct icmp_frag_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 unused;
	__be16 mtu;
};

/* icmp_too_big turns the parsed frame p into an ICMP fragmentation-needed
 * reply to its sender: Ethernet destination = the frame's source, source =
 * cfg->if_mac, VLAN tag kept; IPv4 from the original destination (the VIP)
 * to the client, TTL 64, id 0, DF clear; ICMP type 3 code 4 with next-hop
 * MTU cfg->mtu - 20 and the quote. parse_l4 proved at least 8 payload bytes
 * inside the datagram. Returns LB_REASON_TX_ICMP_TOO_BIG, or
 * LB_REASON_DROP_ADJUST when the frame cannot be resized. */
static __always_inline int icmp_too_big(struct xdp_md *ctx,
					const struct parse_pkt *p,
					const struct lb_config *cfg)
{
	/* Built on the stack and copied in whole; aligned for the word sums. */
	struct iphdr ip __attribute__((aligned(8)));
	struct icmp_frag_hdr icmp __attribute__((aligned(8)));
	const struct ethhdr *eth = p->data;
	__u32 quote = p->ip_hlen + ICMP_QUOTE_PAYLOAD;
	__u32 want = p->l2_len + quote;
	__u8 has_vlan = p->has_vlan;
	__be32 vlan = p->vlan;
	__u8 client_mac[ETH_ALEN];
	void *data, *data_end, *l3;
	__u64 sum, frame;

	__builtin_memcpy(client_mac, eth->h_source, ETH_ALEN);

	icmp.type = ICMP_TYPE_DEST_UNREACH;
	icmp.code = ICMP_CODE_FRAG_NEEDED;
	icmp.checksum = 0;
	icmp.unused = 0;
	icmp.mtu = bpf_htons(cfg->mtu - sizeof(struct iphdr));
	sum = csum_words32(p->iph, quote / 4, p->data_end);
	sum += ((__u32 *)&icmp)[0];
	sum += ((__u32 *)&icmp)[1];
	icmp.checksum = csum_fold(sum);

	ip.version = 4;
	ip.ihl = sizeof(ip) / 4;
	ip.tos = 0;
	ip.tot_len = bpf_htons(sizeof(ip) + sizeof(icmp) + quote);
	ip.id = 0;
	ip.frag_off = 0;
	ip.ttl = ICMP_REPLY_TTL;
	ip.protocol = IPPROTO_ICMP;
	ip.check = 0;
	ip.saddr = p->iph->daddr;
	ip.daddr = p->iph->saddr;
	ip.check = csum_ipv4_hdr(&ip);

	frame = bpf_xdp_get_buff_len(ctx);
	if (frame > want && bpf_xdp_adjust_tail(ctx, (int)want - (int)frame))
		return LB_REASON_DROP_ADJUST;
	if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(ip) + sizeof(icmp))))
		return LB_REASON_DROP_ADJUST;

	/* The quote now starts right after where the new headers go. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	l3 = encap_write_l2(data, data_end, client_mac, cfg->if_mac, has_vlan,
			    vlan);
	if (!l3 || l3 + sizeof(ip) + sizeof(icmp) > data_end)
		return LB_REASON_DROP_ADJUST;
	__builtin_memcpy(l3, &ip, sizeof(ip));
	__builtin_memcpy(l3 + sizeof(ip), &icmp, sizeof(icmp));
	return LB_REASON_TX_ICMP_TOO_BIG;
}

#endif /* XDPLB_ICMP_H */
