package netns

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/controlplane/lab/labnet"
	"github.com/xdplb/xdplb/internal/testenv"
)

// MaxNameLen is the longest interface name Linux accepts (IFNAMSIZ - 1).
const MaxNameLen = unix.IFNAMSIZ - 1

// Env is one test's set of namespaces. Every namespace and link name it
// makes starts with a prefix unique to the Env, so tests running at the
// same time, in one process or several, never collide.
type Env struct {
	t      testing.TB
	prefix string
}

// New returns an Env for t with a fresh random prefix. It calls
// testenv.Privileged: creating namespaces needs root.
func New(t testing.TB) *Env {
	t.Helper()
	testenv.Privileged(t)
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("netns prefix: %v", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	e := &Env{t: t, prefix: "x" + string(b)}
	t.Logf("netns: names for %s start with %s", t.Name(), e.prefix)
	return e
}

// Prefix returns the Env's unique name prefix (6 characters).
func (e *Env) Prefix() string { return e.prefix }

// Name returns prefix+role; it fails the test when the result is longer
// than an interface name may be.
func (e *Env) Name(role string) string {
	e.t.Helper()
	n := e.prefix + role
	if len(n) > MaxNameLen {
		e.t.Fatalf("netns: name %q is longer than %d characters: use a shorter role than %q", n, MaxNameLen, role)
	}
	return n
}

// NS is a named network namespace (visible to `ip netns`), removed when the
// test ends. It is the lab's labnet.NS with test-failing helpers.
type NS struct {
	// Name is the namespace's name under /run/netns.
	Name string
	t    testing.TB
	ns   *labnet.NS
}

// NS creates the namespace prefix+role with its loopback up.
func (e *Env) NS(role string) *NS {
	e.t.Helper()
	name := e.Name(role)
	ns, err := labnet.Create(name)
	if err != nil {
		e.t.Fatalf("netns: %v", err)
	}
	e.t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			e.t.Errorf("netns: delete %s: %v", name, err)
		}
	})
	return &NS{Name: name, t: e.t, ns: ns}
}

// Do runs fn on an OS thread inside the namespace and returns its error.
// Sockets fn opens, and processes it starts, belong to the namespace. fn
// runs on another goroutine, so it must not call t.Fatal.
func (n *NS) Do(fn func() error) error { return n.ns.Do(fn) }

// Exec runs a command inside the namespace and returns its combined
// output. The error includes that output.
func (n *NS) Exec(name string, args ...string) (string, error) {
	var out []byte
	err := n.Do(func() error {
		var err error
		out, err = exec.Command(name, args...).CombinedOutput()
		return err
	})
	if err != nil {
		return string(out), fmt.Errorf("netns %s: %s %q: %w: %s", n.Name, name, args, err, out)
	}
	return string(out), nil
}

// Netlink returns a netlink handle bound to the namespace.
func (n *NS) Netlink() *netlink.Handle { return n.ns.Netlink() }

// Handle returns the namespace's file descriptor handle.

// Link returns the link called name, failing the test if it is missing.
func (n *NS) Link(name string) netlink.Link {
	n.t.Helper()
	l, err := n.Netlink().LinkByName(name)
	if err != nil {
		n.t.Fatalf("netns %s: link %s: %v", n.Name, name, err)
	}
	return l
}

// MAC returns the hardware address of a link.
func (n *NS) MAC(link string) net.HardwareAddr {
	n.t.Helper()
	return n.Link(link).Attrs().HardwareAddr
}

// SetUp brings a link up.
func (n *NS) SetUp(link string) {
	n.t.Helper()
	if err := n.Netlink().LinkSetUp(n.Link(link)); err != nil {
		n.t.Fatalf("netns %s: set %s up: %v", n.Name, link, err)
	}
}

