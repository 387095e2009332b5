package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/controlplane/health"
	"github.com/xdplb/xdplb/loader"
)

// liveDirectorFields are the director settings a reload applies; every
// other one is fixed when the daemon starts (the interface, the sockets
// and directories) or when the maps are created (their sizes, the ring
// size, the hash seed).
var liveDirectorFields = []string{"log_level", "source_address", "metrics_listen"}

// refused is a configuration a reload did not apply. It matches
// api.ErrConfig, and the *config.Error that lists the problems.
type refused struct{ err error }

func (r refused) Error() string {
	return "configuration refused, nothing changed; the daemon keeps the previous one:\n" + r.err.Error()
}

func (r refused) Unwrap() []error { return []error{r.err, api.ErrConfig} }

// problem wraps one located problem as a *config.Error.
func problem(cfg *config.Config, path, format string, args ...any) error {
	return &config.Error{Problems: []config.Problem{cfg.Problemf(path, format, args...)}}
}

// checkDirector refuses changes to director settings that need a restart.
func checkDirector(old, new *config.Config) error {
	var probs []config.Problem
	for _, f := range config.Diff(old, new).Director {
		if slices.Contains(liveDirectorFields, f) {
			continue
		}
		why := "takes effect only when the daemon starts: restart it (xdplb run) to change it"
		switch f {
		case "max_vips", "max_backends", "max_flows", "ring_size", "hash_seed":
			why = "is fixed when the maps are created: change it with a restart with --detach-on-exit first, which drops every established flow"
		}
		probs = append(probs, new.Problemf("director."+f, "changed, but %s; this reload is refused so that the file and the running daemon agree", why))
	}
	if len(probs) > 0 {
		return &config.Error{Problems: probs}
	}
	return nil
}

// checkCapacity refuses services that do not fit the maps: more VIPs than
// max_vips, or more backends than max_backends has slots for (slot 0 is
// never used). svcs nil counts the configuration alone.
func checkCapacity(cfg *config.Config, svcs map[loader.VIP]*service) error {
	vips, backends := len(cfg.Services), 0
	for _, s := range cfg.Services {
		backends += len(s.Backends)
	}
	if svcs != nil {
		vips, backends = len(svcs), 0
		for _, s := range svcs {
			backends += len(s.backends)
		}
	}
	var probs []config.Problem
	if uint32(vips) > cfg.Director.MaxVIPs {
		probs = append(probs, cfg.Problemf("director.max_vips", "%d services do not fit in max_vips %d", vips, cfg.Director.MaxVIPs))
	}
	if cfg.Director.MaxBackends > 0 && uint32(backends) > cfg.Director.MaxBackends-1 {
		probs = append(probs, cfg.Problemf("director.max_backends", "%d backends do not fit in max_backends %d (%d usable slots)",
			backends, cfg.Director.MaxBackends, cfg.Director.MaxBackends-1))
	}
	if len(probs) > 0 {
		return &config.Error{Problems: probs}
	}
	return nil
}

// Reload re-reads the configuration file and applies the difference:
// services added, removed or changed, health checks, and the director
// settings that may change live. Established flows stay on their
// backends. A file with any problem, or one that changes a setting fixed
// at start, is refused whole and changes nothing; the error wraps
// api.ErrConfig and lists every problem as file:line:column: field:
// message. Reload returns once the data plane holds the new
// configuration.
func (d *Daemon) Reload(ctx context.Context) (api.ReloadResult, error) {
	start := time.Now()
	cfg, err := config.Load(d.opts.ConfigPath)
	var chk map[string]health.Checker
	if err == nil {
		chk, err = checkers(cfg)
	}
	if err != nil {
		return api.ReloadResult{}, d.refuse(ctx, err)
	}
	// Resolve the next hops of new backends here, not in the loop,
	// which must not wait for ARP.
	var known map[netip.Addr]bool
	if err := d.do(ctx, func() { known = d.knownHops() }); err != nil {
		return api.ReloadResult{}, err
	}
	var fresh []netip.Addr
	for _, s := range cfg.Services {
		for _, b := range s.Backends {
			if !known[b.Address] {
				known[b.Address] = true
				fresh = append(fresh, b.Address)
			}
		}
	}
	hops := resolveAll(ctx, d.opts.Resolver, d.opts.InNS, cfg.Director.Interface, fresh)

	type outcome struct {
		res api.ReloadResult
		err error
	}
	out := make(chan outcome, 1)
	err = d.do(ctx, func() {
		changes, err := d.applyConfig(ctx, cfg, chk, hops)
		if err != nil {
			out <- outcome{err: err}
			return
		}
		d.whenIdle(func() {
			var failed []string
			for vip, ferr := range d.eng.failed {
				failed = append(failed, fmt.Sprintf("%v: %v", vip, ferr))
			}
			slices.Sort(failed)
			res := api.ReloadResult{Changes: changes}
			d.log.Info("configuration reloaded", "changes", changes, "took", time.Since(start).Round(time.Microsecond).String(), "failed", len(failed))
			if len(failed) > 0 {
				res.Changes += "; not yet programmed (retrying): " + strings.Join(failed, "; ")
			}
			out <- outcome{res: res}
		})
	})
	if err != nil {
		return api.ReloadResult{}, err
	}
	select {
	case o := <-out:
		if o.err != nil {
			return api.ReloadResult{}, d.refuse(ctx, o.err)
		}
		return o.res, nil
	case <-ctx.Done():
		return api.ReloadResult{}, ctx.Err()
	}
}

