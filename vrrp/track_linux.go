//go:build linux

package vrrp

import (
	"context"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkTracker follows one interface through a netlink subscription, as
// keepalived's track_interface: the link is healthy while it is
// administratively up and has carrier (IFF_UP and IFF_RUNNING).
type LinkTracker struct {
	ifname  string
	updates chan netlink.LinkUpdate
	done    chan struct{}
	close   sync.Once
}

var _ Tracker = (*LinkTracker)(nil)

// NewLinkTracker subscribes to link changes in the network namespace of the
// calling thread. Track may be called once; Close ends the subscription.
func NewLinkTracker(ifname string) (*LinkTracker, error) {
	if _, err := netlink.LinkByName(ifname); err != nil {
		return nil, fmt.Errorf("track link %s: %w", ifname, err)
	}
	t := &LinkTracker{
		ifname:  ifname,
		updates: make(chan netlink.LinkUpdate, 64),
		done:    make(chan struct{}),
	}
	err := netlink.LinkSubscribeWithOptions(t.updates, t.done, netlink.LinkSubscribeOptions{ListExisting: true})
	if err != nil {
		return nil, fmt.Errorf("track link %s: %w", ifname, err)
	}
	return t, nil
}

// Track implements [Tracker]. A link that disappears counts as down.
func (t *LinkTracker) Track(ctx context.Context, report func(up bool)) {
	defer t.Close()
	first, last := true, false
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-t.updates:
			if !ok {
				// The subscription ended: we can no longer vouch for the link.
				if last || first {
					report(false)
				}
				return
			}
			if u.Link == nil || u.Link.Attrs().Name != t.ifname {
				continue
			}
			flags := u.Link.Attrs().RawFlags
			up := u.Header.Type != unix.RTM_DELLINK &&
				flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING != 0
			if first || up != last {
				report(up)
				first, last = false, up
			}
		}
	}
}

// Close ends the subscription.
func (t *LinkTracker) Close() error {
	t.close.Do(func() { close(t.done) })
	return nil
}
