package controlplane

import (
	"fmt"
	"slices"

	"github.com/xdplb/xdplb/controlplane/maglev"
	"github.com/xdplb/xdplb/loader"
)

// encodeConfig returns the VIPConfig that stores s's forwarding, scheduler
// and persistence in the vips map.
func encodeConfig(s Service) loader.VIPConfig {
	c := loader.VIPConfig{Forwarding: s.Config.Forwarding}
	switch effectiveScheduler(s) {
	case SchedulerSourceHash:
		c.Persist = true
		c.PersistPrefix = s.Config.PersistPrefix
	case SchedulerFailover:
		c.Failover = true
	}
	return c
}

// decodeConfig is the inverse of encodeConfig.
func decodeConfig(c loader.VIPConfig) (loader.VIPConfig, Scheduler) {
	out := loader.VIPConfig{Forwarding: c.Forwarding}
	switch {
	case c.Persist:
		out.Persist = true
		out.PersistPrefix = c.PersistPrefix
		return out, SchedulerSourceHash
	case c.Failover:
		return out, SchedulerFailover
	}
	return out, SchedulerMaglev
}

// effectiveScheduler folds Config.Persist into the scheduler: Maglev with
// source persistence is source-hash.
func effectiveScheduler(s Service) Scheduler {
	if s.Scheduler == SchedulerMaglev && s.Config.Persist {
		return SchedulerSourceHash
	}
	return s.Scheduler
}

// inRing reports whether b takes new flows: active with a weight.
func inRing(b Backend) bool {
	return b.State == loader.StateActive && b.Weight > 0
}

// buildRing computes the table of backend ids for backends under sched;
// ids[i] is the slot id of backends[i]. Slots without a backend hold 0,
// which the program treats as "no backend".
func buildRing(mb *maglev.Builder, sched Scheduler, backends []Backend, ids []uint32, size uint32) ([]uint32, error) {
	ring := make([]uint32, size)
	switch sched {
	case SchedulerFailover:
		best := -1
		for i, b := range backends {
			if !inRing(b) {
				continue
			}
			if best < 0 || failoverBefore(b, backends[best]) {
				best = i
			}
		}
		if best >= 0 {
			for i := range ring {
				ring[i] = ids[best]
			}
		}
		return ring, nil
	case SchedulerMaglev, SchedulerSourceHash:
		in := make([]maglev.Backend, 0, len(backends))
		idOf := make([]uint32, 0, len(backends))
		for i, b := range backends {
			if inRing(b) {
				in = append(in, maglev.Backend{Name: b.Addr.String(), Weight: b.Weight})
				idOf = append(idOf, ids[i])
			}
		}
		t, err := mb.Build(nil, in, size)
		if err != nil {
			return nil, err
		}
		for i, owner := range t {
			if owner >= 0 {
				ring[i] = idOf[owner]
			}
		}
		return ring, nil
	}
	return nil, fmt.Errorf("build ring: unknown %v", sched)
}

// failoverBefore orders failover candidates: higher weight first, then the
// lower address.
func failoverBefore(a, b Backend) bool {
	if a.Weight != b.Weight {
		return a.Weight > b.Weight
	}
	return a.Addr.Less(b.Addr)
}

// sortBackends orders backends by address, the order Service reports them
// in.
func sortBackends(bs []Backend) {
	slices.SortFunc(bs, func(a, b Backend) int { return a.Addr.Compare(b.Addr) })
}
