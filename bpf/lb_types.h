/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Types shared between the XDP programs and the Go loader.
 *
 * Every struct here crosses the user/kernel boundary through a BPF map, so
 * each has fixed-width fields, explicit padding and no implicit holes; bpf2go
 * generates the matching Go types from the BTF of the compiled object (-type).
 * Addresses are always 16 bytes: an IPv4 address is stored IPv4-mapped
 * (::ffff:a.b.c.d), so IPv6 can be added without changing a layout. Ports and
 * addresses are in network byte order; everything else is host order.
 *
 * The numbering of enum lb_reason and enum lb_event is stable: values are
 * only ever appended, never renumbered, because counters are exported by
 * index and compared across versions.
 */
#ifndef XDPLB_LB_TYPES_H
#define XDPLB_LB_TYPES_H

#include <linux/types.h>

#define LB_ADDR_LEN 16

/* The vip_filter array has 1 << LB_VIP_FILTER_BITS buckets (hash.h says
 * how a destination picks one). Fixed, not a load-time option: a bucket
 * costs 4 bytes, and the loader mirrors the size (loader/filter.go). */
#define LB_VIP_FILTER_BITS 12

/* Why a packet left the program the way it did. Exactly one reason is
 * counted for every packet the balancer or the decap program sees. */
enum lb_reason {
	/* Passed to the kernel untouched. */
	LB_REASON_PASS_NOT_IPV4 = 0,     /* ethertype is not IPv4 (ARP, IPv6, ...) */
	LB_REASON_PASS_NOT_VIP = 1,      /* IPv4, but no VIP matches */
	LB_REASON_PASS_FRAGMENT = 2,     /* IPv4 fragment, first or later */
	LB_REASON_PASS_NOT_L4 = 3,       /* IPv4, protocol is neither TCP nor UDP */
	LB_REASON_PASS_MALFORMED = 4,    /* truncated or inconsistent headers */
	LB_REASON_PASS_VLAN_STACKED = 5, /* more than one VLAN tag */
	/* Forwarded. */
	LB_REASON_TX_DR = 6,             /* destination MAC rewritten, XDP_TX */
	LB_REASON_TX_TUN = 7,            /* IPIP encapsulated, XDP_TX */
	LB_REASON_TX_ICMP_TOO_BIG = 8,   /* answered with ICMP fragmentation needed */
	/* Dropped. */
	LB_REASON_DROP_NO_BACKEND = 9,   /* the VIP has no usable backend */
	LB_REASON_DROP_TOO_BIG = 10,     /* too big to encapsulate and DF not set */
	LB_REASON_DROP_ADJUST = 11,      /* bpf_xdp_adjust_head/tail failed */
	LB_REASON_DROP_NO_CONFIG = 12,   /* the config map entry is missing */
	/* Decap program. */
	LB_REASON_DECAP_OK = 13,         /* outer IPIP header stripped, passed */
	LB_REASON_PASS_NOT_IPIP = 14,    /* IPv4 but not IPIP: untouched */
	LB_REASON_PASS_NOT_LOCAL = 15,   /* IPIP, outer destination not ours */
	/* Balancer again. */
	LB_REASON_PASS_OTHER_HOST = 16,  /* for a VIP, but sent to another host's
					  * MAC (a switch flooding it): untouched */
	LB_REASON_MAX,
};

/* Flow-table events. Counted in addition to the reason, not instead. */
enum lb_event {
	LB_EVENT_FLOW_HIT = 0,         /* established flow found, backend usable */
	LB_EVENT_FLOW_NEW = 1,         /* flow-table entry created */
	LB_EVENT_FLOW_REHASH = 2,      /* flow pinned to a down or foreign backend,
					* re-hashed through the ring */
	LB_EVENT_FLOW_RST_SKIPPED = 3, /* RST without an entry: none created */
	LB_EVENT_FLOW_INSERT_FAILED = 4, /* no bucket to record the flow in */
	LB_EVENT_FLOW_SYN_REUSE = 5,   /* a SYN opened a new connection on a known
					* 5-tuple: backend re-chosen by the ring */
	LB_EVENT_FLOW_EVICTED = 6,     /* a new flow took the way of the least
					* recently used flow of its two buckets */
	LB_EVENT_MAX,
};

