package daemon

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/controlplane/health"
	"github.com/xdplb/xdplb/loader"
)

// Dataplane is what the daemon needs of the balancer: what the
// Programmer writes, plus the reads behind status and metrics. A
// *loader.Balancer is one; tests use fakes.
type Dataplane interface {
	controlplane.Dataplane
	Backend(id uint32) (loader.Backend, error)
	Config() (loader.Config, error)
	SetConfig(c loader.Config) error
	Stats() (loader.Stats, error)
	Flows(fn func(loader.Flow) bool) error
	MapInfos() ([]loader.MapInfo, error)
}

var _ Dataplane = (*loader.Balancer)(nil)

// bkey names one backend of one service.
type bkey struct {
	vip  loader.VIP
	addr netip.Addr
}

// hop is what the daemon knows of a backend's next hop.
type hop struct {
	mac     net.HardwareAddr
	nextHop netip.Addr
	gateway bool
	// source is where mac came from: "neighbour-table", "arp", or "maps"
	// (the value an earlier run wrote, kept until a resolution succeeds).
	source string
	// err is the last resolution's error; mac may still hold the last
	// known address.
	err error
}

// engine keeps the data plane equal to the services, their backends'
// health and their next hops. It does no I/O of its own besides the
// Dataplane and is used by one goroutine: the daemon's loop, or a test.
type engine struct {
	log   *slog.Logger
	dp    Dataplane
	prog  *controlplane.Programmer
	iface string

	services map[loader.VIP]*service
	// users lists, by backend address, the VIPs that have it.
	users map[netip.Addr][]loader.VIP
	// health holds the checks' verdict for checked backends; a backend
	// without an entry counts as up.
	health map[bkey]bool
	hops   map[netip.Addr]*hop

	// applied is what the data plane holds, as last written by Apply;
	// index the VIPs' indexes there.
	applied map[loader.VIP]controlplane.Service
	index   map[loader.VIP]uint32
	// ids caches the backend slot of each backend, for the fast path
	// of a failing backend; rebuilt from the maps when invalid.
	ids      map[bkey]uint32
	idsValid bool

	// dirty lists the VIPs whose data-plane state may differ from the
	// desired one; failed those whose last Apply failed (retried later).
	dirty  map[loader.VIP]bool
	queue  []loader.VIP // dirty VIPs in write order; nil: to be sorted
	failed map[loader.VIP]error
	// starved lists the services applied without any backend that takes
	// new flows.
	starved map[loader.VIP]bool

	// vipGen counts VIPs added and deleted: the set of BPF maps (one
	// Maglev table per VIP) changes only then.
	vipGen uint64

	// onStarved, when set, is told when a service loses its last
	// backend that takes new flows (true) or gets one back (false).
	onStarved func(service string, starved bool)

	// onApplied, when set, is told about every VIP written (tests).
	onApplied func(loader.VIP, controlplane.Result)
}

func newEngine(dp Dataplane, iface string, log *slog.Logger) *engine {
	return &engine{
		log:      log,
		dp:       dp,
		prog:     controlplane.NewProgrammer(dp, log),
		iface:    iface,
		services: map[loader.VIP]*service{},
		health:   map[bkey]bool{},
		hops:     map[netip.Addr]*hop{},
		applied:  map[loader.VIP]controlplane.Service{},
		index:    map[loader.VIP]uint32{},
		ids:      map[bkey]uint32{},
		dirty:    map[loader.VIP]bool{},
		failed:   map[loader.VIP]error{},
		starved:  map[loader.VIP]bool{},
	}
}

