package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"

	"github.com/xdplb/xdplb/loader"
)

// testRunSection measures nanoseconds per packet with BPF_PROG_TEST_RUN.
//
// Every figure is taken behind bench_driver (bpf/bench.bpf.c), because
// BPF_PROG_TEST_RUN with repeat > 1 gives each run the previous run's output:
// the balancer's IPIP encapsulation would otherwise time its own output
// being passed, and a new flow would be a flow-table hit from the second
// run on. The driver costs something, the same for every target; it is
// measured by running the driver with an XDP_PASS target on exactly the
// case's input, and subtracted. After every measured run the balancer's
// counters must show that each run did the work (tx_dr or tx_tun, flow_new
// or flow_hit, VIP and backend packets all equal to the run count), or the
// benchmark fails.
type testRunSection struct{}

func (testRunSection) Name() string { return "dataplane" }

const testRunMethod = "ns/packet through BPF_PROG_TEST_RUN. Every run of the balancer is preceded by bench_driver, " +
	"which restores the pristine frame (and for new and est-many rewrites the client address and port) and " +
	"tail-calls it; the kernel reports whole ns per run (truncated), shown + 0.5. " +
	"ns/packet: gross, as measured behind the driver; driver: the driver with an XDP_PASS target on the same input; " +
	"net: gross - driver; standalone: net + a plain XDP_PASS test run, what the program costs as the only program " +
	"of a test run; x floor: standalone over the floor, a plain test run of the MAC swap, measured before and " +
	"after each case (a case is measured up to %d times, when the two differ by more than 15%% or 1 ns). " +
	"Figures are medians over %d rounds of %d runs each; spread is (max-min)/median of gross. " +
	"new: SYN of a never-seen flow with the flow table full, so every insert evicts; est: ACK of one flow; " +
	"est-many: ACKs cycling through %d established flows; pass: ACK to an address that is no VIP. " +
	"After every measured run the balancer's reason, event, VIP and backend counters must equal the run count. " +
	"xcheck: two inputs the balancer treats alike on every run even without the driver (DR established, non-VIP), " +
	"timed by a plain test run; via driver is the driver method's standalone figure for them, which must agree."

// roundSamples collects one figure per round.
type roundSamples struct {
	gross, net, driver, standalone, ratio []float64
	viaDriver                             []float64 // cross-checks: the driver method's standalone
	checked                               []string
	retries                               int // measurements repeated because the floor moved
}

// steady reports whether two floor measurements around a case agree:
// within 15%, or 1 ns, which is the kernel's resolution.
func steady(a, b float64) bool {
	return math.Abs(a-b) <= max(1, 0.15*min(a, b))
}

// add records one round of a figure measured behind the driver (driver >
// 0) or directly, given that round's plain XDP_PASS run p0 and floor.
func (s *roundSamples) add(gross, driver, p0, floor float64) {
	s.gross = append(s.gross, gross)
	alone := gross
	if driver > 0 {
		net := gross - driver
		alone = net + p0
		s.net = append(s.net, net)
		s.driver = append(s.driver, driver)
	}
	s.standalone = append(s.standalone, alone)
	s.ratio = append(s.ratio, alone/floor)
}

// refNames are the reference figures, in report order.
var refNames = []string{
	"ref/mac_swap (floor)", "ref/xdp_drop", "ref/xdp_pass",
	"ref/mac_swap+driver", "ref/xdp_drop+driver", "ref/xdp_pass+driver",
}

