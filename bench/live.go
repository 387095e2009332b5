package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/xdplb/xdplb/loader"
)

// liveSection measures packets per second in live-frames mode
// (BPF_F_TEST_XDP_LIVE_FRAMES): frames injected on a veth in a namespace of
// the benchmark's own, sent with XDP_TX out of that veth into a second
// namespace, where bench_sink (a native XDP program that counts and passes)
// lets the peer accept them. Frames the program passes enter the first
// namespace's stack. Live mode resets the data pointers of recycled pages
// but not their bytes, so every frame goes through bench_driver here too.
type liveSection struct{}

func (liveSection) Name() string { return "live" }

const liveMethod = "Packets per second through BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES: %d frames per run " +
	"in batches of %d, injected on a veth in a namespace of the benchmark's own, every frame restored by bench_driver. " +
	"XDP_TX frames leave through the veth into a second namespace whose end runs a counting XDP_PASS program; its " +
	"count must equal the frames sent, and the balancer's counters must equal the frames run. Passed frames enter " +
	"the first namespace's stack. The peer's receive work runs in softirq on the same CPU and is part of the figure. " +
	"Each case is measured between two floors, up to %d times, again when they differ by more than 15%% or " +
	"the peer did not receive exactly the frames sent (the veth ring overflows, or frames come late, when the " +
	"peer's softirq is deferred to ksoftirqd on a busy machine). " +
	"pps by the kernel's own time per frame (the wall clock also holds tens of ms of XDP dispatcher set-up per " +
	"call); ns/pkt its inverse; x floor: ns/pkt over that of the MAC swap behind the driver, measured next to " +
	"each case; cpu ns/pkt: CPU time of the benchmark thread per frame (getrusage, softirq work it ran included); " +
	"busy cpus: CPUs busy on the whole machine during the run, other tenants included (/proc/stat). " +
	"Medians over %d rounds."

// liveSample is one live run's figures.
type liveSample struct {
	pps, cpuNs, system float64
}

// liveSamples collects one liveSample per round, with the round's ratio
// to the floor.
type liveSamples struct {
	s       []liveSample
	ratio   []float64
	checked []string
	retries int // measurements repeated because the floor moved
}

func (l *liveSamples) add(s liveSample, floorPPS float64) {
	l.s = append(l.s, s)
	l.ratio = append(l.ratio, floorPPS/s.pps)
}

func (l *liveSamples) result(name string, target float64) Result {
	r := newResult(name, "pps", pick(l.s, func(s liveSample) float64 { return s.pps }))
	r.Metrics = map[string]float64{
		"ns_per_packet":     1e9 / r.Value,
		"cpu_ns_per_packet": median(pick(l.s, func(s liveSample) float64 { return s.cpuNs })),
		"system_cpu":        median(pick(l.s, func(s liveSample) float64 { return s.system })),
		"retries":           float64(l.retries),
	}
	ratio := median(l.ratio)
	r.RatioToFloor = &ratio
	r.Checked = l.checked
	return r
}

func (liveSection) Run(ctx context.Context, cfg Config, log *slog.Logger) (SectionReport, error) {
	rep := SectionReport{
		Name:   "live",
		Method: fmt.Sprintf(liveMethod, cfg.LiveRepeat, cfg.LiveBatch, cfg.Attempts, cfg.LiveRounds),
		Columns: []Column{
			{Key: "ns_per_packet", Header: "ns/pkt"},
			{Key: "cpu_ns_per_packet", Header: "cpu ns/pkt"},
			{Key: "system_cpu", Header: "busy cpus"},
			{Key: "retries", Header: "retries"},
		},
	}
	t, err := newTopo(ctx)
	if err != nil {
		return rep, err
	}
	defer func() {
		if err := t.Close(); err != nil {
			log.Error("remove live topology", "err", err)
		}
	}()
	err = inNS(t.dirNS, func() error { return liveRun(ctx, cfg, log, t, &rep) })
	return rep, err
}

