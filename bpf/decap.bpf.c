// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdplb_decap: the backend's XDP program for TUN VIPs.
 *
 * It strips the outer IPv4 header of IPIP packets addressed to this host
 * (decap_addrs) and passes the inner packet to the kernel, which has no ipip
 * module to do it here. Everything else is passed untouched. The inner
 * packet is not checked: its checksums were valid when the client sent it,
 * and the kernel validates it as any received packet.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lb_types.h"
#include "decap_maps.h"
#include "stats.h"
#include "parse.h"
#include "decap.h"

SEC("xdp")
int xdplb_decap(struct xdp_md *ctx)
{
	struct parse_pkt pkt;
	int reason;

	reason = parse_eth(ctx, &pkt);
	if (reason != PARSE_OK)
		return stats_verdict(reason);
	reason = decap_parse_outer(&pkt);
	if (reason != PARSE_OK)
		return stats_verdict(reason);
	return stats_verdict(decap_ipip(ctx, &pkt));
}

char _license[] SEC("license") = "Dual BSD/GPL";
