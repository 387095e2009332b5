package daemon

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/xdplb/xdplb/loader"
)

// fakeDP is an in-memory Dataplane with the loader's allocation rules
// (lowest free VIP index and backend id; deleting a VIP frees its backends
// and table). It records every write, so tests can assert what the daemon
// wrote and in which order. Safe for concurrent use, as the loader is.
type fakeDP struct {
	mu       sync.Mutex
	opts     loader.Options
	vips     map[loader.VIP]loader.VIPEntry
	backends map[uint32]loader.Backend
	rings    map[uint32][]uint32
	cfg      loader.Config
	writes   []string
	// failSet, when set, makes SetBackend fail for that address.
	failSet string
}

func newFakeDP(ringSize uint32) *fakeDP {
	opts := loader.DefaultOptions()
	opts.RingSize = ringSize
	opts.MaxVIPs = 16
	opts.MaxBackends = 128
	return &fakeDP{
		opts:     opts,
		vips:     map[loader.VIP]loader.VIPEntry{},
		backends: map[uint32]loader.Backend{},
		rings:    map[uint32][]uint32{},
	}
}

func (f *fakeDP) record(format string, args ...any) {
	f.writes = append(f.writes, fmt.Sprintf(format, args...))
}

// takeWrites returns the writes since the last call.
func (f *fakeDP) takeWrites() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.writes
	f.writes = nil
	return w
}

func (f *fakeDP) Options() loader.Options { return f.opts }

func (f *fakeDP) AddVIP(v loader.VIP, c loader.VIPConfig) (loader.VIPEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vips[v]; ok {
		return loader.VIPEntry{}, fmt.Errorf("add VIP %v: %w", v, loader.ErrVIPExists)
	}
	used := map[uint32]bool{}
	for _, e := range f.vips {
		used[e.Index] = true
	}
	for i := range f.opts.MaxVIPs {
		if !used[i] {
			e := loader.VIPEntry{VIP: v, Config: c, Index: i}
			f.vips[v] = e
			f.record("add vip %v", v)
			return e, nil
		}
	}
	return loader.VIPEntry{}, fmt.Errorf("add VIP %v: %w", v, loader.ErrTableFull)
}

func (f *fakeDP) UpdateVIP(v loader.VIP, c loader.VIPConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.vips[v]
	if !ok {
		return fmt.Errorf("update VIP %v: %w", v, loader.ErrVIPNotFound)
	}
	e.Config = c
	f.vips[v] = e
	f.record("update vip %v", v)
	return nil
}

func (f *fakeDP) DeleteVIP(v loader.VIP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.vips[v]
	if !ok {
		return fmt.Errorf("delete VIP %v: %w", v, loader.ErrVIPNotFound)
	}
	delete(f.vips, v)
	delete(f.rings, e.Index)
	for id, b := range f.backends {
		if b.VIPIndex == e.Index {
			delete(f.backends, id)
		}
	}
	f.record("delete vip %v", v)
	return nil
}

func (f *fakeDP) LookupVIP(v loader.VIP) (loader.VIPEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.vips[v]
	if !ok {
		return loader.VIPEntry{}, fmt.Errorf("look up VIP %v: %w", v, loader.ErrVIPNotFound)
	}
	return e, nil
}

func (f *fakeDP) VIPs() ([]loader.VIPEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]loader.VIPEntry, 0, len(f.vips))
	for _, e := range f.vips {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b loader.VIPEntry) int { return compareVIP(a.VIP, b.VIP) })
	return out, nil
}

func (f *fakeDP) FreeBackendID() (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := uint32(1); id < f.opts.MaxBackends; id++ {
		if _, ok := f.backends[id]; !ok {
			return id, nil
		}
	}
	return 0, fmt.Errorf("allocate backend: %w", loader.ErrTableFull)
}

func (f *fakeDP) SetBackend(b loader.Backend) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSet != "" && b.Addr.String() == f.failSet {
		return fmt.Errorf("set backend %v: injected failure", b.Addr)
	}
	if b.ID == 0 || b.ID >= f.opts.MaxBackends {
		return fmt.Errorf("set backend %d: out of range", b.ID)
	}
	mac := make(net.HardwareAddr, 6)
	copy(mac, b.MAC)
	b.MAC = mac
	f.backends[b.ID] = b
	f.record("set backend %v %s w=%d", b.Addr, b.State, b.Weight)
	return nil
}

func (f *fakeDP) Backend(id uint32) (loader.Backend, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.backends[id]
	if !ok {
		return loader.Backend{}, fmt.Errorf("backend %d: %w", id, loader.ErrBackendNotFound)
	}
	return b, nil
}

func (f *fakeDP) DeleteBackend(id uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.backends[id]
	if !ok {
		return fmt.Errorf("delete backend %d: %w", id, loader.ErrBackendNotFound)
	}
	delete(f.backends, id)
	f.record("delete backend %v", b.Addr)
	return nil
}

func (f *fakeDP) Backends() ([]loader.Backend, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]loader.Backend, 0, len(f.backends))
	for _, b := range f.backends {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b loader.Backend) int { return int(a.ID) - int(b.ID) })
	return out, nil
}

func (f *fakeDP) SetRing(idx uint32, ids []uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if uint32(len(ids)) != f.opts.RingSize {
		return fmt.Errorf("set ring %d: %d ids", idx, len(ids))
	}
	f.rings[idx] = slices.Clone(ids)
	f.record("set ring %d", idx)
	return nil
}

func (f *fakeDP) Ring(idx uint32) ([]uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.rings[idx]
	if !ok {
		return nil, nil
	}
	return slices.Clone(r), nil
}

func (f *fakeDP) Config() (loader.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg, nil
}

func (f *fakeDP) SetConfig(c loader.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg = c
	f.record("set config src=%v", c.TunSource)
	return nil
}

func (f *fakeDP) Stats() (loader.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := loader.Stats{
		Reasons:  map[loader.Reason]uint64{},
		Events:   map[loader.Event]uint64{},
		VIPs:     map[uint32]loader.Counter{},
		Backends: map[uint32]loader.Counter{},
	}
	for _, e := range f.vips {
		st.VIPs[e.Index] = loader.Counter{}
	}
	for id := range f.backends {
		st.Backends[id] = loader.Counter{}
	}
	return st, nil
}

func (f *fakeDP) Flows(func(loader.Flow) bool) error { return nil }

func (f *fakeDP) MapInfos() ([]loader.MapInfo, error) {
	return []loader.MapInfo{{Name: "flows", Type: "Array", MaxEntries: f.opts.MaxFlows / loader.FlowWays, Memlock: 1 << 20}}, nil
}

// backendByAddr returns the slot of addr in VIP v.
func (f *fakeDP) backendByAddr(v loader.VIP, addr string) (loader.Backend, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.vips[v]
	if !ok {
		return loader.Backend{}, false
	}
	for _, b := range f.backends {
		if b.VIPIndex == e.Index && b.Addr.String() == addr {
			return b, true
		}
	}
	return loader.Backend{}, false
}

// ringOwners counts the slots of v's table held by each backend address.
func (f *fakeDP) ringOwners(v loader.VIP) map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.vips[v]
	if !ok {
		return nil
	}
	out := map[string]int{}
	for _, id := range f.rings[e.Index] {
		if id == 0 {
			out["none"]++
			continue
		}
		out[f.backends[id].Addr.String()]++
	}
	return out
}

// hasWrite reports whether any write starts with prefix.
func hasWrite(writes []string, prefix string) bool {
	return slices.ContainsFunc(writes, func(w string) bool { return strings.HasPrefix(w, prefix) })
}
