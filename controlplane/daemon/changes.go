package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/controlplane/neigh"
	"github.com/xdplb/xdplb/loader"
)

// maxWeight is the largest weight the configuration accepts.
const maxWeight = 65535

// Drain drains a backend: its established flows continue, it gets no new
// ones. The decision is saved in state_dir before it takes effect, and
// holds across reloads and restarts until Undrain.
func (d *Daemon) Drain(ctx context.Context, r api.BackendRef) (api.Result, error) {
	return d.setAdmin(ctx, r, adminDraining)
}

// Undrain undoes Drain, and an operator's `backend set --state down`.
func (d *Daemon) Undrain(ctx context.Context, r api.BackendRef) (api.Result, error) {
	return d.setAdmin(ctx, r, adminNone)
}

func (d *Daemon) setAdmin(ctx context.Context, r api.BackendRef, admin string) (api.Result, error) {
	var (
		res api.Result
		err error
	)
	if derr := d.do(ctx, func() {
		var s *service
		var b backend
		if s, b, err = d.findBackend(r.Service, r.Backend); err != nil {
			return
		}
		what := map[string]string{
			adminDraining: "drained: its established flows continue, it gets no new ones",
			adminNone:     "undrained: it takes new flows again when healthy",
		}[admin]
		if b.admin == admin {
			res.Message = fmt.Sprintf("backend %v of %s was already %s", b.addr, s.name, strings.SplitN(what, ":", 2)[0])
			return
		}
		rt := d.rt.clone()
		rt.backend(s.vip.String(), b.addr.String()).Admin = admin
		if err = d.commitRuntime(rt, s.vip); err != nil {
			return
		}
		res.Message = fmt.Sprintf("backend %v of %s (%v) %s (saved)", b.addr, s.name, s.vip, what)
		d.log.Info("backend "+strings.SplitN(what, ":", 2)[0]+" by an operator", "service", s.name, "vip", s.vip.String(), "backend", b.addr.String())
	}); derr != nil {
		return api.Result{}, derr
	}
	return res, err
}

// AddVIP adds a VIP at runtime, named by its VIP and health checked as
// spec.HealthCheck says (not at all without one). A VIP of the
// configuration that was deleted at runtime is restored with its
// configured definition.
func (d *Daemon) AddVIP(ctx context.Context, spec api.VIPSpec) (api.Result, error) {
	vip, err := loader.ParseVIP(spec.VIP)
	if err != nil {
		return api.Result{}, fmt.Errorf("%v: %w", err, api.ErrInvalid)
	}
	if spec.Scheduler == "" {
		spec.Scheduler = controlplane.SchedulerMaglev.String()
	}
	if spec.Scheduler == controlplane.SchedulerSourceHash.String() && spec.PersistencePrefix == 0 {
		spec.PersistencePrefix = 32
	}
	vs := vipSpec{Forwarding: strings.ToLower(spec.Forwarding), Scheduler: strings.ToLower(spec.Scheduler), PersistencePrefix: spec.PersistencePrefix,
		HealthCheck: strings.TrimSpace(spec.HealthCheck)}
	probe, err := runtimeService(vip, vs)
	if err != nil {
		return api.Result{}, fmt.Errorf("%v: %w", err, api.ErrInvalid)
	}
	if err := (controlplane.Service{VIP: vip, Config: loader.VIPConfig{Forwarding: probe.fwd, PersistPrefix: probe.prefix}, Scheduler: probe.sched}).Validate(); err != nil {
		return api.Result{}, fmt.Errorf("%v: %w", err, api.ErrInvalid)
	}
	var res api.Result
	if derr := d.do(ctx, func() {
		if s, ok := d.eng.services[vip]; ok {
			err = fmt.Errorf("VIP %v exists already (service %s, %s, %d backends; from the %s): %w", vip, s.name, s.fwd, len(s.backends), s.origin, api.ErrExists)
			return
		}
		rt := d.rt.clone()
		vc := rt.vip(vip.String())
		if vc.Deleted {
			if vs.HealthCheck != "" {
				err = fmt.Errorf("VIP %v is a service of the configuration, deleted at runtime: add it back without a health check, it gets the file's: %w", vip, api.ErrInvalid)
				return
			}
			vc.Deleted = false
			if err = d.commitRuntime(rt, vip); err == nil {
				res.Message = fmt.Sprintf("VIP %v restored as configured (service %s)", vip, d.eng.services[vip].name)
			}
			return
		}
		if probe.fwd == loader.ForwardTUN {
			if c, cerr := d.dp.Config(); cerr == nil && !c.TunSource.IsValid() {
				err = fmt.Errorf("TUN VIPs need a tunnel source and none is set: add director.source_address to the configuration and reload: %w", api.ErrInvalid)
				return
			}
		}
		vc.Added = &vs
		if err = d.commitRuntime(rt, vip); err != nil {
			return
		}
		res.Message = fmt.Sprintf("VIP %v added (%s, %s, %s; saved): it forwards nothing until it has backends, its packets are dropped (drop_no_backend)",
			vip, vs.Forwarding, vs.Scheduler, describeCheck(probe.check))
		d.log.Info("VIP added by an operator", "vip", vip.String(), "forwarding", vs.Forwarding, "scheduler", vs.Scheduler,
			"health_check", string(probe.check.Type))
	}); derr != nil {
		return api.Result{}, derr
	}
	return res, err
}

