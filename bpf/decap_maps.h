/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of the decap program, which runs on backends of TUN VIPs.
 *
 * decap_addrs lists the outer destination addresses this host accepts IPIP
 * for (16-byte, IPv4-mapped); the loader fills it with the interface's
 * addresses unless told otherwise. reason_stats counts with enum lb_reason.
 */
#ifndef XDPLB_DECAP_MAPS_H
#define XDPLB_DECAP_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lb_types.h"

#define DECAP_DEFAULT_MAX_ADDRS 64

struct decap_addr_key {
	__u8 addr[LB_ADDR_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DECAP_DEFAULT_MAX_ADDRS);
	__type(key, struct decap_addr_key);
	__type(value, __u8);
} decap_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_REASON_MAX);
	__type(key, __u32);
	__type(value, __u64);
} reason_stats SEC(".maps");

#endif /* XDPLB_DECAP_MAPS_H */
