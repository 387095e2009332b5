package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/xdplb/xdplb/controlplane/lab"
)

// labSection measures HTTP through the lab's VIPs against the same load
// sent straight to one backend: what an operator sees end to end.
type labSection struct{}

func (labSection) Name() string { return "lab" }

const labMethod = "The lab of `xdplb lab` (client, VRRP pair of directors, three backends weighted 1,1,2, each " +
	"in a namespace on one bridge) under a prefix, run directory and pin root of the benchmark's own, with an " +
	"xdplb binary built for the run. From the client namespace, %d workers send GET / back to back for %s, " +
	"keep-alive off, so every request is a new TCP connection (a new flow for the director). Targets: the dr " +
	"VIP, the tun VIP, and straight to backend %s's address (direct, the floor); the three are interleaved, " +
	"%d rounds each. rps: requests answered per second, median over rounds; p50/p90/p99 ms: latency " +
	"percentiles over every request of every round; x floor: rps / direct rps, target >= %.1f (met: 1 when " +
	"it is). busy CPUs: the whole machine's non-idle CPUs during the load (client, directors and backends " +
	"share it). Any failed request, or a VIP not answered by every backend, fails the section."

// Load settings of the lab section.
const (
	labWorkers     = 8
	labDuration    = 4 * time.Second
	labMaxRounds   = 3
	labTargetRatio = 0.9
	labReqTimeout  = 5 * time.Second
	labReady       = 60 * time.Second
)

// labTarget is one URL the load runs against.
type labTarget struct {
	name string
	url  string
	// only, when set, is the one backend allowed to answer; else every
	// backend of the topology must answer.
	only string
}

// labLoad is what one bounded load run saw.
type labLoad struct {
	answered  int
	errors    int
	firstErrs []string
	latencies []time.Duration
	backends  map[string]int
	took      time.Duration
	busyCPUs  float64
}

func (labSection) Run(ctx context.Context, cfg Config, log *slog.Logger) (rep SectionReport, err error) {
	rounds := min(max(cfg.Rounds, 1), labMaxRounds)
	topo := lab.DefaultTopology()
	direct := topo.Backends[0]
	rep = SectionReport{
		Name:   "lab",
		Method: fmt.Sprintf(labMethod, labWorkers, labDuration, direct.Name, rounds, labTargetRatio),
		Columns: []Column{
			{Key: "p50_ms", Header: "p50 ms"},
			{Key: "p90_ms", Header: "p90 ms"},
			{Key: "p99_ms", Header: "p99 ms"},
			{Key: "requests", Header: "requests"},
			{Key: "errors", Header: "errors"},
			{Key: "busy_cpus", Header: "busy CPUs"},
			{Key: "met", Header: "met"},
		},
	}

	l, down, err := upBenchLab(ctx, topo, log)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, down()) }()

	targets := []labTarget{{
		name: "direct/" + direct.Name,
		url:  fmt.Sprintf("http://%s/", direct.Addr),
		only: direct.Name,
	}}
	for _, svc := range topo.Services {
		targets = append(targets, labTarget{name: string(svc.Forwarding) + "/" + svc.Name, url: svc.URL("/")})
	}
	client := l.HTTPClient(false, labReqTimeout)
	defer client.CloseIdleConnections()

	// Warm up every path (ARP, flow tables, page cache) before measuring.
	for _, tg := range targets {
		w := runLabLoad(ctx, client, tg.url, labWorkers, 500*time.Millisecond)
		if err := w.check(tg, topo); err != nil {
			return rep, fmt.Errorf("lab warm-up %s: %w", tg.name, err)
		}
	}

	loads := make([][]labLoad, len(targets))
	for r := range rounds {
		for i, tg := range targets {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			ld := runLabLoad(ctx, client, tg.url, labWorkers, labDuration)
			if err := ld.check(tg, topo); err != nil {
				return rep, fmt.Errorf("lab %s round %d: %w", tg.name, r+1, err)
			}
			log.Info("lab load", "target", tg.name, "round", r+1, "rps", ld.rps(), "busy_cpus", ld.busyCPUs)
			loads[i] = append(loads[i], ld)
		}
	}

	var floor float64
	for i, tg := range targets {
		res := summariseLab(tg, loads[i])
		if i == 0 {
			floor = res.Value
		}
		ratio := res.Value / floor
		res.RatioToFloor = &ratio
		if tg.only == "" {
			res.Metrics["met"] = float64(btoi(ratio >= labTargetRatio))
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// upBenchLab builds an xdplb binary for the run, brings up the lab of topo
// under a prefix, run directory and pin root of the benchmark's own, and
// waits until it is ready. down removes every trace of it (binary
// included), whatever happened; call it also when err is not nil.
func upBenchLab(ctx context.Context, topo lab.Topology, log *slog.Logger) (l *lab.Lab, down func() error, err error) {
	var cleanup []func() error
	down = func() error {
		var errs []error
		for i := len(cleanup) - 1; i >= 0; i-- {
			errs = append(errs, cleanup[i]())
		}
		cleanup = nil
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, down())
			down = func() error { return nil }
		}
	}()

	binDir, err := os.MkdirTemp("", "xdplb-bench-bin-")
	if err != nil {
		return nil, down, fmt.Errorf("lab: %w", err)
	}
	cleanup = append(cleanup, func() error { return os.RemoveAll(binDir) })
	bin := filepath.Join(binDir, "xdplb")
	log.Info("building xdplb", "path", bin)
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/xdplb/xdplb/cmd/xdplb").CombinedOutput(); err != nil {
		return nil, down, fmt.Errorf("lab: go build xdplb: %w\n%s", err, out)
	}

	prefix, err := labPrefix()
	if err != nil {
		return nil, down, err
	}
	runDir, err := os.MkdirTemp("", "xdplb-bench-lab-")
	if err != nil {
		return nil, down, fmt.Errorf("lab: %w", err)
	}
	pinParent := "/sys/fs/bpf/xdplb-bench"
	o := lab.Options{
		Prefix:  prefix,
		RunDir:  runDir,
		PinRoot: filepath.Join(pinParent, prefix+"lab"),
		Binary:  bin,
		Log:     log,
	}
	// Down needs no context and removes what a half-built lab left too.
	cleanup = append(cleanup, func() error {
		removed, err := lab.Down(o)
		os.Remove(pinParent) // only when no other run uses it
		log.Info("lab down", "namespaces", len(removed.Namespaces))
		if err != nil {
			return fmt.Errorf("lab down: %w", err)
		}
		return nil
	})
	log.Info("lab up", "prefix", prefix)
	if l, err = lab.Up(ctx, topo, o); err != nil {
		return nil, down, fmt.Errorf("lab up: %w", err)
	}
	if err := l.WaitReady(ctx, labReady); err != nil {
		return nil, down, fmt.Errorf("lab ready: %w", err)
	}
	return l, down, nil
}

