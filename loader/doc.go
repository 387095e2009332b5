// Package loader loads, attaches, pins and programs the xdplb XDP programs:
// the balancer that forwards VIP traffic to backends (DR or IPIP) and the
// decap program that runs on the backends of IPIP VIPs.
//
// It is the only package of xdplb that imports cilium/ebpf. Everything above
// it sees typed, domain-level values (netip.Addr, netip.AddrPort, Proto,
// VIP, Backend) and never a raw map key: the conversion to the layouts of
// bpf/lb_types.h, including every byte-order conversion, happens here and
// nowhere else. Ports and addresses are stored in network byte order and
// addresses are stored IPv4-mapped in 16 bytes, so IPv6 can be added without
// changing a map layout.
//
// A Balancer is a handle on one instance of the balancer program and its
// maps. Load gives a private, unattached instance (tests and benchmarks run
// it with BPF_PROG_TEST_RUN); Attach loads it, attaches it to an interface
// through a BPF link and pins the link and every map under
// pinRoot/IFACE (DefaultPinRoot by default), so that forwarding continues
// after the process exits and a later process can Open the same maps. When
// pins exist already, Attach adopts them: it loads the new program against
// the pinned maps and swaps it into the pinned link atomically, so an
// upgrade never interrupts forwarding or loses the flow table.
//
// Maglev lookup tables are inner maps of an array of maps, one per VIP.
// SetRing builds a complete new table and then replaces the VIP's slot with
// a single update, so a packet sees either the old table or the new one.
//
// FlowHash and SourceHash mirror bpf/hash.h, so the control plane can
// predict which ring slot, and so which backend, the program picks.
package loader
