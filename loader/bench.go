package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The benchmark harness. BPF_PROG_TEST_RUN with repeat > 1 hands every run
// the previous run's output (and in live-frames mode, recycled pages keep
// the previous run's bytes), so a program that rewrites or remembers packets
// cannot be timed by repeating it naively: from the second run on, an IPIP
// encapsulation would time the pass of an IPIP packet and a new flow would
// be a flow-table hit. A BenchDriver runs bpf/bench.bpf.c's bench_driver
// first on every run; it restores the pristine frame and tail-calls the
// target (see bpf/bench.h for the details).

// BenchMaxFrame is the largest frame a BenchDriver restores (BENCH_MAX_FRAME).
const BenchMaxFrame = int(unsafe.Sizeof(benchBenchFrame{}.Data))

// TestXDPMaxBatch is the kernel's largest live-frames batch (TEST_XDP_MAX_BATCH).
const TestXDPMaxBatch = 256

// BenchRef names one of the driver's reference programs.
type BenchRef int

const (
	// BenchRefDrop returns XDP_DROP: the cheapest verdict.
	BenchRefDrop BenchRef = iota + 1
	// BenchRefPass returns XDP_PASS and does nothing else: behind the
	// driver it measures the driver's own cost.
	BenchRefPass
	// BenchRefMACSwap swaps the Ethernet addresses and returns XDP_TX: the
	// least a forwarder does, the floor other figures are compared with.
	BenchRefMACSwap
)

// String returns "xdp_drop", "xdp_pass" or "mac_swap".
func (r BenchRef) String() string {
	switch r {
	case BenchRefDrop:
		return "xdp_drop"
	case BenchRefPass:
		return "xdp_pass"
	case BenchRefMACSwap:
		return "mac_swap"
	}
	return fmt.Sprintf("bench_ref(%d)", int(r))
}

// BenchTarget is the program a BenchDriver hands every run to: a reference
// program or the balancer.
type BenchTarget struct {
	name string
	prog *ebpf.Program // nil for a reference, which lives in the driver's object
	ref  BenchRef
}

// BenchReference returns the reference program r as a target.
func BenchReference(r BenchRef) BenchTarget {
	return BenchTarget{name: r.String(), ref: r}
}

// BenchBalancer returns b's balancer program as a target. b must outlive
// the drivers using it.
func BenchBalancer(b *Balancer) BenchTarget {
	return BenchTarget{name: "balancer", prog: b.prog}
}

// String names the target.
func (t BenchTarget) String() string { return t.name }

// XDPAction is the verdict an XDP program returned.
type XDPAction uint32

// The XDP verdicts.
const (
	XDPAborted  XDPAction = 0
	XDPDrop     XDPAction = 1
	XDPPass     XDPAction = 2
	XDPTx       XDPAction = 3
	XDPRedirect XDPAction = 4
)

// String returns "XDP_DROP", "XDP_TX", ...
func (a XDPAction) String() string {
	switch a {
	case XDPAborted:
		return "XDP_ABORTED"
	case XDPDrop:
		return "XDP_DROP"
	case XDPPass:
		return "XDP_PASS"
	case XDPTx:
		return "XDP_TX"
	case XDPRedirect:
		return "XDP_REDIRECT"
	}
	return fmt.Sprintf("XDP_ACTION(%d)", uint32(a))
}

// ErrBenchCheck means a measurement could not be trusted: the driver did
// not count exactly the runs asked for, or counted an error.
var ErrBenchCheck = errors.New("benchmark self-check failed")

// BenchOptions say how a BenchDriver runs a frame.
type BenchOptions struct {
	// Repeat is the number of runs in one BPF_PROG_TEST_RUN; at least 1.
	Repeat uint32
	// Vary makes every run a different flow: the driver rewrites the low
	// 16 bits of the IPv4 source address and the TCP/UDP source port from
	// its run counter and fixes both checksums. The frame must be IPv4
	// TCP or UDP (one VLAN tag allowed).
	Vary bool
	// Cycle, with Vary, makes the flows repeat every Cycle runs (a set of
	// Cycle established flows); 0 never repeats within 2^32 runs.
	Cycle uint32
	// Direct runs the target on its own, without the driver and so
	// without restoring the frame between runs. Only a target that does
	// the same work whatever it is given (the references) measures what it
	// should that way; see bpf/bench.h.
	Direct bool
}

