package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/controlplane/lab"
	"github.com/xdplb/xdplb/controlplane/lab/labnet"
	"github.com/xdplb/xdplb/internal/packet"
	"github.com/xdplb/xdplb/loader"
)

// labPPSSection measures the packets per second the lab's master director
// forwards when a generator in the client namespace offers it small TCP
// frames as fast as one CPU can produce them, and what that costs in CPU.
type labPPSSection struct{}

func (labPPSSection) Name() string { return "labpps" }

const labPPSMethod = "The lab of the lab section, with a generator in the client namespace: BPF_PROG_TEST_RUN in " +
	"live-frames mode on the client's eth0 (bench_driver restoring each frame, the MAC swap sending it out with " +
	"XDP_TX), %d frames per run in batches of %d, on a thread pinned to CPU %d. Frames: %d-byte TCP ACKs (no " +
	"options, no payload; 64 bytes on a wire with padding and FCS) from %s, source ports cycling through %d " +
	"established flows, to port 80 of the dr VIP, the tun VIP, or straight to backend %s (direct, the floor). " +
	"The client's switch port runs bench_sink (native XDP, counts and passes): offered = frames that reached " +
	"the switch. forwarded = the master director's tx_dr/tx_tun counter delta while the run lasted. The backends " +
	"drop the frames in an nftables prerouting rule that counts them (delivered), so they send no RSTs. Every run " +
	"is checked: the director forwards every offered frame it does not drop by reason or lose where the kernel " +
	"counts it, no backend receives more than it forwarded, and every frame lost between the switch and the " +
	"backends (lost: a share of offered; veth rings overflow when softirq work is deferred) is covered by rx/tx " +
	"drops the kernel counted on the lab's links (an upper bound: a veth counts some drops on both ends). A run " +
	"that fails is repeated, up to %d times, then the section fails. pps: forwarded (direct: delivered) frames per " +
	"second of wall clock of the " +
	"system call (set-up of tens of ms included); offered pps likewise. On veth every hop after the generator " +
	"(switch port, bridge, director XDP, its XDP_TX, bridge, backend) runs in softirq on the generator's CPU: " +
	"kernel ns/pkt is the kernel's own time of the run (which leaves out the time the thread was descheduled " +
	"for other work, and covers the softirq work done as each batch is flushed) per forwarded frame, the whole " +
	"pipeline on one CPU, generator included; added ns/pkt: kernel ns/pkt minus the direct floor's, the " +
	"director's share (its XDP program, one more veth hop and bridge pass). gen CPU busy and softirq: shares " +
	"of the generator's CPU busy and in softirq (/proc/stat); cpu ns/pkt: busy time of that CPU (user, " +
	"nice, system, irq, softirq) per forwarded frame, which also holds whatever else ran there. busy CPUs: " +
	"the whole machine, other tenants included. Medians over %d rounds; targets interleaved, order rotated " +
	"each round."

// Settings of the labpps section.
const (
	labPPSFrames   = 1 << 20
	labPPSFlows    = 1024
	labPPSPort     = 20000
	labPPSNFTTable = "xdplb_bench"
	labPPSNFTName  = "gen"
)

// ppsTarget is one destination the generator sends to.
type ppsTarget struct {
	name   string
	dstMAC net.HardwareAddr
	dst    netip.AddrPort
	// tx is the reason the director counts the frames under; 0 for the
	// direct floor, which the director never sees.
	tx loader.Reason
}

// ppsRun is what one live-frames run did, by the counters.
type ppsRun struct {
	generated    uint64 // frames the driver ran
	offered      uint64 // frames of the run the client's switch port received
	otherFrames  uint64 // frames the switch port received beyond those run
	forwarded    uint64 // director tx deltas, at the end of the system call
	forwardedAll uint64 // the same, once the lab is quiet again
	delivered    uint64 // backends' nftables counters
	xdplbDrops   uint64 // director drop_* reason deltas
	otherTx      uint64 // director deltas of the other tx reason (must be 0)
	kernelDrops  uint64 // rx/tx drops on every lab link
	wall         time.Duration
	genBusy      float64 // share of the generator's CPU busy
	genSoftirq   float64 // share of the generator's CPU in softirq
	genBusyNs    float64 // busy ns of the generator's CPU
	kernelNs     float64 // the kernel's time of the run, descheduled time left out
	busyCPUs     float64 // whole machine
}

