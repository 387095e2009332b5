/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Types, maps and helpers of the benchmark driver (bench.bpf.c); nothing here
 * is loaded in production.
 *
 * BPF_PROG_TEST_RUN with repeat > 1 does not give every run a fresh copy of
 * the input. Without BPF_F_TEST_XDP_LIVE_FRAMES the same xdp_buff is reused
 * as is: run n sees run n-1's output, head and tail adjustments included.
 * With BPF_F_TEST_XDP_LIVE_FRAMES recycled pages get their data pointers
 * reset but keep the bytes the previous run left in them. Timing a program
 * that rewrites its packet (IPIP encapsulation) or that remembers packets (the
 * flow table) that way measures something else from run 2 on: a pass of an
 * IPIP packet, a flow-table hit instead of an insert.
 *
 * So every run enters bench_driver first. It puts the frame back to the
 * pristine bytes kept in bench_input (length first, with bpf_xdp_adjust_head,
 * then the bytes with bpf_xdp_store_bytes), optionally rewrites the client
 * address and port so that the run is a flow never seen before, and tail
 * calls the program under test from bench_target. Every figure, the reference
 * programs' included, pays the same driver cost, which the harness measures
 * with a target that only returns XDP_PASS and subtracts.
 *
 * The run counter (bench_frame.runs) is a plain, not atomic, increment: one
 * test run executes on a single CPU, and the Go harness never runs two at a
 * time on one driver, so it is exact and costs no locked instruction.
 */
#ifndef XDPLB_BENCH_H
#define XDPLB_BENCH_H

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* Largest frame the driver restores: an Ethernet frame at MTU 1500 with a
 * VLAN tag fits. */
#define BENCH_MAX_FRAME 1536

/* What went wrong in the driver, counted per CPU in bench_stats, plus the
 * sink's packet count. The harness fails a measurement if any error moved. */
enum bench_stat {
	BENCH_ERR_CONFIG = 0,    /* bench_frame missing or its length invalid */
	BENCH_ERR_ADJUST = 1,    /* bpf_xdp_adjust_head could not restore the length */
	BENCH_ERR_STORE = 2,     /* bpf_xdp_store_bytes failed */
	BENCH_ERR_TAIL_CALL = 3, /* bench_target slot empty or incompatible */
	BENCH_SINK_PACKETS = 4,  /* frames bench_sink saw (peer of a live run) */
	BENCH_STAT_MAX,
};

/* Flags of bench_frame. */
#define BENCH_F_VARY (1U << 0) /* rewrite client address and port every run */

/* The pristine frame and what to rewrite per run. Offsets are from the start
 * of the frame; every varied field is a 16-bit big-endian word at an even
 * offset. With BENCH_F_VARY the run's sequence number s (runs before the
 * increment, modulo vary_cycle when that is not 0) becomes
 *   port word = port_base + (s & 0xffff)
 *   addr word = addr_base + (s >> 16)      (low half of the IPv4 source)
 * and both checksums are recomputed from their pristine values (RFC 1624),
 * so every frame stays valid on the wire; 2^32 runs are distinct flows. */
struct bench_frame {
	__u64 runs;        /* driver entries; the Go harness reads the delta */
	__u32 len;         /* pristine length, 14..BENCH_MAX_FRAME */
	__u32 flags;       /* BENCH_F_* */
	__u32 vary_cycle;  /* 0: never repeat a flow; n: cycle through n flows */
	__u16 addr_off;    /* low 16 bits of the IPv4 source address */
	__u16 port_off;    /* L4 source port */
	__u16 ip_csum_off; /* IPv4 header checksum */
	__u16 l4_csum_off; /* TCP/UDP checksum; 0 when there is none to fix */
	__u16 addr_base;   /* pristine values of the words above, host order */
	__u16 port_base;
	__u16 ip_csum_base;
	__u16 l4_csum_base;
	__u8 data[BENCH_MAX_FRAME];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_frame);
} bench_input SEC(".maps");

/* Slot 0 holds the program under test. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_target SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BENCH_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} bench_stats SEC(".maps");

/* bench_count adds one to counter stat of this CPU. */
static __always_inline void bench_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&bench_stats, &stat);

	if (v)
		*v += 1;
}

/* bench_csum_replace returns the ones' complement checksum csum (host order)
 * updated for a 16-bit word changing from old to new, as RFC 1624 eqn. 3:
 * HC' = ~(~HC + ~m + m'). */
static __always_inline __u16 bench_csum_replace(__u16 csum, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~csum + (__u32)(__u16)~old + new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* bench_put16 stores v (host order) big-endian at off in f->data. off must
 * have been checked to be < BENCH_MAX_FRAME - 1. */
static __always_inline void bench_put16(struct bench_frame *f, __u32 off, __u16 v)
{
	f->data[off] = v >> 8;
	f->data[off + 1] = v & 0xff;
}

/* bench_vary rewrites the template in f for run seq (see struct
 * bench_frame). Returns 0, or -1 when an offset is out of range. */
static __always_inline int bench_vary(struct bench_frame *f, __u32 seq)
{
	__u32 addr_off = f->addr_off, port_off = f->port_off;
	__u32 ip_off = f->ip_csum_off, l4_off = f->l4_csum_off;
	__u16 addr, port, csum;

	/* Explicit bounds so the verifier accepts the variable offsets into
	 * the map value. */
	if (addr_off > BENCH_MAX_FRAME - 2 || port_off > BENCH_MAX_FRAME - 2 ||
	    ip_off > BENCH_MAX_FRAME - 2 || l4_off > BENCH_MAX_FRAME - 2)
		return -1;
	if (f->vary_cycle)
		seq %= f->vary_cycle;

	addr = f->addr_base + (__u16)(seq >> 16);
	port = f->port_base + (__u16)seq;
	bench_put16(f, addr_off, addr);
	bench_put16(f, port_off, port);
	csum = bench_csum_replace(f->ip_csum_base, f->addr_base, addr);
	bench_put16(f, ip_off, csum);
	if (l4_off) {
		/* The source address is in the TCP/UDP pseudo header. */
		csum = bench_csum_replace(f->l4_csum_base, f->addr_base, addr);
		csum = bench_csum_replace(csum, f->port_base, port);
		bench_put16(f, l4_off, csum);
	}
	return 0;
}

/* bench_restore puts the frame in ctx back to f's pristine length and bytes.
 * Returns 0, or -1 after counting why in bench_stats. */
static __always_inline int bench_restore(struct xdp_md *ctx, struct bench_frame *f)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = f->len;
	/* Subtracting two packet pointers gives an unknown scalar; the
	 * verifier allows it for programs loaded with CAP_PERFMON/CAP_BPF. */
	long cur = data_end - data;

	/* The verifier needs the helper's size argument bounded by the map
	 * value it reads from. */
	if (len < 14 || len > BENCH_MAX_FRAME) {
		bench_count(BENCH_ERR_CONFIG);
		return -1;
	}
	/* The balancer only grows frames at the head (IPIP) and keeps their
	 * length otherwise, so moving the head back by the difference restores
	 * the original headroom. Called even when the difference is 0, so that
	 * every target pays for the same helper call. */
	if (bpf_xdp_adjust_head(ctx, cur - (long)len)) {
		bench_count(BENCH_ERR_ADJUST);
		return -1;
	}
	if (bpf_xdp_store_bytes(ctx, 0, f->data, len)) {
		bench_count(BENCH_ERR_STORE);
		return -1;
	}
	return 0;
}

#endif /* XDPLB_BENCH_H */
