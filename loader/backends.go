package loader

import (
	"fmt"
)

func (b *Balancer) checkBackendID(id uint32) error {
	if id == 0 || id >= b.opts.MaxBackends {
		return fmt.Errorf("backend id %d out of range 1..%d", id, b.opts.MaxBackends-1)
	}
	return nil
}

// FreeBackendID returns the lowest unused backend id (ids start at 1), or
// an error wrapping ErrTableFull.
func (b *Balancer) FreeBackendID() (uint32, error) {
	free := uint32(0)
	err := dumpMap(b.maps.Backends, func(id uint32, v lbLbBackend) bool {
		if id != 0 && v.State == uint8(StateUnused) {
			free = id
			return false
		}
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("find free backend id: %w", err)
	}
	if free == 0 {
		return 0, fmt.Errorf("find free backend id: all %d backend ids in use (raise MaxBackends): %w", b.opts.MaxBackends-1, ErrTableFull)
	}
	return free, nil
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
