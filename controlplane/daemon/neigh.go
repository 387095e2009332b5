package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/controlplane/neigh"
)

// Resolver finds the next-hop MAC of a backend; *neigh.Resolver is one.
type Resolver interface {
	Resolve(ctx context.Context, iface string, addr netip.Addr) (neigh.Result, error)
}

// NeighUpdate is a change in the kernel's neighbour table of the
// director's interface.
type NeighUpdate struct {
	IP  netip.Addr
	MAC net.HardwareAddr
	// Usable says the entry's MAC may be used (reachable, stale,
	// permanent...); an entry that failed or was deleted is not.
	Usable bool
}

// resolveTimeout bounds one resolution, ARP included.
const resolveTimeout = 3 * time.Second

// resolveParallel bounds the resolutions in flight at once.
const resolveParallel = 16

// resolveAll resolves addrs, resolveParallel at a time, in the
// director's network namespace.
func resolveAll(ctx context.Context, r Resolver, inNS func(func() error) error, iface string, addrs []netip.Addr) map[netip.Addr]*hop {
	out := make(map[netip.Addr]*hop, len(addrs))
	var mu sync.Mutex
	sem := make(chan struct{}, resolveParallel)
	var wg sync.WaitGroup
	for _, a := range addrs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			h := resolveOne(ctx, r, inNS, iface, a)
			mu.Lock()
			out[a] = h
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func resolveOne(ctx context.Context, r Resolver, inNS func(func() error) error, iface string, a netip.Addr) *hop {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	var res neigh.Result
	err := inNS(func() error {
		var err error
		res, err = r.Resolve(ctx, iface, a)
		return err
	})
	if err != nil {
		return &hop{err: err}
	}
	return &hop{mac: res.MAC, nextHop: res.NextHop, gateway: res.Gateway, source: string(res.Source)}
}

// mergeHop combines a new resolution with what was known: a failed
// resolution keeps the last known MAC (the backend's health checks decide
// whether it is reachable), and records the error.
func mergeHop(old, fresh *hop) *hop {
	if fresh.mac != nil || old == nil || old.mac == nil {
		return fresh
	}
	h := *old
	h.err = fresh.err
	return &h
}

// watchNeighbours reports changes to the neighbour table of iface until
// ctx is done. The netlink socket is opened in the director's network
// namespace.
func watchNeighbours(ctx context.Context, iface string, inNS func(func() error) error, log *slog.Logger) (<-chan NeighUpdate, error) {
	updates := make(chan netlink.NeighUpdate, 1024)
	done := make(chan struct{})
	var index int
	err := inNS(func() error {
		link, err := netlink.LinkByName(iface)
		if err != nil {
			return fmt.Errorf("watch neighbours of %s: %w", iface, err)
		}
		index = link.Attrs().Index
		return netlink.NeighSubscribeWithOptions(updates, done, netlink.NeighSubscribeOptions{
			ErrorCallback: func(err error) {
				if !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
					log.Warn("neighbour watch error", "iface", iface, "err", err)
				}
			},
		})
	})
	if err != nil {
		close(done)
		return nil, err
	}
	out := make(chan NeighUpdate, 256)
	go func() {
		defer close(out)
		stop := context.AfterFunc(ctx, func() { close(done) })
		defer stop()
		for u := range updates {
			if u.LinkIndex != index || u.Family != unix.AF_INET {
				continue
			}
			ip, ok := netip.AddrFromSlice(u.IP)
			if !ok {
				continue
			}
			usable := u.Type == unix.RTM_NEWNEIGH &&
				u.State&(unix.NUD_REACHABLE|unix.NUD_STALE|unix.NUD_DELAY|unix.NUD_PROBE|unix.NUD_PERMANENT|unix.NUD_NOARP) != 0 &&
				len(u.HardwareAddr) == 6
			select {
			case out <- NeighUpdate{IP: ip.Unmap(), MAC: u.HardwareAddr, Usable: usable}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// neighChanged applies a neighbour-table change: every backend whose next
// hop is ip and whose MAC differs takes the new one. A neighbour that
// failed or disappeared changes nothing: the last MAC stays until a
// resolution or a new entry says otherwise. It returns the backend
// addresses that changed.
func (e *engine) neighChanged(u NeighUpdate) []netip.Addr {
	if !u.Usable {
		return nil
	}
	var changed []netip.Addr
	for a, h := range e.hops {
		if h.nextHop != u.IP || h.mac == nil || string(h.mac) == string(u.MAC) {
			continue
		}
		n := *h
		n.mac = append(net.HardwareAddr(nil), u.MAC...)
		n.source = "neighbour-table"
		n.err = nil
		e.setHop(a, &n)
		changed = append(changed, a)
	}
	return changed
}