// BenchResult is one BPF_PROG_TEST_RUN.
type BenchResult struct {
	// Runs is the number of runs the driver counted (Repeat when Direct).
	Runs uint64
	// Action is the verdict of the last run.
	Action XDPAction
	// KernelNs is the kernel's own time per run, in whole nanoseconds
	// (it divides with truncation).
	KernelNs uint32
	// Wall is the wall-clock time of the whole system call, set-up
	// included.
	Wall time.Duration
	// Ns is the time per run: KernelNs plus half a nanosecond, the middle
	// of the interval the kernel's truncated figure stands for. The wall
	// clock cannot refine it: with repeat > 1 the kernel installs the
	// program in the XDP dispatcher before the runs and removes it after,
	// which costs tens of milliseconds of RCU grace periods per call.
	Ns float64
	// Out is the frame after the last run.
	Out []byte
}

// LiveOptions say how a BenchDriver runs a frame in live-frames mode
// (BPF_F_TEST_XDP_LIVE_FRAMES): the frames the target sends with XDP_TX
// leave through the interface Ifindex, those it passes enter its stack.
type LiveOptions struct {
	// Ifindex is the interface in the calling thread's network namespace
	// that frames arrive on and leave through.
	Ifindex int
	// Repeat is the number of frames; at least 1.
	Repeat uint32
	// Batch is the number of frames the kernel runs between flushes;
	// 0 means the kernel's default (64), at most TestXDPMaxBatch.
	Batch uint32
	// Vary, Cycle and Direct are as in BenchOptions.
	Vary   bool
	Cycle  uint32
	Direct bool
}

// LiveResult is one live-frames BPF_PROG_TEST_RUN.
type LiveResult struct {
	// Runs is the number of frames the driver counted. The kernel
	// reports no verdict in live-frames mode: what the frames did shows
	// in the counters of the target and of the receiving end.
	Runs uint64
	// KernelNs is the kernel's time per frame, whole nanoseconds: the
	// batches, the flushes and the receive work they trigger on this CPU.
	KernelNs uint32
	// Wall is the wall-clock time of the whole system call, set-up
	// included (see BenchResult.Ns).
	Wall time.Duration
	// PPS is frames per second by the kernel's time: 1e9 / (KernelNs +
	// 0.5).
	PPS float64
}

// BenchDriver runs a target behind bench_driver with BPF_PROG_TEST_RUN.
// It runs one test at a time: its run counter is exact only so.
type BenchDriver struct {
	mu     sync.Mutex
	objs   benchObjects
	target BenchTarget
	prog   *ebpf.Program // the target program
}

// NewBenchDriver loads the driver and its references and installs t as its
// target. Close releases it.
func NewBenchDriver(t BenchTarget) (*BenchDriver, error) {
	d := &BenchDriver{target: t}
	if err := loadBenchObjects(&d.objs, nil); err != nil {
		return nil, fmt.Errorf("load bench driver: %+v", err)
	}
	switch {
	case t.prog != nil:
		d.prog = t.prog
	case t.ref == BenchRefDrop:
		d.prog = d.objs.BenchDrop
	case t.ref == BenchRefPass:
		d.prog = d.objs.BenchPass
	case t.ref == BenchRefMACSwap:
		d.prog = d.objs.BenchMacSwap
	default:
		d.objs.Close()
		return nil, fmt.Errorf("new bench driver: target %q has no program", t.name)
	}
	if err := d.objs.BenchTarget.Update(uint32(0), d.prog, ebpf.UpdateAny); err != nil {
		d.objs.Close()
		return nil, fmt.Errorf("install bench target %s: %w", t, err)
	}
	return d, nil
}

// Target returns the driver's target.
func (d *BenchDriver) Target() BenchTarget { return d.target }

// Close releases the driver. The target's own program stays with its owner.
func (d *BenchDriver) Close() error {
	if err := d.objs.Close(); err != nil {
		return fmt.Errorf("close bench driver: %w", err)
	}
	return nil
}