func (testRunSection) Run(ctx context.Context, cfg Config, log *slog.Logger) (SectionReport, error) {
	rep := SectionReport{
		Name:   "dataplane",
		Method: fmt.Sprintf(testRunMethod, cfg.Attempts, cfg.Rounds, cfg.Repeat, cfg.Flows),
		Columns: []Column{
			{Key: "driver_ns", Header: "driver"},
			{Key: "net_ns", Header: "net"},
			{Key: "standalone_ns", Header: "standalone"},
			{Key: "driver_method_ns", Header: "via driver"},
			{Key: "retries", Header: "retries"},
		},
	}
	f, err := newFixture(ownMAC)
	if err != nil {
		return rep, err
	}
	defer f.Close()

	target, err := loader.NewBenchDriver(loader.BenchBalancer(f.b))
	if err != nil {
		return rep, err
	}
	defer target.Close()
	refs := map[loader.BenchRef]*loader.BenchDriver{}
	for _, r := range []loader.BenchRef{loader.BenchRefPass, loader.BenchRefDrop, loader.BenchRefMACSwap} {
		d, err := loader.NewBenchDriver(loader.BenchReference(r))
		if err != nil {
			return rep, err
		}
		defer d.Close()
		refs[r] = d
	}
	pass, drop, swap := refs[loader.BenchRefPass], refs[loader.BenchRefDrop], refs[loader.BenchRefMACSwap]

	if err := fillFlows(f, target); err != nil {
		return rep, err
	}
	cases := f.cases(cfg)
	plain := ackFrame(ownMAC, netip.AddrPortFrom(passClient, 40000), nonVIP)
	swapped := bytes.Clone(plain)
	copy(swapped[0:6], plain[6:12])
	copy(swapped[6:12], plain[0:6])

	// ns runs d on frame and checks the last run's verdict (and, when
	// wantOut is set, its output) before returning the time per run.
	ns := func(d *loader.BenchDriver, frame []byte, o loader.BenchOptions, want loader.XDPAction, wantOut []byte) (float64, error) {
		o.Repeat = cfg.Repeat
		res, err := d.Run(frame, o)
		if err != nil {
			return 0, err
		}
		if res.Action != want {
			return 0, fmt.Errorf("%s: last run returned %v, want %v", d.Target(), res.Action, want)
		}
		if wantOut != nil && !bytes.Equal(wantOut, res.Out) {
			return 0, fmt.Errorf("%s: frame after the last run is % x, want % x", d.Target(), res.Out, wantOut)
		}
		return res.Ns, nil
	}
	// floorPair measures a plain XDP_PASS run and the MAC-swap floor,
	// both without the driver: the two figures every ratio needs.
	floorPair := func() (p0, floor float64, err error) {
		if p0, err = ns(pass, plain, loader.BenchOptions{Direct: true}, loader.XDPPass, nil); err != nil {
			return 0, 0, err
		}
		// Swapping twice is the identity: an even repeat ends on the
		// input, an odd one on the swapped frame.
		want := plain
		if cfg.Repeat%2 == 1 {
			want = swapped
		}
		if floor, err = ns(swap, plain, loader.BenchOptions{Direct: true}, loader.XDPTx, want); err != nil {
			return 0, 0, err
		}
		return p0, floor, nil
	}

	// Cross-checks of the driver method: for these two inputs every run
	// of the balancer does the same work without a driver (DR rewrites
	// the MACs to the same values and keeps the flow; a non-VIP frame is
	// not touched), so a plain test run measures them correctly, and the
	// driver method's standalone figure must agree with it.
	var xchecks []benchCase
	for _, c := range f.cases(Config{Flows: cfg.Flows}) {
		if c.name == "dr/1/est" || c.name == "dr/1/pass" {
			xchecks = append(xchecks, c)
		}
	}
	xSamples := make([]roundSamples, len(xchecks))
	refSamples := make([]roundSamples, len(refNames))
	caseSamples := make([]roundSamples, len(cases))
	// Round 0 warms caches and the flow table and is discarded.
	for round := 0; round <= cfg.Rounds; round++ {
		keep := round > 0
		log.Info("dataplane round", "round", round, "of", cfg.Rounds, "warmup", !keep)
		if err := ctx.Err(); err != nil {
			return rep, err
		}

		p0, floor, err := floorPair()
		if err != nil {
			return rep, err
		}
		drv, err := ns(pass, plain, loader.BenchOptions{}, loader.XDPPass, plain)
		if err != nil {
			return rep, err
		}
		swapDrv, err := ns(swap, plain, loader.BenchOptions{}, loader.XDPTx, swapped)
		if err != nil {
			return rep, err
		}
		dropDrv, err := ns(drop, plain, loader.BenchOptions{}, loader.XDPDrop, plain)
		if err != nil {
			return rep, err
		}
		dropDirect, err := ns(drop, plain, loader.BenchOptions{Direct: true}, loader.XDPDrop, plain)
		if err != nil {
			return rep, err
		}
		if keep {
			refSamples[0].add(floor, 0, p0, floor)
			refSamples[1].add(dropDirect, 0, p0, floor)
			refSamples[2].add(p0, 0, p0, floor)
			refSamples[3].add(swapDrv, drv, p0, floor)
			refSamples[4].add(dropDrv, drv, p0, floor)
			refSamples[5].add(drv, drv, p0, floor)
		}
		for j, c := range xchecks {
			want := loader.XDPTx
			if c.kind == kindPass {
				want = loader.XDPPass
			}
			before, err := warm(f, target, c)
			if err != nil {
				return rep, err
			}
			direct, err := ns(target, c.frame, loader.BenchOptions{Direct: true}, want, nil)
			if err != nil {
				return rep, fmt.Errorf("cross-check %s: %w", c.name, err)
			}
			after, err := f.b.Stats()
			if err != nil {
				return rep, err
			}
			checked, err := f.check(before, after, c.expect(uint64(cfg.Repeat)), uint64(cfg.Repeat))
			if err != nil {
				return rep, fmt.Errorf("cross-check %s without the driver: %w", c.name, err)
			}
			gross, err := ns(target, c.frame, loader.BenchOptions{}, want, nil)
			if err != nil {
				return rep, fmt.Errorf("cross-check %s: %w", c.name, err)
			}
			d, err := ns(pass, c.frame, loader.BenchOptions{}, loader.XDPPass, nil)
			if err != nil {
				return rep, fmt.Errorf("cross-check %s: %w", c.name, err)
			}
			if keep {
				xSamples[j].add(direct, 0, p0, floor)
				xSamples[j].viaDriver = append(xSamples[j].viaDriver, gross-d+p0)
				xSamples[j].checked = checked
			}
		}

		for i, c := range cases {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			// Each case is measured between two floors, next to its own
			// driver cost, and measured again when the floors disagree:
			// the load of the shared machine changed meanwhile.
			for attempt := 1; ; attempt++ {
				p0, floor, err := floorPair()
				if err != nil {
					return rep, err
				}
				o := loader.BenchOptions{Vary: c.vary, Cycle: c.cycle}
				d, err := ns(pass, c.frame, o, loader.XDPPass, nil)
				if err != nil {
					return rep, fmt.Errorf("%s driver cost: %w", c.name, err)
				}
				before, err := warm(f, target, c)
				if err != nil {
					return rep, err
				}
				want := loader.XDPTx
				if c.kind == kindPass {
					want = loader.XDPPass
				}
				gross, err := ns(target, c.frame, o, want, nil)
				if err != nil {
					return rep, fmt.Errorf("%s: %w", c.name, err)
				}
				after, err := f.b.Stats()
				if err != nil {
					return rep, err
				}
				checked, err := f.check(before, after, c.expect(uint64(cfg.Repeat)), uint64(cfg.Repeat))
				if err != nil {
					return rep, fmt.Errorf("%s: %w", c.name, err)
				}
				p0b, floorb, err := floorPair()
				if err != nil {
					return rep, err
				}
				if !steady(floor, floorb) && attempt < cfg.Attempts {
					log.Info("floor moved, measuring again", "case", c.name, "floor_before", floor, "floor_after", floorb)
					continue
				}
				if keep {
					caseSamples[i].add(gross, d, (p0+p0b)/2, (floor+floorb)/2)
					caseSamples[i].checked = checked
					caseSamples[i].retries += attempt - 1
				}
				break
			}
		}
	}
	for i, name := range refNames {
		rep.Results = append(rep.Results, summarise(name, &refSamples[i], 0))
	}
	for j, c := range xchecks {
		rep.Results = append(rep.Results, summarise("xcheck/"+c.name+" without driver", &xSamples[j], 0))
	}
	for i, c := range cases {
		rep.Results = append(rep.Results, summarise(c.name, &caseSamples[i], c.kind.targetRatio()))
	}
	return rep, nil
}