// setServices replaces the services. Every VIP, old and new, is marked
// dirty: those whose desired state is unchanged cost one comparison, the
// others are written, and the ones that went away are deleted.
func (e *engine) setServices(svcs map[loader.VIP]*service) {
	for vip := range e.services {
		e.markDirty(vip)
	}
	for vip := range e.applied {
		e.markDirty(vip)
	}
	for vip := range svcs {
		e.markDirty(vip)
	}
	e.services = svcs
	e.users = make(map[netip.Addr][]loader.VIP, len(e.users))
	for vip, s := range svcs {
		for _, b := range s.backends {
			e.users[b.addr] = append(e.users[b.addr], vip)
		}
	}
	for k := range e.health {
		if s, ok := svcs[k.vip]; !ok || !s.checked() {
			delete(e.health, k)
		} else if _, ok := s.backend(k.addr); !ok {
			delete(e.health, k)
		}
	}
}

// adopt reads what an earlier run left in the maps: every VIP there is
// marked dirty (so that one no longer wanted is deleted and the others are
// checked table and all), and the next-hop MACs are kept as a fallback for
// backends that cannot be resolved now. It returns the backends as the
// maps hold them, for initialStates.
func (e *engine) adopt() (map[bkey]loader.BackendState, error) {
	svcs, err := e.prog.Services()
	if err != nil {
		return nil, fmt.Errorf("read the data plane: %w", err)
	}
	states := map[bkey]loader.BackendState{}
	for _, s := range svcs {
		e.markDirty(s.VIP)
		for _, b := range s.Backends {
			states[bkey{s.VIP, b.Addr}] = b.State
			if len(b.MAC) == 6 && !isZeroMAC(b.MAC) {
				if _, ok := e.hops[b.Addr]; !ok {
					e.hops[b.Addr] = &hop{mac: slices.Clone(b.MAC), source: "maps"}
				}
			}
		}
	}
	return states, nil
}

// initialStates chooses the initial health of every checked backend from
// the state an earlier run left in the maps, so that a restart does not
// flap a backend: one that was active starts fully up (fall failures take
// it down), one that the checks had taken out (down or draining although
// nothing else explains it) starts fully down (rise successes bring it
// back). A backend the maps do not have starts as the health package's
// default (up, no margin).
func (e *engine) initialStates(inMaps map[bkey]loader.BackendState) map[bkey]health.Initial {
	out := map[bkey]health.Initial{}
	for vip, s := range e.services {
		if !s.checked() {
			continue
		}
		for _, b := range s.backends {
			k := bkey{vip, b.addr}
			st, ok := inMaps[k]
			init := health.InitUp
			switch {
			case !ok:
			case st == loader.StateActive:
				init = health.InitFullyUp
			case b.admin == adminNone && b.weight > 0:
				// Not active, and neither an operator nor the weight
				// says why: the checks had failed it.
				init = health.InitFullyDown
			}
			out[k] = init
			e.health[k] = init == health.InitUp || init == health.InitFullyUp
		}
	}
	return out
}

// backendState is the state b of s should have in the data plane, before
// its next hop is considered, and why it is not active.
func (e *engine) backendState(s *service, b backend) (loader.BackendState, string) {
	up, known := e.health[bkey{s.vip, b.addr}]
	switch {
	case b.admin == adminDown:
		return loader.StateDown, "set down by an operator"
	case s.checked() && known && !up:
		if s.check.OnFailure == config.OnFailureDrain {
			return loader.StateDraining, "health check failing (on_failure: drain)"
		}
		return loader.StateDown, "health check failing"
	case b.admin == adminDraining:
		return loader.StateDraining, "drained by an operator"
	case b.weight == 0:
		return loader.StateDraining, "weight 0"
	}
	return loader.StateActive, ""
}

// nextHop returns the MAC to write for b of s, or why there is none.
func (e *engine) nextHop(s *service, b backend) (net.HardwareAddr, string) {
	if b.mac != nil {
		return b.mac, ""
	}
	h, ok := e.hops[b.addr]
	switch {
	case !ok || h.mac == nil:
		why := "next-hop MAC not resolved yet"
		if ok && h.err != nil {
			why = "no next-hop MAC: " + h.err.Error()
		}
		return nil, why
	case h.gateway && s.fwd == loader.ForwardDR:
		return nil, fmt.Sprintf("not on the link of %s (routed via %v); DR needs its backends on the link", e.iface, h.nextHop)
	}
	return h.mac, ""
}