// Run runs frame o.Repeat times and reports the time per run. Unless
// o.Direct, it fails with ErrBenchCheck when the driver counted other than
// o.Repeat runs or counted an error.
func (d *BenchDriver) Run(frame []byte, o BenchOptions) (BenchResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()

	if o.Repeat == 0 {
		return BenchResult{}, errors.New("bench run: repeat must be at least 1")
	}
	out := make([]byte, len(frame)+256)
	attr := progRunAttr{Repeat: o.Repeat}
	r, err := d.run(frame, o.Vary, o.Cycle, o.Direct, &attr, nil, out)
	if err != nil {
		return BenchResult{}, err
	}
	res := BenchResult{
		Runs:     r.runs,
		Action:   XDPAction(attr.Retval),
		KernelNs: attr.Duration,
		Wall:     r.wall,
		Out:      out[:attr.DataSizeOut],
	}
	res.Ns = float64(attr.Duration) + 0.5
	return res, nil
}

// RunLive runs frame o.Repeat times in live-frames mode on o.Ifindex, which
// must be in the calling thread's network namespace (lock the thread with
// runtime.LockOSThread before entering one). Checks as Run.
func (d *BenchDriver) RunLive(frame []byte, o LiveOptions) (LiveResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()

	if o.Repeat == 0 {
		return LiveResult{}, errors.New("bench live run: repeat must be at least 1")
	}
	if o.Batch > TestXDPMaxBatch {
		return LiveResult{}, fmt.Errorf("bench live run: batch %d exceeds %d", o.Batch, TestXDPMaxBatch)
	}
	if o.Ifindex <= 0 {
		return LiveResult{}, fmt.Errorf("bench live run: invalid ifindex %d", o.Ifindex)
	}
	// struct xdp_md: data, data_end, data_meta, ingress_ifindex,
	// rx_queue_index, egress_ifindex. The kernel wants data_end to be the
	// frame's length and resolves the ifindex in the caller's namespace.
	ctx := make([]byte, 24)
	binary.NativeEndian.PutUint32(ctx[4:], uint32(len(frame)))
	binary.NativeEndian.PutUint32(ctx[12:], uint32(o.Ifindex))
	attr := progRunAttr{Repeat: o.Repeat, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES, BatchSize: o.Batch}
	r, err := d.run(frame, o.Vary, o.Cycle, o.Direct, &attr, ctx, nil)
	if err != nil {
		return LiveResult{}, err
	}
	res := LiveResult{Runs: r.runs, KernelNs: attr.Duration, Wall: r.wall}
	res.PPS = 1e9 / (float64(attr.Duration) + 0.5)
	return res, nil
}

type runStats struct {
	runs uint64
	wall time.Duration
}

// run programs the driver for frame, runs the test and checks the driver's
// counters. attr carries repeat, flags and batch size in and the kernel's
// answer out.
func (d *BenchDriver) run(frame []byte, vary bool, cycle uint32, direct bool, attr *progRunAttr, ctx, out []byte) (runStats, error) {
	if len(frame) < 14 || len(frame) > BenchMaxFrame {
		return runStats{}, fmt.Errorf("bench run: frame of %d bytes, want 14..%d", len(frame), BenchMaxFrame)
	}
	prog := d.objs.BenchDriver
	if direct {
		if vary {
			return runStats{}, errors.New("bench run: vary needs the driver, not a direct run")
		}
		prog = d.prog
	} else if err := d.program(frame, vary, cycle); err != nil {
		return runStats{}, err
	}
	before, err := d.counters()
	if err != nil {
		return runStats{}, err
	}
	var wall time.Duration
	for tries := 1; ; tries++ {
		start := time.Now()
		err = progTestRun(prog, attr, frame, ctx, out)
		wall = time.Since(start)
		if !errors.Is(err, unix.EINTR) {
			break
		}
		// Interrupted by a signal: the kernel ran an unknown number of
		// runs and reported no time. Start again from fresh counters,
		// but not forever: a signal arriving faster than a run
		// completes would never let one finish.
		if tries == maxInterrupts {
			return runStats{}, fmt.Errorf("bench run %s: interrupted %d times; use a smaller repeat: %w", d.target, tries, err)
		}
		if before, err = d.counters(); err != nil {
			return runStats{}, err
		}
	}
	if err != nil {
		return runStats{}, fmt.Errorf("bench run %s: %w", d.target, err)
	}
	after, err := d.counters()
	if err != nil {
		return runStats{}, err
	}
	runs := uint64(attr.Repeat)
	if !direct {
		runs = after.runs - before.runs
		if runs != uint64(attr.Repeat) {
			return runStats{}, fmt.Errorf("bench run %s: driver counted %d runs, want %d: %w", d.target, runs, attr.Repeat, ErrBenchCheck)
		}
	}
	for i := range benchBenchStatBENCH_SINK_PACKETS {
		if n := after.stats[i] - before.stats[i]; n != 0 {
			return runStats{}, fmt.Errorf("bench run %s: driver counted %d %s: %w", d.target, n, benchStatName(i), ErrBenchCheck)
		}
	}
	return runStats{runs: runs, wall: wall}, nil
}

