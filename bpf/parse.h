/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing: Ethernet with at most one VLAN tag, IPv4 with options,
 * and the TCP or UDP ports.
 *
 * Parsers fill a struct parse_pkt and return PARSE_OK, or the enum lb_reason
 * the packet is passed to the kernel for (malformed, fragment, not IPv4 ...).
 * They never write to the packet. Every length is checked twice: as a number
 * against the IPv4 total length, so that Ethernet padding is never taken for
 * protocol bytes, and as a pointer against data_end, which is what the
 * verifier needs before a read. Addresses and ports stay in network order.
 */
#ifndef XDPLB_PARSE_H
#define XDPLB_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lb_types.h"

/* Not a reason: the parser accepted the packet, continue. */
#define PARSE_OK LB_REASON_MAX

#define PARSE_ETH_P_8021Q 0x8100
#define PARSE_ETH_P_8021AD 0x88a8
#define PARSE_IP_MF 0x2000
#define PARSE_IP_DF 0x4000
#define PARSE_IP_OFFSET 0x1fff
#define PARSE_TCP_SYN 0x02
#define PARSE_TCP_RST 0x04
#define PARSE_TCP_ACK 0x10

/* One 802.1Q/802.1ad tag: what follows the outer ethertype. */
struct parse_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* What the parsers learned about a packet. Pointers are into the packet and
 * become invalid after bpf_xdp_adjust_head/tail. */
struct parse_pkt {
	void *data;
	void *data_end;
	struct iphdr *iph;
	void *l4;
	__u32 l2_len;      /* ETH_HLEN, or ETH_HLEN + 4 with a tag */
	__u32 ip_hlen;     /* ihl * 4, 20..60 */
	__u32 ip_len;      /* IPv4 total length, host order */
	__be32 vlan;       /* the tag's TPID and TCI as on the wire, if has_vlan */
	__be16 sport;
	__be16 dport;
	__u8 has_vlan;
	__u8 proto;        /* IPPROTO_TCP or IPPROTO_UDP once parse_l4 accepted */
	__u8 tcp_flags;    /* TCP flags byte (RST is 0x04); 0 for UDP */
	__u8 pad;
};

/* parse_is_vlan reports whether ethertype (network order) is a VLAN TPID. */
static __always_inline int parse_is_vlan(__be16 proto)
{
	return proto == bpf_htons(PARSE_ETH_P_8021Q) ||
	       proto == bpf_htons(PARSE_ETH_P_8021AD);
}

/* parse_eth reads the Ethernet header and at most one VLAN tag of the frame
 * in ctx into p (data, data_end, l2_len, has_vlan, vlan). Returns PARSE_OK
 * when an IPv4 header should follow at data + l2_len, or
 * LB_REASON_PASS_MALFORMED (truncated), LB_REASON_PASS_VLAN_STACKED (a second
 * tag) or LB_REASON_PASS_NOT_IPV4. */
static __always_inline int parse_eth(struct xdp_md *ctx, struct parse_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__be16 proto;

	p->data = data;
	p->data_end = data_end;
	p->has_vlan = 0;
	p->vlan = 0;
	p->l2_len = ETH_HLEN;

	if ((void *)(eth + 1) > data_end)
		return LB_REASON_PASS_MALFORMED;
	proto = eth->h_proto;
	if (parse_is_vlan(proto)) {
		struct parse_vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end)
			return LB_REASON_PASS_MALFORMED;
		__builtin_memcpy(&p->vlan, (void *)eth + 2 * ETH_ALEN, 4);
		p->has_vlan = 1;
		p->l2_len = ETH_HLEN + sizeof(*vh);
		proto = vh->proto;
		if (parse_is_vlan(proto))
			return LB_REASON_PASS_VLAN_STACKED;
	}
	if (proto != bpf_htons(ETH_P_IP))
		return LB_REASON_PASS_NOT_IPV4;
	return PARSE_OK;
}

