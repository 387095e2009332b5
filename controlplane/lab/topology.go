package lab

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/xdplb/xdplb/controlplane/config"
)

// Topology is what a lab holds: its hosts, their addresses, the services
// and how they are checked. DefaultTopology is the lab of `xdplb lab`;
// tests change fields of it before Up.
type Topology struct {
	// Subnet is the bridge's subnet: every host has one address in it.
	Subnet netip.Prefix
	// VIPNet holds the VIPs. The client routes it on-link, so it asks ARP
	// for a VIP and the director holding the VIP answers.
	VIPNet netip.Prefix
	Client netip.Addr
	// ClientAliases are more addresses of the client, for connections
	// that no director has an entry for but the one placing them. An
	// established flow keeps its backend through table changes on the
	// director that holds its entry; the other director, taking over
	// after a failover, places it by the current table. Checks that a
	// failover moves no connection therefore open their connections,
	// after the last table change, from an alias nothing used before.
	ClientAliases []netip.Addr
	Directors     []DirectorSpec
	Backends      []BackendSpec
	Services      []ServiceSpec
	Check         CheckSpec
	// VRRP pairs the directors. When it is off, the lab runs the first
	// director only and gives it the VIPs itself.
	VRRP VRRPSpec
}

// DirectorSpec is one director.
type DirectorSpec struct {
	Name     string
	Addr     netip.Addr
	Priority uint8 // VRRP priority; the highest becomes master
}

// BackendSpec is one backend, serving every service.
type BackendSpec struct {
	Name   string
	Addr   netip.Addr
	Weight uint32
}

// ServiceSpec is one service: a VIP on port Port/tcp, balanced over every
// backend.
type ServiceSpec struct {
	Name       string
	VIP        netip.Addr
	Port       uint16
	Forwarding config.Forwarding
}

// CheckSpec is the HTTP health check of every service, on HealthPath.
type CheckSpec struct {
	Interval, Timeout time.Duration
	Rise, Fall        int
}

// OutBound is how long a check may take to take a failed backend out:
// Fall failed checks, the first of which comes at most one Interval after
// the failure.
func (c CheckSpec) OutBound() time.Duration {
	return time.Duration(c.Fall)*c.Interval + c.Interval
}

// InBound is how long a check may take to bring a recovered backend back:
// Rise successful checks, the first at most one Interval after recovery.
func (c CheckSpec) InBound() time.Duration {
	return time.Duration(c.Rise)*c.Interval + c.Interval
}

// VRRPSpec is the VRRP instance the directors share.
type VRRPSpec struct {
	Enabled        bool
	RouterID       uint8
	AdvertInterval time.Duration // VRRPv3
}

// MasterDownInterval is RFC 5798's bound for a backup of priority p to
// take over from a master that stopped advertising:
// 3 × Master_Adver_Interval + Skew_Time, with
// Skew_Time = ((256 - p) × Master_Adver_Interval) / 256.
func (v VRRPSpec) MasterDownInterval(p uint8) time.Duration {
	return 3*v.AdvertInterval + time.Duration(256-int(p))*v.AdvertInterval/256
}

// VRRPByDefault says whether DefaultTopology pairs the directors with
// VRRP, as `xdplb run` does from the configuration's vrrp section. Without
// it the lab runs one director that holds the VIPs itself
// (`xdplb lab --vrrp=false`).
const VRRPByDefault = true

// DefaultTopology is the lab of `xdplb lab`: one client, two directors
// (a VRRP pair when VRRPByDefault, else only the first runs), three
// backends weighted 1, 1 and 2, and two services on port 80, web-dr (dr)
// and web-tun (tun).
func DefaultTopology() Topology {
	a := netip.MustParseAddr
	return Topology{
		Subnet:        netip.MustParsePrefix("198.18.0.0/24"),
		VIPNet:        netip.MustParsePrefix("198.18.1.0/24"),
		Client:        a("198.18.0.2"),
		ClientAliases: []netip.Addr{a("198.18.0.3"), a("198.18.0.4")},
		Directors: []DirectorSpec{
			{Name: "dir1", Addr: a("198.18.0.11"), Priority: 150},
			{Name: "dir2", Addr: a("198.18.0.12"), Priority: 100},
		},
		Backends: []BackendSpec{
			{Name: "be1", Addr: a("198.18.0.21"), Weight: 1},
			{Name: "be2", Addr: a("198.18.0.22"), Weight: 1},
			{Name: "be3", Addr: a("198.18.0.23"), Weight: 2},
		},
		Services: []ServiceSpec{
			{Name: "web-dr", VIP: a("198.18.1.100"), Port: 80, Forwarding: config.ForwardDR},
			{Name: "web-tun", VIP: a("198.18.1.101"), Port: 80, Forwarding: config.ForwardTUN},
		},
		Check: CheckSpec{Interval: 500 * time.Millisecond, Timeout: 250 * time.Millisecond, Rise: 2, Fall: 3},
		VRRP:  VRRPSpec{Enabled: VRRPByDefault, RouterID: 51, AdvertInterval: 100 * time.Millisecond},
	}
}

