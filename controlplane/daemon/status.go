package daemon

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/health"
	"github.com/xdplb/xdplb/controlplane/metrics"
	"github.com/xdplb/xdplb/loader"
	"github.com/xdplb/xdplb/vrrp"
)

// serviceView is one service as the loop sees it, copied out so the
// maps can be read without holding up the loop.
type serviceView struct {
	svc     *service
	want    controlplane.Service
	why     map[netip.Addr]string
	index   uint32
	indexed bool
	failed  error
}

// view is the loop's state, copied out.
type view struct {
	services []serviceView
	hops     map[netip.Addr]hop
	admin    map[bkey]string
	origin   map[bkey]string
	checks   map[string]health.Status
	targets  map[bkey]string // backend -> health target ID
	cfgFile  string
	loaded   time.Time
	reload   *api.ReloadStatus
	att      Attachment
	mapsGen  uint64
	vrrp     *vrrpRunner
}

// snapshot copies the loop's state; it runs in the loop.
func (d *Daemon) snapshot() view {
	v := view{
		hops:    make(map[netip.Addr]hop, len(d.eng.hops)),
		admin:   map[bkey]string{},
		origin:  map[bkey]string{},
		targets: map[bkey]string{},
		cfgFile: d.opts.ConfigPath,
		loaded:  d.cfgLoaded,
		att:     d.att,
		mapsGen: d.eng.vipGen,
		vrrp:    d.vrrp,
	}
	if d.lastReload != nil {
		r := *d.lastReload
		v.reload = &r
	}
	for a, h := range d.eng.hops {
		v.hops[a] = *h
	}
	for _, s := range d.eng.sortedServices() {
		want, why := d.eng.desired(s)
		idx, ok := d.eng.index[s.vip]
		v.services = append(v.services, serviceView{svc: s, want: want, why: why, index: idx, indexed: ok, failed: d.eng.failed[s.vip]})
		for _, b := range s.backends {
			k := bkey{s.vip, b.addr}
			v.admin[k], v.origin[k] = b.admin, b.origin
		}
	}
	for id, t := range *d.targets.Load() {
		v.targets[t.key] = id
	}
	return v
}

// Status reports the services, their backends with health, weights and
// states as the data plane holds them, flow-table use and BPF memory.
func (d *Daemon) Status(ctx context.Context) (api.Status, error) {
	st, _, err := d.status(ctx)
	return st, err
}

// status is Status, also returning the counters it read, so the metrics
// need not read every map a second time.
func (d *Daemon) status(ctx context.Context) (api.Status, loader.Stats, error) {
	var v view
	if err := d.do(ctx, func() { v = d.snapshot() }); err != nil {
		return api.Status{}, loader.Stats{}, err
	}
	v.checks = map[string]health.Status{}
	for _, st := range d.mon.Statuses() {
		v.checks[st.ID] = st
	}
	inMaps, stats, err := d.readMaps()
	if err != nil {
		return api.Status{}, loader.Stats{}, err
	}
	st := api.Status{
		Interface:    v.att.Interface,
		Mode:         v.att.Mode,
		PinDir:       v.att.PinDir,
		Adopted:      v.att.Adopted,
		Started:      d.started,
		ConfigFile:   v.cfgFile,
		ConfigLoaded: v.loaded,
		LastReload:   v.reload,
		Services:     []api.Service{},
	}
	st.VRRP, st.VRRPLinks = v.vrrp.status()
	for _, sv := range v.services {
		s := sv.svc
		out := api.Service{
			Name:        s.name,
			VIP:         s.vip.String(),
			Forwarding:  s.fwd.String(),
			Scheduler:   s.sched.String(),
			Origin:      s.origin,
			HealthCheck: string(s.check.Type),
			Backends:    []api.Backend{},
		}
		if s.sched == controlplane.SchedulerSourceHash {
			out.PersistencePrefix = s.prefix
		}
		if sv.indexed {
			c := stats.VIPs[sv.index]
			out.Packets, out.Bytes = c.Packets, c.Bytes
		}
		draining := 0
		for _, wb := range sv.want.Backends {
			k := bkey{s.vip, wb.Addr}
			b := api.Backend{
				Address: wb.Addr.String(),
				Weight:  wb.Weight,
				State:   wb.State.String(),
				Reason:  sv.why[wb.Addr],
				Admin:   v.admin[k],
				Origin:  v.origin[k],
				Health:  "unchecked",
			}
			if lb, ok := inMaps[mapKey{sv.index, wb.Addr}]; ok && sv.indexed {
				b.ID, b.State, b.Weight = lb.ID, lb.State.String(), lb.Weight
				c := stats.Backends[lb.ID]
				b.Packets, b.Bytes = c.Packets, c.Bytes
				if lb.State == loader.StateActive && lb.Weight > 0 {
					out.ActiveBackends++
				}
				if lb.State == loader.StateDraining {
					draining++
				}
			}
			if wb.MAC != nil {
				b.MAC = wb.MAC.String()
			}
			if h, ok := v.hops[wb.Addr]; ok && h.nextHop.IsValid() {
				b.NextHop = h.nextHop.String()
			}
			if id, ok := v.targets[k]; ok {
				if hs, ok := v.checks[id]; ok {
					b.Health = hs.State.String()
					b.HealthSince = hs.Since
					if hs.LastErr != nil {
						b.LastCheckError = hs.LastErr.Error()
					}
				}
			}
			out.Backends = append(out.Backends, b)
		}
		switch {
		case sv.failed != nil:
			out.Dataplane = "not fully programmed (retrying): " + sv.failed.Error()
		case !sv.indexed:
			out.Dataplane = "not programmed yet"
		case out.ActiveBackends > 0:
			out.Dataplane = fmt.Sprintf("forwarding new flows to %d of %d backends", out.ActiveBackends, len(out.Backends))
		default:
			out.Dataplane = "no backend takes new flows: " + starvedAction(draining)
			st.Notes = append(st.Notes, fmt.Sprintf("service %s (%s): %s", s.name, out.VIP, out.Dataplane))
		}
		st.Services = append(st.Services, out)
	}
	for a, h := range v.hops {
		if h.mac == nil && h.err != nil {
			st.Notes = append(st.Notes, fmt.Sprintf("backend %v: no next-hop MAC: %v", a, h.err))
		}
	}
	slices.Sort(st.Notes)

	var flows uint64
	if err := d.dp.Flows(func(loader.Flow) bool { flows++; return true }); err != nil {
		return api.Status{}, loader.Stats{}, fmt.Errorf("count flows: %w", err)
	}
	st.FlowTable = api.FlowTable{Entries: flows, Capacity: uint64(d.dp.Options().MaxFlows)}
	infos, err := d.mapInfos(v.mapsGen)
	if err != nil {
		return api.Status{}, loader.Stats{}, fmt.Errorf("read map sizes: %w", err)
	}
	for _, mi := range infos {
		st.BPFMemory.Maps = append(st.BPFMemory.Maps, api.MapMemory{Name: mi.Name, Type: mi.Type, MaxEntries: mi.MaxEntries, Bytes: mi.Memlock})
		st.BPFMemory.TotalBytes += mi.Memlock
	}
	return st, stats, nil
}

