package main

import (
	"fmt"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/loader"
)

// snapshot is what the listing commands read from the maps, indexed the
// ways they look it up.
type snapshot struct {
	entries  []loader.VIPEntry // sorted by VIP
	services map[loader.VIP]controlplane.Service
	byIndex  map[uint32]loader.VIPEntry
	backends []loader.Backend // by id
	byID     map[uint32]loader.Backend
	rings    map[uint32][]uint32 // by VIP index; nil unless asked for
	ringSize uint32
}

func takeSnapshot(s *session, withRings bool) (*snapshot, error) {
	sn := &snapshot{
		services: map[loader.VIP]controlplane.Service{},
		byIndex:  map[uint32]loader.VIPEntry{},
		byID:     map[uint32]loader.Backend{},
		ringSize: s.b.Options().RingSize,
	}
	var err error
	if sn.entries, err = s.b.VIPs(); err != nil {
		return nil, fmt.Errorf("read VIPs: %w", err)
	}
	svcs, err := s.prog.Services()
	if err != nil {
		return nil, err
	}
	for _, svc := range svcs {
		sn.services[svc.VIP] = svc
	}
	for _, e := range sn.entries {
		sn.byIndex[e.Index] = e
	}
	if sn.backends, err = s.b.Backends(); err != nil {
		return nil, fmt.Errorf("read backends: %w", err)
	}
	for _, b := range sn.backends {
		sn.byID[b.ID] = b
	}
	if withRings {
		sn.rings = map[uint32][]uint32{}
		for _, e := range sn.entries {
			r, err := s.b.Ring(e.Index)
			if err != nil {
				return nil, fmt.Errorf("read Maglev table of %v: %w", e.VIP, err)
			}
			if r != nil {
				sn.rings[e.Index] = r
			}
		}
	}
	return sn, nil
}

// slots counts the table slots of each backend id of the VIP with index
// idx; id 0 counts the empty slots.
func (sn *snapshot) slots(idx uint32) map[uint32]uint32 {
	out := map[uint32]uint32{}
	r, ok := sn.rings[idx]
	if !ok {
		out[0] = sn.ringSize
		return out
	}
	for _, id := range r {
		out[id]++
	}
	return out
}

// vipName names the VIP with index idx, or says it is unknown.
func (sn *snapshot) vipName(idx uint32) string {
	if e, ok := sn.byIndex[idx]; ok {
		return e.VIP.String()
	}
	return fmt.Sprintf("index %d (no VIP)", idx)
}

// backendsOf returns the backends of the VIP with index idx, by address.
func (sn *snapshot) backendsOf(vip loader.VIP) []loader.Backend {
	e, ok := sn.byIndex[sn.indexOf(vip)]
	if !ok {
		return nil
	}
	var out []loader.Backend
	for _, svcB := range sn.services[vip].Backends {
		for _, b := range sn.backends {
			if b.VIPIndex == e.Index && b.Addr == svcB.Addr {
				out = append(out, b)
				break
			}
		}
	}
	return out
}

func (sn *snapshot) indexOf(vip loader.VIP) uint32 {
	for _, e := range sn.entries {
		if e.VIP == vip {
			return e.Index
		}
	}
	return ^uint32(0)
}

// persistPrefix returns the prefix to show for svc: only source-hash has
// one.
func persistPrefix(svc controlplane.Service) *uint8 {
	if svc.Scheduler != controlplane.SchedulerSourceHash {
		return nil
	}
	p := svc.Config.PersistPrefix
	return &p
}
