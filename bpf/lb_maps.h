/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of the balancer program and its load-time settings.
 *
 * The max_entries below are defaults: the loader overrides every size in the
 * collection spec before loading (loader.Options), so operators size maps
 * without recompiling. The Maglev tables are an array of maps: one inner
 * array of ring_size backend ids per VIP, replaced whole by the control plane
 * (build a new inner map, then swap the outer slot), so a packet sees either
 * the old table or the new one, never a mix.
 *
 * Two maps exist only to make the common paths cheap; each is derived from
 * vips by the loader and checked or tolerated by the program, never trusted
 * blindly. vip_filter counts, per bucket of destination addresses, the VIPs
 * whose address falls in it: a packet whose bucket counts 0 is for no VIP,
 * learnt with one array read instead of two hash lookups. vip_info holds
 * each VIP's key and meta by index, so an established flow, which records
 * its VIP's index, finds its VIP without a hash lookup.
 */
#ifndef XDPLB_LB_MAPS_H
#define XDPLB_LB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lb_types.h"

#define LB_DEFAULT_MAX_VIPS 256
#define LB_DEFAULT_MAX_BACKENDS 4096
#define LB_DEFAULT_MAX_FLOWS 65536
#define LB_DEFAULT_RING_SIZE 65537

/* Load-time constants, set through the collection spec (loader.Options). */
volatile const __u32 ring_size = LB_DEFAULT_RING_SIZE; /* prime, > 0 */
volatile const __u32 hash_seed = 0x5eed1b0b;
/* Buckets of the flows map: max flows / LB_FLOW_WAYS. */
volatile const __u32 flow_buckets = LB_DEFAULT_MAX_FLOWS / LB_FLOW_WAYS;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_DEFAULT_MAX_VIPS);
	__type(key, struct lb_vip_key);
	__type(value, struct lb_vip_meta);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_DEFAULT_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct lb_backend);
} backends SEC(".maps");

/* One Maglev lookup table: ring_size backend ids. Memory-mappable, so the
 * control plane fills a new table with plain stores instead of a syscall
 * per batch of slots (bpf(2) makes the kernel copy every value). */
struct lb_ring {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, LB_DEFAULT_RING_SIZE);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, LB_DEFAULT_MAX_VIPS);
	__type(key, __u32);
	__array(values, struct lb_ring);
} rings SEC(".maps");

/* The flow table (flow.h): flow_buckets buckets of LB_FLOW_WAYS flows.
 * Memory-mappable, so the control plane lists and deletes flows without a
 * syscall per bucket. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, LB_DEFAULT_MAX_FLOWS / LB_FLOW_WAYS);
	__type(key, __u32);
	__type(value, struct lb_flow_bucket);
} flows SEC(".maps");

/* VIP key and meta by VIP index, for established flows (see above). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_DEFAULT_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct lb_vip_info);
} vip_info SEC(".maps");

/* Number of VIPs (any port, any protocol) per destination bucket
 * (hash_vip_bucket4). The loader may over-count for a moment, never
 * under-count an existing VIP (loader/filter.go). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << LB_VIP_FILTER_BITS);
	__type(key, __u32);
	__type(value, __u32);
} vip_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_REASON_MAX);
	__type(key, __u32);
	__type(value, __u64);
} reason_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_EVENT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} event_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_DEFAULT_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct lb_counter);
} vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_DEFAULT_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct lb_counter);
} backend_stats SEC(".maps");

#endif /* XDPLB_LB_MAPS_H */
