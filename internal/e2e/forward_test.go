package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/controlplane/lab/labnet"
	"github.com/xdplb/xdplb/internal/packet"
	"github.com/xdplb/xdplb/internal/testenv"
	"github.com/xdplb/xdplb/loader"
)

// The addresses of the forwarding test: one /24 for the hosts, the VIPs in
// the next /24, routed on-link by the client so it asks ARP for them and
// the director, which holds them on eth0, answers.
var (
	clientAddr = netip.MustParsePrefix("198.18.0.2/24")
	dirAddr    = netip.MustParsePrefix("198.18.0.10/24")
	beAddr     = netip.MustParsePrefix("198.18.0.21/24")
	vipNet     = netip.MustParsePrefix("198.18.1.0/24")
	vipDR      = loader.VIP{Addr: netip.MustParseAddr("198.18.1.100"), Port: 80, Proto: loader.TCP}
	vipTUN     = loader.VIP{Addr: netip.MustParseAddr("198.18.1.101"), Port: 80, Proto: loader.TCP}
)

// forwardTopo is a client, a director and a backend on one bridge.
type forwardTopo struct {
	net               *labnet.Net
	client, dir, be   *labnet.Host
	bal               *loader.Balancer
	decap             *loader.Decap
	entryDR, entryTUN loader.VIPEntry
	backendName       string
}

// uniquePrefix returns a namespace name prefix no other test run uses.
func uniquePrefix(t *testing.T) string {
	t.Helper()
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "xe" + string(b) + "-"
}

// testLogger sends the loader's and control plane's logs to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newForwardTopo builds the topology, attaches the balancer to the
// director's eth0 and decap to the backend's, programs both VIPs through
// the control plane, and starts the backend's TCP server. Both veth traps
// are handled here: the client sends with transmit checksum offload off,
// and the switch port facing the director runs a native XDP program that
// passes everything, without which it would drop the director's XDP_TX
// frames.
func newForwardTopo(t *testing.T) *forwardTopo {
	t.Helper()
	testenv.Privileged(t)
	log := testLogger(t)
	prefix := uniquePrefix(t)
	pinRoot := filepath.Join(loader.DefaultPinRoot+"-e2e", prefix)
	t.Cleanup(func() {
		os.RemoveAll(pinRoot)
		os.Remove(filepath.Dir(pinRoot)) // only when no other run uses it
	})

	n, err := labnet.New(prefix)
	must(t, err)
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("remove topology: %v", err)
		}
		if left, _ := labnet.List(prefix); len(left) > 0 {
			t.Errorf("namespaces left behind: %v", left)
		}
	})
	tp := &forwardTopo{net: n, backendName: "backend-1"}
	tp.client, err = n.Host("cl", clientAddr)
	must(t, err)
	tp.dir, err = n.Host("dir", dirAddr,
		netip.PrefixFrom(vipDR.Addr, 32), netip.PrefixFrom(vipTUN.Addr, 32))
	must(t, err)
	tp.be, err = n.Host("be", beAddr)
	must(t, err)

	must(t, tp.client.AddRoute(vipNet, labnet.HostLink, netip.Addr{}))
	must(t, tp.client.TxChecksumOff(labnet.HostLink))
	// The backend holds the VIPs on lo and never answers ARP for them.
	for _, v := range []loader.VIP{vipDR, vipTUN} {
		must(t, tp.be.AddAddr("lo", netip.PrefixFrom(v.Addr, 32)))
	}
	for _, s := range []string{"all", labnet.HostLink} {
		must(t, tp.be.Sysctl("net.ipv4.conf."+s+".arp_ignore", "1"))
		must(t, tp.be.Sysctl("net.ipv4.conf."+s+".arp_announce", "2"))
	}

	must(t, n.Switch.Do(func() error {
		d, err := loader.AttachDecap(tp.dir.Port, loader.ModeNative, filepath.Join(pinRoot, "sw"), nil, log)
		if err == nil {
			d.Close()
		}
		return err
	}))
	must(t, tp.dir.Do(func() error {
		b, info, err := loader.Attach(labnet.HostLink, loader.ModeNative, loader.DefaultOptions(), filepath.Join(pinRoot, "dir"), log)
		if err != nil {
			return err
		}
		tp.bal = b
		if info.Mode != loader.ModeNative {
			return fmt.Errorf("attached in %s mode, want native", info.Mode)
		}
		return nil
	}))
	t.Cleanup(func() { tp.bal.Close() })
	must(t, tp.be.Do(func() error {
		var err error
		tp.decap, err = loader.AttachDecap(labnet.HostLink, loader.ModeNative, filepath.Join(pinRoot, "be"), nil, log)
		return err
	}))
	t.Cleanup(func() { tp.decap.Close() })

	prog := controlplane.NewProgrammer(tp.bal, log)
	for _, s := range []struct {
		vip   loader.VIP
		fwd   loader.Forwarding
		entry *loader.VIPEntry
	}{{vipDR, loader.ForwardDR, &tp.entryDR}, {vipTUN, loader.ForwardTUN, &tp.entryTUN}} {
		r, err := prog.Apply(controlplane.Service{
			VIP:       s.vip,
			Config:    loader.VIPConfig{Forwarding: s.fwd},
			Scheduler: controlplane.SchedulerMaglev,
			Backends: []controlplane.Backend{{
				Addr: beAddr.Addr(), Weight: 1, MAC: tp.be.MAC, State: loader.StateActive,
			}},
		})
		must(t, err)
		*s.entry = r.VIP
	}
	tp.serve(t)
	return tp
}