// liveRun measures the live section; it runs on a thread inside t.dirNS.
func liveRun(ctx context.Context, cfg Config, log *slog.Logger, t *topo, rep *SectionReport) error {
	f, err := newFixture(t.dirMAC)
	if err != nil {
		return err
	}
	defer f.Close()
	target, err := loader.NewBenchDriver(loader.BenchBalancer(f.b))
	if err != nil {
		return err
	}
	defer target.Close()
	swap, err := loader.NewBenchDriver(loader.BenchReference(loader.BenchRefMACSwap))
	if err != nil {
		return err
	}
	defer swap.Close()
	drop, err := loader.NewBenchDriver(loader.BenchReference(loader.BenchRefDrop))
	if err != nil {
		return err
	}
	defer drop.Close()

	var sink *loader.BenchSink
	if err := inNS(t.peerNS, func() (err error) {
		sink, err = drop.AttachSink(t.peerIndex)
		return err
	}); err != nil {
		return err
	}
	defer sink.Close()

	if err := fillFlows(f, target); err != nil {
		return err
	}
	cases := f.cases(cfg)
	plain := ackFrame(t.dirMAC, netip.AddrPortFrom(passClient, 40000), nonVIP)

	// live runs frame behind d (or directly) and checks that the peer
	// received wantSink frames. The kernel reports no verdict in live
	// mode; the counters tell what the frames did.
	live := func(d *loader.BenchDriver, frame []byte, o loader.LiveOptions, wantSink uint64) (liveSample, error) {
		o.Ifindex, o.Repeat, o.Batch = t.dirIndex, cfg.LiveRepeat, cfg.LiveBatch
		before, err := sinkQuiet(sink)
		if err != nil {
			return liveSample{}, err
		}
		c0, err := sampleCPU()
		if err != nil {
			return liveSample{}, err
		}
		res, err := d.RunLive(frame, o)
		if err != nil {
			return liveSample{}, err
		}
		c1, err := sampleCPU()
		if err != nil {
			return liveSample{}, err
		}
		got, err := sinkCount(sink, before, wantSink)
		if err != nil {
			return liveSample{}, err
		}
		if got != wantSink {
			return liveSample{}, fmt.Errorf("%s: the peer received %d frames, want %d: %w", d.Target(), got, wantSink, errLost)
		}
		s := liveSample{pps: res.PPS}
		s.cpuNs, s.system = cpuUse(c0, c1, res.Runs)
		return s, nil
	}
	runs := uint64(cfg.LiveRepeat)
	// again runs a reference measurement again while the veth loses
	// frames, and counts the extra attempts in *retries.
	again := func(retries *int, d *loader.BenchDriver, o loader.LiveOptions, wantSink uint64) (liveSample, error) {
		for attempt := 1; ; attempt++ {
			s, err := live(d, plain, o, wantSink)
			if errors.Is(err, errLost) && attempt < cfg.Attempts {
				log.Info("frames lost, measuring again", "target", d.Target(), "err", err)
				*retries++
				continue
			}
			return s, err
		}
	}

	var floorS, directS, dropS liveSamples
	caseS := make([]liveSamples, len(cases))
	for round := 0; round <= cfg.LiveRounds; round++ {
		keep := round > 0
		log.Info("live round", "round", round, "of", cfg.LiveRounds, "warmup", !keep)
		if err := ctx.Err(); err != nil {
			return err
		}
		floor, err := again(&floorS.retries, swap, loader.LiveOptions{}, runs)
		if err != nil {
			return err
		}
		direct, err := again(&directS.retries, swap, loader.LiveOptions{Direct: true}, runs)
		if err != nil {
			return err
		}
		dropped, err := again(&dropS.retries, drop, loader.LiveOptions{}, 0)
		if err != nil {
			return err
		}
		if keep {
			floorS.add(floor, floor.pps)
			directS.add(direct, floor.pps)
			dropS.add(dropped, floor.pps)
		}
		for i, c := range cases {
			if err := ctx.Err(); err != nil {
				return err
			}
			// Between two floors, measured again when they disagree, as
			// in the dataplane section.
			for attempt := 1; ; attempt++ {
				floor, err := again(&caseS[i].retries, swap, loader.LiveOptions{}, runs)
				if err != nil {
					return err
				}
				before, err := warm(f, target, c)
				if err != nil {
					return err
				}
				wantSink := runs
				if c.kind == kindPass {
					wantSink = 0
				}
				s, err := live(target, c.frame, loader.LiveOptions{Vary: c.vary, Cycle: c.cycle}, wantSink)
				if errors.Is(err, errLost) && attempt < cfg.Attempts {
					log.Info("frames lost, measuring again", "case", c.name, "err", err)
					caseS[i].retries++
					continue
				}
				if err != nil {
					return fmt.Errorf("%s: %w", c.name, err)
				}
				after, err := f.b.Stats()
				if err != nil {
					return err
				}
				checked, err := f.check(before, after, c.expect(runs), runs)
				if err != nil {
					return fmt.Errorf("%s: %w", c.name, err)
				}
				floorb, err := again(&caseS[i].retries, swap, loader.LiveOptions{}, runs)
				if err != nil {
					return err
				}
				if !steady(1e9/floor.pps, 1e9/floorb.pps) && attempt < cfg.Attempts {
					log.Info("floor moved, measuring again", "case", c.name, "floor_pps_before", floor.pps, "floor_pps_after", floorb.pps)
					caseS[i].retries++
					continue
				}
				if keep {
					caseS[i].add(s, 2/(1/floor.pps+1/floorb.pps))
					caseS[i].checked = append(checked, fmt.Sprintf("peer_received=%d", wantSink))
				}
				break
			}
		}
	}
	floorS.checked = []string{fmt.Sprintf("peer_received=%d", runs)}
	directS.checked = floorS.checked
	dropS.checked = []string{"peer_received=0"}
	rep.Results = append(rep.Results,
		floorS.result("ref/mac_swap+driver (floor)", 0),
		directS.result("ref/mac_swap", 0),
		dropS.result("ref/xdp_drop+driver", 0),
	)
	for i, c := range cases {
		rep.Results = append(rep.Results, caseS[i].result(c.name, 0))
	}
	return nil
}

