package labnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RunDir is where iproute2 and labnet mount named namespaces.
const RunDir = "/run/netns"

// NS is a named network namespace, visible to `ip netns`.
type NS struct {
	// Name is the namespace's name under RunDir.
	Name string
	h    netns.NsHandle
	nl   *netlink.Handle
}

// Create makes the namespace name and brings its loopback up. It fails if
// the name is taken.
func Create(name string) (*NS, error) {
	if _, err := os.Stat(filepath.Join(RunDir, name)); err == nil {
		return nil, fmt.Errorf("create namespace %s: %w", name, os.ErrExist)
	}
	h, err := newNamed(name)
	if err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", name, err)
	}
	n, err := wrap(name, h)
	if err != nil {
		netns.DeleteNamed(name)
		return nil, err
	}
	if err := n.SetUp("lo"); err != nil {
		n.Close()
		netns.DeleteNamed(name)
		return nil, err
	}
	return n, nil
}

// Open returns a handle on the existing namespace name.
func Open(name string) (*NS, error) {
	h, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", name, err)
	}
	return wrap(name, h)
}

func wrap(name string, h netns.NsHandle) (*NS, error) {
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink in namespace %s: %w", name, err)
	}
	return &NS{Name: name, h: h, nl: nl}, nil
}

// newNamed creates and names a namespace on a throw-away OS thread, so that
// no thread running other goroutines ever switches namespace.
func newNamed(name string) (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	c := make(chan result, 1)
	go func() {
		// Locked and never unlocked: the runtime ends the thread with
		// the goroutine instead of reusing it in the new namespace.
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		c <- result{h, err}
	}()
	r := <-c
	return r.h, r.err
}

// Close releases the handle; the namespace stays.
func (n *NS) Close() error {
	n.nl.Close()
	return n.h.Close()
}

// Do runs fn on an OS thread inside the namespace and returns its error.
// Sockets that fn opens and processes it starts belong to the namespace.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see newNamed
		if err := netns.Set(n.h); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Start starts cmd inside the namespace. The child keeps the namespace
// after Start returns; wait for it with cmd.Wait as usual. cmd must not ask
// for Pdeathsig: the thread that forks it ends right after.
func (n *NS) Start(cmd *exec.Cmd) error {
	if err := n.Do(cmd.Start); err != nil {
		return fmt.Errorf("start %s in namespace %s: %w", cmd.Path, n.Name, err)
	}
	return nil
}

// Run runs a command inside the namespace and returns its combined output;
// the error includes that output.
func (n *NS) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out []byte
	err := n.Do(func() error {
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	if err != nil {
		return out, fmt.Errorf("in namespace %s: %s %s: %w: %s", n.Name, name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Netlink returns a netlink handle bound to the namespace.
func (n *NS) Netlink() *netlink.Handle { return n.nl }

// Link returns the link called name.
func (n *NS) Link(name string) (netlink.Link, error) {
	l, err := n.nl.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: link %s: %w", n.Name, name, err)
	}
	return l, nil
}

// MAC returns the hardware address of a link.
func (n *NS) MAC(link string) (net.HardwareAddr, error) {
	l, err := n.Link(link)
	if err != nil {
		return nil, err
	}
	return l.Attrs().HardwareAddr, nil
}

// SetUp brings a link up.
func (n *NS) SetUp(link string) error {
	l, err := n.Link(link)
	if err != nil {
		return err
	}
	if err := n.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("namespace %s: set %s up: %w", n.Name, link, err)
	}
	return nil
}

// SetDown brings a link down.
func (n *NS) SetDown(link string) error {
	l, err := n.Link(link)
	if err != nil {
		return err
	}
	if err := n.nl.LinkSetDown(l); err != nil {
		return fmt.Errorf("namespace %s: set %s down: %w", n.Name, link, err)
	}
	return nil
}

// AddAddr assigns an address with its prefix length, such as
// 198.18.0.1/24, to a link.
func (n *NS) AddAddr(link string, p netip.Prefix) error {
	l, err := n.Link(link)
	if err != nil {
		return err
	}
	if err := n.nl.AddrAdd(l, &netlink.Addr{IPNet: ipNet(p)}); err != nil {
		return fmt.Errorf("namespace %s: add %s to %s: %w", n.Name, p, link, err)
	}
	return nil
}

// DelAddr removes an address from a link.
func (n *NS) DelAddr(link string, p netip.Prefix) error {
	l, err := n.Link(link)
	if err != nil {
		return err
	}
	if err := n.nl.AddrDel(l, &netlink.Addr{IPNet: ipNet(p)}); err != nil {
		return fmt.Errorf("namespace %s: remove %s from %s: %w", n.Name, p, link, err)
	}
	return nil
}

// Addrs returns the IPv4 addresses of a link, primary first.
func (n *NS) Addrs(link string) ([]netip.Prefix, error) {
	l, err := n.Link(link)
	if err != nil {
		return nil, err
	}
	as, err := n.nl.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: addresses of %s: %w", n.Name, link, err)
	}
	var ps []netip.Prefix
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		bits, _ := a.Mask.Size()
		ps = append(ps, netip.PrefixFrom(ip.Unmap(), bits))
	}
	return ps, nil
}