// serve runs a TCP server on port 80 in the backend namespace: it reads
// one line and answers with its name and that line.
func (tp *forwardTopo) serve(t *testing.T) {
	t.Helper()
	var ln net.Listener
	must(t, tp.be.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", ":80")
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%s: %s", tp.backendName, line)
			}()
		}
	}()
}

// exchange connects from the client to v, sends msg and reads the answer
// until the backend closes. It returns the answer and the client's end.
func (tp *forwardTopo) exchange(t *testing.T, v loader.VIP, msg string) (string, netip.AddrPort) {
	t.Helper()
	var answer []byte
	var local netip.AddrPort
	err := tp.client.Do(func() error {
		d := net.Dialer{Timeout: 3 * time.Second}
		c, err := d.Dial("tcp4", netip.AddrPortFrom(v.Addr, v.Port).String())
		if err != nil {
			return err
		}
		defer c.Close()
		local = c.LocalAddr().(*net.TCPAddr).AddrPort()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, msg); err != nil {
			return err
		}
		answer, err = io.ReadAll(c)
		return err
	})
	if err != nil {
		t.Fatalf("TCP exchange with %s: %v", v, err)
	}
	return string(answer), local
}

// ipPacket is one captured IPv4 packet with the Ethernet header it came in.
type ipPacket struct {
	eth packet.Ethernet
	ip  packet.IPv4
	tcp *packet.TCP // nil for IPIP
	raw []byte      // the IPv4 packet, header to total length
}

// tcpPackets returns, in capture order, the frames of the given direction
// that carry TCP from src to dst.
func tcpPackets(t *testing.T, frames []frame, out bool, src, dst netip.AddrPort) []ipPacket {
	t.Helper()
	var got []ipPacket
	for _, f := range frames {
		if f.out != out {
			continue
		}
		d, err := packet.Decode(f.data)
		if err != nil || d.IP == nil || d.TCP == nil {
			continue
		}
		if d.IP.Src != src.Addr() || d.IP.Dst != dst.Addr() || d.TCP.SrcPort != src.Port() || d.TCP.DstPort != dst.Port() {
			continue
		}
		got = append(got, ipPacket{eth: d.Eth, ip: *d.IP, tcp: d.TCP, raw: f.data[d.IPOffset : d.IPOffset+int(d.IP.TotalLen)]})
	}
	return got
}

