package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/controlplane/health"
	"github.com/xdplb/xdplb/controlplane/metrics"
	"github.com/xdplb/xdplb/controlplane/neigh"
	"github.com/xdplb/xdplb/loader"
)

// Defaults of Options.
const (
	// DefaultRefreshInterval is how often every next hop is resolved
	// again, besides the neighbour-table changes the daemon follows.
	DefaultRefreshInterval = 5 * time.Minute
	// DefaultRetryInterval is how often next hops that could not be
	// resolved, and services that could not be written, are retried.
	DefaultRetryInterval = 5 * time.Second
	// lockTimeout bounds the wait for a CLI command that holds the pin
	// directory's lock.
	lockTimeout = 10 * time.Second
)

// Options configure a Daemon. Only ConfigPath is required; the hooks
// exist for tests and benchmarks, which run the daemon against a fake or
// unattached data plane, in a network namespace, with a fake clock.
type Options struct {
	// ConfigPath is the configuration file, read at start and on Reload.
	ConfigPath string
	// Log receives transitions: attach and adoption, backends up and down,
	// reloads. Default: discard.
	Log *slog.Logger
	// LogLevel, when set, follows the configuration's log_level, on
	// reload too.
	LogLevel *slog.LevelVar
	// DetachOnExit detaches the program and removes its pins when Run
	// returns. By default the data plane keeps forwarding on the last
	// state the daemon wrote.
	DetachOnExit bool
	// Build describes the binary, for xdplb_build_info.
	Build metrics.BuildInfo

	// Open attaches the balancer as the configuration says, or adopts
	// the one pinned by an earlier run. Default: loader.Attach.
	Open func(cfg *config.Config, inNS func(func() error) error, log *slog.Logger) (Dataplane, Attachment, error)
	// Resolver finds next-hop MACs. Default: a *neigh.Resolver.
	Resolver Resolver
	// WatchNeighbours follows the neighbour table of the interface.
	// Default: a netlink subscription. A nil channel disables it.
	WatchNeighbours func(ctx context.Context, iface string) (<-chan NeighUpdate, error)
	// InNS runs fn in the network namespace of the director's interface:
	// attaching, resolving, health checks, the metrics listener. Default:
	// in the caller's.
	InNS func(fn func() error) error
	// Clock drives the health checks and the daemon's timers. Default:
	// the system clock.
	Clock health.Clock
	// RefreshInterval and RetryInterval default to DefaultRefreshInterval
	// and DefaultRetryInterval.
	RefreshInterval, RetryInterval time.Duration
	// HealthSeed spreads the first health checks (see health.Options.Seed).
	HealthSeed uint64
}

// Attachment describes the data plane Open returned.
type Attachment struct {
	Interface string
	Mode      string // native or generic
	PinDir    string // empty when nothing is pinned (tests)
	Adopted   bool
	// Close releases the data plane; with detach it also detaches the
	// program and removes its pins.
	Close func(detach bool) error
}

// Daemon is a running xdplb daemon. Its exported methods are safe for
// concurrent use; they hand their work to the daemon's loop, which owns
// every piece of state and is the only writer of the maps.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics.Metrics
	started time.Time

	reqs    chan func()
	trans   chan health.Transition
	ready   chan struct{}
	stopped chan struct{}
	running atomic.Bool

	// targets maps health target IDs to backends and labels; replaced
	// whole, read by the monitor's goroutines.
	targets atomic.Pointer[map[string]target]

	// infos caches the maps' sizes for Status (see mapInfos).
	infoMu   sync.Mutex
	infos    []loader.MapInfo
	infosGen uint64

	// Owned by the loop.
	cfg        *config.Config
	cfgLoaded  time.Time
	rt         *runtimeState
	store      store
	dp         Dataplane
	att        Attachment
	eng        *engine
	mon        *health.Monitor
	checkers   map[string]health.Checker
	lastReload *api.ReloadStatus
	vrrp       *vrrpRunner
	idle       []func()
	resolving  bool
	hopResults chan map[netip.Addr]*hop
	metricsSrv *metricsServer
}