// desired returns the Service to program for s, and for each backend that
// is not active, why.
func (e *engine) desired(s *service) (controlplane.Service, map[netip.Addr]string) {
	out := controlplane.Service{
		VIP:       s.vip,
		Config:    loader.VIPConfig{Forwarding: s.fwd, PersistPrefix: s.prefix},
		Scheduler: s.sched,
		Backends:  make([]controlplane.Backend, 0, len(s.backends)),
	}
	why := map[netip.Addr]string{}
	for _, b := range s.backends {
		st, reason := e.backendState(s, b)
		mac, macWhy := e.nextHop(s, b)
		if mac == nil && st != loader.StateDown {
			st, reason = loader.StateDown, macWhy
		}
		if reason != "" {
			why[b.addr] = reason
		}
		out.Backends = append(out.Backends, controlplane.Backend{Addr: b.addr, Weight: b.weight, MAC: mac, State: st})
	}
	return out, why
}

// pending reports whether some VIP waits to be written.
func (e *engine) pending() bool { return len(e.dirty) > 0 }

// markDirty queues vip to be written.
func (e *engine) markDirty(vip loader.VIP) {
	if !e.dirty[vip] {
		e.dirty[vip] = true
		e.queue = nil
	}
}

// next picks the dirty VIP to write next: deletions first (they free VIP
// indexes and backend slots), then in VIP order. The order is computed
// once per batch of dirty VIPs, not once per VIP.
func (e *engine) next() (loader.VIP, bool) {
	if e.queue == nil {
		e.queue = make([]loader.VIP, 0, len(e.dirty))
		for vip := range e.dirty {
			e.queue = append(e.queue, vip)
		}
		slices.SortFunc(e.queue, func(a, b loader.VIP) int {
			_, keepA := e.services[a]
			_, keepB := e.services[b]
			if keepA != keepB {
				if keepB {
					return -1
				}
				return 1
			}
			return compareVIP(a, b)
		})
	}
	for len(e.queue) > 0 {
		vip := e.queue[0]
		e.queue = e.queue[1:]
		if e.dirty[vip] {
			return vip, true
		}
	}
	e.queue = nil
	return loader.VIP{}, false
}

// applyNext writes one dirty VIP, if any, and reports whether it did.
func (e *engine) applyNext() bool {
	vip, ok := e.next()
	if !ok {
		return false
	}
	delete(e.dirty, vip)
	e.apply(vip)
	return true
}

// applyAll writes every dirty VIP.
func (e *engine) applyAll() {
	for e.applyNext() {
	}
}

// apply makes the data plane's vip equal to what it should be: deleted
// when no service wants it, written through the Programmer when its
// desired state differs from the one last applied.
func (e *engine) apply(vip loader.VIP) {
	s, ok := e.services[vip]
	if !ok {
		err := e.prog.Delete(vip)
		if err != nil && !errors.Is(err, loader.ErrVIPNotFound) {
			e.fail(vip, err)
			return
		}
		if err == nil {
			e.log.Info("service removed: the VIP is no longer forwarded", "vip", vip.String())
			e.idsValid = false
			e.vipGen++
		}
		delete(e.applied, vip)
		delete(e.index, vip)
		delete(e.failed, vip)
		delete(e.starved, vip)
		return
	}
	want, _ := e.desired(s)
	if have, ok := e.applied[vip]; ok && sameService(have, want) {
		return
	}
	res, err := e.prog.Apply(want)
	if err != nil {
		// What Apply wrote before failing is unknown: read it back next
		// time.
		delete(e.applied, vip)
		e.fail(vip, err)
		return
	}
	if prev := e.failed[vip]; prev != nil {
		e.log.Info("service programmed again", "service", s.name, "vip", vip.String())
		delete(e.failed, vip)
	}
	e.applied[vip] = want
	e.index[vip] = res.VIP.Index
	if res.VIPAdded || len(res.Added)+len(res.Removed) > 0 {
		e.idsValid = false
	}
	if res.VIPAdded || res.RingWritten {
		e.vipGen++ // a new table is a new map
	}
	e.checkStarved(s, want)
	if e.onApplied != nil {
		e.onApplied(vip, res)
	}
}