// summarise turns a figure's rounds into a Result; target > 0 adds the
// bound on the ratio to the floor.
func summarise(name string, s *roundSamples, target float64) Result {
	r := newResult(name, "ns/packet", s.gross)
	r.Metrics = map[string]float64{}
	put := func(k string, xs []float64) {
		if len(xs) > 0 {
			r.Metrics[k] = median(xs)
		}
	}
	put("net_ns", s.net)
	put("driver_ns", s.driver)
	put("standalone_ns", s.standalone)
	put("driver_method_ns", s.viaDriver)
	if len(s.net) > 0 {
		put("net_min_ns", []float64{slices.Min(s.net)})
		put("net_max_ns", []float64{slices.Max(s.net)})
	}
	if len(s.ratio) > 0 {
		ratio := median(s.ratio)
		r.RatioToFloor = &ratio
		if target > 0 {
			r.Target = &Target{MaxRatio: target, Met: ratio <= target}
		}
	}
	if len(s.gross) > 0 {
		r.Metrics["retries"] = float64(s.retries)
	}
	r.Checked = slices.Clone(s.checked)
	slices.Sort(r.Checked)
	return r
}

// fillFlows fills the flow table with flows of their own before anything
// is measured, so the new-flow cases measure the steady state of a busy
// director: an insert evicts the least recently used flow of its buckets
// unless one of them still has an empty way.
func fillFlows(f *fixture, d *loader.BenchDriver) error {
	vip := f.vips[cell{loader.ForwardDR, 1}]
	frame := synFrame(f.ifMAC, netip.AddrPortFrom(fillClient, 1024), netip.AddrPortFrom(vip.VIP.Addr, vip.VIP.Port))
	n := f.b.Options().MaxFlows
	before, err := f.b.Stats()
	if err != nil {
		return err
	}
	if _, err := d.Run(frame, loader.BenchOptions{Repeat: n, Vary: true}); err != nil {
		return fmt.Errorf("fill the flow table: %w", err)
	}
	after, err := f.b.Stats()
	if err != nil {
		return err
	}
	if got := after.Events[loader.EventFlowNew] - before.Events[loader.EventFlowNew]; got != uint64(n) {
		return fmt.Errorf("fill the flow table: %d flows created, want %d: %w", got, n, errCounters)
	}
	return nil
}

