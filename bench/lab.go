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
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/xdplb/xdplb/controlplane/lab"
)

// labSection measures HTTP through the lab's VIPs against the same load
// sent straight to the backends: what an operator sees end to end.
type labSection struct{}

func (labSection) Name() string { return "lab" }

const labMethod = "The lab of `xdplb lab` (client, VRRP pair of directors, three backends weighted 1,1,2, " +
	"each in a namespace on one bridge) under a prefix, run directory and pin root of the benchmark's own, " +
	"with an xdplb binary built for the run. From the client namespace, %d workers send GET / back to back, " +
	"keep-alive off, so every request is a new TCP connection (a new flow for the director), dialled on " +
	"threads that stay in the client namespace: %s per target " +
	"and round, cut into %d slices of %s interleaved with the other targets' slices in an order rotated at " +
	"every slice. Targets: the dr VIP, the tun VIP, straight to the backends in turn by weight (%s: " +
	"direct/spread, the floor: the same servers with the same shares, no director), and straight to backend " +
	"%s alone (direct/%[6]s: one busy server process answers more cheaply than three). %s %d rounds. rps: " +
	"requests answered per second, median over rounds; p50/p90/p99 ms: latency percentiles over every " +
	"request of every round; x floor: the median over rounds of rps / direct/spread rps of the same round " +
	"(drift between rounds cancels), target >= %.1f (met: 1 when it is; the JSON holds the lowest and " +
	"highest round as ratio_min and ratio_max); x %[6]s: the same against direct/%[6]s. CPU columns, in " +
	"CPUs busy during the load: busy: the whole machine, other tenants included; client: the benchmark " +
	"process (the HTTP client); backends: their server processes (director_cpus in the JSON: the " +
	"directors' daemons); softirq: every CPU's softirq time, where the director's XDP program runs. Any " +
	"failed request, or a VIP or the spread not answered by every backend, fails the section."

const labPinnedMethod = "The benchmark process (the client) runs on CPU 0 and every process of the lab " +
	"(backends, directors) on the other CPUs, for every target alike; softirq work runs on the CPU of the " +
	"sender, so the director's work on the client's requests shares CPU 0 with the client."

// Load settings of the lab section.
const (
	labWorkers     = 8
	labDuration    = 2 * time.Second // per target and round
	labSlices      = 20              // interleaved slices a round's duration is cut into
	labMaxRounds   = 11
	labTargetRatio = 0.9
	labReqTimeout  = 5 * time.Second
	labReady       = 60 * time.Second
)

// labTarget is what the load runs against.
type labTarget struct {
	name string
	// urls are asked in turn; each worker starts at its own place.
	urls []string
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
	cpu       labCPU // CPUs busy during the load, by who
}

func (labSection) Run(ctx context.Context, cfg Config, log *slog.Logger) (rep SectionReport, err error) {
	rounds := min(max(cfg.Rounds, 1), labMaxRounds)
	topo := lab.DefaultTopology()
	direct := topo.Backends[0]
	spread, spreadNames := labSpread(topo)
	pinned := runtime.NumCPU() >= 2
	pinning := "No pinning: the machine has one CPU."
	if pinned {
		pinning = labPinnedMethod
	}
	rep = SectionReport{
		Name: "lab",
		Method: fmt.Sprintf(labMethod, labWorkers, labDuration, labSlices, labDuration/labSlices, strings.Join(spreadNames, ", "), direct.Name,
			pinning, rounds, labTargetRatio),
		Columns: []Column{
			{Key: "p50_ms", Header: "p50 ms"},
			{Key: "p90_ms", Header: "p90 ms"},
			{Key: "p99_ms", Header: "p99 ms"},
			{Key: "requests", Header: "requests"},
			{Key: "busy_cpus", Header: "busy CPUs"},
			{Key: "client_cpus", Header: "client"},
			{Key: "backend_cpus", Header: "backends"},
			{Key: "softirq_cpus", Header: "softirq"},
			{Key: "ratio_" + direct.Name, Header: "x " + direct.Name},
			{Key: "met", Header: "met"},
		},
	}

	l, down, err := upBenchLab(ctx, topo, log)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, down()) }()
	procs, err := findLabProcs(l)
	if err != nil {
		return rep, err
	}
	if pinned {
		restore, err := procs.pin()
		if err != nil {
			return rep, err
		}
		defer func() { err = errors.Join(err, restore()) }()
	}

	const floor = 0 // index of direct/spread in targets
	be1 := 1        // index of direct/<first backend>
	targets := []labTarget{
		{name: "direct/spread (floor)", urls: spread},
		{name: "direct/" + direct.Name, urls: []string{fmt.Sprintf("http://%s/", direct.Addr)}, only: direct.Name},
	}
	for _, svc := range topo.Services {
		targets = append(targets, labTarget{name: string(svc.Forwarding) + "/" + svc.Name, urls: []string{svc.URL("/")}})
	}
	dialer, err := newNSDialer(l.Client, labWorkers)
	if err != nil {
		return rep, err
	}
	defer dialer.Close()
	client := dialer.HTTPClient(labReqTimeout)
	defer client.CloseIdleConnections()

	// Warm up every path (ARP, flow tables, page cache) before measuring.
	for _, tg := range targets {
		w := runLabLoad(ctx, client, tg.urls, labWorkers, 500*time.Millisecond)
		if err := w.check(tg, topo); err != nil {
			return rep, fmt.Errorf("lab warm-up %s: %w", tg.name, err)
		}
	}

	loads := make([][]labLoad, len(targets))
	for r := range rounds {
		round := make([]labLoad, len(targets))
		for slice := range labSlices {
			for k := range targets {
				i := (k + r*labSlices + slice) % len(targets)
				tg := targets[i]
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				c0, err := procs.sample()
				if err != nil {
					return rep, err
				}
				ld := runLabLoad(ctx, client, tg.urls, labWorkers, labDuration/labSlices)
				c1, err := procs.sample()
				if err != nil {
					return rep, err
				}
				ld.cpu = c1.since(c0)
				round[i].add(ld)
			}
		}
		for i, tg := range targets {
			ld := round[i]
			if err := ld.check(tg, topo); err != nil {
				return rep, fmt.Errorf("lab %s round %d: %w", tg.name, r+1, err)
			}
			log.Info("lab load", "target", tg.name, "round", r+1, "rps", ld.rps(),
				"busy_cpus", ld.cpu.busy, "client_cpus", ld.cpu.client, "backend_cpus", ld.cpu.backends,
				"director_cpus", ld.cpu.directors, "softirq_cpus", ld.cpu.softirq)
			loads[i] = append(loads[i], ld)
		}
	}

	for i, tg := range targets {
		res := summariseLab(tg, loads[i])
		ratio := pairedRatio(loads[i], loads[floor])
		res.RatioToFloor = &ratio
		res.Metrics["ratio_"+direct.Name] = pairedRatio(loads[i], loads[be1])
		lo, hi := ratioRange(loads[i], loads[floor])
		res.Metrics["ratio_min"], res.Metrics["ratio_max"] = lo, hi
		if i != floor && tg.only == "" {
			res.Metrics["met"] = float64(btoi(ratio >= labTargetRatio))
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// labSpread returns the URLs of the direct/spread target, each backend as
// often as its weight, interleaved, and the backends' names in that order.
func labSpread(topo lab.Topology) (urls, names []string) {
	left := make([]uint32, len(topo.Backends))
	var total uint32
	for i, b := range topo.Backends {
		left[i] = b.Weight
		total += b.Weight
	}
	// Round-robin over the backends with weight left, so that the
	// heavier ones are spread over the cycle rather than bunched.
	for len(urls) < int(total) {
		for i, b := range topo.Backends {
			if left[i] > 0 {
				left[i]--
				urls = append(urls, fmt.Sprintf("http://%s/", b.Addr))
				names = append(names, b.Name)
			}
		}
	}
	return urls, names
}

// roundRatios returns, for every round where b answered, a's rps over b's
// rps in that round.
func roundRatios(a, b []labLoad) []float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if b[i].rps() > 0 {
			rs = append(rs, a[i].rps()/b[i].rps())
		}
	}
	return rs
}

