// Package interop runs keepalived beside xdplb's VRRP implementation, so
// the two can be checked against each other on a real link.
//
// It writes a keepalived.conf for VRRP instances ([Config]), runs keepalived
// in a named network namespace with a private directory for its pid files,
// notify FIFO and dump files ([Start]), follows its instance states through
// the FIFO and reads its per-instance counters from its JSON dump
// ([Keepalived.Stats]). [Listen] records the VRRP advertisements and ARP
// packets that reach an interface with the kernel's receive timestamps, so
// who said what, and when, is judged on the wire rather than by either
// implementation's own account.
//
// The interoperability tests in this package and the failover benchmark
// (bench, section "failover") are its users. Like package vrrp, it imports
// nothing else from xdplb.
package interop
