package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/xdplb/xdplb/internal/packet"
	"github.com/xdplb/xdplb/internal/testenv"
)

var (
	benchClientMAC = packet.MustMAC("02:00:00:00:00:01")
	benchOwnMAC    = packet.MustMAC("02:00:00:00:00:02")
)

// benchSYN returns a TCP SYN from src to dst as an Ethernet frame.
func benchSYN(src, dst netip.AddrPort) []byte {
	ip := packet.IPv4{TTL: 64, ID: 7, DF: true, Src: src.Addr(), Dst: dst.Addr()}
	tcp := packet.TCP{SrcPort: src.Port(), DstPort: dst.Port(), Seq: 1, Flags: packet.TCPSyn, Window: 64240}
	return packet.Frame(packet.Ethernet{Dst: benchOwnMAC, Src: benchClientMAC}, packet.TCPPacket(ip, tcp, nil))
}

func newBenchDriver(t *testing.T, target BenchTarget) *BenchDriver {
	t.Helper()
	d, err := NewBenchDriver(target)
	if err != nil {
		t.Fatalf("NewBenchDriver(%s): %+v", target, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func macSwapped(frame []byte) []byte {
	out := bytes.Clone(frame)
	copy(out[0:6], frame[6:12])
	copy(out[6:12], frame[0:6])
	return out
}

// TestBenchDriverRestoresFrame shows why the driver exists: repeated
// naively, the MAC swap undoes itself on every second run; behind the driver
// every run starts from the pristine frame.
func TestBenchDriverRestoresFrame(t *testing.T) {
	testenv.Privileged(t)
	frame := benchSYN(netip.MustParseAddrPort("198.18.0.10:40000"), netip.MustParseAddrPort("198.18.1.100:80"))
	d := newBenchDriver(t, BenchReference(BenchRefMACSwap))

	tests := []struct {
		name    string
		direct  bool
		want    []byte
		wantRun uint64
	}{
		{name: "naive", direct: true, want: frame, wantRun: 4},
		{name: "driver", direct: false, want: macSwapped(frame), wantRun: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Run(frame, BenchOptions{Repeat: 4, Direct: tt.direct})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got.Action != XDPTx {
				t.Errorf("action = %v, want XDP_TX", got.Action)
			}
			if got.Runs != tt.wantRun {
				t.Errorf("runs = %d, want %d", got.Runs, tt.wantRun)
			}
			if !bytes.Equal(tt.want, got.Out) {
				t.Errorf("frame after 4 runs:\nwant % x\ngot  % x", tt.want, got.Out)
			}
			if got.KernelNs == 0 || got.Ns != float64(got.KernelNs)+0.5 {
				t.Errorf("ns/run %.2f, kernel %d: want the kernel's figure + 0.5", got.Ns, got.KernelNs)
			}
		})
	}
}

// TestBenchDriverVary checks the flows bench_vary writes: consecutive runs
// get consecutive (address, port) words counted on from the frame's, the
// checksums stay valid, calls continue the sequence, and Cycle wraps it.
func TestBenchDriverVary(t *testing.T) {
	testenv.Privileged(t)
	src := netip.MustParseAddrPort("198.18.255.250:65534")
	frame := benchSYN(src, netip.MustParseAddrPort("198.18.1.100:80"))
	d := newBenchDriver(t, BenchReference(BenchRefPass))

	type flow struct {
		addr netip.Addr
		port uint16
	}
	run := func(cycle uint32) flow {
		t.Helper()
		res, err := d.Run(frame, BenchOptions{Repeat: 1, Vary: true, Cycle: cycle})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		out := res.Out
		ip, tcp := out[14:34], out[34:]
		if !packet.ChecksumOK(ip) {
			t.Errorf("IPv4 checksum invalid in % x", ip)
		}
		pseudo := append(append(bytes.Clone(ip[12:20]), 0, packet.ProtoTCP), byte(len(tcp)>>8), byte(len(tcp)))
		if !packet.ChecksumOK(pseudo, tcp) {
			t.Errorf("TCP checksum invalid in % x", tcp)
		}
		if !bytes.Equal(frame[34+2:34+16], tcp[2:16]) {
			t.Errorf("TCP header changed beyond the source port: % x", tcp[:20])
		}
		return flow{netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(tcp[0:])}
	}

	// Runs 0, 1, 2 then, with the counter continuing, run 3: the port
	// wraps at 65536 independently of the address word.
	want := []flow{
		{netip.MustParseAddr("198.18.255.250"), 65534},
		{netip.MustParseAddr("198.18.255.250"), 65535},
		{netip.MustParseAddr("198.18.255.250"), 0},
		{netip.MustParseAddr("198.18.255.250"), 1},
	}
	for i, w := range want {
		if got := run(0); got != w {
			t.Errorf("run %d: flow = %v, want %v", i, got, w)
		}
	}
	// Cycle 2: run 4 and 5 map to 0 and 1.
	for i, w := range want[:2] {
		if got := run(2); got != w {
			t.Errorf("cycle run %d: flow = %v, want %v", i, got, w)
		}
	}
}

func TestBenchDriverVaryRejectsNonL4(t *testing.T) {
	testenv.Privileged(t)
	d := newBenchDriver(t, BenchReference(BenchRefPass))
	arp := packet.Frame(packet.Ethernet{Dst: benchOwnMAC, Src: benchClientMAC, EtherType: packet.EtherTypeARP}, make([]byte, 28))
	if _, err := d.Run(arp, BenchOptions{Repeat: 1, Vary: true}); err == nil {
		t.Fatal("Run with Vary on an ARP frame succeeded, want an error")
	}
}

// TestBenchDriverBalancer runs the balancer behind the driver: every run of
// an IPIP-encapsulated new flow is counted as one, which a naive repeat
// cannot achieve (its second run sees an IPIP packet).
func TestBenchDriverBalancer(t *testing.T) {
	testenv.Privileged(t)
	b := loadTest(t, smallOptions())
	if err := b.SetConfig(Config{TunSource: netip.MustParseAddr("198.18.0.1"), IfMAC: benchOwnMAC, MTU: 1500}); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	v := addVIP(t, b, "198.18.1.100:80/tcp", VIPConfig{Forwarding: ForwardTUN})
	setBackend(t, b, testBackend(1, v.Index, "198.18.0.21"))
	if err := b.SetRing(v.Index, ring(b.Options().RingSize, 1)); err != nil {
		t.Fatalf("SetRing: %v", err)
	}
	frame := benchSYN(netip.MustParseAddrPort("198.18.0.10:40000"), netip.MustParseAddrPort("198.18.1.100:80"))
	const runs = 100

	tests := []struct {
		name       string
		opts       BenchOptions
		wantTUN    uint64
		wantNotL4  uint64
		wantNew    uint64
		wantOutLen int
	}{
		// Naively, run 2 on sees run 1's IPIP packet and passes it.
		{name: "naive", opts: BenchOptions{Repeat: runs, Direct: true}, wantTUN: 1, wantNotL4: runs - 1, wantNew: 1},
		{name: "driver", opts: BenchOptions{Repeat: runs, Vary: true}, wantTUN: runs, wantNew: runs, wantOutLen: len(frame) + 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := b.DeleteFlows(func(Flow) bool { return true }); err != nil {
				t.Fatalf("DeleteFlows: %v", err)
			}
			before, err := b.Stats()
			if err != nil {
				t.Fatalf("Stats: %v", err)
			}
			d := newBenchDriver(t, BenchBalancer(b))
			res, err := d.Run(frame, tt.opts)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			after, err := b.Stats()
			if err != nil {
				t.Fatalf("Stats: %v", err)
			}
			if got := after.Reasons[ReasonTxTUN] - before.Reasons[ReasonTxTUN]; got != tt.wantTUN {
				t.Errorf("tx_tun moved by %d, want %d", got, tt.wantTUN)
			}
			if got := after.Reasons[ReasonPassNotL4] - before.Reasons[ReasonPassNotL4]; got != tt.wantNotL4 {
				t.Errorf("pass_not_l4 moved by %d, want %d", got, tt.wantNotL4)
			}
			if got := after.Events[EventFlowNew] - before.Events[EventFlowNew]; got != tt.wantNew {
				t.Errorf("flow_new moved by %d, want %d", got, tt.wantNew)
			}
			if tt.wantOutLen != 0 && len(res.Out) != tt.wantOutLen {
				t.Errorf("output length %d, want %d", len(res.Out), tt.wantOutLen)
			}
		})
	}
}

func TestBenchDriverChecksRuns(t *testing.T) {
	testenv.Privileged(t)
	d := newBenchDriver(t, BenchReference(BenchRefPass))
	// Empty the target slot: the driver counts a failed tail call, which
	// must fail the measurement.
	if err := d.objs.BenchTarget.Delete(uint32(0)); err != nil {
		t.Fatalf("delete target: %v", err)
	}
	frame := benchSYN(netip.MustParseAddrPort("198.18.0.10:40000"), netip.MustParseAddrPort("198.18.1.100:80"))
	_, err := d.Run(frame, BenchOptions{Repeat: 10})
	if !errors.Is(err, ErrBenchCheck) {
		t.Fatalf("Run with no target: err = %v, want ErrBenchCheck", err)
	}
}
