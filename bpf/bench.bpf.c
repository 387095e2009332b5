// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark driver and reference programs (see bench.h for why a driver is
 * needed at all). Loaded only by the benchmark harness (loader/bench.go).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

#include "bench.h"

/* Referenced so bpf2go emits the Go type. */
const enum bench_stat *unused_bench_stat __attribute__((unused));

/* bench_driver restores the pristine frame, varies the flow when asked, and
 * hands the run to the program in bench_target slot 0. */
SEC("xdp")
int bench_driver(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct bench_frame *f = bpf_map_lookup_elem(&bench_input, &zero);
	__u32 seq;

	if (!f) {
		bench_count(BENCH_ERR_CONFIG);
		return XDP_ABORTED;
	}
	seq = (__u32)f->runs;
	f->runs++;
	if ((f->flags & BENCH_F_VARY) && bench_vary(f, seq)) {
		bench_count(BENCH_ERR_CONFIG);
		return XDP_ABORTED;
	}
	if (bench_restore(ctx, f))
		return XDP_ABORTED;
	bpf_tail_call(ctx, &bench_target, 0);
	bench_count(BENCH_ERR_TAIL_CALL);
	return XDP_ABORTED;
}

/* Reference: the cheapest verdict. */
SEC("xdp")
int bench_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

/* Reference: a target that does nothing, to measure the driver itself. */
SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* Reference, the floor: the least a forwarder does, swap the Ethernet source
 * and destination and send the frame back out. */
SEC("xdp")
int bench_mac_swap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

/* bench_sink runs on the veth peer of a live-frames run: a native XDP
 * program there is what lets the peer accept XDP_TX frames, and its count
 * proves how many arrived. */
SEC("xdp")
int bench_sink(struct xdp_md *ctx)
{
	bench_count(BENCH_SINK_PACKETS);
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
