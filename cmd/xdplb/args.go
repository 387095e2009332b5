package main

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/loader"
)

// maxWeight bounds --weight: enough to express any ratio a Maglev table of
// the default size can honour.
const maxWeight = 65535

// parseVIPArg parses a VIP argument for the balancer (IPv4, tcp or udp).
func parseVIPArg(s string) (loader.VIP, error) {
	v, err := loader.ParseVIP(s)
	if err != nil {
		return loader.VIP{}, usageErrorf("bad VIP %q: want ADDR:PORT/PROTO such as 198.18.1.100:80/tcp, or ADDR/PROTO for every port", s)
	}
	if !v.Addr.Is4() {
		return loader.VIP{}, usageErrorf("bad VIP %q: only IPv4 VIPs are forwarded", s)
	}
	return v, nil
}

// parseBackendArg parses a backend address (IPv4, without a port: the
// balancer keeps the VIP's port).
func parseBackendArg(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if _, perr := netip.ParseAddrPort(s); perr == nil {
			return netip.Addr{}, usageErrorf("bad backend address %q: give the address without a port; backends receive the VIP's port", s)
		}
		return netip.Addr{}, usageErrorf("bad backend address %q: want an IPv4 address such as 198.18.0.21", s)
	}
	a = a.Unmap()
	if !a.Is4() {
		return netip.Addr{}, usageErrorf("bad backend address %q: only IPv4 backends are forwarded", s)
	}
	if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.Addr{}, usageErrorf("bad backend address %q: want the unicast address of a server", s)
	}
	return a, nil
}

// parseMAC parses a next-hop MAC: a unicast 6-byte Ethernet address.
func parseMAC(s string) (net.HardwareAddr, error) {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return nil, usageErrorf("bad --mac %q: want a 6-byte Ethernet address such as 02:00:5e:10:00:21", s)
	}
	if m[0]&1 != 0 {
		return nil, usageErrorf("bad --mac %q: a multicast or broadcast address cannot be a next hop", s)
	}
	if string(m) == string(make([]byte, 6)) {
		return nil, usageErrorf("bad --mac %q: the zero address cannot be a next hop", s)
	}
	return m, nil
}

// parseWeight parses --weight.
func parseWeight(s string) (uint32, error) {
	w, err := strconv.ParseUint(s, 10, 32)
	if err != nil || w > maxWeight {
		return 0, usageErrorf("bad --weight %q: want a whole number from 0 to %d (0 takes no new flows)", s, maxWeight)
	}
	return uint32(w), nil
}

// parseState parses --state.
func parseState(s string) (loader.BackendState, error) {
	st, err := loader.ParseBackendState(s)
	if err != nil || st == loader.StateUnused {
		return 0, usageErrorf("bad --state %q: want active, draining (established flows only) or down (no flows)", s)
	}
	return st, nil
}

// parseForwarding parses --forwarding.
func parseForwarding(s string) (loader.Forwarding, error) {
	if s == "" {
		return 0, usageErrorf("--forwarding is required: dr (rewrite MACs; backends on this link) or tun (IPIP to the backend)")
	}
	f, err := loader.ParseForwarding(s)
	if err != nil {
		return 0, usageErrorf("bad --forwarding %q: want dr or tun", s)
	}
	return f, nil
}

// parseScheduler parses --scheduler.
func parseScheduler(s string) (controlplane.Scheduler, error) {
	sc, err := controlplane.ParseScheduler(s)
	if err != nil {
		return 0, usageErrorf("bad --scheduler %q: want maglev, source-hash or failover", s)
	}
	return sc, nil
}

// parseGranularity parses --persistence-granularity: a prefix length
// (24) or, as keepalived writes it, a netmask (255.255.255.0).
func parseGranularity(s string) (uint8, error) {
	if n, err := strconv.ParseUint(strings.TrimPrefix(s, "/"), 10, 8); err == nil && n <= 32 {
		return uint8(n), nil
	}
	if m, err := netip.ParseAddr(s); err == nil && m.Is4() {
		b := m.As4()
		bits := net.IPMask(b[:])
		if ones, total := bits.Size(); total == 32 {
			return uint8(ones), nil
		}
	}
	return 0, usageErrorf("bad --persistence-granularity %q: want a prefix length from 0 to 32 (24) or a netmask (255.255.255.0)", s)
}

// parseMode parses --mode.
func parseMode(s string) (loader.Mode, error) {
	m, err := loader.ParseMode(s)
	if err != nil {
		return 0, usageErrorf("bad --mode %q: want auto (native, else generic), native or generic", s)
	}
	return m, nil
}
