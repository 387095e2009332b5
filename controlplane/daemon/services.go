package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/controlplane/health"
	"github.com/xdplb/xdplb/loader"
)

// Origins of services and backends.
const (
	originConfig  = "config"
	originRuntime = "runtime"
)

// service is one service as the daemon forwards it: the configuration's
// definition with the runtime changes applied, before health checks and
// next-hop resolution decide its backends' states.
type service struct {
	name   string
	vip    loader.VIP
	origin string
	fwd    loader.Forwarding
	sched  controlplane.Scheduler
	prefix uint8 // source-hash only
	// check is how its backends are checked, and checker runs it (nil
	// for type none).
	check    config.HealthCheck
	checker  health.Checker
	backends []backend // by address
}

// backend is one backend of a service.
type backend struct {
	addr   netip.Addr
	weight uint32
	admin  string           // adminNone, adminDraining or adminDown
	mac    net.HardwareAddr // pinned by an operator; nil: resolve it
	origin string
	// weightSet says the weight is an operator's override.
	weightSet bool
}

// checked reports whether the service's backends are health checked.
func (s *service) checked() bool { return s.check.Type != config.CheckNone && s.check.Type != "" }

func (s *service) backend(a netip.Addr) (backend, bool) {
	for _, b := range s.backends {
		if b.addr == a {
			return b, true
		}
	}
	return backend{}, false
}

// vipOf returns the data-plane identity of a configured service.
func vipOf(s config.Service) loader.VIP {
	p := loader.TCP
	if s.Protocol == config.UDP {
		p = loader.UDP
	}
	return loader.VIP{Addr: s.VIP, Port: s.Port, Proto: p}
}

func forwardingOf(f config.Forwarding) loader.Forwarding {
	if f == config.ForwardTUN {
		return loader.ForwardTUN
	}
	return loader.ForwardDR
}

func schedulerOf(s config.Scheduler) controlplane.Scheduler {
	switch s {
	case config.SchedulerSourceHash:
		return controlplane.SchedulerSourceHash
	case config.SchedulerFailover:
		return controlplane.SchedulerFailover
	}
	return controlplane.SchedulerMaglev
}

// pruneRuntime returns a copy of rt without the changes that the
// configuration cfg makes pointless or overrides, and one sentence for
// each change dropped:
//
//   - a VIP added at runtime that the file now defines: the file's
//     definition wins (changes to its backends stay);
//   - a deletion of a VIP, or of a backend, that the file no longer has;
//   - changes to a VIP or backend that exists nowhere any more;
//   - an added backend that the file now lists is no longer "added" (its
//     drain, weight or MAC stay).
func pruneRuntime(cfg *config.Config, rt *runtimeState) (*runtimeState, []string) {
	out := rt.clone()
	var dropped []string
	inFile := make(map[loader.VIP]config.Service, len(cfg.Services))
	for _, s := range cfg.Services {
		inFile[vipOf(s)] = s
	}
	for _, key := range sortedKeys(out.VIPs) {
		vc := out.VIPs[key]
		vip, err := loader.ParseVIP(key)
		if err != nil {
			dropped = append(dropped, fmt.Sprintf("runtime change to %q dropped: %v", key, err))
			delete(out.VIPs, key)
			continue
		}
		cs, fromFile := inFile[vip]
		switch {
		case vc.Added != nil && fromFile:
			dropped = append(dropped, fmt.Sprintf("VIP %s added at runtime is now defined by the configuration (service %s), which wins", key, cs.Name))
			vc.Added = nil
		case vc.Deleted && !fromFile:
			vc.Deleted = false
		case vc.Added == nil && !fromFile:
			if !vc.empty() {
				dropped = append(dropped, fmt.Sprintf("runtime changes to VIP %s dropped: the configuration no longer has it", key))
			}
			delete(out.VIPs, key)
			continue
		}
		base := map[netip.Addr]bool{}
		if fromFile {
			for _, b := range cs.Backends {
				base[b.Address] = true
			}
		}
		for _, a := range sortedKeys(vc.Backends) {
			bc := vc.Backends[a]
			addr, err := netip.ParseAddr(a)
			if err != nil {
				dropped = append(dropped, fmt.Sprintf("runtime change to backend %q of %s dropped: %v", a, key, err))
				delete(vc.Backends, a)
				continue
			}
			switch {
			case bc.Added && base[addr]:
				bc.Added = false
			case bc.Deleted && !base[addr]:
				bc.Deleted = false
			case !bc.Added && !base[addr]:
				if !bc.empty() {
					dropped = append(dropped, fmt.Sprintf("runtime changes to backend %s of %s dropped: the configuration no longer lists it", a, key))
				}
				delete(vc.Backends, a)
			}
		}
	}
	out.compact()
	return out, dropped
}