// Validate checks that the topology can be built: names fit in interface
// names and are unique, every address is IPv4 in 198.18.0.0/15, hosts sit
// in Subnet and VIPs in VIPNet, and there is a director, a backend and a
// service.
func (t Topology) Validate() error {
	lab := netip.MustParsePrefix("198.18.0.0/15")
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for _, p := range []netip.Prefix{t.Subnet, t.VIPNet} {
		if !p.IsValid() || !p.Addr().Is4() || !lab.Contains(p.Addr()) || p.Bits() < lab.Bits() {
			bad("prefix %s is not inside %s", p, lab)
		}
	}
	if t.Subnet.Overlaps(t.VIPNet) {
		bad("subnet %s overlaps the VIP network %s", t.Subnet, t.VIPNet)
	}
	names := map[string]bool{"client": true, "sw": true}
	addrs := map[netip.Addr]string{}
	host := func(kind, name string, a netip.Addr) {
		if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ .") {
			bad("%s name %q: want 1 to 15 characters, no '/', ' ' or '.'", kind, name)
		}
		if names[name] {
			bad("%s name %q is used twice (client and sw are taken)", kind, name)
		}
		names[name] = true
		if !t.Subnet.Contains(a) {
			bad("%s %s: address %s is not in %s", kind, name, a, t.Subnet)
		}
		if other, ok := addrs[a]; ok {
			bad("%s %s: address %s is also %s's", kind, name, a, other)
		}
		addrs[a] = name
	}
	for _, a := range append([]netip.Addr{t.Client}, t.ClientAliases...) {
		if !t.Subnet.Contains(a) {
			bad("client address %s is not in %s", a, t.Subnet)
		}
		if _, ok := addrs[a]; ok {
			bad("client address %s is given twice", a)
		}
		addrs[a] = "client"
	}
	if len(t.Directors) == 0 || len(t.Backends) == 0 || len(t.Services) == 0 {
		bad("a lab needs at least one director, backend and service")
	}
	for _, d := range t.Directors {
		host("director", d.Name, d.Addr)
	}
	for _, b := range t.Backends {
		host("backend", b.Name, b.Addr)
	}
	for _, s := range t.Services {
		if !t.VIPNet.Contains(s.VIP) {
			bad("service %s: VIP %s is not in %s", s.Name, s.VIP, t.VIPNet)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lab topology: %s", strings.Join(errs, "; "))
	}
	return nil
}

// VIPs returns the distinct VIP addresses of the services, in order.
func (t Topology) VIPs() []netip.Addr {
	var vs []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, s := range t.Services {
		if !seen[s.VIP] {
			seen[s.VIP] = true
			vs = append(vs, s.VIP)
		}
	}
	return vs
}

// ActiveDirectors returns the directors the lab runs: all of them with
// VRRP, the first one without.
func (t Topology) ActiveDirectors() []DirectorSpec {
	if t.VRRP.Enabled || len(t.Directors) == 0 {
		return t.Directors
	}
	return t.Directors[:1]
}

// DirectorPaths is where one director's files live.
type DirectorPaths struct {
	Config, Socket, StateDir, PinRoot, Log string
}

// DirectorConfig returns the configuration file of director d, as an
// operator would write it, after checking that config.Parse accepts it.
func (t Topology) DirectorConfig(d DirectorSpec, p DirectorPaths) ([]byte, error) {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# xdplb lab: director %s. Written by `xdplb lab`; removed by `xdplb lab down`.\n", d.Name)
	w("director:\n")
	w("  interface: eth0\n")
	w("  source_address: %s   # outer source of the tun service's IPIP packets\n", d.Addr)
	w("  metrics_listen: 127.0.0.1:9469\n")
	w("  api_socket: %s\n", p.Socket)
	w("  state_dir: %s\n", p.StateDir)
	w("  pin_root: %s\n", p.PinRoot)
	w("  xdp_mode: native\n")
	w("services:\n")
	for _, s := range t.Services {
		w("  - name: %s\n", s.Name)
		w("    vip: %s\n", s.VIP)
		w("    port: %d\n", s.Port)
		w("    protocol: tcp\n")
		w("    forwarding: %s\n", s.Forwarding)
		w("    scheduler: maglev\n")
		w("    backends:\n")
		for _, be := range t.Backends {
			w("      - {address: %s, weight: %d}   # %s\n", be.Addr, be.Weight, be.Name)
		}
		w("    health_check:\n")
		w("      type: http\n")
		w("      port: %d\n", s.Port)
		w("      path: %s\n", HealthPath)
		w("      expect_status: 200\n")
		w("      interval: %s\n", t.Check.Interval)
		w("      timeout: %s\n", t.Check.Timeout)
		w("      rise: %d\n", t.Check.Rise)
		w("      fall: %d\n", t.Check.Fall)
	}
	if t.VRRP.Enabled {
		w("vrrp:\n")
		w("  instances:\n")
		w("    - name: lab\n")
		w("      interface: eth0\n")
		w("      virtual_router_id: %d\n", t.VRRP.RouterID)
		w("      priority: %d\n", d.Priority)
		w("      version: 3\n")
		w("      advert_interval: %s\n", t.VRRP.AdvertInterval)
		w("      preempt: true\n")
		w("      virtual_addresses:\n")
		for _, v := range t.VIPs() {
			w("        - %s/32\n", v)
		}
		w("      garp_master_repeat: 3\n")
		w("      garp_interval: 10ms\n")
		w("      garp_master_delay: 1s\n")
	}
	if _, err := config.Parse(p.Config, b.Bytes()); err != nil {
		return nil, fmt.Errorf("lab configuration of %s: %w", d.Name, err)
	}
	return b.Bytes(), nil
}
