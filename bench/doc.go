// Command bench measures xdplb: the XDP data plane through
// BPF_PROG_TEST_RUN (ns/packet) and through live frames out of a veth
// (packets per second), with room for more sections (Maglev build times,
// control-plane figures, VRRP failover). Every section returns the same
// Result type; the report prints as tables, or as JSON with --json.
//
//	go run ./bench [--json] [--sections dataplane,live] [--cases GLOB,...] [--repeat N] [--rounds N]
//
// It needs root (CAP_BPF, CAP_NET_ADMIN). The live section creates two
// network namespaces joined by a veth pair and removes them when done.
//
// # Why a driver program
//
// BPF_PROG_TEST_RUN with repeat > 1 does not give each run a fresh input:
// without live frames the same buffer is reused, so run n sees run n-1's
// output; with BPF_F_TEST_XDP_LIVE_FRAMES recycled pages get their pointers
// reset but keep their bytes. Timed that way, the balancer's IPIP case
// measures the pass of its own output from run 2 on, and a new flow is a
// flow-table hit. Every figure is therefore taken behind bench_driver
// (bpf/bench.bpf.c), which restores the pristine frame before each run,
// can make each run a new flow, and tail-calls the program under test; its
// own cost is measured on the same input with an XDP_PASS target and
// subtracted. Each section checks the balancer's counters after every
// measured run and fails when they do not equal the run count.
//
// # Targets
//
// The data-plane section prints each case as a ratio to the MAC-swap
// floor measured in the same round, next to the bound it must meet on this
// machine: established flows 3.5x, new flows 10x, non-VIP pass 2x.
package main
