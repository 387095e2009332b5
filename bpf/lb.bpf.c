// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Skeleton: replaced by the real balancer. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lb_types.h"
#include "lb_maps.h"
#include "hash.h"

/* Referenced so bpf2go emits the Go types. */
const enum lb_reason *unused_reason __attribute__((unused));
const enum lb_event *unused_event __attribute__((unused));
const enum lb_backend_state *unused_state __attribute__((unused));

SEC("xdp")
int xdplb_balancer(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