// New returns a daemon that Run starts.
func New(opts Options) (*Daemon, error) {
	if opts.ConfigPath == "" {
		return nil, errors.New("new daemon: no configuration file")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Resolver == nil {
		opts.Resolver = &neigh.Resolver{Log: opts.Log}
	}
	if opts.InNS == nil {
		opts.InNS = func(fn func() error) error { return fn() }
	}
	if opts.Clock == nil {
		opts.Clock = health.SystemClock()
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if opts.Open == nil {
		opts.Open = attach
	}
	if opts.WatchNeighbours == nil {
		inNS, log := opts.InNS, opts.Log
		opts.WatchNeighbours = func(ctx context.Context, iface string) (<-chan NeighUpdate, error) {
			return watchNeighbours(ctx, iface, inNS, log)
		}
	}
	d := &Daemon{
		opts:       opts,
		log:        opts.Log,
		reqs:       make(chan func()),
		trans:      make(chan health.Transition, 4096),
		ready:      make(chan struct{}),
		stopped:    make(chan struct{}),
		hopResults: make(chan map[netip.Addr]*hop, 1),
	}
	d.metrics = metrics.New(metrics.SourceFunc(d.metricsSnapshot), opts.Build)
	empty := map[string]target{}
	d.targets.Store(&empty)
	return d, nil
}

// Ready is closed once the daemon has programmed the data plane and
// serves its API.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Metrics returns the daemon's Prometheus registry.
func (d *Daemon) Metrics() *metrics.Metrics { return d.metrics }

// attach is the default Open: loader.Attach with the director's settings.
func attach(cfg *config.Config, inNS func(func() error) error, log *slog.Logger) (Dataplane, Attachment, error) {
	dir := cfg.Director
	mode, err := loader.ParseMode(string(dir.XDPMode))
	if err != nil {
		return nil, Attachment{}, err
	}
	opts := loader.Options{
		MaxVIPs: dir.MaxVIPs, MaxBackends: dir.MaxBackends, MaxFlows: dir.MaxFlows,
		RingSize: dir.RingSize, HashSeed: dir.HashSeed,
	}
	var (
		b    *loader.Balancer
		info loader.AttachInfo
	)
	err = inNS(func() error {
		var err error
		b, info, err = loader.Attach(dir.Interface, mode, opts, dir.PinRoot, log)
		return err
	})
	if err != nil {
		return nil, Attachment{}, err
	}
	att := Attachment{
		Interface: dir.Interface,
		Mode:      info.Mode.String(),
		PinDir:    info.PinDir,
		Adopted:   info.Adopted,
		Close: func(detach bool) error {
			err := b.Close()
			if detach {
				err = errors.Join(err, inNS(func() error { return loader.Detach(dir.Interface, dir.PinRoot) }))
			}
			return err
		},
	}
	return b, att, nil
}

// Run starts the daemon and serves until ctx is done. It attaches the
// balancer or adopts the pinned one (without a forwarding gap), programs
// the services, starts the health checks, the neighbour watch, the API
// and the metrics endpoint, and then applies health changes, neighbour
// changes, reloads and API requests as they come. When it returns the
// data plane keeps forwarding on the last state written, unless
// DetachOnExit.
func (d *Daemon) Run(ctx context.Context) (err error) {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("run daemon: already running")
	}
	defer close(d.stopped)
	d.started = time.Now()

	cfg, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		return err
	}
	chk, err := checkers(cfg)
	if err != nil {
		return err
	}
	if err := checkCapacity(cfg, nil); err != nil {
		return err
	}
	d.setLogLevel(cfg)
	d.store = store{dir: cfg.Director.StateDir}
	rt, err := d.store.load()
	if err != nil {
		return err
	}

	// Claim the API socket first: a second daemon stops here, before it
	// touches the data plane.
	ln, err := api.Listen(cfg.Director.APISocket)
	if err != nil {
		return err
	}
	defer ln.Close()
	msrv, err := d.listenMetrics(cfg.Director.MetricsListen)
	if err != nil {
		return err
	}
	d.metricsSrv = msrv
	defer func() { d.metricsSrv.stop() }()

	dp, att, err := d.opts.Open(cfg, d.opts.InNS, d.log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := att.Close(d.opts.DetachOnExit); cerr != nil {
			err = errors.Join(err, fmt.Errorf("release data plane: %w", cerr))
		}
		if d.opts.DetachOnExit {
			d.log.Info("detached: the interface no longer balances", "iface", att.Interface)
		} else {
			d.log.Info("stopped; the data plane keeps forwarding on the last state written", "iface", att.Interface, "pin_dir", att.PinDir)
		}
	}()
	if att.Adopted {
		d.log.Info("adopted the pinned data plane", "iface", att.Interface, "mode", att.Mode, "pin_dir", att.PinDir)
	} else {
		d.log.Info("attached", "iface", att.Interface, "mode", att.Mode, "pin_dir", att.PinDir)
	}
	if att.PinDir != "" {
		lctx, cancel := context.WithTimeout(ctx, lockTimeout)
		unlock, err := controlplane.Lock(lctx, att.PinDir)
		cancel()
		if err != nil {
			return fmt.Errorf("take the maps of %s: %w (is another xdplb daemon running for it?)", att.Interface, err)
		}
		defer unlock()
	}
	d.dp, d.att = dp, att
	if err := d.setTunnelSource(cfg); err != nil {
		return err
	}

	eng := newEngine(dp, cfg.Director.Interface, d.log)
	d.eng = eng
	inMaps, err := eng.adopt()
	if err != nil {
		return err
	}
	pruned, dropped := pruneRuntime(cfg, rt)
	for _, msg := range dropped {
		d.log.Warn(msg)
	}
	if !pruned.equal(rt) {
		if err := d.store.save(pruned); err != nil {
			return err
		}
	}
	svcs, err := buildServices(cfg, chk, pruned)
	if err != nil {
		return err
	}
	d.cfg, d.cfgLoaded, d.rt, d.checkers = cfg, time.Now(), pruned, chk
	eng.setServices(svcs)
	init := eng.initialStates(inMaps)

	for a, h := range resolveAll(ctx, d.opts.Resolver, d.opts.InNS, cfg.Director.Interface, eng.addrs()) {
		if h.err != nil {
			d.log.Warn("cannot resolve next hop", "backend", a.String(), "err", h.err)
		}
		eng.setHop(a, mergeHop(eng.hops[a], h))
	}
	eng.applyAll()
	d.metrics.ObserveStart(d.cfgLoaded)

	d.mon = health.NewMonitor(health.Options{
		Clock:        d.opts.Clock,
		Logger:       d.log,
		Seed:         d.opts.HealthSeed,
		OnTransition: func(tr health.Transition) { d.onTransition(ctx, tr) },
		Observe:      d.observe,
	})
	defer d.mon.Stop()
	specs, targets := healthSpecs(eng.sortedServices(), d.opts.InNS, init)
	d.targets.Store(&targets)
	if err := d.mon.Apply(specs); err != nil {
		return fmt.Errorf("start health checks: %w", err)
	}

	eng.onStarved = func(name string, starved bool) { d.vrrp.setService(name, !starved) }
	if d.vrrp, err = startVRRP(ctx, cfg, d.opts.InNS, d.log, d.serviceUp); err != nil {
		return err
	}
	defer func() {
		if verr := d.vrrp.stop(); verr != nil {
			err = errors.Join(err, verr)
		}
	}()

	neighCh, err := d.opts.WatchNeighbours(ctx, cfg.Director.Interface)
	if err != nil {
		d.log.Warn("cannot follow the neighbour table; next hops are refreshed periodically only", "iface", cfg.Director.Interface, "err", err)
	}

	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	apiDone := make(chan error, 1)
	go func() { apiDone <- api.Serve(apiCtx, ln, d, d.log) }()
	defer func() {
		stopAPI()
		if aerr := <-apiDone; aerr != nil {
			err = errors.Join(err, aerr)
		}
	}()
	d.metricsSrv.start()

	d.log.Info("running", "iface", att.Interface, "services", len(svcs), "config", d.opts.ConfigPath)
	close(d.ready)
	return d.loop(ctx, neighCh)
}