// DeleteVIP deletes a VIP. One added at runtime is forgotten; one of the
// configuration stays deleted (across reloads and restarts) until
// `xdplb vip add` restores it or the file no longer has it.
func (d *Daemon) DeleteVIP(ctx context.Context, r api.VIPRef) (api.Result, error) {
	var (
		res api.Result
		err error
	)
	if derr := d.do(ctx, func() {
		s, ok := d.eng.byName(r.VIP)
		if !ok {
			err = d.serviceNotFound(r.VIP)
			return
		}
		rt := d.rt.clone()
		key := s.vip.String()
		if s.origin == originRuntime {
			delete(rt.VIPs, key)
			res.Message = fmt.Sprintf("VIP %v deleted: it is no longer forwarded", s.vip)
		} else {
			rt.VIPs[key] = &vipChange{Deleted: true}
			res.Message = fmt.Sprintf("VIP %v (service %s of the configuration) deleted: it is no longer forwarded, and stays deleted until 'xdplb vip add' or a configuration without it (saved)", s.vip, s.name)
		}
		if err = d.commitRuntime(rt, s.vip); err != nil {
			return
		}
		d.log.Info("VIP deleted by an operator", "service", s.name, "vip", key)
	}); derr != nil {
		return api.Result{}, derr
	}
	return res, err
}

// AddBackend adds a backend to a VIP at runtime. Its next-hop MAC is
// resolved first unless given.
func (d *Daemon) AddBackend(ctx context.Context, spec api.BackendSpec) (api.Result, error) {
	addr, err := parseBackend(spec.Backend)
	if err != nil {
		return api.Result{}, err
	}
	weight := uint32(1)
	if spec.Weight != nil {
		if *spec.Weight > maxWeight {
			return api.Result{}, fmt.Errorf("weight %d: want 0..%d: %w", *spec.Weight, maxWeight, api.ErrInvalid)
		}
		weight = *spec.Weight
	}
	admin, err := parseAdmin(spec.State)
	if err != nil {
		return api.Result{}, err
	}
	var mac net.HardwareAddr
	if spec.MAC != "" {
		if mac, err = parseMAC(spec.MAC); err != nil {
			return api.Result{}, err
		}
	}
	// Find the service, then resolve outside the loop.
	var fwd loader.Forwarding
	var iface string
	if derr := d.do(ctx, func() {
		s, ok := d.eng.byName(spec.Service)
		if !ok {
			err = d.serviceNotFound(spec.Service)
			return
		}
		if b, ok := s.backend(addr); ok {
			err = fmt.Errorf("backend %v of %s exists already (weight %d): change it with 'xdplb backend set': %w", addr, s.name, b.weight, api.ErrExists)
			return
		}
		fwd, iface = s.fwd, d.cfg.Director.Interface
	}); derr != nil {
		return api.Result{}, derr
	}
	if err != nil {
		return api.Result{}, err
	}
	var h *hop
	if mac == nil {
		h = resolveOne(ctx, d.opts.Resolver, d.opts.InNS, iface, addr)
		switch {
		case h.err != nil && errors.Is(h.err, neigh.ErrNoReply):
			return api.Result{}, fmt.Errorf("%v; or give the MAC with --mac: %w", h.err, api.ErrInvalid)
		case h.err != nil:
			return api.Result{}, fmt.Errorf("%v: %w", h.err, api.ErrInvalid)
		case h.gateway && fwd == loader.ForwardDR:
			return api.Result{}, fmt.Errorf("backend %v is not on the link of %s (the kernel routes it via %v), but DR needs its backends on the link: use a TUN VIP, or give the MAC with --mac if the route is wrong: %w",
				addr, iface, h.nextHop, api.ErrInvalid)
		}
	}
	var res api.Result
	if derr := d.do(ctx, func() {
		s, ok := d.eng.byName(spec.Service)
		if !ok {
			err = d.serviceNotFound(spec.Service)
			return
		}
		if _, ok := s.backend(addr); ok {
			err = fmt.Errorf("backend %v of %s exists already: %w", addr, s.name, api.ErrExists)
			return
		}
		if h != nil {
			d.eng.setHop(addr, mergeHop(d.eng.hops[addr], h))
		}
		rt := d.rt.clone()
		bc := rt.backend(s.vip.String(), addr.String())
		if bc.Deleted {
			bc.Deleted = false // a configured backend comes back
		} else {
			*bc = backendChange{Added: true}
		}
		bc.Admin = admin
		if spec.Weight != nil {
			bc.Weight = &weight
		}
		if mac != nil {
			bc.MAC = mac.String()
		}
		if err = d.commitRuntime(rt, s.vip); err != nil {
			return
		}
		res.Message = fmt.Sprintf("backend %v added to %s (%v), weight %d%s (saved)", addr, s.name, s.vip, weight, d.describeBackend(s.vip, addr))
		d.log.Info("backend added by an operator", "service", s.name, "vip", s.vip.String(), "backend", addr.String(), "weight", weight)
	}); derr != nil {
		return api.Result{}, derr
	}
	return res, err
}

