package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/lab"
	"github.com/xdplb/xdplb/controlplane/lab/labnet"
	"github.com/xdplb/xdplb/internal/packet"
	"github.com/xdplb/xdplb/internal/testenv"
	"github.com/xdplb/xdplb/loader"
)

// margin is what a measured time may exceed its protocol bound by: the
// lab polls every 10ms, and a loaded 2-core CI machine schedules late.
const margin = 300 * time.Millisecond

// built is the xdplb binary the lab's directors and backends run, built
// once for the package's tests by the first that needs it.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func buildXdplb(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "xdplb-e2e-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "xdplb")
		out, err := exec.Command("go", "build", "-o", built.bin, "github.com/xdplb/xdplb/cmd/xdplb").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build xdplb: %w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// upLab brings a lab of topo up under a prefix of its own, waits until it
// works, and removes it when the test ends, showing the daemons' logs if
// the test failed.
func upLab(t *testing.T, topo lab.Topology) *lab.Lab {
	t.Helper()
	testenv.Privileged(t)
	bin := buildXdplb(t)
	prefix := uniquePrefix(t)
	o := lab.Options{
		Prefix:  prefix,
		RunDir:  t.TempDir(),
		PinRoot: filepath.Join(loader.DefaultPinRoot+"-e2e", prefix+"lab"),
		Binary:  bin,
		Log:     testLogger(t),
	}
	t.Cleanup(func() { os.Remove(filepath.Dir(o.PinRoot)) })
	ctx := context.Background()
	l, err := lab.Up(ctx, topo, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range l.Directors {
				b, _ := os.ReadFile(d.Paths.Log)
				t.Logf("log of %s's daemon:\n%s", d.Spec.Name, lastLines(b, 60))
			}
		}
		if _, err := lab.Down(o); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if left, _ := labnet.List(prefix); len(left) > 0 {
			t.Errorf("namespaces left behind: %v", left)
		}
		if _, err := os.Stat(o.PinRoot); err == nil {
			t.Errorf("pins left behind under %s", o.PinRoot)
		}
	})
	if err := l.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return l
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// labTopology is the lab of `xdplb lab`, with VRRP when the daemon runs
// it. Fifth backend address left free for the test that adds one.
func labTopology() lab.Topology {
	return lab.DefaultTopology()
}