// labPrefix returns a namespace prefix no other run uses.
func labPrefix() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("lab prefix: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "xb" + string(b) + "-", nil
}

// runLabLoad sends GET url from workers goroutines back to back for d and
// records every answer and failure.
func runLabLoad(ctx context.Context, c *http.Client, url string, workers int, d time.Duration) labLoad {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu  sync.Mutex
		out = labLoad{backends: map[string]int{}}
		wg  sync.WaitGroup
	)
	cpuBefore, cpuErr := sampleCPU()
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Go(func() {
			var lat []time.Duration
			seen := map[string]int{}
			var errs []string
			nerr := 0
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				name, err := lab.Ask(ctx, c, url)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					nerr++
					if len(errs) < 3 {
						errs = append(errs, err.Error())
					}
					continue
				}
				lat = append(lat, time.Since(t0))
				seen[name]++
			}
			mu.Lock()
			defer mu.Unlock()
			out.answered += len(lat)
			out.latencies = append(out.latencies, lat...)
			out.errors += nerr
			if len(out.firstErrs) < 5 {
				out.firstErrs = append(out.firstErrs, errs...)
			}
			for k, v := range seen {
				out.backends[k] += v
			}
		})
	}
	wg.Wait()
	out.took = time.Since(start)
	if err := ctx.Err(); err != nil {
		out.errors++
		out.firstErrs = append(out.firstErrs, err.Error())
	}
	if cpuAfter, err := sampleCPU(); err == nil && cpuErr == nil {
		_, out.busyCPUs = cpuUse(cpuBefore, cpuAfter, 0)
	}
	return out
}

func (ld labLoad) rps() float64 { return float64(ld.answered) / ld.took.Seconds() }

// check fails a load that lost a request, answered nothing, or was
// answered by the wrong backends.
func (ld labLoad) check(tg labTarget, topo lab.Topology) error {
	if ld.errors > 0 {
		return fmt.Errorf("%d of %d requests failed: %s", ld.errors, ld.errors+ld.answered, strings.Join(ld.firstErrs, "; "))
	}
	if ld.answered == 0 {
		return errors.New("no request answered")
	}
	if tg.only != "" {
		if ld.backends[tg.only] != ld.answered {
			return fmt.Errorf("want every answer from %s, got %v", tg.only, ld.backends)
		}
		return nil
	}
	known := 0
	for _, b := range topo.Backends {
		if ld.backends[b.Name] == 0 {
			return fmt.Errorf("backend %s never answered: %v", b.Name, ld.backends)
		}
		known += ld.backends[b.Name]
	}
	if known != ld.answered {
		return fmt.Errorf("answers from unknown backends: %v", ld.backends)
	}
	return nil
}

// summariseLab turns the rounds of one target into a Result.
func summariseLab(tg labTarget, loads []labLoad) Result {
	var (
		rps      []float64
		busy     []float64
		all      []time.Duration
		answered int
		backends = map[string]int{}
	)
	for _, ld := range loads {
		rps = append(rps, ld.rps())
		busy = append(busy, ld.busyCPUs)
		all = append(all, ld.latencies...)
		answered += ld.answered
		for k, v := range ld.backends {
			backends[k] += v
		}
	}
	slices.Sort(all)
	res := newResult(tg.name, "rps", rps)
	res.Metrics = map[string]float64{
		"p50_ms":    percentileMS(all, 0.50),
		"p90_ms":    percentileMS(all, 0.90),
		"p99_ms":    percentileMS(all, 0.99),
		"requests":  float64(answered),
		"errors":    0, // check fails the section on any error
		"busy_cpus": median(busy),
	}
	names := make([]string, 0, len(backends))
	for k := range backends {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		res.Checked = append(res.Checked, fmt.Sprintf("answers_%s=%d", k, backends[k]))
	}
	return res
}

// percentileMS returns the p-quantile of sorted (nearest rank) in ms.
func percentileMS(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i].Nanoseconds()) / 1e6
}