// program writes frame and the vary settings to the driver's input map,
// keeping the run counter going so varied flows never repeat across calls.
func (d *BenchDriver) program(frame []byte, vary bool, cycle uint32) error {
	var in benchBenchFrame
	if err := d.objs.BenchInput.Lookup(uint32(0), &in); err != nil {
		return fmt.Errorf("read bench input: %w", err)
	}
	runs := in.Runs
	in = benchBenchFrame{Runs: runs, Len: uint32(len(frame))}
	copy(in.Data[:], frame)
	if vary {
		off, err := varyOffsets(frame)
		if err != nil {
			return fmt.Errorf("bench vary: %w", err)
		}
		in.Flags = benchFVary
		in.VaryCycle = cycle
		in.AddrOff, in.PortOff = off.addr, off.port
		in.IpCsumOff, in.L4CsumOff = off.ipCsum, off.l4Csum
		word := func(o uint16) uint16 { return binary.BigEndian.Uint16(frame[o:]) }
		in.AddrBase, in.PortBase, in.IpCsumBase = word(off.addr), word(off.port), word(off.ipCsum)
		if off.l4Csum != 0 {
			in.L4CsumBase = word(off.l4Csum)
		}
	}
	if err := d.objs.BenchInput.Update(uint32(0), &in, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("write bench input: %w", err)
	}
	return nil
}

// maxInterrupts bounds the attempts of a test run that signals interrupt.
const maxInterrupts = 20

// benchFVary mirrors BENCH_F_VARY.
const benchFVary = 1

type benchCounters struct {
	runs  uint64
	stats [benchBenchStatBENCH_STAT_MAX]uint64
}

// counters reads the driver's run counter and its per-CPU stats, summed.
func (d *BenchDriver) counters() (benchCounters, error) {
	var c benchCounters
	var in benchBenchFrame
	if err := d.objs.BenchInput.Lookup(uint32(0), &in); err != nil {
		return c, fmt.Errorf("read bench input: %w", err)
	}
	c.runs = in.Runs
	for i := range benchBenchStatBENCH_STAT_MAX {
		var per []uint64
		if err := d.objs.BenchStats.Lookup(uint32(i), &per); err != nil {
			return c, fmt.Errorf("read bench stats: %w", err)
		}
		for _, v := range per {
			c.stats[i] += v
		}
	}
	return c, nil
}

func benchStatName(s benchBenchStat) string {
	switch s {
	case benchBenchStatBENCH_ERR_CONFIG:
		return "config errors"
	case benchBenchStatBENCH_ERR_ADJUST:
		return "head adjust failures"
	case benchBenchStatBENCH_ERR_STORE:
		return "store failures"
	case benchBenchStatBENCH_ERR_TAIL_CALL:
		return "failed tail calls"
	case benchBenchStatBENCH_SINK_PACKETS:
		return "sink packets"
	}
	return fmt.Sprintf("bench stat %d", uint32(s))
}

// fieldOffsets locates the words bench_vary rewrites.
type fieldOffsets struct {
	addr, port, ipCsum, l4Csum uint16
}