// DeleteBackend deletes a backend of a VIP. Flows pinned to it are
// re-hashed on their next packet; drain it first to let them finish.
func (d *Daemon) DeleteBackend(ctx context.Context, r api.BackendRef) (api.Result, error) {
	var (
		res api.Result
		err error
	)
	if derr := d.do(ctx, func() {
		var s *service
		var b backend
		if s, b, err = d.findBackend(r.Service, r.Backend); err != nil {
			return
		}
		rt := d.rt.clone()
		key := s.vip.String()
		if b.origin == originRuntime {
			delete(rt.vip(key).Backends, b.addr.String())
		} else {
			*rt.backend(key, b.addr.String()) = backendChange{Deleted: true}
		}
		if err = d.commitRuntime(rt, s.vip); err != nil {
			return
		}
		res.Message = fmt.Sprintf("backend %v deleted from %s (%v): its flows move to the other backends (saved)", b.addr, s.name, s.vip)
		d.log.Info("backend deleted by an operator", "service", s.name, "vip", key, "backend", b.addr.String())
	}); derr != nil {
		return api.Result{}, derr
	}
	return res, err
}

// SetBackend changes a backend's weight, operator state or pinned MAC.
func (d *Daemon) SetBackend(ctx context.Context, c api.BackendChange) (api.Result, error) {
	if c.Weight == nil && c.State == nil && c.MAC == nil {
		return api.Result{}, fmt.Errorf("nothing to change: give a weight, a state or a MAC: %w", api.ErrInvalid)
	}
	if c.Weight != nil && *c.Weight > maxWeight {
		return api.Result{}, fmt.Errorf("weight %d: want 0..%d: %w", *c.Weight, maxWeight, api.ErrInvalid)
	}
	var admin string
	var err error
	if c.State != nil {
		if admin, err = parseAdmin(*c.State); err != nil {
			return api.Result{}, err
		}
	}
	var mac net.HardwareAddr
	if c.MAC != nil && *c.MAC != "" {
		if mac, err = parseMAC(*c.MAC); err != nil {
			return api.Result{}, err
		}
	}
	var res api.Result
	if derr := d.do(ctx, func() {
		var s *service
		var b backend
		if s, b, err = d.findBackend(c.Service, c.Backend); err != nil {
			return
		}
		rt := d.rt.clone()
		bc := rt.backend(s.vip.String(), b.addr.String())
		if c.Weight != nil {
			w := *c.Weight
			bc.Weight = &w
		}
		if c.State != nil {
			bc.Admin = admin
		}
		if c.MAC != nil {
			bc.MAC = mac.String()
			if mac == nil {
				bc.MAC = ""
			}
		}
		if err = d.commitRuntime(rt, s.vip); err != nil {
			return
		}
		if c.MAC != nil && mac == nil {
			d.resolveMissing(context.WithoutCancel(ctx), false)
		}
		res.Message = fmt.Sprintf("backend %v of %s (%v)%s (saved)", b.addr, s.name, s.vip, d.describeBackend(s.vip, b.addr))
		d.log.Info("backend changed by an operator", "service", s.name, "vip", s.vip.String(), "backend", b.addr.String())
	}); derr != nil {
		return api.Result{}, derr
	}
	return res, err
}