// mapInfos returns the maps' sizes, read again only when the set of maps
// has changed (gen): with a table per VIP, reading them all takes a
// system call per map, too slow for every scrape.
func (d *Daemon) mapInfos(gen uint64) ([]loader.MapInfo, error) {
	d.infoMu.Lock()
	defer d.infoMu.Unlock()
	if d.infos != nil && d.infosGen == gen {
		return d.infos, nil
	}
	infos, err := d.dp.MapInfos()
	if err != nil {
		return nil, err
	}
	d.infos, d.infosGen = infos, gen
	return infos, nil
}

// mapKey names a backend slot by its VIP index and address.
type mapKey struct {
	index uint32
	addr  netip.Addr
}

// readMaps reads the backend slots and the counters.
func (d *Daemon) readMaps() (map[mapKey]loader.Backend, loader.Stats, error) {
	all, err := d.dp.Backends()
	if err != nil {
		return nil, loader.Stats{}, fmt.Errorf("read backends: %w", err)
	}
	byKey := make(map[mapKey]loader.Backend, len(all))
	for _, b := range all {
		byKey[mapKey{b.VIPIndex, b.Addr}] = b
	}
	stats, err := d.dp.Stats()
	if err != nil {
		return nil, loader.Stats{}, fmt.Errorf("read counters: %w", err)
	}
	return byKey, stats, nil
}

// metricsSnapshot is the metrics Source: the same reads as Status,
// without the per-backend detail.
func (d *Daemon) metricsSnapshot() (metrics.Snapshot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, stats, err := d.status(ctx)
	if err != nil {
		return metrics.Snapshot{}, err
	}
	snap := metrics.Snapshot{
		Reasons:      make(map[string]uint64, len(stats.Reasons)),
		FlowEvents:   make(map[string]uint64, len(stats.Events)),
		FlowEntries:  st.FlowTable.Entries,
		FlowCapacity: st.FlowTable.Capacity,
		Memlock:      map[string]uint64{},
	}
	for r, n := range stats.Reasons {
		snap.Reasons[r.String()] = n
	}
	for e, n := range stats.Events {
		snap.FlowEvents[e.String()] = n
	}
	for _, m := range st.BPFMemory.Maps {
		// The Maglev tables are one map per VIP: one series for all.
		name := m.Name
		if i := strings.IndexByte(name, '['); i > 0 {
			name = name[:i] + "_tables"
		}
		snap.Memlock[name] += m.Bytes
	}
	for _, s := range st.Services {
		ms := metrics.Service{Name: s.Name, VIP: s.VIP, ActiveBackends: s.ActiveBackends, Packets: s.Packets, Bytes: s.Bytes}
		for _, b := range s.Backends {
			ms.Backends = append(ms.Backends, metrics.Backend{
				Address: b.Address, State: b.State, Healthy: b.Health != health.Down.String(),
				Weight: b.Weight, Packets: b.Packets, Bytes: b.Bytes,
			})
		}
		snap.Services = append(snap.Services, ms)
	}
	for _, in := range st.VRRP {
		snap.VRRP = append(snap.VRRP, metrics.VRRPInstance{
			Name: in.Name, Interface: in.Interface, VRID: in.VRID, State: strings.ToLower(in.State),
			Priority: in.EffectivePriority, AdvertsSent: in.Counters.AdvertsSent,
			AdvertsReceived: in.Counters.AdvertsReceived, Transitions: in.Counters.Transitions,
			Drops: everyReason(in.Counters.Drops),
		})
	}
	for _, l := range st.VRRPLinks {
		snap.VRRPLinks = append(snap.VRRPLinks, metrics.VRRPLink{Interface: l.Interface, Drops: everyReason(l.Drops)})
	}
	return snap, nil
}

// everyReason returns drops with a zero for every VRRP drop reason not
// in it, so that each reason's series exists before its first drop.
func everyReason(drops map[string]uint64) map[string]uint64 {
	rs := vrrp.Reasons()
	out := make(map[string]uint64, len(rs))
	for _, r := range rs {
		out[r.String()] = 0
	}
	maps.Copy(out, drops)
	return out
}