func (e *engine) fail(vip loader.VIP, err error) {
	if prev := e.failed[vip]; prev == nil || prev.Error() != err.Error() {
		e.log.Error("cannot program service; retrying", "vip", vip.String(), "err", err)
	}
	e.failed[vip] = err
}

// retryFailed marks the VIPs whose last write failed dirty again.
func (e *engine) retryFailed() {
	for vip := range e.failed {
		e.markDirty(vip)
	}
}

// checkStarved logs, loudly, a service entering or leaving the state where
// no backend takes new flows.
func (e *engine) checkStarved(s *service, applied controlplane.Service) {
	active, draining := countStates(applied)
	switch {
	case active == 0 && !e.starved[s.vip]:
		e.starved[s.vip] = true
		e.log.Error("service has no backend taking new flows: "+starvedAction(draining),
			"service", s.name, "vip", s.vip.String(), "backends", len(applied.Backends), "draining", draining)
		if e.onStarved != nil {
			e.onStarved(s.name, true)
		}
	case active > 0 && e.starved[s.vip]:
		delete(e.starved, s.vip)
		e.log.Info("service forwards new flows again", "service", s.name, "vip", s.vip.String(), "active", active)
		if e.onStarved != nil {
			e.onStarved(s.name, false)
		}
	}
}

// starvedAction says what the data plane does with the packets of a VIP
// whose backends all are down or draining.
func starvedAction(draining int) string {
	if draining > 0 {
		return "the data plane drops packets of new connections to the VIP (reason drop_no_backend); established flows to draining backends continue"
	}
	return "the data plane drops every packet to the VIP (reason drop_no_backend), established flows included"
}

// countStates counts the backends that take new flows and the draining
// ones.
func countStates(s controlplane.Service) (active, draining int) {
	for _, b := range s.Backends {
		switch {
		case b.State == loader.StateActive && b.Weight > 0:
			active++
		case b.State == loader.StateDraining:
			draining++
		}
	}
	return active, draining
}

// setHealth records the checks' verdict on a backend. A backend that
// fails leaves the active state at once: its slot is rewritten in place
// (one map update), so no new flow is sent to a backend known to fail
// while its service's table is rebuilt; until the new table is swapped
// in, new flows that hash to its slots are dropped (drop_no_backend)
// rather than sent to it. A backend that recovers waits for the table:
// it is written before the table that names it, by Apply. It reports
// whether the fast path wrote the map.
func (e *engine) setHealth(k bkey, up bool) bool {
	s, ok := e.services[k.vip]
	if !ok || !s.checked() {
		return false
	}
	b, ok := s.backend(k.addr)
	if !ok {
		return false
	}
	if old, known := e.health[k]; known && old == up {
		return false
	}
	e.health[k] = up
	e.markDirty(k.vip)
	if up {
		return false
	}
	st, reason := e.backendState(s, b)
	if st == loader.StateActive {
		return false
	}
	return e.demote(k, st, reason)
}