// warmPasses bounds the passes warm makes over a set of flows.
const warmPasses = 8

// warm prepares the flow table for case c: every flow of an established
// case must be in it when the measured run starts. Eviction is per bucket
// (bpf/flow.h): in a full table, inserting a set of flows can evict members
// of the same set, so warm repeats passes over the set until one pass is
// all hits. It returns the balancer's counters as they stand afterwards,
// for the caller's measured run to start from.
func warm(f *fixture, d *loader.BenchDriver, c benchCase) (loader.Stats, error) {
	n := uint32(0)
	switch c.kind {
	case kindEst:
		n = 1
	case kindEstMany:
		n = c.cycle
	}
	before, err := f.b.Stats()
	if err != nil || n == 0 {
		return before, err
	}
	for pass := 1; pass <= warmPasses; pass++ {
		if _, err := d.Run(c.frame, loader.BenchOptions{Repeat: n, Vary: c.vary, Cycle: c.cycle}); err != nil {
			return loader.Stats{}, fmt.Errorf("%s: establish flows: %w", c.name, err)
		}
		after, err := f.b.Stats()
		if err != nil {
			return loader.Stats{}, err
		}
		if after.Events[loader.EventFlowHit]-before.Events[loader.EventFlowHit] == uint64(n) {
			return after, nil
		}
		before = after
	}
	return loader.Stats{}, fmt.Errorf("%s: %d passes over %d flows never found them all in the flow table: %w", c.name, warmPasses, n, errCounters)
}