// buildServices returns the services to forward: those of cfg, with their
// checkers from chk (by name, as checkers builds them), with the changes
// of rt applied, and those rt adds. rt must have been pruned against cfg.
func buildServices(cfg *config.Config, chk map[string]health.Checker, rt *runtimeState) (map[loader.VIP]*service, error) {
	out := make(map[loader.VIP]*service, len(cfg.Services)+len(rt.VIPs))
	for _, cs := range cfg.Services {
		vip := vipOf(cs)
		vc := rt.VIPs[vip.String()]
		if vc != nil && vc.Deleted {
			continue
		}
		s := &service{
			name:    cs.Name,
			vip:     vip,
			origin:  originConfig,
			fwd:     forwardingOf(cs.Forwarding),
			sched:   schedulerOf(cs.Scheduler),
			check:   cs.HealthCheck,
			checker: chk[cs.Name],
		}
		if s.sched == controlplane.SchedulerSourceHash {
			s.prefix = cs.PersistenceGranularity
		}
		for _, cb := range cs.Backends {
			s.backends = append(s.backends, backend{addr: cb.Address, weight: cb.Weight, origin: originConfig})
		}
		if err := applyBackendChanges(s, vc); err != nil {
			return nil, err
		}
		out[vip] = s
	}
	for _, key := range sortedKeys(rt.VIPs) {
		vc := rt.VIPs[key]
		if vc.Added == nil {
			continue
		}
		vip, err := loader.ParseVIP(key)
		if err != nil {
			return nil, fmt.Errorf("runtime VIP %q: %w", key, err)
		}
		if _, dup := out[vip]; dup {
			continue // pruneRuntime gives the file precedence
		}
		s, err := runtimeService(vip, *vc.Added)
		if err != nil {
			return nil, err
		}
		if err := applyBackendChanges(s, vc); err != nil {
			return nil, err
		}
		out[vip] = s
	}
	return out, nil
}

// runtimeService is a service added through the API: named by its VIP,
// health checked as spec.HealthCheck (YAML, as a health_check section)
// says, not at all without one.
func runtimeService(vip loader.VIP, spec vipSpec) (*service, error) {
	fwd, err := loader.ParseForwarding(spec.Forwarding)
	if err != nil {
		return nil, fmt.Errorf("runtime VIP %v: %w", vip, err)
	}
	sched, err := controlplane.ParseScheduler(spec.Scheduler)
	if err != nil {
		return nil, fmt.Errorf("runtime VIP %v: %w", vip, err)
	}
	s := &service{
		name:   vip.String(),
		vip:    vip,
		origin: originRuntime,
		fwd:    fwd,
		sched:  sched,
		check:  config.HealthCheck{Type: config.CheckNone},
	}
	if sched == controlplane.SchedulerSourceHash {
		s.prefix = spec.PersistencePrefix
	}
	if spec.HealthCheck != "" {
		if s.check, err = config.ParseHealthCheck("health check of "+vip.String(), []byte(spec.HealthCheck), vip.Port); err != nil {
			return nil, err
		}
		if s.checker, err = checkerFor(s.check); err != nil {
			return nil, fmt.Errorf("health check of %v: %w", vip, err)
		}
	}
	return s, nil
}

// applyBackendChanges applies the runtime changes of vc (nil: none) to
// the backends of s and sorts them by address.
func applyBackendChanges(s *service, vc *vipChange) error {
	if vc != nil {
		for _, a := range sortedKeys(vc.Backends) {
			bc := vc.Backends[a]
			addr, err := netip.ParseAddr(a)
			if err != nil {
				return fmt.Errorf("runtime backend %q of %v: %w", a, s.vip, err)
			}
			i := slices.IndexFunc(s.backends, func(b backend) bool { return b.addr == addr })
			if bc.Deleted {
				if i >= 0 {
					s.backends = slices.Delete(s.backends, i, i+1)
				}
				continue
			}
			if i < 0 {
				if !bc.Added {
					continue
				}
				s.backends = append(s.backends, backend{addr: addr, weight: 1, origin: originRuntime})
				i = len(s.backends) - 1
			}
			b := &s.backends[i]
			if bc.Weight != nil {
				b.weight = *bc.Weight
				b.weightSet = true
			}
			b.admin = bc.Admin
			if bc.MAC != "" {
				mac, err := net.ParseMAC(bc.MAC)
				if err != nil {
					return fmt.Errorf("runtime MAC of backend %s of %v: %w", a, s.vip, err)
				}
				b.mac = mac
			}
		}
	}
	slices.SortFunc(s.backends, func(a, b backend) int { return a.addr.Compare(b.addr) })
	return nil
}