// ipipPackets returns the frames of the given direction that carry IPIP
// to dst.
func ipipPackets(t *testing.T, frames []frame, out bool, dst netip.Addr) []ipPacket {
	t.Helper()
	var got []ipPacket
	for _, f := range frames {
		if f.out != out {
			continue
		}
		d, err := packet.Decode(f.data)
		if err != nil || d.IP == nil || d.IP.Protocol != 4 || d.IP.Dst != dst {
			continue
		}
		got = append(got, ipPacket{eth: d.Eth, ip: *d.IP, raw: f.data[d.IPOffset : d.IPOffset+int(d.IP.TotalLen)]})
	}
	return got
}

func checkEthernet(t *testing.T, what string, e packet.Ethernet, dst, src net.HardwareAddr) {
	t.Helper()
	if !bytes.Equal(e.Dst, dst) || !bytes.Equal(e.Src, src) || e.EtherType != packet.EtherTypeIPv4 || len(e.VLANs) != 0 {
		t.Errorf("%s: Ethernet %s -> %s type %#04x, want %s -> %s type 0x0800", what, e.Src, e.Dst, e.EtherType, src, dst)
	}
}

// checkRepliesDirect checks that every packet the client received from v
// came straight from the backend: its source MAC is the backend's.
func (tp *forwardTopo) checkRepliesDirect(t *testing.T, frames []frame, v loader.VIP, local netip.AddrPort) {
	t.Helper()
	replies := tcpPackets(t, frames, false, netip.AddrPortFrom(v.Addr, v.Port), local)
	if len(replies) == 0 {
		t.Fatalf("the client captured no reply from %s", v)
	}
	for i, r := range replies {
		if !bytes.Equal(r.eth.Src, tp.be.MAC) {
			t.Errorf("reply %d reached the client from %s, want straight from the backend %s", i, r.eth.Src, tp.be.MAC)
		}
	}
}

const (
	quietFor = 300 * time.Millisecond
	waitMax  = 3 * time.Second
)