// varyOffsets parses Ethernet (one 802.1Q/802.1ad tag allowed), IPv4 and
// TCP or UDP in frame and returns where the low half of the source address,
// the source port and the two checksums are. l4Csum is 0 for a UDP datagram
// sent without a checksum.
func varyOffsets(frame []byte) (fieldOffsets, error) {
	l3 := 14
	if len(frame) < l3 {
		return fieldOffsets{}, errors.New("frame shorter than an Ethernet header")
	}
	etype := binary.BigEndian.Uint16(frame[12:])
	if etype == 0x8100 || etype == 0x88a8 {
		l3 += 4
		if len(frame) < l3 {
			return fieldOffsets{}, errors.New("truncated VLAN tag")
		}
		etype = binary.BigEndian.Uint16(frame[16:])
	}
	if etype != 0x0800 {
		return fieldOffsets{}, fmt.Errorf("ethertype %#04x is not IPv4", etype)
	}
	if len(frame) < l3+20 || frame[l3]>>4 != 4 {
		return fieldOffsets{}, errors.New("no IPv4 header")
	}
	ihl := int(frame[l3]&0x0f) * 4
	l4 := l3 + ihl
	off := fieldOffsets{addr: uint16(l3 + 14), port: uint16(l4), ipCsum: uint16(l3 + 10)}
	switch proto := frame[l3+9]; proto {
	case 6:
		if len(frame) < l4+20 {
			return fieldOffsets{}, errors.New("truncated TCP header")
		}
		off.l4Csum = uint16(l4 + 16)
	case 17:
		if len(frame) < l4+8 {
			return fieldOffsets{}, errors.New("truncated UDP header")
		}
		if binary.BigEndian.Uint16(frame[l4+6:]) != 0 {
			off.l4Csum = uint16(l4 + 6)
		}
	default:
		return fieldOffsets{}, fmt.Errorf("IPv4 protocol %d is neither TCP nor UDP", proto)
	}
	return off, nil
}

// BenchSink is bench_sink attached to the receiving end of a live run. It
// lets a veth peer accept XDP_TX frames and counts them.
type BenchSink struct {
	link  link.Link
	stats *ebpf.Map
}

// AttachSink attaches the driver's sink program in native mode to ifindex,
// an interface in the calling thread's network namespace.
func (d *BenchDriver) AttachSink(ifindex int) (*BenchSink, error) {
	l, err := link.AttachXDP(link.XDPOptions{Program: d.objs.BenchSink, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		return nil, fmt.Errorf("attach bench sink to ifindex %d: %w", ifindex, err)
	}
	return &BenchSink{link: l, stats: d.objs.BenchStats}, nil
}

// Packets returns the frames the sink has seen, summed over CPUs.
func (s *BenchSink) Packets() (uint64, error) {
	var per []uint64
	if err := s.stats.Lookup(uint32(benchBenchStatBENCH_SINK_PACKETS), &per); err != nil {
		return 0, fmt.Errorf("read sink packets: %w", err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}

// Close detaches the sink.
func (s *BenchSink) Close() error {
	if err := s.link.Close(); err != nil {
		return fmt.Errorf("detach bench sink: %w", err)
	}
	return nil
}

// progRunAttr is the BPF_PROG_TEST_RUN member of union bpf_attr. The
// system call is made here rather than through ebpf.Program.Run, which
// does not report the kernel's duration together with an output buffer, a
// context or live-frames flags.
type progRunAttr struct {
	ProgFD      uint32
	Retval      uint32
	DataSizeIn  uint32
	DataSizeOut uint32
	DataIn      uint64
	DataOut     uint64
	Repeat      uint32
	Duration    uint32
	CtxSizeIn   uint32
	CtxSizeOut  uint32
	CtxIn       uint64
	CtxOut      uint64
	Flags       uint32
	CPU         uint32
	BatchSize   uint32
	_           uint32
}

// progTestRun runs prog once per attr.Repeat on data with BPF_PROG_TEST_RUN.
//
// Signals are blocked on the calling thread for the duration: the kernel
// ends a test run early with EINTR when one is pending, after an unknown
// number of runs that the counters of the program under test keep, and
// Go's runtime signals its threads often (goroutine preemption). Blocked,
// they are delivered when the call returns.
func progTestRun(prog *ebpf.Program, attr *progRunAttr, data, ctx, out []byte) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^all.Val[i]
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, &old); err != nil {
		return fmt.Errorf("block signals: %w", err)
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)

	var pin runtime.Pinner
	defer pin.Unpin()
	ptr := func(b []byte) uint64 {
		if len(b) == 0 {
			return 0
		}
		pin.Pin(&b[0])
		return uint64(uintptr(unsafe.Pointer(&b[0])))
	}
	attr.ProgFD = uint32(prog.FD())
	attr.DataIn, attr.DataSizeIn = ptr(data), uint32(len(data))
	attr.DataOut, attr.DataSizeOut = ptr(out), uint32(len(out))
	attr.CtxIn, attr.CtxSizeIn = ptr(ctx), uint32(len(ctx))
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(attr)), unsafe.Sizeof(*attr))
	if errno != 0 {
		return fmt.Errorf("BPF_PROG_TEST_RUN: %w", errno)
	}
	return nil
}
