package neigh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultTimeout bounds the ARP exchange when Resolver.Timeout is zero.
const DefaultTimeout = time.Second

// arpTries is how many requests are sent within the timeout, evenly
// spaced, so one lost frame does not fail the resolution.
const arpTries = 3

// Errors, for errors.Is; the returned errors wrap them with the address,
// the interface and what to do.
var (
	// ErrUnknownInterface means no interface has the given name.
	ErrUnknownInterface = errors.New("unknown interface")
	// ErrOtherInterface means the kernel routes the address through
	// another interface than the one the balancer sends on.
	ErrOtherInterface = errors.New("routed through another interface")
	// ErrNoReply means nobody answered ARP within the timeout.
	ErrNoReply = errors.New("no ARP reply")
)

// Source says where a MAC came from.
type Source string

// Sources.
const (
	FromNeighbourTable Source = "neighbour-table"
	FromARP            Source = "arp"
)

// Result is a resolved next hop.
type Result struct {
	MAC     net.HardwareAddr
	NextHop netip.Addr // the address whose MAC this is: the backend or the gateway
	Gateway bool       // the backend is reached through a router, not on the link
	Source  Source
}

// Resolver finds next-hop MACs in the network namespace of the calling
// thread. The zero value is ready to use.
type Resolver struct {
	// Timeout bounds the ARP exchange; 0 means DefaultTimeout.
	Timeout time.Duration
	// Log receives one line per resolution; nil discards.
	Log *slog.Logger
}

// Resolve returns the next-hop MAC for frames to addr sent out of iface:
// the route decides whether the next hop is addr (on-link) or a gateway,
// the neighbour table answers when it has a complete entry, and ARP
// requests are sent otherwise, until a reply, the timeout or ctx's end.
func (r *Resolver) Resolve(ctx context.Context, iface string, addr netip.Addr) (Result, error) {
	addr = addr.Unmap()
	if !addr.Is4() {
		return Result{}, fmt.Errorf("resolve next hop of %v: only IPv4 is supported", addr)
	}
	link, err := netlink.LinkByName(iface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return Result{}, fmt.Errorf("resolve next hop of %v: %w %q: 'ip link' lists the interfaces", addr, ErrUnknownInterface, iface)
		}
		return Result{}, fmt.Errorf("resolve next hop of %v: find interface %s: %w", addr, iface, err)
	}
	res, err := nextHop(link, addr)
	if err != nil {
		return Result{}, err
	}

	if mac, ok, err := lookupNeigh(link.Attrs().Index, res.NextHop); err != nil {
		return Result{}, fmt.Errorf("resolve next hop of %v: %w", addr, err)
	} else if ok {
		res.MAC, res.Source = mac, FromNeighbourTable
		r.log().Debug("next hop from neighbour table", "iface", iface, "backend", addr.String(), "next_hop", res.NextHop.String(), "mac", mac.String())
		return res, nil
	}

	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d).Round(time.Millisecond)
	}
	mac, err := arpResolve(ctx, iface, res.NextHop, timeout)
	if err != nil {
		what := res.NextHop.String()
		if res.Gateway {
			what = fmt.Sprintf("gateway %v (next hop to %v)", res.NextHop, addr)
		}
		if errors.Is(err, ErrNoReply) {
			hint := "is the backend up and on this network?"
			if res.Gateway {
				hint = "is the gateway up and on this network?"
			}
			return Result{}, fmt.Errorf("%w from %s on %s within %v; %s", ErrNoReply, what, iface, timeout, hint)
		}
		return Result{}, fmt.Errorf("resolve next hop of %v: ARP for %s on %s: %w", addr, what, iface, err)
	}
	res.MAC, res.Source = mac, FromARP
	r.log().Debug("next hop from ARP", "iface", iface, "backend", addr.String(), "next_hop", res.NextHop.String(), "mac", mac.String())
	return res, nil
}

func (r *Resolver) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// nextHop asks the kernel for the route to addr and checks that it leaves
// through link.
func nextHop(link netlink.Link, addr netip.Addr) (Result, error) {
	iface := link.Attrs().Name
	routes, err := netlink.RouteGet(addr.AsSlice())
	if err != nil {
		return Result{}, fmt.Errorf("resolve next hop of %v: no route: %w; add an address or route for it on %s", addr, err, iface)
	}
	if len(routes) == 0 {
		return Result{}, fmt.Errorf("resolve next hop of %v: no route; add an address or route for it on %s", addr, iface)
	}
	rt := routes[0]
	if rt.LinkIndex != link.Attrs().Index {
		other := fmt.Sprintf("interface index %d", rt.LinkIndex)
		if l, err := netlink.LinkByIndex(rt.LinkIndex); err == nil {
			other = l.Attrs().Name
		}
		if rt.Type == unix.RTN_LOCAL {
			return Result{}, fmt.Errorf("resolve next hop of %v: it is an address of this host (%w %s); a backend must be another machine", addr, ErrOtherInterface, other)
		}
		return Result{}, fmt.Errorf("resolve next hop of %v: %w: the kernel sends it through %s, but the balancer sends through %s; route it via %s or attach to %s",
			addr, ErrOtherInterface, other, iface, iface, other)
	}
	res := Result{NextHop: addr}
	if gw, ok := netip.AddrFromSlice(rt.Gw); ok && rt.Gw != nil && !gw.Unmap().IsUnspecified() {
		res.NextHop = gw.Unmap()
		res.Gateway = true
	}
	return res, nil
}

// usable are the neighbour states whose link-layer address may be used.
const usable = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY |
	netlink.NUD_PROBE | netlink.NUD_PERMANENT | netlink.NUD_NOARP

// lookupNeigh returns the MAC of ip in the neighbour table of the link,
// when the entry is complete.
func lookupNeigh(linkIndex int, ip netip.Addr) (net.HardwareAddr, bool, error) {
	ns, err := netlink.NeighList(linkIndex, netlink.FAMILY_V4)
	if err != nil {
		return nil, false, fmt.Errorf("read neighbour table: %w", err)
	}
	for _, n := range ns {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || a.Unmap() != ip {
			continue
		}
		if n.State&usable == 0 || len(n.HardwareAddr) != 6 || isZero(n.HardwareAddr) {
			return nil, false, nil
		}
		return n.HardwareAddr, true, nil
	}
	return nil, false, nil
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// arpResolve sends up to arpTries ARP requests for ip on iface, evenly
// spread over timeout, and returns the first reply's sender MAC.
func arpResolve(ctx context.Context, iface string, ip netip.Addr, timeout time.Duration) (net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("find interface: %w", err)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return nil, fmt.Errorf("open ARP socket (the interface needs an IPv4 address to ask from): %w", err)
	}
	defer c.Close()
	// A cancelled ctx closes the socket, which ends a blocked read.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	deadline := time.Now().Add(timeout)
	step := timeout / arpTries
	for try := 0; try < arpTries; try++ {
		if err := c.Request(ip); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("send request: %w", err)
		}
		until := time.Now().Add(step)
		if try == arpTries-1 || until.After(deadline) {
			until = deadline
		}
		if err := c.SetReadDeadline(until); err != nil {
			return nil, fmt.Errorf("set deadline: %w", err)
		}
		for {
			p, _, err := c.Read()
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return nil, fmt.Errorf("read reply: %w", err)
			}
			if p.Operation == arp.OperationReply && p.SenderIP == ip && !isZero(p.SenderHardwareAddr) {
				return p.SenderHardwareAddr, nil
			}
		}
		if !time.Now().Before(deadline) {
			break
		}
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	return nil, ErrNoReply
}
