package controlplane

import (
	"fmt"
	"net"
	"slices"
	"sort"

	"github.com/xdplb/xdplb/loader"
)

// memDataplane is an in-memory Dataplane that behaves like the loader's
// maps (lowest free VIP index and backend id, DeleteVIP frees the VIP's
// backends and ring) and logs every write, so tests can assert exactly
// what Apply wrote and in which order.
type memDataplane struct {
	opts     loader.Options
	vips     map[loader.VIP]loader.VIPEntry
	backends map[uint32]loader.Backend
	rings    map[uint32][]uint32
	writes   []string
}

func newMem(ringSize uint32) *memDataplane {
	opts := loader.DefaultOptions()
	opts.RingSize = ringSize
	opts.MaxBackends = 64
	opts.MaxVIPs = 8
	return &memDataplane{
		opts:     opts,
		vips:     map[loader.VIP]loader.VIPEntry{},
		backends: map[uint32]loader.Backend{},
		rings:    map[uint32][]uint32{},
	}
}

func (m *memDataplane) log(format string, args ...any) {
	m.writes = append(m.writes, fmt.Sprintf(format, args...))
}

// takeWrites returns the writes logged since the last call.
func (m *memDataplane) takeWrites() []string {
	w := m.writes
	m.writes = nil
	return w
}

func (m *memDataplane) Options() loader.Options { return m.opts }

func (m *memDataplane) AddVIP(v loader.VIP, c loader.VIPConfig) (loader.VIPEntry, error) {
	if _, ok := m.vips[v]; ok {
		return loader.VIPEntry{}, fmt.Errorf("add VIP %v: %w", v, loader.ErrVIPExists)
	}
	used := map[uint32]bool{}
	for _, e := range m.vips {
		used[e.Index] = true
	}
	for i := uint32(0); i < m.opts.MaxVIPs; i++ {
		if !used[i] {
			e := loader.VIPEntry{VIP: v, Config: c, Index: i}
			m.vips[v] = e
			m.log("AddVIP %v", v)
			return e, nil
		}
	}
	return loader.VIPEntry{}, fmt.Errorf("add VIP %v: %w", v, loader.ErrTableFull)
}

func (m *memDataplane) UpdateVIP(v loader.VIP, c loader.VIPConfig) error {
	e, ok := m.vips[v]
	if !ok {
		return fmt.Errorf("update VIP %v: %w", v, loader.ErrVIPNotFound)
	}
	e.Config = c
	m.vips[v] = e
	m.log("UpdateVIP %v", v)
	return nil
}

func (m *memDataplane) DeleteVIP(v loader.VIP) error {
	e, ok := m.vips[v]
	if !ok {
		return fmt.Errorf("delete VIP %v: %w", v, loader.ErrVIPNotFound)
	}
	delete(m.vips, v)
	delete(m.rings, e.Index)
	for id, b := range m.backends {
		if b.VIPIndex == e.Index {
			delete(m.backends, id)
		}
	}
	m.log("DeleteVIP %v", v)
	return nil
}

func (m *memDataplane) LookupVIP(v loader.VIP) (loader.VIPEntry, error) {
	e, ok := m.vips[v]
	if !ok {
		return loader.VIPEntry{}, fmt.Errorf("look up VIP %v: %w", v, loader.ErrVIPNotFound)
	}
	return e, nil
}

func (m *memDataplane) VIPs() ([]loader.VIPEntry, error) {
	out := make([]loader.VIPEntry, 0, len(m.vips))
	for _, e := range m.vips {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return compareVIP(out[i].VIP, out[j].VIP) < 0 })
	return out, nil
}

func (m *memDataplane) FreeBackendID() (uint32, error) {
	for id := uint32(1); id < m.opts.MaxBackends; id++ {
		if _, ok := m.backends[id]; !ok {
			return id, nil
		}
	}
	return 0, fmt.Errorf("allocate backend id: %w", loader.ErrTableFull)
}

func (m *memDataplane) SetBackend(b loader.Backend) error {
	if b.ID == 0 || b.ID >= m.opts.MaxBackends {
		return fmt.Errorf("set backend %d: id out of range", b.ID)
	}
	// The map stores 6 bytes; a missing MAC reads back as zeros.
	mac := make(net.HardwareAddr, 6)
	copy(mac, b.MAC)
	b.MAC = mac
	m.backends[b.ID] = b
	m.log("SetBackend %d %v %v w=%d", b.ID, b.Addr, b.State, b.Weight)
	return nil
}

func (m *memDataplane) DeleteBackend(id uint32) error {
	delete(m.backends, id)
	m.log("DeleteBackend %d", id)
	return nil
}

func (m *memDataplane) Backends() ([]loader.Backend, error) {
	out := make([]loader.Backend, 0, len(m.backends))
	for _, b := range m.backends {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memDataplane) SetRing(idx uint32, ids []uint32) error {
	if uint32(len(ids)) != m.opts.RingSize {
		return fmt.Errorf("set ring %d: %d ids, want %d", idx, len(ids), m.opts.RingSize)
	}
	m.rings[idx] = slices.Clone(ids)
	m.log("SetRing %d", idx)
	return nil
}

func (m *memDataplane) Ring(idx uint32) ([]uint32, error) {
	r, ok := m.rings[idx]
	if !ok {
		return nil, nil
	}
	return slices.Clone(r), nil
}
