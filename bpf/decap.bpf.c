// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Skeleton: replaced by the real decap program. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lb_types.h"

SEC("xdp")
int xdplb_decap(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
