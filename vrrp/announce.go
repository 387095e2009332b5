package vrrp

import (
	"context"
	"net/netip"
	"time"
)

// Announcer puts virtual addresses on an interface and tells the link about
// them. [NewAnnouncer] is the Linux implementation (netlink and
// mdlayher/arp). Methods are called from one goroutine per instance, never
// from the Router's loop, so a slow call delays only that instance's
// addresses.
type Announcer interface {
	// AddAddresses adds the prefixes to the interface; present ones are
	// not an error.
	AddAddresses(ctx context.Context, addrs []netip.Prefix) error
	// RemoveAddresses removes them; absent ones are not an error.
	RemoveAddresses(ctx context.Context, addrs []netip.Prefix) error
	// GratuitousARP broadcasts one gratuitous ARP for addr with the
	// interface's hardware address.
	GratuitousARP(ctx context.Context, addr netip.Addr) error
}

// GARP says how a new master announces its addresses, as keepalived's
// garp_master_* settings. Zero fields take keepalived's defaults.
type GARP struct {
	// Repeat is how many gratuitous ARPs to send per address in each burst
	// (garp_master_repeat, default 5); negative sends none.
	Repeat int
	// Interval spaces the ARPs of a burst (garp_interval, default 0).
	Interval time.Duration
	// Delay is when the second burst follows the first (garp_master_delay,
	// default 5s); negative sends a single burst.
	Delay time.Duration
	// Refresh repeats a burst periodically while master
	// (garp_master_refresh, default 0: never).
	Refresh time.Duration
}

func (g GARP) withDefaults() GARP {
	if g.Repeat == 0 {
		g.Repeat = 5
	}
	if g.Delay == 0 {
		g.Delay = 5 * time.Second
	}
	return g
}