// TestLab checks, on real TCP connections through the lab, the promises
// an operator buys xdplb for. The subtests share one lab and run in
// order; the last one kills the master director.
func TestLab(t *testing.T) {
	l := upLab(t, labTopology())
	ctx := context.Background()
	topo := &l.Topology

	t.Run("spread follows the weights", func(t *testing.T) {
		for _, s := range topo.Services {
			sp := l.MeasureSpread(ctx, s, 600, 8)
			if sp.Failed > 0 {
				t.Errorf("%s: %d of %d requests failed: %v", s.Name, sp.Failed, sp.Requests, sp.Errors)
			}
			if u := sp.Unknown(topo.Backends); len(u) > 0 {
				t.Errorf("%s: answered by unknown backends %v", s.Name, u)
			}
			for _, sh := range sp.Shares(topo.Backends) {
				t.Logf("%s: %s weight %d: %d answers, expected %.0f ± %.0f", s.Name, sh.Backend, sh.Weight, sh.Got, sh.Expected, sh.Tolerance)
				if sh.Got == 0 || !sh.OK() {
					t.Errorf("%s: %s answered %d of %d, expected %.0f ± %.0f from the weights", s.Name, sh.Backend, sh.Got, sp.Requests, sh.Expected, sh.Tolerance)
				}
			}
		}
	})

	t.Run("replies go straight to the client", func(t *testing.T) {
		cc := startCapture(t, l.Client.NS, labnet.HostLink)
		for _, s := range topo.Services {
			if sp := l.MeasureSpread(ctx, s, 30, 1); sp.Failed > 0 {
				t.Fatalf("%s: %d requests failed: %v", s.Name, sp.Failed, sp.Errors)
			}
		}
		backendMACs := map[string]bool{}
		for _, b := range l.Backends {
			backendMACs[b.Host.MAC.String()] = true
		}
		vips := map[netip.Addr]bool{}
		for _, v := range topo.VIPs() {
			vips[v] = true
		}
		// Every request has had its answer; the last ACKs and FINs are
		// in flight for a moment. VRRP adverts never let the link fall
		// quiet, so wait a fixed time rather than for silence.
		time.Sleep(quietFor)
		replies := 0
		for _, f := range cc.frames(0, 0) {
			d, err := packet.Decode(f.data)
			if f.out || err != nil || d.IP == nil || !vips[d.IP.Src] {
				continue
			}
			replies++
			if !backendMACs[d.Eth.Src.String()] {
				t.Errorf("a reply from %s came from %s, not from a backend", d.IP.Src, d.Eth.Src)
			}
		}
		if replies == 0 {
			t.Errorf("the client captured no reply from a VIP")
		}
	})

	t.Run("health check takes a backend out and back", func(t *testing.T) {
		be := l.Backends[1]
		c := topo.Check
		if err := os.WriteFile(be.HealthFile, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		ts, err := l.WaitBackendAll(ctx, l.Running(), be.Spec.Addr, lab.Out, c.OutBound()+5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range ts {
			t.Logf("%s: %s out after %s (bound %s)", tk.Director.Spec.Name, be.Spec.Name, tk.Took, c.OutBound())
			if tk.Took > c.OutBound()+margin {
				t.Errorf("%s: %s went out after %s, bound fall × interval + interval = %s (+%s)", tk.Director.Spec.Name, be.Spec.Name, tk.Took, c.OutBound(), margin)
			}
		}
		for _, s := range topo.Services {
			sp := l.MeasureSpread(ctx, s, 150, 8)
			if n := sp.Counts[be.Spec.Name]; n > 0 || sp.Failed > 0 {
				t.Errorf("%s: after %s went out, %d new connections reached it and %d failed (%v)", s.Name, be.Spec.Name, n, sp.Failed, sp.Errors)
			}
		}
		if err := os.Remove(be.HealthFile); err != nil {
			t.Fatal(err)
		}
		ts, err = l.WaitBackendAll(ctx, l.Running(), be.Spec.Addr, lab.In, c.InBound()+5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range ts {
			t.Logf("%s: %s back after %s (bound %s)", tk.Director.Spec.Name, be.Spec.Name, tk.Took, c.InBound())
			if tk.Took > c.InBound()+margin {
				t.Errorf("%s: %s came back after %s, bound rise × interval + interval = %s (+%s)", tk.Director.Spec.Name, be.Spec.Name, tk.Took, c.InBound(), margin)
			}
		}
	})

	t.Run("long-lived connections survive every change", func(t *testing.T) {
		testLongLived(t, l)
	})
}

// testLongLived runs 100 long-lived connections, half through each
// service, each sending a request every 100ms, across a sequence of
// changes, and asserts after each that no connection was reset, failed,
// stalled for more than a second, or moved to another backend.
//
// A failover hands the flows to a director that has none of them in its
// flow table and places them by its Maglev table: they keep their
// backends when both directors' tables, which are the same, still place
// them where they were placed. Flows opened before the table changed
// (a backend added, drained, reweighted) may not be, so the daemon
// restart and the crash, which move the VIPs with VRRP, run on a second
// set of connections opened after the last change, from a client address
// no earlier flow used (see lab.Topology.ClientAliases).
func testLongLived(t *testing.T, l *lab.Lab) {
	ctx := context.Background()
	topo := &l.Topology
	if len(topo.ClientAliases) < 1 {
		t.Fatalf("the topology has %d client aliases, the test needs 1", len(topo.ClientAliases))
	}
	lived := newLongLived(t, l, netip.Addr{})
	defer lived.stop()
	lived.check("steady")
	waitAll := func(phase string, addr netip.Addr, want func(lab.BackendView) bool) {
		t.Helper()
		if _, err := l.WaitBackendAll(ctx, l.Running(), addr, want, 10*time.Second); err != nil {
			t.Fatalf("%s: %v", phase, err)
		}
	}

	// Adding a backend, on every director, by a configuration reload.
	spec := lab.BackendSpec{Name: "be4", Addr: netip.MustParseAddr("198.18.0.24"), Weight: 1}
	if _, err := l.AddBackend(spec); err != nil {
		t.Fatal(err)
	}
	topo.Backends = append(topo.Backends, spec)
	if err := l.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	waitAll("add a backend", spec.Addr, lab.In)
	lived.check("add a backend")

	// Draining be1 (weight 0): its connections go on, new ones avoid it.
	drained := topo.Backends[0]
	if n := lived.on(drained.Name); n == 0 {
		t.Fatalf("no long-lived connection is on %s, so draining it would show nothing", drained.Name)
	} else {
		t.Logf("draining %s, which holds %d long-lived connections", drained.Name, n)
	}
	// Closed connections from fixed source ports leave flow entries, some
	// naming be1; after the drain, new connections from the same ports
	// (a client reusing its ports) must be placed by the table, not by
	// those entries.
	const reusedPorts = 48
	before := make(map[string][]string)
	for _, s := range topo.Services {
		before[s.Name] = askFromPorts(t, l, s, reusedPorts)
	}
	topo.Backends[0].Weight = 0
	if err := l.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	waitAll("drain", drained.Addr, lab.Out)
	for _, s := range topo.Services {
		sp := l.MeasureSpreadFrom(ctx, topo.ClientAliases[0], s, 100, 8)
		if n := sp.Counts[drained.Name]; n > 0 || sp.Failed > 0 {
			t.Errorf("drain: %d new connections through %s reached the drained %s, %d failed", n, s.Name, drained.Name, sp.Failed)
		}
		reused := 0
		for i, name := range askFromPorts(t, l, s, reusedPorts) {
			if before[s.Name][i] == drained.Name {
				reused++
			}
			if name == drained.Name {
				t.Errorf("drain: a new connection through %s from port %d, which reached %s before, reached it again", s.Name, reusePort0+i, drained.Name)
			}
		}
		if reused == 0 {
			t.Fatalf("drain: none of %d connections through %s reached %s before the drain, so reusing their ports shows nothing", reusedPorts, s.Name, drained.Name)
		}
		t.Logf("drain: %d of %d reused ports through %s had reached %s before", reused, reusedPorts, s.Name, drained.Name)
	}
	lived.check("drain a backend")

	// A reload that changes a weight: a new table, the same flows.
	topo.Backends[2].Weight = 3
	if err := l.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	waitAll("reload", topo.Backends[2].Addr, func(b lab.BackendView) bool {
		// be3 goes from 2 of 4 to 3 of 5 weight units: 50% to 60%.
		return b.Weight == 3 && b.Share > 0.55
	})
	lived.check("config reload")
	lived.stop()

	// SIGKILL the master's daemon and start it again.
	lived = newLongLived(t, l, topo.ClientAliases[0])
	defer lived.stop()
	master, err := l.TheMaster()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.KillDaemon(master); err != nil {
		t.Fatal(err)
	}
	if err := l.StartDirector(master); err != nil {
		t.Fatal(err)
	}
	var st api.Status
	for deadline := time.Now().Add(10 * time.Second); ; {
		if st, err = master.API().Status(ctx); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the restarted daemon on %s does not answer: %v", master.Spec.Name, err)
	}
	if !st.Adopted {
		t.Errorf("the restarted daemon on %s attached afresh instead of adopting the pinned data plane", master.Spec.Name)
	}
	lived.check("SIGKILL and restart of the master's daemon")

	if !topo.VRRP.Enabled || len(l.Directors) < 2 {
		t.Log("VRRP is off: no failover to test")
		return
	}
	if err := l.WaitReady(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	master, err = l.TheMaster()
	if err != nil {
		t.Fatal(err)
	}
	var backup *lab.Director
	for _, d := range l.Directors {
		if d != master {
			backup = d
		}
	}
	start := time.Now()
	if err := l.Crash(master); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		ok, err := backup.HoldsVIPs(topo.VIPs())
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not take the VIPs within 5s of %s's crash", backup.Spec.Name, master.Spec.Name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	took, bound := time.Since(start), topo.VRRP.MasterDownInterval(backup.Spec.Priority)
	t.Logf("%s took the VIPs %s after %s crashed (bound %s)", backup.Spec.Name, took, master.Spec.Name, bound)
	if took > bound+margin {
		t.Errorf("%s took the VIPs after %s, Master_Down_Interval is %s (+%s)", backup.Spec.Name, took, bound, margin)
	}
	lived.check("master director killed")
}

// longLived is 100 long-lived connections, half through each service.
type longLived struct {
	t     *testing.T
	conns []*lab.Conns
	seen  lab.ConnsReport
}

func newLongLived(t *testing.T, l *lab.Lab, src netip.Addr) *longLived {
	t.Helper()
	ll := &longLived{t: t}
	for _, s := range l.Topology.Services {
		c, err := l.StartConnsFrom(context.Background(), src, s, 100/len(l.Topology.Services), 100*time.Millisecond)
		if err != nil {
			ll.stop()
			t.Fatal(err)
		}
		ll.conns = append(ll.conns, c)
	}
	return ll
}

func (ll *longLived) stop() {
	for _, c := range ll.conns {
		c.Stop()
	}
	ll.conns = nil
}

// on returns how many connections the named backend answered first.
func (ll *longLived) on(backend string) int {
	n := 0
	for _, c := range ll.conns {
		n += c.Report().Backends[backend]
	}
	return n
}

// check lets every connection make requests for a second after a change,
// then fails the test if any was reset, failed, stalled or moved since the
// last check.
func (ll *longLived) check(phase string) {
	t := ll.t
	t.Helper()
	time.Sleep(time.Second)
	var now lab.ConnsReport
	var failures []string
	for _, c := range ll.conns {
		r := c.Report()
		now.Conns += r.Conns
		now.Requests += r.Requests
		now.Resets += r.Resets
		now.Errors += r.Errors
		now.Stalls += r.Stalls
		now.Moved += r.Moved
		now.MaxLatency = max(now.MaxLatency, r.MaxLatency)
		failures = append(failures, r.Failures...)
	}
	t.Logf("%s: %s", phase, now)
	if now.Requests <= ll.seen.Requests {
		t.Errorf("%s: no request was answered", phase)
	}
	seen := ll.seen
	if now.Resets > seen.Resets || now.Errors > seen.Errors || now.Stalls > seen.Stalls || now.Moved > seen.Moved {
		t.Errorf("%s: %d resets, %d errors, %d stalls over %s, %d moved (first failures: %v)", phase,
			now.Resets-seen.Resets, now.Errors-seen.Errors, now.Stalls-seen.Stalls, lab.StallLimit, now.Moved-seen.Moved, failures)
	}
	ll.seen = now
}

// TestLabBadInput sends a burst of malformed frames at the director that
// holds the VIPs while long-lived connections run: the connections see
// nothing, and the director counts every frame by its reason.
func TestLabBadInput(t *testing.T) {
	topo := labTopology()
	topo.Services = topo.Services[:1]
	l := upLab(t, topo)
	ctx := context.Background()
	master, err := l.TheMaster()
	if err != nil {
		t.Fatal(err)
	}
	dp, err := l.OpenDataplane(master)
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	conns, err := l.StartConns(ctx, topo.Services[0], 20, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer conns.Stop()
	before, err := dp.Balancer().Stats()
	if err != nil {
		t.Fatal(err)
	}

	vip := topo.Services[0].VIP
	client := topo.Client
	eth := packet.Ethernet{Dst: master.Host.MAC, Src: l.Client.MAC, EtherType: packet.EtherTypeIPv4}
	ip := packet.IPv4{TTL: 64, Protocol: packet.ProtoTCP, Src: client, Dst: vip, ID: 7}
	tcp := packet.TCP{SrcPort: 40000, DstPort: 80, Flags: packet.TCPAck, Seq: 1}
	good := packet.Frame(eth, packet.TCPPacket(ip, tcp, []byte("x")))
	ipOff := eth.Len()
	frag := ip
	frag.MF = true
	fragments := packet.Frame(eth, packet.TCPPacket(frag, tcp, []byte("first fragment")))
	// Arbitrary bytes after a unicast Ethernet source and destination,
	// so the bridge delivers them.
	var random [][]byte
	for i := range 20 {
		b := make([]byte, 14+i*7)
		for j := range b {
			b[j] = byte(j*31 + i*17)
		}
		copy(b, master.Host.MAC)
		copy(b[6:], l.Client.MAC)
		random = append(random, b)
	}
	badIPSum := bytes.Clone(packet.Frame(eth, packet.TCPPacket(ip, packet.TCP{SrcPort: 40001, DstPort: 80, Flags: packet.TCPAck}, []byte("y"))))
	badIPSum[ipOff+10] ^= 0xff
	badTCPSum := bytes.Clone(packet.Frame(eth, packet.TCPPacket(ip, packet.TCP{SrcPort: 40002, DstPort: 80, Flags: packet.TCPAck}, []byte("z"))))
	badTCPSum[ipOff+20+16] ^= 0xff
	// A frame for the VIP addressed to a MAC the bridge has not learnt:
	// the bridge floods it to every port, directors included, as a
	// switch does with frames for a director that just died. It is not
	// for this director, which must leave it alone.
	flooded := bytes.Clone(packet.Frame(eth, packet.TCPPacket(ip, packet.TCP{SrcPort: 40003, DstPort: 80, Flags: packet.TCPAck}, []byte("f"))))
	copy(flooded, packet.MustMAC("02:00:5e:10:00:99"))
	// Each kind of frame, how many to send, and the reason it must count.
	kinds := []struct {
		name   string
		frame  []byte
		n      int
		reason loader.Reason
	}{
		{"truncated IPv4 header", good[:ipOff+12], 50, loader.ReasonPassMalformed},
		{"truncated TCP header", good[:ipOff+20+10], 50, loader.ReasonPassMalformed},
		{"total length beyond the frame", withTotalLen(good, ipOff, 1400), 50, loader.ReasonPassMalformed},
		{"first fragment", fragments, 50, loader.ReasonPassFragment},
		{"not IPv4", append(append([]byte(nil), good[:12]...), 0x86, 0xdd, 0x60), 50, loader.ReasonPassNotIPv4},
		// The balancer checks no checksum: it forwards these, and the
		// backend's kernel drops them.
		{"bad IPv4 header checksum", badIPSum, 50, loader.ReasonTxDR},
		{"bad TCP checksum", badTCPSum, 50, loader.ReasonTxDR},
		{"for the VIP, flooded for another host's MAC", flooded, 50, loader.ReasonPassOtherHost},
	}
	sent := map[loader.Reason]uint64{}
	var randomSent int
	err = l.Client.Do(func() error {
		s, err := rawSocket(labnet.HostLink)
		if err != nil {
			return err
		}
		defer s.Close()
		for _, k := range kinds {
			for range k.n {
				if _, err := s.Write(k.frame); err != nil {
					return fmt.Errorf("send %s: %w", k.name, err)
				}
			}
			sent[k.reason] += uint64(k.n)
		}
		for _, f := range random {
			for range 10 {
				if _, err := s.Write(f); err != nil {
					return fmt.Errorf("send random bytes: %w", err)
				}
			}
		}
		randomSent = 10 * len(random)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	after, err := dp.Balancer().Stats()
	if err != nil {
		t.Fatal(err)
	}
	for reason, n := range sent {
		if d := after.Reasons[reason] - before.Reasons[reason]; d < n {
			t.Errorf("%s counted %d, want at least the %d frames sent", reason, d, n)
		}
	}
	// Every frame counts under exactly one reason, so the arbitrary ones
	// show up in the total of all reasons.
	var total, wantTotal uint64
	for r, v := range after.Reasons {
		total += v - before.Reasons[r]
	}
	for _, n := range sent {
		wantTotal += n
	}
	wantTotal += uint64(randomSent)
	if total < wantTotal {
		t.Errorf("the reasons counted %d frames in all, fewer than the %d bad frames sent", total, wantTotal)
	}
	if r := conns.Stop(); !r.Clean() || r.Requests == 0 {
		t.Errorf("long-lived connections during the burst: %s; %v", r, r.Failures)
	} else {
		t.Logf("long-lived connections during the burst: %s", r)
	}
}

// withTotalLen returns a copy of frame whose IPv4 total length (header at
// ipOff) claims n bytes, with the header checksum fixed.
func withTotalLen(frame []byte, ipOff int, n uint16) []byte {
	b := bytes.Clone(frame)
	b[ipOff+2], b[ipOff+3] = byte(n>>8), byte(n)
	b[ipOff+10], b[ipOff+11] = 0, 0
	c := packet.Checksum(b[ipOff : ipOff+20])
	b[ipOff+10], b[ipOff+11] = byte(c>>8), byte(c)
	return b
}

// rawSocket opens an AF_PACKET socket that sends whole frames out of link
// in the calling thread's namespace.
func rawSocket(link string) (*rawConn, error) {
	ifi, err := net.InterfaceByName(link)
	if err != nil {
		return nil, err
	}
	return openRaw(ifi.Index)
}

// TestDemo runs the demo of `make demo` under a prefix of its own: every
// step must behave, and the lab must be gone afterwards.
func TestDemo(t *testing.T) {
	testenv.Privileged(t)
	prefix := uniquePrefix(t)
	o := lab.Options{
		Prefix:  prefix,
		RunDir:  t.TempDir(),
		PinRoot: filepath.Join(loader.DefaultPinRoot+"-e2e", prefix+"lab"),
		Binary:  buildXdplb(t),
	}
	t.Cleanup(func() {
		lab.Down(o)
		os.Remove(filepath.Dir(o.PinRoot))
	})
	var out bytes.Buffer
	err := lab.Demo(context.Background(), &out, lab.DefaultTopology(), o, lab.DemoConfig{Requests: 200})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	for _, want := range []string{"Bring the lab up", "requests through each VIP", "the health check takes it out", "xdplb status", "xdplb stats", "demo passed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if left, _ := labnet.List(prefix); len(left) > 0 {
		t.Errorf("the demo left namespaces behind: %v", left)
	}
	for _, dir := range []string{o.RunDir, o.PinRoot} {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("the demo left %s behind", dir)
		}
	}
}

// reusePort0 is the first client source port askFromPorts binds: below
// the kernel's ephemeral range (32768-60999 by default), so that none of
// the lab's other connections, which take ephemeral ports, holds one of
// them.
const reusePort0 = 22000

// askFromPorts sends one request to s on a new connection from each of the
// client's source ports reusePort0 .. reusePort0+n-1 in turn, and returns
// the backend that answered each. The backend closes first (the client
// sends Connection: close), so the client holds no TIME_WAIT that would
// refuse the port to the next call; SO_REUSEADDR covers the other order.
func askFromPorts(t *testing.T, l *lab.Lab, s lab.ServiceSpec, n int) []string {
	t.Helper()
	names := make([]string, n)
	for i := range n {
		port := reusePort0 + i
		c := &http.Client{
			Transport: &http.Transport{
				DisableKeepAlives: true,
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					var conn net.Conn
					err := l.Client.Do(func() error {
						d := net.Dialer{
							LocalAddr: &net.TCPAddr{IP: l.Topology.Client.AsSlice(), Port: port},
							Control: func(_, _ string, rc syscall.RawConn) error {
								var serr error
								if err := rc.Control(func(fd uintptr) {
									serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
								}); err != nil {
									return err
								}
								return serr
							},
						}
						var err error
						conn, err = d.DialContext(ctx, network, addr)
						return err
					})
					return conn, err
				},
			},
			Timeout: 2 * time.Second,
		}
		name, err := lab.Ask(context.Background(), c, s.URL("/"))
		c.CloseIdleConnections()
		if err != nil {
			t.Fatalf("%s from port %d: %v", s.Name, port, err)
		}
		names[i] = name
	}
	return names
}
