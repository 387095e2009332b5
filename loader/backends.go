package loader

import (
	"fmt"
	"sync"
)

func (b *Balancer) checkBackendID(id uint32) error {
	if id == 0 || id >= b.opts.MaxBackends {
		return fmt.Errorf("backend id %d out of range 1..%d", id, b.opts.MaxBackends-1)
	}
	return nil
}

// backendIDs caches backend ids that the last scan of the backends map
// found unused, so that adding backends one after another costs a map
// lookup or two per id instead of a scan of the whole map. It is a hint
// only: other handles on the same maps (the daemon, the CLI writing the
// pins when no daemon runs, a second Open) take and free slots behind its
// back, so FreeBackendID checks every candidate against the map before
// returning it. The zero value is an empty cache.
type backendIDs struct {
	mu   sync.Mutex
	free []uint32 // candidates, offered from free[next] on
	next int
}

// FreeBackendID returns an unused backend id (ids start at 1), or an error
// wrapping ErrTableFull. It does not reserve the id: until SetBackend
// writes that slot, it returns the same id again. Candidates come from a
// scan of the backends map (lowest first) and from DeleteBackend on this
// handle; the map is scanned again only when no known candidate is still
// unused, so allocating many ids in a row costs O(1) map operations per id.
func (b *Balancer) FreeBackendID() (uint32, error) {
	c := &b.ids
	c.mu.Lock()
	defer c.mu.Unlock()
	for scanned := false; ; scanned = true {
		for ; c.next < len(c.free); c.next++ {
			id := c.free[c.next]
			var v lbLbBackend
			if err := b.maps.Backends.Lookup(id, &v); err != nil {
				return 0, fmt.Errorf("find free backend id: lookup %d: %w", id, err)
			}
			if v.State == uint8(StateUnused) {
				return id, nil
			}
		}
		if scanned {
			break
		}
		if err := b.scanFreeBackendIDs(); err != nil {
			return 0, fmt.Errorf("find free backend id: %w", err)
		}
	}
	return 0, fmt.Errorf("find free backend id: all %d backend ids in use (raise MaxBackends): %w", b.opts.MaxBackends-1, ErrTableFull)
}

// scanFreeBackendIDs refills the cache with every unused id of the
// backends map, lowest first. b.ids.mu must be held.
func (b *Balancer) scanFreeBackendIDs() error {
	c := &b.ids
	c.free, c.next = c.free[:0], 0
	return dumpMap(b.maps.Backends, func(id uint32, v lbLbBackend) bool {
		if id != 0 && v.State == uint8(StateUnused) {
			c.free = append(c.free, id)
		}
		return true
	})
}

// releaseBackendID adds id, just freed through this handle, to the
// candidates: next in line when a taken candidate left room, last
// otherwise.
func (b *Balancer) releaseBackendID(id uint32) {
	if b.checkBackendID(id) != nil {
		return
	}
	c := &b.ids
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next > 0 {
		// free[next-1] was found taken: reuse its place.
		c.next--
		c.free[c.next] = id
		return
	}
	c.free = append(c.free, id)
}

// SetBackend writes the backend slot b.ID. The backend must belong to a
// configured VIP (VIPIndex), have an IPv4 address and a 6-byte next-hop
// MAC, and be active, draining or down; DeleteBackend frees a slot.
func (b *Balancer) SetBackend(be Backend) error {
	if err := b.checkBackendID(be.ID); err != nil {
		return fmt.Errorf("set backend: %w", err)
	}
	switch be.State {
	case StateActive, StateDraining, StateDown:
	default:
		return fmt.Errorf("set backend %d: state %s: want active, draining or down (DeleteBackend frees a slot)", be.ID, be.State)
	}
	if err := requireIPv4("backend address", be.Addr); err != nil {
		return fmt.Errorf("set backend %d: %w", be.ID, err)
	}
	if len(be.MAC) != 6 {
		return fmt.Errorf("set backend %d: next-hop MAC %q is not a 6-byte Ethernet address", be.ID, be.MAC)
	}
	v, err := backendValue(be)
	if err != nil {
		return fmt.Errorf("set backend %d: %w", be.ID, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	inUse, err := b.vipIndexInUse(be.VIPIndex)
	if err != nil {
		return fmt.Errorf("set backend %d: read vips: %w", be.ID, err)
	}
	if !inUse {
		return fmt.Errorf("set backend %d: no VIP has index %d: %w", be.ID, be.VIPIndex, ErrVIPNotFound)
	}
	if err := b.maps.Backends.Put(be.ID, v); err != nil {
		return fmt.Errorf("set backend %d: %w", be.ID, err)
	}
	return nil
}

// Backend returns the backend in slot id, or an error wrapping
// ErrBackendNotFound if the slot is unused.
func (b *Balancer) Backend(id uint32) (Backend, error) {
	if err := b.checkBackendID(id); err != nil {
		return Backend{}, fmt.Errorf("lookup backend: %w", err)
	}
	var v lbLbBackend
	if err := b.maps.Backends.Lookup(id, &v); err != nil {
		return Backend{}, fmt.Errorf("lookup backend %d: %w", id, err)
	}
	if v.State == uint8(StateUnused) {
		return Backend{}, fmt.Errorf("backend %d: %w", id, ErrBackendNotFound)
	}
	return backendFromValue(id, v), nil
}

// DeleteBackend returns slot id to StateUnused (all zeros) and clears its
// counters. Flows still pinned to it are re-hashed by the program on their
// next packet. ErrBackendNotFound if the slot is unused.
func (b *Balancer) DeleteBackend(id uint32) error {
	if _, err := b.Backend(id); err != nil {
		return fmt.Errorf("delete backend: %w", err)
	}
	return b.deleteBackend(id)
}

func (b *Balancer) deleteBackend(id uint32) error {
	if err := b.maps.Backends.Put(id, lbLbBackend{}); err != nil {
		return fmt.Errorf("delete backend %d: %w", id, err)
	}
	if err := zeroPerCPU[lbLbCounter](b.maps.BackendStats, id); err != nil {
		return fmt.Errorf("clear counters of backend %d: %w", id, err)
	}
	b.releaseBackendID(id)
	return nil
}

// Backends returns the used backend slots, by id.
func (b *Balancer) Backends() ([]Backend, error) {
	var out []Backend
	err := dumpMap(b.maps.Backends, func(id uint32, v lbLbBackend) bool {
		if v.State != uint8(StateUnused) {
			out = append(out, backendFromValue(id, v))
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("list backends: %w", err)
	}
	return out, nil
}
