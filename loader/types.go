package loader

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Proto is an IP protocol number, as in the VIP key and the flow key.
type Proto uint8

// Protocols a VIP can match.
const (
	TCP Proto = 6
	UDP Proto = 17
)

// String returns "tcp", "udp", or "proto(N)" for any other number.
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// ParseProto parses "tcp" or "udp" (any case).
func ParseProto(s string) (Proto, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, fmt.Errorf("parse protocol %q: want tcp or udp", s)
}

// VIP identifies a virtual service: destination address, port and
// protocol. Port 0 matches every port of Addr and Proto that has no VIP of
// its own.
type VIP struct {
	Addr  netip.Addr
	Port  uint16
	Proto Proto
}

// ParseVIP parses "198.18.1.100:80/tcp", or "198.18.1.100/udp" for the
// all-ports VIP (port 0). IPv6 addresses take brackets when a port is
// given ("[2001:db8::1]:80/tcp"); the balancer forwards only IPv4 so far.
func ParseVIP(s string) (VIP, error) {
	host, proto, ok := strings.Cut(s, "/")
	if !ok {
		return VIP{}, fmt.Errorf("parse VIP %q: missing protocol: write ADDR[:PORT]/tcp or ADDR[:PORT]/udp", s)
	}
	p, err := ParseProto(proto)
	if err != nil {
		return VIP{}, fmt.Errorf("parse VIP %q: %w", s, err)
	}
	if ap, err := netip.ParseAddrPort(host); err == nil {
		return VIP{Addr: ap.Addr().Unmap(), Port: ap.Port(), Proto: p}, nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil || a.Zone() != "" {
		return VIP{}, fmt.Errorf("parse VIP %q: want ADDR[:PORT]/PROTO, such as 198.18.1.100:80/tcp", s)
	}
	return VIP{Addr: a.Unmap(), Proto: p}, nil
}

// String formats v as ParseVIP reads it.
func (v VIP) String() string {
	if v.Port == 0 {
		return v.Addr.String() + "/" + v.Proto.String()
	}
	return netip.AddrPortFrom(v.Addr, v.Port).String() + "/" + v.Proto.String()
}

// Forwarding is how the balancer sends a VIP's packets to a backend.
type Forwarding uint8

// Forwarding methods.
const (
	// ForwardDR (direct routing) rewrites only the Ethernet addresses: the
	// backend must own the VIP on a non-ARPing interface.
	ForwardDR Forwarding = iota
	// ForwardTUN encapsulates in IPv4 (IPIP) addressed to the backend.
	ForwardTUN
)

// String returns "dr" or "tun".
func (f Forwarding) String() string {
	switch f {
	case ForwardDR:
		return "dr"
	case ForwardTUN:
		return "tun"
	}
	return "forwarding(" + strconv.Itoa(int(f)) + ")"
}

// ParseForwarding parses "dr" or "tun" (any case).
func ParseForwarding(s string) (Forwarding, error) {
	switch strings.ToLower(s) {
	case "dr":
		return ForwardDR, nil
	case "tun":
		return ForwardTUN, nil
	}
	return 0, fmt.Errorf("parse forwarding %q: want dr or tun", s)
}

// VIPConfig is the per-VIP behaviour stored in the vips map.
type VIPConfig struct {
	Forwarding Forwarding
	// Persist enables source persistence: the ring slot is chosen by a
	// hash of the client address masked to PersistPrefix bits only, so
	// every connection from that prefix reaches the same backend.
	Persist       bool
	PersistPrefix uint8 // 0..32 for IPv4
	// Failover records that the control plane built the VIP's ring with
	// the failover scheduler (every slot names the one chosen backend).
	// The program ignores it; it lets the scheduler be read back from the
	// maps, since with one active backend the ring looks the same.
	Failover bool
}

// VIPEntry is a configured VIP with its slot in the rings and vip_stats
// maps.
type VIPEntry struct {
	VIP    VIP
	Config VIPConfig
	Index  uint32
}

// BackendState is the state of a backend slot, as the program reads it.
type BackendState uint8

// Backend states; the values are those of enum lb_backend_state.
const (
	// StateUnused marks a free slot.
	StateUnused = BackendState(lbLbBackendStateLB_BACKEND_UNUSED)
	// StateActive receives new and established flows.
	StateActive = BackendState(lbLbBackendStateLB_BACKEND_ACTIVE)
	// StateDraining keeps established flows and gets no new ones.
	StateDraining = BackendState(lbLbBackendStateLB_BACKEND_DRAINING)
	// StateDown gets nothing: flows pinned to it are re-hashed.
	StateDown = BackendState(lbLbBackendStateLB_BACKEND_DOWN)
)

var backendStateNames = [...]string{
	StateUnused:   "unused",
	StateActive:   "active",
	StateDraining: "draining",
	StateDown:     "down",
}

// String returns "unused", "active", "draining" or "down".
func (s BackendState) String() string {
	if int(s) < len(backendStateNames) {
		return backendStateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// ParseBackendState parses the names String returns (any case).
func ParseBackendState(s string) (BackendState, error) {
	for i, name := range backendStateNames {
		if strings.EqualFold(s, name) {
			return BackendState(i), nil
		}
	}
	return 0, fmt.Errorf("parse backend state %q: want active, draining, down or unused", s)
}

// Backend is one slot of the backends array.
type Backend struct {
	ID       uint32           // slot in the backends array; 0 is never used
	VIPIndex uint32           // owning VIP's Index
	Addr     netip.Addr       // backend address: IPIP outer destination, Maglev identity
	MAC      net.HardwareAddr // next hop: the backend (DR) or the router towards it (TUN)
	State    BackendState
	Weight   uint32 // Maglev weight, kept so a table can be rebuilt from the maps alone
}

// Config is the single entry of the config map: per-attachment settings
// the program reads for every forwarded packet.
type Config struct {
	TunSource netip.Addr       // outer source of IPIP packets
	IfMAC     net.HardwareAddr // source MAC of every frame the program sends
	MTU       uint16           // interface MTU; bigger IPIP packets get ICMP "fragmentation needed"; 0 means no limit, else >= MinMTU
	TunTTL    uint8            // outer TTL of IPIP packets; 0 means 64
}

// Flow is one entry of the flow table: a 5-tuple as the packet arrived and
// the backend it is pinned to.
type Flow struct {
	Src, Dst  netip.AddrPort
	Proto     Proto
	BackendID uint32
}

// Mode is how an XDP program is attached.
type Mode int

// Attach modes.
const (
	// ModeAuto tries native (driver) mode and falls back to generic mode
	// with a warning.
	ModeAuto Mode = iota
	// ModeNative attaches in the driver, or fails.
	ModeNative
	// ModeGeneric attaches in the kernel's generic (skb) path: works on
	// every interface, at a fraction of native speed.
	ModeGeneric
)

var modeNames = [...]string{ModeAuto: "auto", ModeNative: "native", ModeGeneric: "generic"}

// String returns "auto", "native" or "generic".
func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode parses "auto", "native" or "generic" (any case).
func ParseMode(s string) (Mode, error) {
	for i, name := range modeNames {
		if strings.EqualFold(s, name) {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("parse mode %q: want auto, native or generic", s)
}

// String formats b for logs and tests.
func (b Backend) String() string {
	return fmt.Sprintf("backend %d (vip index %d) %s mac %s %s weight %d", b.ID, b.VIPIndex, b.Addr, b.MAC, b.State, b.Weight)
}