// loop applies events until ctx is done. Between events it writes the
// dirty VIPs one at a time, so a health transition never waits for more
// than one service's write.
func (d *Daemon) loop(ctx context.Context, neighCh <-chan NeighUpdate) error {
	retry := d.opts.Clock.NewTimer(d.opts.RetryInterval)
	refresh := d.opts.Clock.NewTimer(d.opts.RefreshInterval)
	defer func() { retry.Stop(); refresh.Stop() }()
	for {
		block := !d.eng.pending()
		if !block {
			select {
			case <-ctx.Done():
				return nil
			default:
			}
		}
		// With writes pending, take an event only if one is waiting;
		// otherwise write the next dirty VIP.
		var event bool
		if block {
			event = true
			select {
			case <-ctx.Done():
				return nil
			case tr := <-d.trans:
				d.transition(tr)
			case fn := <-d.reqs:
				fn()
			case u, ok := <-neighCh:
				if !ok {
					neighCh = nil
					d.log.Warn("neighbour watch ended; next hops are refreshed periodically only")
					continue
				}
				d.eng.neighChanged(u)
			case res := <-d.hopResults:
				d.hopsResolved(res)
			case <-retry.C():
				d.eng.retryFailed()
				d.resolveMissing(ctx, false)
				retry = d.opts.Clock.NewTimer(d.opts.RetryInterval)
			case <-refresh.C():
				d.resolveMissing(ctx, true)
				refresh = d.opts.Clock.NewTimer(d.opts.RefreshInterval)
			}
		} else {
			select {
			case tr := <-d.trans:
				d.transition(tr)
			case fn := <-d.reqs:
				fn()
			case u, ok := <-neighCh:
				if ok {
					d.eng.neighChanged(u)
				} else {
					neighCh = nil
				}
			case res := <-d.hopResults:
				d.hopsResolved(res)
			default:
				event = false
			}
		}
		if !event {
			d.eng.applyNext()
		}
		if !d.eng.pending() {
			d.eng.refreshIDs()
			idle := d.idle
			d.idle = nil
			for _, fn := range idle {
				fn()
			}
		}
	}
}