// AddRoute routes dst out of link, through gw when gw is valid and
// on-link otherwise.
func (n *NS) AddRoute(dst netip.Prefix, link string, gw netip.Addr) error {
	l, err := n.Link(link)
	if err != nil {
		return err
	}
	r := &netlink.Route{Dst: ipNet(dst), LinkIndex: l.Attrs().Index}
	if gw.IsValid() {
		r.Gw = gw.AsSlice()
	} else {
		r.Scope = netlink.SCOPE_LINK
	}
	if err := n.nl.RouteAdd(r); err != nil {
		return fmt.Errorf("namespace %s: route %s via %s dev %s: %w", n.Name, dst, gw, link, err)
	}
	return nil
}

// Neigh returns the neighbour (ARP) entry for ip on link, or nil when the
// table has none.
func (n *NS) Neigh(link string, ip netip.Addr) (*netlink.Neigh, error) {
	l, err := n.Link(link)
	if err != nil {
		return nil, err
	}
	ns, err := n.nl.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: neighbours of %s: %w", n.Name, link, err)
	}
	for i := range ns {
		if a, ok := netip.AddrFromSlice(ns[i].IP); ok && a.Unmap() == ip {
			return &ns[i], nil
		}
	}
	return nil, nil
}

// Sysctl sets a sysctl of the namespace, such as
// "net.ipv4.conf.all.arp_ignore", to value. Network sysctls under
// /proc/sys/net belong to the namespace of the thread that opens them.
func (n *NS) Sysctl(key, value string) error {
	path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	err := n.Do(func() error { return os.WriteFile(path, []byte(value), 0o644) })
	if err != nil {
		return fmt.Errorf("namespace %s: sysctl %s=%s: %w", n.Name, key, value, err)
	}
	return nil
}

// Veth creates a veth pair, aName in namespace a and bName in b, and brings
// both ends up.
func Veth(a *NS, aName string, b *NS, bName string) error {
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(b.h),
	}
	if err := a.nl.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s (%s) - %s (%s): %w", aName, a.Name, bName, b.Name, err)
	}
	return errors.Join(a.SetUp(aName), b.SetUp(bName))
}

// Bridge creates a bridge in n, enslaves the given links of n and brings it
// up.
func Bridge(n *NS, name string, ports ...string) error {
	if err := n.nl.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		return fmt.Errorf("namespace %s: bridge %s: %w", n.Name, name, err)
	}
	for _, p := range ports {
		if err := Enslave(n, name, p); err != nil {
			return err
		}
	}
	return n.SetUp(name)
}

// Enslave adds the link port of n to the bridge br of n.
func Enslave(n *NS, br, port string) error {
	b, err := n.Link(br)
	if err != nil {
		return err
	}
	p, err := n.Link(port)
	if err != nil {
		return err
	}
	if err := n.nl.LinkSetMaster(p, b); err != nil {
		return fmt.Errorf("namespace %s: add %s to bridge %s: %w", n.Name, port, br, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