// refuse records a refused reload.
func (d *Daemon) refuse(ctx context.Context, err error) error {
	r := refused{err}
	d.log.Error("reload refused; the previous configuration stays in force", "config", d.opts.ConfigPath, "err", err.Error())
	d.metrics.ObserveReload(false, time.Now())
	d.do(ctx, func() {
		d.lastReload = &api.ReloadStatus{At: time.Now(), OK: false, Error: err.Error()}
	})
	return r
}

// knownHops lists the addresses whose next hop is known.
func (d *Daemon) knownHops() map[netip.Addr]bool {
	out := make(map[netip.Addr]bool, len(d.eng.hops))
	for a, h := range d.eng.hops {
		if h.mac != nil {
			out[a] = true
		}
	}
	return out
}

// applyConfig makes cfg the configuration in force, in the loop. Every
// check that can refuse it runs before anything changes.
func (d *Daemon) applyConfig(ctx context.Context, cfg *config.Config, chk map[string]health.Checker, hops map[netip.Addr]*hop) (string, error) {
	changes := config.Diff(d.cfg, cfg)
	if err := checkDirector(d.cfg, cfg); err != nil {
		return "", err
	}
	rt, dropped := pruneRuntime(cfg, d.rt)
	svcs, err := buildServices(cfg, chk, rt)
	if err != nil {
		return "", err
	}
	if err := checkCapacity(cfg, svcs); err != nil {
		return "", err
	}
	msrv := d.metricsSrv
	if cfg.Director.MetricsListen != d.cfg.Director.MetricsListen {
		msrv, err = d.listenMetrics(cfg.Director.MetricsListen)
		if err != nil {
			return "", problem(cfg, "director.metrics_listen", "%v", err)
		}
	}
	fail := func(err error) (string, error) {
		if msrv != d.metricsSrv {
			msrv.stop()
		}
		return "", err
	}
	ordered := sortedOf(svcs)
	specs, targets := healthSpecs(ordered, d.opts.InNS, nil)
	if !rt.equal(d.rt) {
		if err := d.store.save(rt); err != nil {
			return fail(err)
		}
	}
	if err := d.mon.Apply(specs); err != nil {
		return fail(fmt.Errorf("health checks: %w", err))
	}

	// Committed from here on.
	for _, msg := range dropped {
		d.log.Warn(msg)
	}
	d.cfg, d.cfgLoaded, d.rt, d.checkers = cfg, time.Now(), rt, chk
	d.targets.Store(&targets)
	for a, h := range hops {
		d.eng.setHop(a, mergeHop(d.eng.hops[a], h))
	}
	d.eng.setServices(svcs)
	d.syncHealth(targets)
	d.setLogLevel(cfg)
	if err := d.setTunnelSource(cfg); err != nil {
		d.log.Error("cannot apply source_address", "err", err)
	}
	if msrv != d.metricsSrv {
		d.metricsSrv.stop()
		d.metricsSrv = msrv
		d.metricsSrv.start()
		d.log.Info("metrics endpoint moved", "metrics_listen", cfg.Director.MetricsListen)
	}
	if setChanged(changes.Instances) || setChanged(changes.SyncGroups) {
		d.restartVRRP(ctx, cfg)
	}
	summary := changes.String()
	if changes.Empty() {
		summary = "no change"
	}
	d.lastReload = &api.ReloadStatus{At: d.cfgLoaded, OK: true, Changes: summary}
	d.metrics.ObserveReload(true, d.cfgLoaded)
	d.resolveMissing(ctx, false)
	return summary, nil
}

// restartVRRP replaces the VRRP instances with those of cfg. The old ones
// stop gracefully (a master sends priority 0, so a backup takes over at
// once) and the new ones start as a restarted director's would.
func (d *Daemon) restartVRRP(ctx context.Context, cfg *config.Config) {
	d.log.Warn("the vrrp section changed: restarting the VRRP instances; a master hands over while they restart")
	if err := d.vrrp.stop(); err != nil {
		d.log.Error("stop VRRP", "err", err)
	}
	v, err := startVRRP(ctx, cfg, d.opts.InNS, d.log, d.serviceUp)
	if err != nil {
		d.log.Error("VRRP not running after the reload", "err", err)
	}
	d.vrrp = v
}

// syncHealth copies the monitor's verdicts into the engine, for targets
// whose backend changed service or that the monitor knew before.
func (d *Daemon) syncHealth(targets map[string]target) {
	for _, st := range d.mon.Statuses() {
		if t, ok := targets[st.ID]; ok {
			d.eng.setHealth(t.key, st.State == health.Up)
		}
	}
}

func setChanged(c config.SetChanges) bool {
	return len(c.Added)+len(c.Removed)+len(c.Changed) > 0
}

func sortedOf(svcs map[loader.VIP]*service) []*service {
	out := make([]*service, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *service) int { return compareVIP(a.vip, b.vip) })
	return out
}

// Check runs on a parsed configuration the checks the daemon adds to the
// parser's when it starts or reloads: every health check can be built
// (templates, patterns) and the services fit the maps. The error is a
// *config.Error located in the file. `xdplb config check` runs it, so
// that a file it accepts is one the daemon accepts.
func Check(cfg *config.Config) error {
	if _, err := checkers(cfg); err != nil {
		return err
	}
	return checkCapacity(cfg, nil)
}