// errLost means the peer did not receive exactly the frames a run sent:
// the veth's ring of 256 frames overflows, or frames arrive late, when the
// peer's softirq is deferred to a starved ksoftirqd on a busy machine. Such
// a run is repeated; a section fails only when every attempt disagrees.
var errLost = errors.New("frames lost or late on the veth")

// sinkQuiet waits until the peer has stopped receiving (late frames of an
// earlier run) and returns its count.
func sinkQuiet(sink *loader.BenchSink) (uint64, error) {
	last, err := sink.Packets()
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(20 * time.Millisecond)
		n, err := sink.Packets()
		if err != nil {
			return 0, err
		}
		if n == last || time.Now().After(deadline) {
			return n, nil
		}
		last = n
	}
}

// sinkCount returns the frames the peer received since before: it waits
// until want have arrived, or until none has arrived for half a second
// (the rest were dropped), or for ten seconds at most. When none is
// expected it waits the half second, so that a stray frame is seen.
func sinkCount(sink *loader.BenchSink, before, want uint64) (uint64, error) {
	const still = 500 * time.Millisecond
	deadline := time.Now().Add(10 * time.Second)
	last, moved := uint64(0), time.Now()
	for {
		n, err := sink.Packets()
		if err != nil {
			return 0, err
		}
		got := n - before
		now := time.Now()
		if got != last {
			last, moved = got, now
		}
		if (want > 0 && got >= want) || now.Sub(moved) >= still || now.After(deadline) {
			return got, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}
