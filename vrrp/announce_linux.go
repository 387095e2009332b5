//go:build linux

package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetlinkAnnouncer is the Linux [Announcer]: it adds and removes addresses
// with netlink and sends gratuitous ARP requests (sender and target IP both
// the virtual address, broadcast destination) through mdlayher/arp.
type NetlinkAnnouncer struct {
	ifname string
	nl     *netlink.Handle
	arp    *arp.Client
}

var _ Announcer = (*NetlinkAnnouncer)(nil)

// NewAnnouncer opens a netlink handle and an ARP socket for ifname in the
// network namespace of the calling thread. The interface needs an IPv4
// address for the ARP client.
func NewAnnouncer(ifname string) (*NetlinkAnnouncer, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("announcer for %s: %w", ifname, err)
	}
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("announcer for %s: netlink: %w", ifname, err)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("announcer for %s: arp: %w", ifname, err)
	}
	return &NetlinkAnnouncer{ifname: ifname, nl: nl, arp: c}, nil
}

func (a *NetlinkAnnouncer) link() (netlink.Link, error) {
	l, err := a.nl.LinkByName(a.ifname)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", a.ifname, err)
	}
	return l, nil
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
}

// AddAddresses implements [Announcer].
func (a *NetlinkAnnouncer) AddAddresses(ctx context.Context, addrs []netip.Prefix) error {
	l, err := a.link()
	if err != nil {
		return fmt.Errorf("add addresses: %w", err)
	}
	var errs []error
	for _, p := range addrs {
		if err := a.nl.AddrAdd(l, nlAddr(p)); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add %v to %s: %w", p, a.ifname, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveAddresses implements [Announcer].
func (a *NetlinkAnnouncer) RemoveAddresses(ctx context.Context, addrs []netip.Prefix) error {
	l, err := a.link()
	if err != nil {
		return fmt.Errorf("remove addresses: %w", err)
	}
	var errs []error
	for _, p := range addrs {
		err := a.nl.AddrDel(l, nlAddr(p))
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove %v from %s: %w", p, a.ifname, err))
		}
	}
	return errors.Join(errs...)
}

// GratuitousARP implements [Announcer].
func (a *NetlinkAnnouncer) GratuitousARP(ctx context.Context, addr netip.Addr) error {
	p, err := arp.NewPacket(arp.OperationRequest, a.arp.HardwareAddr(), addr, ethernet.Broadcast, addr)
	if err != nil {
		return fmt.Errorf("gratuitous arp for %v: %w", addr, err)
	}
	if err := a.arp.WriteTo(p, ethernet.Broadcast); err != nil {
		return fmt.Errorf("gratuitous arp for %v on %s: %w", addr, a.ifname, err)
	}
	return nil
}

// Close releases the netlink handle and the ARP socket.
func (a *NetlinkAnnouncer) Close() error {
	a.nl.Close()
	return a.arp.Close()
}