/* parse_ipv4_header validates the IPv4 header at p->data + p->l2_len
 * (after parse_eth) and fills iph, ip_hlen, ip_len and l4 (the first byte
 * after the header and its options). Returns PARSE_OK, or
 * LB_REASON_PASS_MALFORMED when the header is short, not version 4, has
 * ihl < 5, or a total length that is shorter than the header or longer than
 * the bytes present. Trailing bytes beyond the total length (Ethernet
 * padding) are allowed. Fragments are not looked at (parse_is_fragment). */
static __always_inline int parse_ipv4_header(struct parse_pkt *p)
{
	struct iphdr *iph = p->data + p->l2_len;
	__u32 hlen, len;

	if ((void *)(iph + 1) > p->data_end)
		return LB_REASON_PASS_MALFORMED;
	if (iph->version != 4)
		return LB_REASON_PASS_MALFORMED;
	hlen = iph->ihl * 4;
	if (hlen < sizeof(*iph))
		return LB_REASON_PASS_MALFORMED;
	len = bpf_ntohs(iph->tot_len);
	if (len < hlen)
		return LB_REASON_PASS_MALFORMED;
	/* Verifier: l2_len (14 or 18) and hlen (20..60) are both variable, so
	 * the options end is proven against data_end as a pointer; len is only
	 * compared, never used to read, so its large range does not matter. */
	if ((void *)iph + hlen > p->data_end)
		return LB_REASON_PASS_MALFORMED;
	if ((void *)iph + len > p->data_end)
		return LB_REASON_PASS_MALFORMED;

	p->iph = iph;
	p->ip_hlen = hlen;
	p->ip_len = len;
	p->l4 = (void *)iph + hlen;
	return PARSE_OK;
}

/* parse_is_fragment reports whether the IPv4 header iph (validated by
 * parse_ipv4_header) is a fragment: MF set or a non-zero offset, which
 * makes the first fragment one too. */
static __always_inline int parse_is_fragment(const struct iphdr *iph)
{
	return (iph->frag_off & bpf_htons(PARSE_IP_MF | PARSE_IP_OFFSET)) != 0;
}

/* parse_ipv4 is parse_ipv4_header, then LB_REASON_PASS_FRAGMENT for any
 * fragment. */
static __always_inline int parse_ipv4(struct parse_pkt *p)
{
	int reason = parse_ipv4_header(p);

	if (reason != PARSE_OK)
		return reason;
	if (parse_is_fragment(p->iph))
		return LB_REASON_PASS_FRAGMENT;
	return PARSE_OK;
}

/* parse_l4 reads the TCP or UDP header at p->l4 (after parse_ipv4) into
 * proto, sport, dport and tcp_flags. Returns PARSE_OK,
 * LB_REASON_PASS_NOT_L4 for other protocols, or LB_REASON_PASS_MALFORMED
 * when the datagram holds fewer than 20 TCP (or a data offset below 5) or
 * 8 UDP bytes. */
static __always_inline int parse_l4(struct parse_pkt *p)
{
	__u8 proto = p->iph->protocol;

	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = p->l4;

		if (p->ip_hlen + sizeof(*th) > p->ip_len ||
		    (void *)(th + 1) > p->data_end)
			return LB_REASON_PASS_MALFORMED;
		if (th->doff < 5)
			return LB_REASON_PASS_MALFORMED;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = p->l4;

		if (p->ip_hlen + sizeof(*uh) > p->ip_len ||
		    (void *)(uh + 1) > p->data_end)
			return LB_REASON_PASS_MALFORMED;
		p->sport = uh->source;
		p->dport = uh->dest;
		p->tcp_flags = 0;
	} else {
		return LB_REASON_PASS_NOT_L4;
	}
	p->proto = proto;
	return PARSE_OK;
}

/* parse_addr_mapped stores the IPv4-mapped IPv6 form (::ffff:a.b.c.d) of the
 * network-order address a in the 16-byte buffer dst, which must be 4-byte
 * aligned (stack keys are declared aligned for this). */
static __always_inline void parse_addr_mapped(__u8 *dst, __be32 a)
{
	__u32 *w = (__u32 *)dst;

	w[0] = 0;
	w[1] = 0;
	w[2] = bpf_htonl(0x0000ffff);
	w[3] = a;
}

#endif /* XDPLB_PARSE_H */
