package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/controlplane/daemon"
	"github.com/xdplb/xdplb/controlplane/neigh"
	"github.com/xdplb/xdplb/loader"
)

// controlPlaneSection measures the daemon: how soon a health-check
// decision reaches the BPF maps, how long a reload of a large
// configuration takes, and how much memory the daemon holds at that size.
//
// The daemon runs in this process (package daemon), against balancer maps
// loaded but not attached, with its health checks in a network namespace
// of the benchmark's own where the backends' addresses are local (an
// AnyIP route on lo) and answered by listeners the benchmark opens and
// closes. Next hops come from a table: this section does not measure ARP.
type controlPlaneSection struct {
	// sizes overrides cpDefault (tests).
	sizes *cpSizes
}

func (controlPlaneSection) Name() string { return "controlplane" }

const controlPlaneMethod = "The daemon (package daemon) in this process, on balancer maps loaded but not attached " +
	"(ring size %d), health checks run in a namespace of the benchmark where the backends' addresses are local. " +
	"check-to-map: one service of 10 backends, tcp checks every 100ms with rise and fall 1; in each round a " +
	"backend's listener is closed. ms: from the check that decided 'down' to its slot written in the map, as the " +
	"daemon records it in xdplb_health_decision_to_map_seconds (each round's observation is the growth of the " +
	"histogram's sum; rounds where another backend also changed are left out); p90_ms its 90th percentile. " +
	"polled: the same from outside, the monitor's transition time to a spinning reader seeing the slot change, " +
	"which adds the reader's own scheduling delay on a busy machine. table_ms: to the swapped Maglev table without " +
	"the backend (polled every 2ms). Target: median < 1 ms (met: 1 when it is). " +
	"start: from Run to ready, programming %d services x %d backends with tcp checks every 10s. reload: Reload " +
	"of a rewritten file, until the maps hold it: unchanged; one service's weights changed; %d services' weights " +
	"changed; %d services removed and %d added. scrape: one Prometheus gather. rss: the process's resident memory " +
	"after start-up and the reloads (Go runtime and the benchmark's own harness included; baseline is the same " +
	"before the daemon started), hwm its peak. Medians over the rounds; start, scrape and rss once."

// cpSizes are the sizes the section measures at.
type cpSizes struct {
	services, backends int    // the large configuration
	changed, addRemove int    // services changed, and removed and added, by reloads
	latencyRounds      int    // check-to-map rounds
	ringSize           uint32 // Maglev table size
}

// cpDefault are the sizes `make bench` reports.
var cpDefault = cpSizes{services: 1000, backends: 10, changed: 100, addRemove: 10, latencyRounds: 25, ringSize: loader.DefaultRingSize}