// AddAddr assigns an address with its prefix length, such as
// 198.18.0.1/24, to a link.
func (n *NS) AddAddr(link string, p netip.Prefix) {
	n.t.Helper()
	ipnet := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	if err := n.Netlink().AddrAdd(n.Link(link), &netlink.Addr{IPNet: ipnet}); err != nil {
		n.t.Fatalf("netns %s: add %s to %s: %v", n.Name, p, link, err)
	}
}

// SetNeigh adds or replaces a permanent neighbour (ARP) entry.
func (n *NS) SetNeigh(link string, ip netip.Addr, mac net.HardwareAddr) {
	n.t.Helper()
	err := n.Netlink().NeighSet(&netlink.Neigh{
		LinkIndex:    n.Link(link).Attrs().Index,
		State:        netlink.NUD_PERMANENT,
		IP:           ip.AsSlice(),
		HardwareAddr: mac,
	})
	if err != nil {
		n.t.Fatalf("netns %s: neighbour %s at %s on %s: %v", n.Name, ip, mac, link, err)
	}
}

// AddRoute routes dst through gw, which must be reachable on a link.
func (n *NS) AddRoute(dst netip.Prefix, gw netip.Addr) {
	n.t.Helper()
	ipnet := &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())}
	if err := n.Netlink().RouteAdd(&netlink.Route{Dst: ipnet, Gw: gw.AsSlice()}); err != nil {
		n.t.Fatalf("netns %s: route %s via %s: %v", n.Name, dst, gw, err)
	}
}

// Veth creates a veth pair, a in namespace na and b in nb (which may be the
// same), brings both ends up and returns their names: the Env prefix
// followed by aRole and bRole.
func (e *Env) Veth(na *NS, aRole string, nb *NS, bRole string) (a, b string) {
	e.t.Helper()
	a, b = e.Name(aRole), e.Name(bRole)
	if err := labnet.Veth(na.ns, a, nb.ns, b); err != nil {
		e.t.Fatalf("netns: %v", err)
	}
	return a, b
}

// Bridge creates a bridge prefix+role in n, enslaves the given links of n
// to it, brings it up and returns its name.
func (e *Env) Bridge(n *NS, role string, ports ...string) string {
	e.t.Helper()
	name := e.Name(role)
	if err := n.Netlink().LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		e.t.Fatalf("netns %s: bridge %s: %v", n.Name, name, err)
	}
	br := n.Link(name)
	for _, p := range ports {
		if err := n.Netlink().LinkSetMaster(n.Link(p), br); err != nil {
			e.t.Fatalf("netns %s: add %s to bridge %s: %v", n.Name, p, name, err)
		}
	}
	n.SetUp(name)
	return name
}

// ethtool issues one ETHTOOL_[GS]* command for link inside the namespace,
// through the lab's ioctl wrapper.
func (n *NS) ethtool(link string, cmd, data uint32) (uint32, error) {
	var out uint32
	err := n.Do(func() error {
		var err error
		out, err = labnet.EthtoolValue(link, cmd, data)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("netns %s: ethtool command %#x on %s: %w", n.Name, cmd, link, err)
	}
	return out, nil
}

// DisableTxChecksum turns transmit checksum offload off on a link, as
// `ethtool -K LINK tx off` does. A sender on veth otherwise leaves TCP and
// UDP checksums partial, and a frame that XDP forwards arrives with a bad
// checksum.
func (n *NS) DisableTxChecksum(link string) {
	n.t.Helper()
	if _, err := n.ethtool(link, unix.ETHTOOL_STXCSUM, 0); err != nil {
		n.t.Fatal(err)
	}
}

// TxChecksum reports whether transmit checksum offload is on.
func (n *NS) TxChecksum(link string) (bool, error) {
	v, err := n.ethtool(link, unix.ETHTOOL_GTXCSUM, 0)
	return v != 0, err
}

// Exists reports whether a namespace of that name is mounted under
// /run/netns.
func Exists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return !errors.Is(err, os.ErrNotExist)
}