/* Forwarding method of a VIP (lb_vip_meta.flags). */
#define LB_VIP_F_TUN (1U << 0)     /* IPIP encapsulation; otherwise DR */
#define LB_VIP_F_PERSIST (1U << 1) /* hash only the masked client address */
/* Recorded for the control plane, ignored by the program: the VIP's ring
 * was built by the failover scheduler (every slot names one backend), which
 * the ring alone cannot tell from Maglev when one backend is active. */
#define LB_VIP_F_FAILOVER (1U << 2)

/* Backend states (lb_backend.state). Zero is an unused slot. */
enum lb_backend_state {
	LB_BACKEND_UNUSED = 0,
	LB_BACKEND_ACTIVE = 1,   /* receives new and existing flows */
	LB_BACKEND_DRAINING = 2, /* existing flows only; not in the ring */
	LB_BACKEND_DOWN = 3,     /* nothing; pinned flows are re-hashed */
};

/* Key of the vips map: destination address, port and protocol. Port 0 is
 * the "all ports" VIP, looked up when no port-specific entry matches. */
struct lb_vip_key {
	__u8 addr[LB_ADDR_LEN];
	__be16 port;
	__u8 proto;
	__u8 pad;
};

/* Value of the vips map. */
struct lb_vip_meta {
	__u32 index;          /* slot in rings and vip_stats, < max VIPs */
	__u32 flags;          /* LB_VIP_F_* */
	__u8 persist_prefix;  /* client prefix length hashed with F_PERSIST */
	__u8 pad[3];
};

/* Value of the backends array, indexed by backend id. Id 0 is never used,
 * so an empty ring slot (0) means "no backend". */
struct lb_backend {
	__u8 addr[LB_ADDR_LEN]; /* IPIP outer destination; identity for Maglev */
	__u8 mac[6];            /* next-hop MAC: the backend (DR) or router (TUN) */
	__u8 state;             /* enum lb_backend_state */
	__u8 pad;
	__u32 vip_index;        /* owning VIP; a flow for another VIP re-hashes */
	__u32 weight;           /* Maglev weight; read by the control plane only */
};

/* A flow's 5-tuple as the packet arrived. */
struct lb_flow_key {
	__u8 src[LB_ADDR_LEN];
	__u8 dst[LB_ADDR_LEN];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* Where a flow is pinned. vip_index is the VIP the backend was chosen
 * for. It lets an established flow skip the VIP lookup, but it is only a
 * hint: the program uses it after checking that vip_info[vip_index] still
 * describes a VIP the packet is addressed to and that the backend still
 * belongs to that VIP; otherwise the flow takes the full lookup. */
struct lb_flow {
	__u32 backend_id;
	__u32 vip_index;
};

/* Ways per bucket of the flow table (flow.h). */
#define LB_FLOW_WAYS 4

/* One way of a flow bucket. */
struct lb_flow_entry {
	struct lb_flow_key key;
	struct lb_flow val;
};

/* Value of the flows array: one bucket of the flow table (flow.h), 256
 * bytes. The header's per-way words come first, in the bucket's first
 * cache line, so that a miss reads one line: tag is the flow hash with
 * its low bit set (0: empty way), used the low 32 bits of the jiffies of
 * the way's last packet, check the word that tells a whole way from one
 * torn by two CPUs writing it at once. */
struct lb_flow_bucket {
	__u32 tag[LB_FLOW_WAYS];
	__u32 used[LB_FLOW_WAYS];
	__u32 check[LB_FLOW_WAYS];
	__u32 pad[LB_FLOW_WAYS];
	struct lb_flow_entry way[LB_FLOW_WAYS];
};

/* Value of the vip_info array, indexed by VIP index: the VIP's key and
 * meta as in the vips map (meta.index equals the array index). All zeros
 * (protocol 0, which no parsed packet has) for an unused index. */
struct lb_vip_info {
	struct lb_vip_key key;
	struct lb_vip_meta meta;
};

/* Per-CPU packet and byte counter, for VIPs and backends. */
struct lb_counter {
	__u64 packets;
	__u64 bytes;
};

/* The single entry of the config array: per-attachment settings that may
 * change while the program runs. */
struct lb_config {
	__u8 tun_src[LB_ADDR_LEN]; /* outer source address of IPIP packets */
	__u8 if_mac[6];            /* source MAC of everything sent with XDP_TX */
	__u16 mtu;                 /* interface MTU; bigger IPIP packets get ICMP */
	__u8 tun_ttl;              /* outer TTL of IPIP packets */
	__u8 pad[7];
};

#endif /* XDPLB_LB_TYPES_H */