func (c controlPlaneSection) Run(ctx context.Context, cfg Config, log *slog.Logger) (SectionReport, error) {
	z := cpDefault
	if c.sizes != nil {
		z = *c.sizes
	}
	rep := SectionReport{
		Name:   "controlplane",
		Method: fmt.Sprintf(controlPlaneMethod, z.ringSize, z.services, z.backends, z.changed, z.addRemove, z.addRemove),
		Columns: []Column{
			{Key: "p90_ms", Header: "p90 ms"},
			{Key: "polled_ms", Header: "polled ms"},
			{Key: "polled_p90_ms", Header: "polled p90"},
			{Key: "table_ms", Header: "table ms"},
			{Key: "target_ms", Header: "target ms"},
			{Key: "met", Header: "met"},
			{Key: "baseline_mib", Header: "baseline MiB"},
			{Key: "hwm_mib", Header: "hwm MiB"},
		},
	}
	ns, err := newCPNamespace(ctx)
	if err != nil {
		return rep, err
	}
	defer ns.Close()

	// The large configuration first, so the resident memory is the
	// daemon's and not left over from the other case.
	if cfg.selected("reload") || cfg.selected("start") || cfg.selected("rss") {
		res, err := benchReload(ctx, ns, z, cfg, log)
		if err != nil {
			return rep, fmt.Errorf("reload: %w", err)
		}
		rep.Results = append(rep.Results, res...)
	}
	if cfg.selected("check-to-map") {
		res, err := benchCheckToMap(ctx, ns, z, log)
		if err != nil {
			return rep, fmt.Errorf("check-to-map: %w", err)
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// cpNamespace is a network namespace where every address of 198.18.0.0/16
// is local, so health checks reach listeners the benchmark controls and no
// packet leaves it.
type cpNamespace struct {
	name string
}

func newCPNamespace(ctx context.Context) (*cpNamespace, error) {
	var rnd [3]byte
	rand.Read(rnd[:])
	ns := &cpNamespace{name: "xdplb-cp-" + hex.EncodeToString(rnd[:])}
	steps := [][]string{
		{"netns", "add", ns.name},
		{"-n", ns.name, "link", "set", "lo", "up"},
		{"-n", ns.name, "route", "add", "local", "198.18.0.0/16", "dev", "lo"},
	}
	for _, s := range steps {
		if out, err := ip(ctx, s...); err != nil {
			ns.Close()
			return nil, fmt.Errorf("namespace: ip %s: %w: %s", strings.Join(s, " "), err, out)
		}
	}
	return ns, nil
}

func (n *cpNamespace) do(fn func() error) error { return inNS(n.name, fn) }

func (n *cpNamespace) Close() error {
	if !netnsExists(n.name) {
		return nil
	}
	_, err := ip(context.Background(), "netns", "del", n.name)
	return err
}

// listen opens a TCP listener in the namespace that accepts and closes.
func (n *cpNamespace) listen(addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln, nil
}

// tableResolver gives every backend a MAC derived from its address.
type tableResolver struct{}

func (tableResolver) Resolve(_ context.Context, _ string, a netip.Addr) (neigh.Result, error) {
	b := a.As4()
	return neigh.Result{MAC: net.HardwareAddr{2, 0, b[0], b[1], b[2], b[3]}, NextHop: a, Source: neigh.FromNeighbourTable}, nil
}

// cpDaemon is a daemon started by the benchmark.
type cpDaemon struct {
	d      *daemon.Daemon
	b      *loader.Balancer
	dir    string
	config string
	cancel context.CancelFunc
	done   chan error
}

// startDaemon writes body as the configuration and runs a daemon on it
// until ready.
func startDaemon(ctx context.Context, ns *cpNamespace, dir, body string) (*cpDaemon, time.Duration, error) {
	c := &cpDaemon{dir: dir, config: filepath.Join(dir, "xdplb.yaml"), done: make(chan error, 1)}
	if err := os.WriteFile(c.config, []byte(body), 0o600); err != nil {
		return nil, 0, err
	}
	open := func(cfg *config.Config, _ func(func() error) error, _ *slog.Logger) (daemon.Dataplane, daemon.Attachment, error) {
		opts := loader.Options{
			MaxVIPs: cfg.Director.MaxVIPs, MaxBackends: cfg.Director.MaxBackends, MaxFlows: cfg.Director.MaxFlows,
			RingSize: cfg.Director.RingSize, HashSeed: cfg.Director.HashSeed,
		}
		b, err := loader.Load(opts)
		if err != nil {
			return nil, daemon.Attachment{}, err
		}
		c.b = b
		return b, daemon.Attachment{Interface: cfg.Director.Interface, Mode: "loaded", Close: func(bool) error { return b.Close() }}, nil
	}
	d, err := daemon.New(daemon.Options{
		ConfigPath: c.config,
		Open:       open,
		Resolver:   tableResolver{},
		WatchNeighbours: func(context.Context, string) (<-chan daemon.NeighUpdate, error) {
			return nil, nil
		},
		InNS: ns.do,
	})
	if err != nil {
		return nil, 0, err
	}
	c.d = d
	rctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	start := time.Now()
	go func() { c.done <- d.Run(rctx) }()
	select {
	case <-d.Ready():
		return c, time.Since(start), nil
	case err := <-c.done:
		cancel()
		return nil, 0, fmt.Errorf("daemon: %w", err)
	case <-ctx.Done():
		cancel()
		<-c.done
		return nil, 0, ctx.Err()
	}
}

func (c *cpDaemon) stop() error {
	c.cancel()
	return <-c.done
}

func (c *cpDaemon) reload(ctx context.Context, body string) (time.Duration, error) {
	if err := os.WriteFile(c.config, []byte(body), 0o600); err != nil {
		return 0, err
	}
	start := time.Now()
	_, err := c.d.Reload(ctx)
	return time.Since(start), err
}

func cpDirector(dir string, ringSize uint32) string {
	return fmt.Sprintf(`director:
  interface: eth0
  source_address: 198.18.255.1
  api_socket: %s
  state_dir: %s
  max_vips: 1024
  max_backends: 16384
  ring_size: %d
`, filepath.Join(dir, "xdplb.sock"), filepath.Join(dir, "state"), ringSize)
}

// bigConfig writes services first..first+n-1 with 10 backends each;
// weight(i) gives service i's backends' weight.
func bigConfig(dir string, z cpSizes, first int, weight func(i int) int) string {
	n := z.services
	var b strings.Builder
	b.WriteString(cpDirector(dir, z.ringSize))
	b.WriteString("services:\n")
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, "  - name: svc-%04d\n    vip: 198.19.%d.%d\n    port: 80\n    forwarding: dr\n    backends:\n", i, i/250, i%250+1)
		for j := range z.backends {
			fmt.Fprintf(&b, "      - address: 198.18.%d.%d\n        weight: %d\n", i/25, (i%25)*10+j+1, weight(i))
		}
		b.WriteString("    health_check:\n      type: tcp\n      interval: 10s\n")
	}
	return b.String()
}

func benchReload(ctx context.Context, ns *cpNamespace, z cpSizes, cfg Config, log *slog.Logger) ([]Result, error) {
	ln, err := ns.listen("0.0.0.0:80")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	dir, err := os.MkdirTemp("", "xdplb-bench-cp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	runtime.GC()
	debug.FreeOSMemory()
	baseline, _ := readRSS()

	one := func(int) int { return 1 }
	log.Info("starting the daemon", "services", z.services, "backends", z.services*z.backends)
	d, took, err := startDaemon(ctx, ns, dir, bigConfig(dir, z, 0, one))
	if err != nil {
		return nil, err
	}
	defer d.stop()
	results := []Result{newResult(fmt.Sprintf("start/%dx%d", z.services, z.backends), "ms", []float64{ms(took)})}
	log.Info("daemon ready", "took", took)

	rounds := max(1, min(cfg.Rounds, 5))
	cases := []struct {
		name   string
		bodies func(round int) (string, string) // the changed file and the one restoring the start
	}{
		{"unchanged", func(int) (string, string) {
			b := bigConfig(dir, z, 0, one)
			return b, b
		}},
		{"one-changed", func(r int) (string, string) {
			return bigConfig(dir, z, 0, func(i int) int { return 1 + btoi(i == r) }), bigConfig(dir, z, 0, one)
		}},
		{fmt.Sprintf("%d-changed", z.changed), func(r int) (string, string) {
			return bigConfig(dir, z, 0, func(i int) int { return 1 + btoi(i%(z.services/z.changed) == r%(z.services/z.changed)) }),
				bigConfig(dir, z, 0, one)
		}},
		{fmt.Sprintf("%d-removed-%d-added", z.addRemove, z.addRemove), func(int) (string, string) {
			return bigConfig(dir, z, z.addRemove, one), bigConfig(dir, z, 0, one)
		}},
	}
	for _, c := range cases {
		name := fmt.Sprintf("reload/%dx%d/%s", z.services, z.backends, c.name)
		var samples []float64
		for r := range rounds {
			changed, restore := c.bodies(r)
			took, err := d.reload(ctx, changed)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			samples = append(samples, ms(took))
			if _, err := d.reload(ctx, restore); err != nil {
				return nil, fmt.Errorf("%s: restore: %w", name, err)
			}
		}
		log.Info("reload case", "case", name, "median_ms", median(samples))
		results = append(results, newResult(name, "ms", samples))
	}

	// The daemon holds what it reports.
	st, err := d.d.Status(ctx)
	if err != nil {
		return nil, err
	}
	active := 0
	for _, s := range st.Services {
		active += s.ActiveBackends
	}
	if len(st.Services) != z.services || active != z.services*z.backends {
		return nil, fmt.Errorf("after the reloads: %d services, %d active backends; want %d and %d", len(st.Services), active, z.services, z.services*z.backends)
	}
	checked := []string{fmt.Sprintf("services=%d", len(st.Services)), fmt.Sprintf("active_backends=%d", active)}
	for i := range results {
		results[i].Checked = checked
	}

	start := time.Now()
	if _, err := d.d.Metrics().Registry().Gather(); err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	results = append(results, newResult(fmt.Sprintf("scrape/%dx%d", z.services, z.backends), "ms", []float64{ms(time.Since(start))}))

	runtime.GC()
	debug.FreeOSMemory()
	rss, hwm := readRSS()
	r := newResult(fmt.Sprintf("rss/%dx%d", z.services, z.backends), "MiB", []float64{rss})
	r.Metrics = map[string]float64{"baseline_mib": baseline, "hwm_mib": hwm, "goroutines": float64(runtime.NumGoroutine())}
	results = append(results, r)
	return results, nil
}

func benchCheckToMap(ctx context.Context, ns *cpNamespace, z cpSizes, log *slog.Logger) (Result, error) {
	dir, err := os.MkdirTemp("", "xdplb-bench-cp-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	var b strings.Builder
	b.WriteString(cpDirector(dir, z.ringSize))
	b.WriteString("services:\n  - name: web\n    vip: 198.19.255.100\n    port: 80\n    forwarding: dr\n    backends:\n")
	listeners := map[string]net.Listener{}
	var mu sync.Mutex
	for j := range z.backends {
		a := fmt.Sprintf("198.18.200.%d", 21+j)
		fmt.Fprintf(&b, "      - address: %s\n", a)
		ln, err := ns.listen(a + ":8080")
		if err != nil {
			return Result{}, err
		}
		listeners[a] = ln
	}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, ln := range listeners {
			ln.Close()
		}
	}()
	b.WriteString("    health_check:\n      type: tcp\n      port: 8080\n      interval: 100ms\n      timeout: 90ms\n      rise: 1\n      fall: 1\n")
	d, _, err := startDaemon(ctx, ns, dir, b.String())
	if err != nil {
		return Result{}, err
	}
	defer d.stop()

	vip := loader.VIP{Addr: netip.MustParseAddr("198.19.255.100"), Port: 80, Proto: loader.TCP}
	entry, err := d.b.LookupVIP(vip)
	if err != nil {
		return Result{}, err
	}
	var inside, polled, table []float64
	skipped := 0
	for round := range z.latencyRounds {
		addr := fmt.Sprintf("198.18.200.%d", 21+round%z.backends)
		// On a busy machine a check may time out and take a backend
		// down by itself (fall 1): start each round from a backend that
		// is active.
		var be api.Backend
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			st, err := d.d.Status(ctx)
			if err != nil {
				return Result{}, err
			}
			if be = findBackend(st, addr); be.State == "active" {
				break
			}
			if time.Now().After(deadline) {
				return Result{}, fmt.Errorf("round %d: backend %s is %s, not active, before the test", round, addr, be.State)
			}
		}
		count0, sum0, err := decisionHistogram(d.d)
		if err != nil {
			return Result{}, err
		}
		mu.Lock()
		listeners[addr].Close()
		mu.Unlock()
		var written time.Time
		for deadline := time.Now().Add(5 * time.Second); ; {
			cur, err := d.b.Backend(be.ID)
			if err != nil {
				return Result{}, err
			}
			if cur.State != loader.StateActive {
				written = time.Now()
				break
			}
			if time.Now().After(deadline) {
				return Result{}, fmt.Errorf("round %d: backend %s still active 5s after its listener closed", round, addr)
			}
			// A sleep here would measure the timer's slack (about a
			// millisecond): spin, yielding to the daemon's goroutines.
			runtime.Gosched()
		}
		var swapped time.Time
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			ring, err := d.b.Ring(entry.Index)
			if err != nil {
				return Result{}, err
			}
			if !slices.Contains(ring, be.ID) {
				swapped = time.Now()
				break
			}
			if time.Now().After(deadline) {
				return Result{}, fmt.Errorf("round %d: table still names %s after 5s", round, addr)
			}
		}
		st, err := d.d.Status(ctx)
		if err != nil {
			return Result{}, err
		}
		decided := findBackend(st, addr).HealthSince
		if decided.IsZero() || decided.After(written) {
			return Result{}, fmt.Errorf("round %d: decision at %v, map written at %v", round, decided, written)
		}
		polled = append(polled, ms(written.Sub(decided)))
		table = append(table, ms(swapped.Sub(decided)))
		// The daemon records the same path in its histogram; with one
		// new observation, the sum's growth is that observation.
		count1, sum1, err := decisionHistogram(d.d)
		if err != nil {
			return Result{}, err
		}
		if count1 == count0+1 {
			inside = append(inside, 1000*(sum1-sum0))
		} else {
			skipped++
		}

		// Back up before the next round.
		ln, err := ns.listen(addr + ":8080")
		if err != nil {
			return Result{}, err
		}
		mu.Lock()
		listeners[addr] = ln
		mu.Unlock()
		// Wait for the table that names it again, so the daemon is idle
		// when the next round starts.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			ring, err := d.b.Ring(entry.Index)
			if err != nil {
				return Result{}, err
			}
			if slices.Contains(ring, be.ID) {
				break
			}
			if time.Now().After(deadline) {
				return Result{}, fmt.Errorf("round %d: backend %s not back in the table after 5s", round, addr)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(inside) == 0 {
		return Result{}, fmt.Errorf("no round with exactly one decision recorded (%d rounds skipped)", skipped)
	}
	r := newResult(fmt.Sprintf("check-to-map/%d", z.backends), "ms", inside)
	r.Metrics = map[string]float64{
		"p90_ms":        percentile(inside, 0.9),
		"polled_ms":     median(polled),
		"polled_p90_ms": percentile(polled, 0.9),
		"table_ms":      median(table),
		"target_ms":     1,
		"met":           float64(btoi(median(inside) < 1)),
	}
	r.Checked = []string{fmt.Sprintf("flips=%d", len(polled)), fmt.Sprintf("rounds_with_other_decisions=%d", skipped)}
	log.Info("check-to-map", "median_ms", r.Value, "p90_ms", r.Metrics["p90_ms"], "polled_ms", r.Metrics["polled_ms"], "table_ms", median(table))
	if r.Value >= 1 {
		log.Warn("check-to-map misses its 1 ms target", "median_ms", r.Value)
	}
	return r, nil
}

// percentile returns the p-quantile of xs (nearest rank).
func percentile(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// decisionHistogram reads the daemon's decision-to-map histogram.
func decisionHistogram(d *daemon.Daemon) (count uint64, sum float64, err error) {
	fams, err := d.Metrics().Registry().Gather()
	if err != nil {
		return 0, 0, err
	}
	for _, f := range fams {
		if f.GetName() == "xdplb_health_decision_to_map_seconds" && len(f.GetMetric()) == 1 {
			h := f.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum(), nil
		}
	}
	return 0, 0, errors.New("no xdplb_health_decision_to_map_seconds histogram")
}

func findBackend(st api.Status, addr string) api.Backend {
	for _, s := range st.Services {
		for _, b := range s.Backends {
			if b.Address == addr {
				return b
			}
		}
	}
	return api.Backend{}
}

// readRSS returns the process's resident memory and its peak, in MiB.
func readRSS() (rss, hwm float64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = kb / 1024
		case "VmHWM":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
