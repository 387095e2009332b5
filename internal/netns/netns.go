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

// Link returns the link called name, failing the test if it is missing.
func (n *NS) Link(name string) netlink.Link {
	n.t.Helper()
	l, err := n.ns.Link(name)
	if err != nil {
		n.t.Fatal(err)
	}
	return l
}

// MAC returns the hardware address of a link.
func (n *NS) MAC(link string) net.HardwareAddr {
	n.t.Helper()
	mac, err := n.ns.MAC(link)
	if err != nil {
		n.t.Fatal(err)
	}
	return mac
}

// SetUp brings a link up.
func (n *NS) SetUp(link string) {
	n.t.Helper()
	if err := n.ns.SetUp(link); err != nil {
		n.t.Fatal(err)
	}
}

// AddAddr assigns an address with its prefix length, such as
// 198.18.0.1/24, to a link.
func (n *NS) AddAddr(link string, p netip.Prefix) {
	n.t.Helper()
	if err := n.ns.AddAddr(link, p); err != nil {
		n.t.Fatal(err)
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
	if err := labnet.Bridge(n.ns, name, ports...); err != nil {
		e.t.Fatal(err)
	}
	return name
}

// DisableTxChecksum turns transmit checksum offload off on a link, as
// `ethtool -K LINK tx off` does. A sender on veth otherwise leaves TCP and
// UDP checksums partial, and a frame that XDP forwards arrives with a bad
// checksum.
func (n *NS) DisableTxChecksum(link string) {
	n.t.Helper()
	if err := n.ns.TxChecksumOff(link); err != nil {
		n.t.Fatal(err)
	}
}

// TxChecksum reports whether transmit checksum offload is on.
func (n *NS) TxChecksum(link string) (bool, error) { return n.ns.TxChecksum(link) }

// Exists reports whether a namespace of that name is mounted under
// /run/netns.
func Exists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return !errors.Is(err, os.ErrNotExist)
}
