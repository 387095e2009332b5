package netns

import (
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/testenv"
)

// udpExchange sends one datagram from namespace a to dst in namespace b and
// returns what b received and the source address it saw.
func udpExchange(t *testing.T, a, b *NS, dst netip.AddrPort, payload string) (string, netip.AddrPort) {
	t.Helper()
	var conn *net.UDPConn
	err := b.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(dst))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", b.Name, err)
	}
	defer conn.Close()
	err = a.Do(func() error {
		c, err := net.Dial("udp4", dst.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(payload))
		return err
	})
	if err != nil {
		t.Fatalf("send from %s: %v", a.Name, err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, from, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("receive in %s: %v", b.Name, err)
	}
	return string(buf[:n]), from
}

func TestVethBetweenNamespaces(t *testing.T) {
	e := New(t)
	a, b := e.NS("a"), e.NS("b")
	la, lb := e.Veth(a, "va", b, "vb")
	if !strings.HasPrefix(la, e.Prefix()) || !strings.HasPrefix(a.Name, e.Prefix()) {
		t.Errorf("names %s, %s do not start with the prefix %s", la, a.Name, e.Prefix())
	}
	a.AddAddr(la, netip.MustParsePrefix("198.18.0.1/24"))
	b.AddAddr(lb, netip.MustParsePrefix("198.18.0.2/24"))

	got, from := udpExchange(t, a, b, netip.MustParseAddrPort("198.18.0.2:9000"), "hello")
	if got != "hello" || from.Addr() != netip.MustParseAddr("198.18.0.1") {
		t.Errorf("received %q from %v, want \"hello\" from 198.18.0.1", got, from)
	}

	// The link of one namespace is invisible in the other.
	if _, err := b.Netlink().LinkByName(la); err == nil {
		t.Errorf("%s is visible in %s", la, b.Name)
	}
	if len(a.MAC(la)) != 6 {
		t.Errorf("MAC of %s = %v", la, a.MAC(la))
	}
}

func TestBridgeAndNeighbour(t *testing.T) {
	e := New(t)
	a, sw, c := e.NS("a"), e.NS("sw"), e.NS("c")
	la, pa := e.Veth(a, "a", sw, "pa")
	lc, pc := e.Veth(c, "c", sw, "pc")
	e.Bridge(sw, "br", pa, pc)
	a.AddAddr(la, netip.MustParsePrefix("198.18.0.1/24"))
	c.AddAddr(lc, netip.MustParsePrefix("198.18.0.3/24"))
	// A static neighbour entry: a sends without ARP.
	a.SetNeigh(la, netip.MustParseAddr("198.18.0.3"), c.MAC(lc))
	a.AddRoute(netip.MustParsePrefix("198.19.0.0/16"), netip.MustParseAddr("198.18.0.3"))

	got, _ := udpExchange(t, a, c, netip.MustParseAddrPort("198.18.0.3:9000"), "via bridge")
	if got != "via bridge" {
		t.Errorf("received %q, want \"via bridge\"", got)
	}
	neighs, err := a.Netlink().NeighList(a.Link(la).Attrs().Index, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range neighs {
		found = found || (n.IP.String() == "198.18.0.3" && n.HardwareAddr.String() == c.MAC(lc).String())
	}
	if !found {
		t.Errorf("neighbour 198.18.0.3 at %s missing: %v", c.MAC(lc), neighs)
	}
}

func TestExecAndTxChecksum(t *testing.T) {
	e := New(t)
	a := e.NS("a")
	b := e.NS("b")
	la, _ := e.Veth(a, "va", b, "vb")
	a.AddAddr(la, netip.MustParsePrefix("198.18.0.1/24"))

	if on, err := a.TxChecksum(la); err != nil || !on {
		t.Fatalf("TxChecksum before = %v, %v; want on (veth default)", on, err)
	}
	a.DisableTxChecksum(la)
	if on, err := a.TxChecksum(la); err != nil || on {
		t.Errorf("TxChecksum after DisableTxChecksum = %v, %v; want off", on, err)
	}

	// Commands run in the namespace see its links only.
	if p := testenv.Command(t, "ethtool"); p != "" {
		out, err := a.Exec(p, "-k", la)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "tx-checksumming: off") {
			t.Errorf("ethtool -k %s:\n%s\nwant tx-checksumming: off", la, out)
		}
	}
	if p := testenv.Command(t, "ip"); p != "" {
		out, err := a.Exec(p, "-o", "addr", "show")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "198.18.0.1/24") || strings.Contains(out, "eth0") {
			t.Errorf("ip addr in %s:\n%s\nwant 198.18.0.1/24 and no host interfaces", a.Name, out)
		}
	}
	if _, err := a.Exec("/nonexistent/xdplb-test"); err == nil {
		t.Error("Exec of a missing command succeeded")
	}
}

func TestCleanupRemovesNamespaces(t *testing.T) {
	var names []string
	t.Run("topology", func(t *testing.T) {
		e := New(t)
		a, b := e.NS("a"), e.NS("b")
		e.Veth(a, "va", b, "vb")
		names = []string{a.Name, b.Name}
		for _, n := range names {
			if !Exists(n) {
				t.Errorf("namespace %s missing while the test runs", n)
			}
		}
	})
	for _, n := range names {
		if Exists(n) {
			t.Errorf("namespace %s still exists after its test", n)
		}
	}
}

func TestNameTooLong(t *testing.T) {
	e := New(t)
	if got := e.Name("123456789"); len(got) != MaxNameLen {
		t.Errorf("Name = %q, want %d characters", got, MaxNameLen)
	}
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&Env{t: ft, prefix: e.prefix}).Name("1234567890")
	}()
	<-done
	if !ft.failed {
		t.Error("a 16-character name was accepted")
	}
}

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(string, ...any) {
	f.failed = true
	runtime.Goexit()
}