// do runs fn in the loop and waits for it.
func (d *Daemon) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case d.reqs <- func() { defer close(done); fn() }:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.stopped:
		return errors.New("the daemon is stopping")
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// whenIdle runs fn in the loop once no VIP waits to be written.
func (d *Daemon) whenIdle(fn func()) {
	if !d.eng.pending() {
		fn()
		return
	}
	d.idle = append(d.idle, fn)
}

// onTransition hands a health transition to the loop.
func (d *Daemon) onTransition(ctx context.Context, tr health.Transition) {
	if t, ok := (*d.targets.Load())[tr.ID]; ok {
		d.metrics.ObserveTransition(t.service, tr.To == health.Up)
	}
	select {
	case d.trans <- tr:
	case <-ctx.Done():
	}
}

// transition applies a health transition in the loop.
func (d *Daemon) transition(tr health.Transition) {
	t, ok := (*d.targets.Load())[tr.ID]
	if !ok {
		return
	}
	// The monitor has logged the transition; the engine logs what it
	// writes.
	if d.eng.setHealth(t.key, tr.To == health.Up) {
		d.metrics.ObserveDecisionToMap(d.opts.Clock.Now().Sub(tr.At))
	}
}

// serviceUp reports whether the service called name has a backend that
// takes new flows, for VRRP's track_services.
func (d *Daemon) serviceUp(name string) bool {
	for vip, s := range d.eng.services {
		if s.name == name {
			_, applied := d.eng.applied[vip]
			return applied && !d.eng.starved[vip]
		}
	}
	return false
}