// TestForwardRealTCP sends real TCP from a client namespace to both kinds
// of VIP through the balancer attached to the director's veth, and checks
// the frames the backend namespace receives against the frames the client
// sent, byte for byte.
func TestForwardRealTCP(t *testing.T) {
	tp := newForwardTopo(t)

	t.Run("dr", func(t *testing.T) {
		before, err := tp.bal.Stats()
		must(t, err)
		cc := startCapture(t, tp.client.NS, labnet.HostLink)
		bc := startCapture(t, tp.be.NS, labnet.HostLink)

		answer, local := tp.exchange(t, vipDR, "hello dr\n")
		if want := tp.backendName + ": hello dr\n"; answer != want {
			t.Errorf("answer %q, want %q", answer, want)
		}
		vip := netip.AddrPortFrom(vipDR.Addr, vipDR.Port)
		clientFrames := cc.frames(quietFor, waitMax)
		sent := tcpPackets(t, clientFrames, true, local, vip)
		got := tcpPackets(t, bc.frames(quietFor, waitMax), false, local, vip)
		if len(sent) < 4 || sent[0].tcp.Flags != packet.TCPSyn {
			t.Fatalf("the client sent %d packets to %s, want a SYN first and at least 4", len(sent), vip)
		}
		if len(got) != len(sent) {
			t.Fatalf("backend received %d packets of the connection, client sent %d", len(got), len(sent))
		}
		for i := range sent {
			what := fmt.Sprintf("packet %d", i)
			checkEthernet(t, what, got[i].eth, tp.be.MAC, tp.dir.MAC)
			if !bytes.Equal(got[i].raw, sent[i].raw) {
				t.Errorf("%s differs from what the client sent (want sent, got received):\n%s", what, packet.Diff(sent[i].raw, got[i].raw))
			}
			if !packet.TCPChecksumOK(got[i].ip.Src, got[i].ip.Dst, got[i].raw[got[i].ip.IHL*4:]) {
				t.Errorf("%s arrived with a bad TCP checksum", what)
			}
		}
		tp.checkRepliesDirect(t, clientFrames, vipDR, local)

		after, err := tp.bal.Stats()
		must(t, err)
		n := uint64(len(sent))
		if d := after.Reasons[loader.ReasonTxDR] - before.Reasons[loader.ReasonTxDR]; d != n {
			t.Errorf("tx_dr counted %d packets, want %d", d, n)
		}
		if d := after.VIPs[tp.entryDR.Index].Packets - before.VIPs[tp.entryDR.Index].Packets; d != n {
			t.Errorf("VIP %s counted %d packets, want %d", vipDR, d, n)
		}
	})

	t.Run("tun", func(t *testing.T) {
		before, err := tp.bal.Stats()
		must(t, err)
		decapBefore, err := tp.decap.Stats()
		must(t, err)
		cc := startCapture(t, tp.client.NS, labnet.HostLink)
		wc := startCapture(t, tp.net.Switch, tp.be.Port) // the wire into the backend
		bc := startCapture(t, tp.be.NS, labnet.HostLink) // after decap

		answer, local := tp.exchange(t, vipTUN, "hello tun\n")
		if want := tp.backendName + ": hello tun\n"; answer != want {
			t.Errorf("answer %q, want %q", answer, want)
		}
		vip := netip.AddrPortFrom(vipTUN.Addr, vipTUN.Port)
		clientFrames := cc.frames(quietFor, waitMax)
		sent := tcpPackets(t, clientFrames, true, local, vip)
		if len(sent) < 4 || sent[0].tcp.Flags != packet.TCPSyn {
			t.Fatalf("the client sent %d packets to %s, want a SYN first and at least 4", len(sent), vip)
		}

		// On the wire: IPIP from the director to the backend, the
		// client's packet inside, unchanged.
		wire := ipipPackets(t, wc.frames(quietFor, waitMax), true, beAddr.Addr())
		if len(wire) != len(sent) {
			t.Fatalf("%d IPIP packets went to the backend, the client sent %d", len(wire), len(sent))
		}
		for i, w := range wire {
			what := fmt.Sprintf("IPIP packet %d", i)
			checkEthernet(t, what, w.eth, tp.be.MAC, tp.dir.MAC)
			in := sent[i]
			want := packet.IPIPPacket(packet.IPv4{
				TOS: in.ip.TOS, ID: in.ip.ID, DF: in.ip.DF, TTL: 64, Protocol: 4,
				Src: dirAddr.Addr(), Dst: beAddr.Addr(),
			}, in.raw)
			if !bytes.Equal(w.raw, want) {
				t.Errorf("%s (want, got):\n%s", what, packet.Diff(want, w.raw))
			}
			if !packet.ChecksumOK(w.raw[:20]) {
				t.Errorf("%s: outer header checksum is wrong", what)
			}
		}

		// After decap, the backend's stack sees the client's packet.
		got := tcpPackets(t, bc.frames(quietFor, waitMax), false, local, vip)
		if len(got) != len(sent) {
			t.Fatalf("backend's stack received %d packets of the connection, client sent %d", len(got), len(sent))
		}
		for i := range sent {
			what := fmt.Sprintf("decapsulated packet %d", i)
			checkEthernet(t, what, got[i].eth, tp.be.MAC, tp.dir.MAC)
			if !bytes.Equal(got[i].raw, sent[i].raw) {
				t.Errorf("%s differs from what the client sent (want sent, got received):\n%s", what, packet.Diff(sent[i].raw, got[i].raw))
			}
		}
		tp.checkRepliesDirect(t, clientFrames, vipTUN, local)

		n := uint64(len(sent))
		after, err := tp.bal.Stats()
		must(t, err)
		if d := after.Reasons[loader.ReasonTxTUN] - before.Reasons[loader.ReasonTxTUN]; d != n {
			t.Errorf("tx_tun counted %d packets, want %d", d, n)
		}
		if d := after.VIPs[tp.entryTUN.Index].Packets - before.VIPs[tp.entryTUN.Index].Packets; d != n {
			t.Errorf("VIP %s counted %d packets, want %d", vipTUN, d, n)
		}
		decapAfter, err := tp.decap.Stats()
		must(t, err)
		if d := decapAfter[loader.ReasonDecapOK] - decapBefore[loader.ReasonDecapOK]; d != n {
			t.Errorf("decap_ok counted %d packets, want %d", d, n)
		}
	})
}