// balance returns why the counters of r do not add up, or nil.
func (r ppsRun) balance(tg ppsTarget) error {
	var bad []string
	if r.otherTx != 0 {
		bad = append(bad, fmt.Sprintf("%d frames forwarded by another method than %s", r.otherTx, tg.tx))
	}
	if tg.tx == 0 && r.forwardedAll != 0 {
		bad = append(bad, fmt.Sprintf("the director forwarded %d frames of the direct run", r.forwardedAll))
	}
	if r.offered+r.kernelDrops < r.generated {
		// Fewer frames reached the switch than the driver ran, and the
		// kernel counted no drop for the rest.
		bad = append(bad, fmt.Sprintf("offered %d of %d generated frames, %d counted drops", r.offered, r.generated, r.kernelDrops))
	}
	// A veth counts some drops on both ends of its pair, so the kernel's
	// count bounds the frames lost from above: every lost frame must be
	// covered by it.
	if r.delivered+r.xdplbDrops > r.offered || r.lost() > r.kernelDrops {
		bad = append(bad, fmt.Sprintf("offered %d, delivered %d, xdplb drops %d: %d frames lost, kernel drops %d",
			r.offered, r.delivered, r.xdplbDrops, r.lost(), r.kernelDrops))
	}
	if tg.tx != 0 {
		// Every offered frame is forwarded, dropped by reason, or lost
		// where the kernel counted it; every delivered one was forwarded.
		if r.forwardedAll+r.xdplbDrops > r.offered || r.offered-r.forwardedAll-r.xdplbDrops > r.kernelDrops {
			bad = append(bad, fmt.Sprintf("offered %d, director forwarded %d and dropped %d by reason, kernel drops %d",
				r.offered, r.forwardedAll, r.xdplbDrops, r.kernelDrops))
		}
		if r.delivered > r.forwardedAll {
			bad = append(bad, fmt.Sprintf("backends received %d frames, director forwarded %d", r.delivered, r.forwardedAll))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", errUnbalanced, strings.Join(bad, "; "))
	}
	return nil
}

// lost returns the frames that reached the switch and neither reached a
// backend nor were dropped by xdplb.
func (r ppsRun) lost() uint64 {
	if r.delivered+r.xdplbDrops > r.offered {
		return 0
	}
	return r.offered - r.delivered - r.xdplbDrops
}

// errUnbalanced means frames went missing with no counter saying where.
var errUnbalanced = errors.New("counters do not add up")

func (labPPSSection) Run(ctx context.Context, cfg Config, log *slog.Logger) (rep SectionReport, err error) {
	topo := lab.DefaultTopology()
	direct := topo.Backends[0]
	src := topo.ClientAliases[len(topo.ClientAliases)-1]
	genCPU := runtime.NumCPU() - 1
	rounds := max(cfg.LiveRounds, 1)
	rep = SectionReport{
		Name: "labpps",
		Method: fmt.Sprintf(labPPSMethod, labPPSFrames, cfg.LiveBatch, genCPU, len(ppsFrame(nil, nil, netip.AddrPortFrom(src, labPPSPort), netip.AddrPortFrom(direct.Addr, 80))),
			src, labPPSFlows, direct.Name, cfg.Attempts, rounds),
		Columns: []Column{
			{Key: "offered_pps", Header: "offered pps"},
			{Key: "kernel_ns_per_packet", Header: "kernel ns/pkt"},
			{Key: "added_ns_per_packet", Header: "added ns/pkt"},
			{Key: "cpu_ns_per_packet", Header: "cpu ns/pkt"},
			{Key: "gen_cpu_busy", Header: "gen CPU busy"},
			{Key: "gen_cpu_softirq", Header: "softirq"},
			{Key: "busy_cpus", Header: "busy CPUs"},
			{Key: "lost", Header: "lost"},
			{Key: "retries", Header: "retries"},
		},
	}

	l, down, err := upBenchLab(ctx, topo, log)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, down()) }()

	master, err := l.TheMaster()
	if err != nil {
		return rep, fmt.Errorf("labpps: %w", err)
	}
	dp, err := l.OpenDataplane(master)
	if err != nil {
		return rep, fmt.Errorf("labpps: %w", err)
	}
	defer dp.Close()
	bal := dp.Balancer()

	for _, b := range l.Backends {
		if err := nftCounterDrop(ctx, b.Host, src); err != nil {
			return rep, err
		}
	}
	sw, err := labnet.Open(l.Options().Prefix + labnet.SwitchRole)
	if err != nil {
		return rep, err
	}
	defer sw.Close()
	namespaces := []*labnet.NS{sw, l.Client.NS}
	for _, d := range l.Directors {
		namespaces = append(namespaces, d.Host.NS)
	}
	for _, b := range l.Backends {
		namespaces = append(namespaces, b.Host.NS)
	}

	gen, err := loader.NewBenchDriver(loader.BenchReference(loader.BenchRefMACSwap))
	if err != nil {
		return rep, err
	}
	defer gen.Close()
	var sink *loader.BenchSink
	if err := sw.Do(func() error {
		port, err := sw.Link(l.Client.Port)
		if err != nil {
			return err
		}
		sink, err = gen.AttachSink(port.Attrs().Index)
		return err
	}); err != nil {
		return rep, err
	}
	defer sink.Close()
	clientLink, err := l.Client.Link(labnet.HostLink)
	if err != nil {
		return rep, err
	}

	targets := []ppsTarget{{
		name:   "direct/" + direct.Name + " (floor)",
		dstMAC: l.Backends[0].Host.MAC,
		dst:    netip.AddrPortFrom(direct.Addr, 80),
	}}
	for _, svc := range topo.Services {
		tx := loader.ReasonTxDR
		if svc.Forwarding == config.ForwardTUN {
			tx = loader.ReasonTxTUN
		}
		targets = append(targets, ppsTarget{
			name:   string(svc.Forwarding) + "/" + svc.Name,
			dstMAC: master.Host.MAC,
			dst:    netip.AddrPortFrom(svc.VIP, svc.Port),
			tx:     tx,
		})
	}

	m := ppsMeter{
		l: l, bal: bal, sink: sink, gen: gen, namespaces: namespaces,
		ifindex: clientLink.Attrs().Index, batch: cfg.LiveBatch, cpu: genCPU,
		srcMAC: l.Client.MAC, src: src, log: log,
	}
	runs := make([][]ppsRun, len(targets))
	retries := make([]int, len(targets))
	// One thread in the client namespace, pinned to genCPU, runs every
	// measurement; the runtime discards it afterwards.
	err = l.Client.Do(func() error {
		var set unix.CPUSet
		set.Set(genCPU)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("labpps: pin the generator to CPU %d: %w", genCPU, err)
		}
		// Warm-up: ARP, bridge tables and the director's flow table.
		for _, tg := range targets {
			if _, err := m.run(ctx, tg, labPPSFrames/16); err != nil && !errors.Is(err, errUnbalanced) {
				return fmt.Errorf("labpps warm-up %s: %w", tg.name, err)
			}
		}
		for round := range rounds {
			for k := range targets {
				i := (k + round) % len(targets)
				tg := targets[i]
				for attempt := 1; ; attempt++ {
					if err := ctx.Err(); err != nil {
						return err
					}
					r, err := m.run(ctx, tg, labPPSFrames)
					if errors.Is(err, errUnbalanced) && attempt < cfg.Attempts {
						log.Info("labpps run does not balance, measuring again", "target", tg.name, "err", err)
						retries[i]++
						continue
					}
					if err != nil {
						return fmt.Errorf("labpps %s round %d: %w", tg.name, round+1, err)
					}
					log.Info("labpps run", "target", tg.name, "round", round+1,
						"offered_pps", float64(r.offered)/r.wall.Seconds(),
						"forwarded_pps", float64(r.forwarded)/r.wall.Seconds(),
						"gen_cpu_busy", r.genBusy, "busy_cpus", r.busyCPUs)
					runs[i] = append(runs[i], r)
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}

	var floorPPS, floorNs float64
	for i, tg := range targets {
		res := summarisePPS(tg, runs[i], retries[i])
		if i == 0 {
			floorPPS, floorNs = res.Value, res.Metrics["kernel_ns_per_packet"]
		}
		ratio := res.Value / floorPPS
		res.RatioToFloor = &ratio
		res.Metrics["added_ns_per_packet"] = res.Metrics["kernel_ns_per_packet"] - floorNs
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// ppsMeter runs the generator and reads every counter around it.
type ppsMeter struct {
	l          *lab.Lab
	bal        *loader.Balancer
	sink       *loader.BenchSink
	gen        *loader.BenchDriver
	namespaces []*labnet.NS
	ifindex    int
	batch      uint32
	cpu        int
	srcMAC     net.HardwareAddr
	src        netip.Addr
	log        *slog.Logger
}

// ppsCounters is a snapshot of every counter a run is checked against.
type ppsCounters struct {
	sink      uint64
	reasons   map[loader.Reason]uint64
	delivered uint64
	drops     uint64
}

func (m *ppsMeter) counters(ctx context.Context, sink uint64) (ppsCounters, error) {
	c := ppsCounters{sink: sink}
	st, err := m.bal.Stats()
	if err != nil {
		return c, err
	}
	c.reasons = st.Reasons
	for _, b := range m.l.Backends {
		n, err := nftCount(ctx, b.Host)
		if err != nil {
			return c, err
		}
		c.delivered += n
	}
	c.drops, err = linkDrops(m.namespaces)
	return c, err
}

// run sends frames frames to tg and returns what the counters say. It
// must run on the generator's thread, in the client namespace.
func (m *ppsMeter) run(ctx context.Context, tg ppsTarget, frames uint32) (ppsRun, error) {
	frame := ppsFrame(m.srcMAC, tg.dstMAC, netip.AddrPortFrom(m.src, labPPSPort), tg.dst)
	quiet, err := sinkQuiet(m.sink)
	if err != nil {
		return ppsRun{}, err
	}
	before, err := m.counters(ctx, quiet)
	if err != nil {
		return ppsRun{}, err
	}
	c0, err := samplePerCPU()
	if err != nil {
		return ppsRun{}, err
	}
	start := time.Now()
	res, err := m.gen.RunLive(frame, loader.LiveOptions{
		Ifindex: m.ifindex, Repeat: frames, Batch: m.batch, Vary: true, Cycle: labPPSFlows,
	})
	if err != nil {
		return ppsRun{}, err
	}
	wall := time.Since(start)
	kernelNs := (float64(res.KernelNs) + 0.5) * float64(res.Runs)
	c1, err := samplePerCPU()
	if err != nil {
		return ppsRun{}, err
	}
	atEnd, err := m.bal.Stats()
	if err != nil {
		return ppsRun{}, err
	}
	// The rest of the counters once the lab is quiet again.
	got, err := sinkCount(m.sink, quiet, uint64(frames))
	if err != nil {
		return ppsRun{}, err
	}
	time.Sleep(200 * time.Millisecond)
	after, err := m.counters(ctx, quiet+got)
	if err != nil {
		return ppsRun{}, err
	}

	sunk := after.sink - before.sink
	offered := min(sunk, res.Runs)
	r := ppsRun{
		generated:   res.Runs,
		offered:     offered,
		otherFrames: sunk - offered,
		delivered:   after.delivered - before.delivered,
		kernelDrops: after.drops - before.drops,
		wall:        wall,
		kernelNs:    kernelNs,
	}
	for reason, n := range after.reasons {
		d := n - before.reasons[reason]
		switch {
		case strings.HasPrefix(reason.String(), "drop_"):
			r.xdplbDrops += d
		case reason == loader.ReasonTxDR || reason == loader.ReasonTxTUN:
			if reason == tg.tx {
				r.forwardedAll += d
				r.forwarded += atEnd.Reasons[reason] - before.reasons[reason]
			} else {
				r.otherTx += d
			}
		}
	}
	if cpu := m.cpu; cpu < len(c0) && cpu < len(c1) {
		d := c1[cpu].sub(c0[cpu])
		if d.total > 0 {
			r.genBusy = float64(d.busy) / float64(d.total)
			r.genSoftirq = float64(d.softirq) / float64(d.total)
		}
		r.genBusyNs = float64(d.busy) * 1e9 / userHZ
	}
	var busy uint64
	for i := range min(len(c0), len(c1)) {
		busy += c1[i].sub(c0[i]).busy
	}
	r.busyCPUs = float64(busy) / userHZ / wall.Seconds()
	return r, r.balance(tg)
}

// summarisePPS turns the runs of one target into a Result.
func summarisePPS(tg ppsTarget, runs []ppsRun, retries int) Result {
	moved := func(r ppsRun) uint64 {
		if tg.tx == 0 {
			return r.delivered
		}
		return r.forwarded
	}
	res := newResult(tg.name, "pps", pick(runs, func(r ppsRun) float64 { return float64(moved(r)) / r.wall.Seconds() }))
	res.Metrics = map[string]float64{
		"offered_pps":          median(pick(runs, func(r ppsRun) float64 { return float64(r.offered) / r.wall.Seconds() })),
		"kernel_ns_per_packet": median(pick(runs, func(r ppsRun) float64 { return r.kernelNs / float64(max(moved(r), 1)) })),
		"cpu_ns_per_packet":    median(pick(runs, func(r ppsRun) float64 { return r.genBusyNs / float64(max(moved(r), 1)) })),
		"gen_cpu_busy":         median(pick(runs, func(r ppsRun) float64 { return r.genBusy })),
		"gen_cpu_softirq":      median(pick(runs, func(r ppsRun) float64 { return r.genSoftirq })),
		"busy_cpus":            median(pick(runs, func(r ppsRun) float64 { return r.busyCPUs })),
		"lost":                 median(pick(runs, func(r ppsRun) float64 { return float64(r.lost()) / float64(max(r.offered, 1)) })),
		"retries":              float64(retries),
	}
	var total ppsRun
	for _, r := range runs {
		total.generated += r.generated
		total.offered += r.offered
		total.forwardedAll += r.forwardedAll
		total.delivered += r.delivered
		total.xdplbDrops += r.xdplbDrops
		total.kernelDrops += r.kernelDrops
		total.otherFrames += r.otherFrames
	}
	res.Checked = []string{
		fmt.Sprintf("generated=%d", total.generated),
		fmt.Sprintf("offered=%d", total.offered),
		fmt.Sprintf("forwarded=%d", total.forwardedAll),
		fmt.Sprintf("delivered=%d", total.delivered),
		fmt.Sprintf("xdplb_drops=%d", total.xdplbDrops),
		fmt.Sprintf("lost=%d", total.lost()),
		fmt.Sprintf("kernel_drops=%d", total.kernelDrops),
		fmt.Sprintf("other_client_frames=%d", total.otherFrames),
	}
	return res
}

// ppsFrame is the generator's frame: a TCP ACK without options from src to
// dst, with its Ethernet addresses the wrong way round, because the MAC
// swap behind the driver turns them before the frame leaves.
func ppsFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.AddrPort) []byte {
	ip := packet.IPv4{TTL: 64, ID: 0x2b01, DF: true, Src: src.Addr(), Dst: dst.Addr()}
	tcp := packet.TCP{SrcPort: src.Port(), DstPort: dst.Port(), Seq: 0x5eed0002, Ack: 1, Flags: packet.TCPAck, Window: 502}
	return packet.Frame(packet.Ethernet{Dst: srcMAC, Src: dstMAC}, packet.TCPPacket(ip, tcp, nil))
}

// nftCounterDrop makes h drop, and count, the generator's frames before
// its stack sees them, so that it answers none of them with a RST.
func nftCounterDrop(ctx context.Context, h *labnet.Host, src netip.Addr) error {
	script := fmt.Sprintf(`table ip %[1]s {
	counter %[2]s { }
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		ip saddr %[3]s tcp sport %[4]d-%[5]d counter name %[2]s drop
	}
}
`, labPPSNFTTable, labPPSNFTName, src, labPPSPort, labPPSPort+labPPSFlows-1)
	f, err := os.CreateTemp("", "xdplb-bench-nft-")
	if err != nil {
		return fmt.Errorf("nftables rule for %s: %w", h.Role, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(script); err != nil {
		f.Close()
		return fmt.Errorf("nftables rule for %s: %w", h.Role, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("nftables rule for %s: %w", h.Role, err)
	}
	if _, err := h.Run(ctx, "nft", "-f", f.Name()); err != nil {
		return fmt.Errorf("nftables rule for %s: %w", h.Role, err)
	}
	return nil
}

// nftCount returns the packets h's generator rule has dropped.
func nftCount(ctx context.Context, h *labnet.Host) (uint64, error) {
	out, err := h.Run(ctx, "nft", "-j", "list", "counter", "ip", labPPSNFTTable, labPPSNFTName)
	if err != nil {
		return 0, err
	}
	return parseNFTCounter(out)
}

// parseNFTCounter reads the packets of the one counter in the output of
// `nft -j list counter`.
func parseNFTCounter(out []byte) (uint64, error) {
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Packets *uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return 0, fmt.Errorf("parse nft counter: %w", err)
	}
	var found []uint64
	for _, o := range doc.Nftables {
		if o.Counter != nil && o.Counter.Packets != nil {
			found = append(found, *o.Counter.Packets)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("parse nft counter: want one counter, found %d in %q", len(found), out)
	}
	return found[0], nil
}

// linkDrops sums the receive and transmit drops the kernel counted on every
// link of the namespaces.
func linkDrops(nss []*labnet.NS) (uint64, error) {
	var n uint64
	for _, ns := range nss {
		links, err := ns.Netlink().LinkList()
		if err != nil {
			return 0, fmt.Errorf("links of %s: %w", ns.Name, err)
		}
		for _, l := range links {
			if s := l.Attrs().Statistics; s != nil {
				n += s.RxDropped + s.TxDropped
			}
		}
	}
	return n, nil
}