// demote writes state into the slot of backend k if the maps have it
// active.
func (e *engine) demote(k bkey, state loader.BackendState, reason string) bool {
	have, ok := e.applied[k.vip]
	if !ok {
		return false
	}
	i := slices.IndexFunc(have.Backends, func(b controlplane.Backend) bool { return b.Addr == k.addr })
	if i < 0 || have.Backends[i].State != loader.StateActive {
		return false
	}
	id, ok := e.slot(k)
	if !ok {
		return false
	}
	cur, err := e.dp.Backend(id)
	if err != nil || cur.Addr != k.addr || cur.VIPIndex != e.index[k.vip] {
		e.idsValid = false
		return false
	}
	if cur.State != loader.StateActive {
		return false
	}
	cur.State = state
	if err := e.prog.SetBackend(cur); err != nil {
		e.log.Error("cannot take failing backend out", "vip", k.vip.String(), "backend", k.addr.String(), "err", err)
		return false
	}
	// The data plane now differs from applied: Apply writes the table and
	// finds this slot already right.
	e.log.Info("backend taken out", "vip", k.vip.String(), "backend", k.addr.String(), "id", id,
		"state", state.String(), "reason", reason)
	return true
}

// slot returns the backend id of k, reading the maps when the cache is
// stale.
func (e *engine) slot(k bkey) (uint32, bool) {
	e.refreshIDs()
	id, ok := e.ids[k]
	return id, ok
}

// refreshIDs rebuilds the cache of backend slots if it is stale. The loop
// calls it when it has nothing else to do, so the fast path of a failing
// backend finds it ready.
func (e *engine) refreshIDs() {
	if e.idsValid {
		return
	}
	all, err := e.dp.Backends()
	if err != nil {
		return
	}
	byIndex := make(map[uint32]loader.VIP, len(e.index))
	for vip, idx := range e.index {
		byIndex[idx] = vip
	}
	clear(e.ids)
	for _, b := range all {
		if vip, ok := byIndex[b.VIPIndex]; ok {
			e.ids[bkey{vip, b.Addr}] = b.ID
		}
	}
	e.idsValid = true
}

// setHop records the next hop of a backend address and marks the
// services that use it dirty when their MAC changes.
func (e *engine) setHop(addr netip.Addr, h *hop) {
	old := e.hops[addr]
	e.hops[addr] = h
	if old != nil && bytes.Equal(old.mac, h.mac) && old.gateway == h.gateway {
		return
	}
	if old != nil && old.mac != nil && h.mac != nil {
		e.log.Info("next hop changed", "backend", addr.String(), "next_hop", h.nextHop.String(),
			"old_mac", old.mac.String(), "mac", h.mac.String())
	}
	for _, vip := range e.users[addr] {
		e.markDirty(vip)
	}
}

// addrs returns every backend address whose MAC must be resolved (not
// pinned by an operator).
func (e *engine) addrs() []netip.Addr {
	out := make([]netip.Addr, 0, len(e.users))
	for a, vips := range e.users {
		for _, vip := range vips {
			if b, _ := e.services[vip].backend(a); b.mac == nil {
				out = append(out, a)
				break
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// byName finds a service by name or by VIP (198.18.1.100:80/tcp).
func (e *engine) byName(ref string) (*service, bool) {
	if vip, err := loader.ParseVIP(ref); err == nil {
		s, ok := e.services[vip]
		return s, ok
	}
	for _, s := range e.services {
		if s.name == ref {
			return s, true
		}
	}
	return nil, false
}

// sortedServices returns the services in VIP order.
func (e *engine) sortedServices() []*service {
	out := make([]*service, 0, len(e.services))
	for _, s := range e.services {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *service) int { return compareVIP(a.vip, b.vip) })
	return out
}

func sameService(a, b controlplane.Service) bool {
	if a.VIP != b.VIP || a.Config != b.Config || a.Scheduler != b.Scheduler || len(a.Backends) != len(b.Backends) {
		return false
	}
	for i := range a.Backends {
		x, y := a.Backends[i], b.Backends[i]
		if x.Addr != y.Addr || x.Weight != y.Weight || x.State != y.State || !bytes.Equal(x.MAC, y.MAC) {
			return false
		}
	}
	return true
}

func compareVIP(a, b loader.VIP) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Port, b.Port); c != 0 {
		return c
	}
	return cmp.Compare(a.Proto, b.Proto)
}

func isZeroMAC(m net.HardwareAddr) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}