// ratioRange returns the lowest and highest ratio over rounds of a's rps
// over b's rps in the same round.
func ratioRange(a, b []labLoad) (lo, hi float64) {
	rs := roundRatios(a, b)
	if len(rs) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(rs), slices.Max(rs)
}

// pairedRatio returns the median over rounds of a's rps over b's rps in
// the same round.
func pairedRatio(a, b []labLoad) float64 {
	return median(roundRatios(a, b))
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
	name, err := randomName("xb")
	if err != nil {
		return "", fmt.Errorf("lab prefix: %w", err)
	}
	return name + "-", nil
}

// randomName returns tag followed by four random lower-case letters and
// digits, a name for namespaces and links no other run uses.
func randomName(tag string) (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return tag + string(b), nil
}

// runLabLoad sends GET from workers goroutines back to back for d and
// records every answer and failure. Each worker goes through urls in turn,
// starting at its own place in the list.
func runLabLoad(ctx context.Context, c *http.Client, urls []string, workers int, d time.Duration) labLoad {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu  sync.Mutex
		out = labLoad{backends: map[string]int{}}
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Go(func() {
			next := w
			var lat []time.Duration
			seen := map[string]int{}
			var errs []string
			nerr := 0
			for time.Now().Before(deadline) && ctx.Err() == nil {
				url := urls[next%len(urls)]
				next++
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
	return out
}

func (ld labLoad) rps() float64 { return float64(ld.answered) / ld.took.Seconds() }

// add adds o, run after ld, to ld, as if one run.
func (ld *labLoad) add(o labLoad) {
	ld.cpu = ld.cpu.weigh(ld.took.Seconds(), o.cpu, o.took.Seconds())
	ld.latencies = append(ld.latencies, o.latencies...)
	ld.firstErrs = append(ld.firstErrs, o.firstErrs...)
	if ld.backends == nil {
		ld.backends = map[string]int{}
	}
	for k, v := range o.backends {
		ld.backends[k] += v
	}
	ld.answered += o.answered
	ld.errors += o.errors
	ld.took += o.took
}

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
		cpus     = map[string][]float64{}
		all      []time.Duration
		answered int
		backends = map[string]int{}
	)
	for _, ld := range loads {
		rps = append(rps, ld.rps())
		for k, v := range ld.cpu.metrics() {
			cpus[k] = append(cpus[k], v)
		}
		all = append(all, ld.latencies...)
		answered += ld.answered
		for k, v := range ld.backends {
			backends[k] += v
		}
	}
	slices.Sort(all)
	res := newResult(tg.name, "rps", rps)
	res.Metrics = map[string]float64{
		"p50_ms":   percentileMS(all, 0.50),
		"p90_ms":   percentileMS(all, 0.90),
		"p99_ms":   percentileMS(all, 0.99),
		"requests": float64(answered),
		"errors":   0, // check fails the section on any error
	}
	for k, v := range cpus {
		res.Metrics[k] = median(v)
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