// observe records a completed check in the metrics.
func (d *Daemon) observe(r health.Result) {
	t, ok := (*d.targets.Load())[r.ID]
	if !ok {
		return
	}
	d.metrics.ObserveCheck(t.service, t.checkType, r.Duration, string(r.Reason))
}

// resolveMissing starts, in the background, the resolution of the next
// hops that are unknown (all of them when all is set), unless one is
// running.
func (d *Daemon) resolveMissing(ctx context.Context, all bool) {
	if d.resolving {
		return
	}
	var addrs []netip.Addr
	for _, a := range d.eng.addrs() {
		if h := d.eng.hops[a]; all || h == nil || h.mac == nil || h.source == "maps" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return
	}
	d.resolving = true
	r, inNS, iface := d.opts.Resolver, d.opts.InNS, d.cfg.Director.Interface
	go func() {
		res := resolveAll(ctx, r, inNS, iface, addrs)
		select {
		case d.hopResults <- res:
		case <-ctx.Done():
		}
	}()
}

// hopsResolved applies a background resolution.
func (d *Daemon) hopsResolved(res map[netip.Addr]*hop) {
	d.resolving = false
	for a, h := range res {
		old := d.eng.hops[a]
		if h.err != nil && (old == nil || old.err == nil) {
			d.log.Warn("cannot resolve next hop", "backend", a.String(), "err", h.err)
		}
		if h.err == nil && old != nil && old.err != nil {
			d.log.Info("next hop resolved", "backend", a.String(), "mac", h.mac.String())
		}
		d.eng.setHop(a, mergeHop(old, h))
	}
}

// setTunnelSource writes the configured source_address into the data
// plane's config, keeping the interface's MAC and MTU that Attach wrote.
func (d *Daemon) setTunnelSource(cfg *config.Config) error {
	src := cfg.Director.SourceAddress
	if !src.IsValid() {
		return nil
	}
	c, err := d.dp.Config()
	if err != nil {
		return fmt.Errorf("read data-plane config: %w", err)
	}
	if c.TunSource == src {
		return nil
	}
	c.TunSource = src
	if err := d.dp.SetConfig(c); err != nil {
		return fmt.Errorf("set tunnel source %v: %w", src, err)
	}
	d.log.Info("tunnel source set", "source_address", src.String())
	return nil
}

func (d *Daemon) setLogLevel(cfg *config.Config) {
	if d.opts.LogLevel != nil {
		d.opts.LogLevel.Set(cfg.Director.LogLevel.Level())
	}
}

// metricsServer serves /metrics on metrics_listen.
type metricsServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// listenMetrics opens the metrics listener (in the director's network
// namespace); "" disables metrics.
func (d *Daemon) listenMetrics(addr string) (*metricsServer, error) {
	if addr == "" {
		return nil, nil
	}
	var ln net.Listener
	err := d.opts.InNS(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", d.metrics.Handler())
	return &metricsServer{
		ln:   ln,
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
	}, nil
}

func (m *metricsServer) start() {
	if m == nil {
		return
	}
	go func() {
		defer close(m.done)
		m.srv.Serve(m.ln)
	}()
}

func (m *metricsServer) addr() string {
	if m == nil {
		return ""
	}
	return m.ln.Addr().String()
}

func (m *metricsServer) stop() {
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m.srv.Shutdown(ctx)
	m.ln.Close()
	select {
	case <-m.done:
	default:
		// Never started.
	}
}