// commitRuntime makes rt the runtime state in force: saved first, then
// applied, the VIP concerned at once and the others (which compare equal)
// by the loop. It runs in the loop.
func (d *Daemon) commitRuntime(rt *runtimeState, vip loader.VIP) error {
	rt.compact()
	pruned, _ := pruneRuntime(d.cfg, rt)
	svcs, err := buildServices(d.cfg, d.checkers, pruned)
	if err != nil {
		return fmt.Errorf("%v: %w", err, api.ErrInvalid)
	}
	if err := checkCapacity(d.cfg, svcs); err != nil {
		return fmt.Errorf("%v: %w", err, api.ErrInvalid)
	}
	if err := d.store.save(pruned); err != nil {
		return err
	}
	d.rt = pruned
	specs, targets := healthSpecs(sortedOf(svcs), d.opts.InNS, nil)
	if err := d.mon.Apply(specs); err != nil {
		d.log.Error("cannot update health checks", "err", err)
	}
	d.targets.Store(&targets)
	d.eng.setServices(svcs)
	d.syncHealth(targets)
	delete(d.eng.dirty, vip)
	d.eng.apply(vip)
	if ferr := d.eng.failed[vip]; ferr != nil {
		return fmt.Errorf("saved, but writing the maps failed (the daemon retries): %w", ferr)
	}
	return nil
}

// findBackend looks up a backend by service (name or VIP) and address.
func (d *Daemon) findBackend(svc, backendArg string) (*service, backend, error) {
	addr, err := parseBackend(backendArg)
	if err != nil {
		return nil, backend{}, err
	}
	s, ok := d.eng.byName(svc)
	if !ok {
		return nil, backend{}, d.serviceNotFound(svc)
	}
	b, ok := s.backend(addr)
	if !ok {
		names := make([]string, len(s.backends))
		for i, b := range s.backends {
			names[i] = b.addr.String()
		}
		return nil, backend{}, fmt.Errorf("%v is not a backend of %s (%v); its backends: %s: %w", addr, s.name, s.vip, strings.Join(names, ", "), api.ErrNotFound)
	}
	return s, b, nil
}

// serviceNotFound lists the services there are.
func (d *Daemon) serviceNotFound(ref string) error {
	var names []string
	for _, s := range d.eng.sortedServices() {
		if s.origin == originRuntime {
			names = append(names, s.name)
		} else {
			names = append(names, fmt.Sprintf("%s (%v)", s.name, s.vip))
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("no service %q: the daemon forwards none: %w", ref, api.ErrNotFound)
	}
	return fmt.Errorf("no service %q; services: %s: %w", ref, strings.Join(names, ", "), api.ErrNotFound)
}

// describeBackend says what the data plane now does with a backend.
func (d *Daemon) describeBackend(vip loader.VIP, addr netip.Addr) string {
	s := d.eng.services[vip]
	if s == nil {
		return ""
	}
	want, why := d.eng.desired(s)
	i := slices.IndexFunc(want.Backends, func(b controlplane.Backend) bool { return b.Addr == addr })
	if i < 0 {
		return ""
	}
	b := want.Backends[i]
	out := fmt.Sprintf(": %s, weight %d", b.State, b.Weight)
	if b.MAC != nil {
		out += ", next hop " + b.MAC.String()
	}
	if w := why[addr]; w != "" {
		out += " (" + w + ")"
	}
	return out
}

func parseBackend(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("backend %q: want an IPv4 address such as 198.18.0.21: %w", s, api.ErrInvalid)
	}
	return a, nil
}

func parseAdmin(s string) (string, error) {
	switch strings.ToLower(s) {
	case "", "active":
		return adminNone, nil
	case adminDraining:
		return adminDraining, nil
	case adminDown:
		return adminDown, nil
	}
	return "", fmt.Errorf("state %q: want active, draining or down: %w", s, api.ErrInvalid)
}

func parseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("MAC %q: want six bytes such as 02:00:5e:10:00:21: %w", s, api.ErrInvalid)
	}
	return mac, nil
}

// describeCheck says in a few words how a service's backends are checked.
func describeCheck(h config.HealthCheck) string {
	if h.Type == config.CheckNone || h.Type == "" {
		return "not health checked"
	}
	return fmt.Sprintf("%s check of port %d every %v, rise %d, fall %d", h.Type, h.Port, h.Interval, h.Rise, h.Fall)
}
