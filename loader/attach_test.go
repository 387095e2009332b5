package loader

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/netns"
	"github.com/xdplb/xdplb/internal/testenv"
)

// Kernel XDP attach modes as netlink reports them (IFLA_XDP_ATTACHED).
const (
	xdpAttachedDrv = 1
	xdpAttachedSkb = 2
)

// lab is a director namespace with one veth to a peer namespace.
type lab struct {
	env      *netns.Env
	lb, peer *netns.NS
	dev      string // in lb, 198.18.0.1/24
	peerDev  string // in peer, 198.18.0.2/24
	pinRoot  string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	testenv.Privileged(t)
	env := netns.New(t)
	l := &lab{env: env, lb: env.NS("lb"), peer: env.NS("p")}
	l.dev, l.peerDev = env.Veth(l.lb, "d", l.peer, "p")
	l.lb.AddAddr(l.dev, netip.MustParsePrefix("198.18.0.1/24"))
	l.peer.AddAddr(l.peerDev, netip.MustParsePrefix("198.18.0.2/24"))
	l.pinRoot = filepath.Join(bpffsMount, "xdplbtest-"+env.Prefix())
	t.Cleanup(func() {
		Detach(l.dev, l.pinRoot)
		DetachDecap(l.dev, l.pinRoot)
		os.RemoveAll(l.pinRoot)
	})
	return l
}

func (l *lab) attach(mode Mode, opts Options) (*Balancer, AttachInfo, error) {
	var b *Balancer
	var info AttachInfo
	err := l.lb.Do(func() error {
		var err error
		b, info, err = Attach(l.dev, mode, opts, l.pinRoot, nil)
		return err
	})
	return b, info, err
}

func (l *lab) mustAttach(t *testing.T, mode Mode, opts Options) (*Balancer, AttachInfo) {
	t.Helper()
	b, info, err := l.attach(mode, opts)
	if err != nil {
		t.Fatalf("Attach: %+v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b, info
}

// xdp returns what netlink says about the XDP program on the lab device.
func (l *lab) xdp(t *testing.T) *netlink.LinkXdp {
	t.Helper()
	x := l.lb.Link(l.dev).Attrs().Xdp
	if x == nil {
		return &netlink.LinkXdp{}
	}
	return x
}

func progID(t *testing.T, p *ebpf.Program) uint32 {
	t.Helper()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	return uint32(id)
}

// pins lists the files in dir.
func pins(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

var wantPins = []string{"backend_stats", "backends", "config", "event_stats", "flows", "link", "meta", "reason_stats", "rings", "vip_filter", "vip_info", "vip_stats", "vips"}

// sendUDP sends n datagrams from the peer to the director's address.
func (l *lab) sendUDP(t *testing.T, n int) {
	t.Helper()
	err := l.peer.Do(func() error {
		// Unconnected, so an ICMP port unreachable does not fail the
		// next write.
		c, err := net.ListenPacket("udp4", "198.18.0.2:0")
		if err != nil {
			return err
		}
		defer c.Close()
		to := &net.UDPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 9}
		for range n {
			if _, err := c.WriteTo([]byte("xdplb"), to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitReason polls until read() reports at least one packet with reason r.
func waitReason(t *testing.T, r Reason, read func() (map[Reason]uint64, error)) uint64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if s[r] > 0 {
			return s[r]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no packet counted as %s within 5s: %v", r, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAttach(t *testing.T) {
	tests := []struct {
		mode     Mode
		wantMode Mode
		wantXDP  uint8
	}{
		{ModeNative, ModeNative, xdpAttachedDrv},
		{ModeGeneric, ModeGeneric, xdpAttachedSkb},
		{ModeAuto, ModeNative, xdpAttachedDrv}, // veth supports native XDP
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			l := newLab(t)
			opts := Options{MaxVIPs: 8, MaxBackends: 16, MaxFlows: 128, RingSize: 251, HashSeed: 42}
			b, info := l.mustAttach(t, tt.mode, opts)
			dir := filepath.Join(l.pinRoot, l.dev)
			if info.Mode != tt.wantMode || info.Adopted || info.PinDir != dir || info.Memlock == 0 {
				t.Errorf("AttachInfo = %+v, want mode %s, not adopted, pin dir %s, memlock > 0", info, tt.wantMode, dir)
			}
			if got := pins(t, dir); !slices.Equal(wantPins, got) {
				t.Errorf("pins %v, want %v", got, wantPins)
			}
			x := l.xdp(t)
			if !x.Attached || x.ProgId != progID(t, b.Program()) || x.AttachMode != uint32(tt.wantXDP) {
				t.Errorf("netlink XDP = %+v, want program %d attached in mode %d", x, progID(t, b.Program()), tt.wantXDP)
			}

			c, err := b.Config()
			if err != nil {
				t.Fatal(err)
			}
			want := Config{TunSource: netip.MustParseAddr("198.18.0.1"), IfMAC: l.lb.MAC(l.dev), MTU: 1500, TunTTL: 64}
			if fmt.Sprint(want) != fmt.Sprint(c) {
				t.Errorf("config = %+v, want %+v", c, want)
			}

			// The attached program sees real frames.
			l.sendUDP(t, 3)
			waitReason(t, ReasonPassNotVIP, func() (map[Reason]uint64, error) {
				s, err := b.Stats()
				return s.Reasons, err
			})

			e := addVIP(t, b, "198.18.1.100:80/tcp", VIPConfig{Forwarding: ForwardTUN})
			setBackend(t, b, testBackend(1, e.Index, "198.18.0.2"))
			if err := b.SetRing(e.Index, ring(251, 1)); err != nil {
				t.Fatal(err)
			}
			id := progID(t, b.Program())
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}

			// Forwarding outlives the handle.
			if x := l.xdp(t); !x.Attached || x.ProgId != id {
				t.Errorf("after Close: netlink XDP = %+v, want program %d still attached", x, id)
			}

			o, err := Open(l.dev, l.pinRoot)
			if err != nil {
				t.Fatalf("Open: %+v", err)
			}
			defer o.Close()
			if o.Options() != opts || o.Mode() != tt.wantMode {
				t.Errorf("Open: options %+v mode %s, want %+v %s", o.Options(), o.Mode(), opts, tt.wantMode)
			}
			if got := progID(t, o.Program()); got != id {
				t.Errorf("Open: program %d, want the attached %d", got, id)
			}
			if got, err := o.LookupVIP(e.VIP); err != nil || got != e {
				t.Errorf("Open: LookupVIP = %+v, %v; want %+v", got, err, e)
			}
			if r, err := o.Ring(e.Index); err != nil || !slices.Equal(ring(251, 1), r) {
				t.Errorf("Open: ring = %d entries, %v; want the one set before", len(r), err)
			}
			if err := o.SetRing(e.Index, ring(251, 0)); err != nil {
				t.Errorf("Open: SetRing: %v", err)
			}
			if s, err := o.Stats(); err != nil || s.Reasons[ReasonPassNotVIP] == 0 {
				t.Errorf("Open: stats %v, %v; want the pass_not_vip counted before", s.Reasons, err)
			}

			if err := Detach(l.dev, l.pinRoot); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pin directory %s still there after Detach (%v)", dir, err)
			}
			if x := l.xdp(t); x.Attached {
				t.Errorf("after Detach: netlink XDP = %+v, want nothing attached although a handle is still open", x)
			}
			if _, err := Open(l.dev, l.pinRoot); !errors.Is(err, ErrNotAttached) {
				t.Errorf("Open after Detach = %v, want ErrNotAttached", err)
			}
			if err := Detach(l.dev, l.pinRoot); !errors.Is(err, ErrNotAttached) {
				t.Errorf("second Detach = %v, want ErrNotAttached", err)
			}
		})
	}
}

func linkID(t *testing.T, path string) link.ID {
	t.Helper()
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

func TestAttachAdopts(t *testing.T) {
	l := newLab(t)
	opts := smallOptions()
	b1, _ := l.mustAttach(t, ModeNative, opts)
	e := addVIP(t, b1, "198.18.1.100:80/tcp", VIPConfig{})
	setBackend(t, b1, testBackend(3, e.Index, "198.18.0.2"))
	if err := b1.SetRing(e.Index, ring(13, 3, 0)); err != nil {
		t.Fatal(err)
	}
	f := Flow{Src: netip.MustParseAddrPort("198.18.0.9:5000"), Dst: netip.MustParseAddrPort("198.18.1.100:80"), Proto: TCP, BackendID: 3}
	putFlow(t, b1, f, e.Index)
	c := Config{TunSource: netip.MustParseAddr("198.18.0.77"), IfMAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}, MTU: 1400, TunTTL: 10}
	if err := b1.SetConfig(c); err != nil {
		t.Fatal(err)
	}
	linkPath := filepath.Join(l.pinRoot, l.dev, "link")
	oldLink, oldProg := linkID(t, linkPath), progID(t, b1.Program())

	t.Run("other options", func(t *testing.T) {
		o := opts
		o.RingSize = 17
		_, _, err := l.attach(ModeAuto, o)
		if !errors.Is(err, ErrIncompatiblePins) || !strings.Contains(err.Error(), "xdplb detach") {
			t.Errorf("Attach with another ring size = %v, want ErrIncompatiblePins saying to detach", err)
		}
	})
	t.Run("other mode", func(t *testing.T) {
		_, _, err := l.attach(ModeGeneric, opts)
		if !errors.Is(err, ErrIncompatiblePins) || !strings.Contains(err.Error(), "native mode") {
			t.Errorf("Attach in generic mode over native = %v, want ErrIncompatiblePins naming the mode", err)
		}
	})
	if x := l.xdp(t); !x.Attached || x.ProgId != oldProg {
		t.Fatalf("refused attaches changed the interface: %+v, want program %d", x, oldProg)
	}

	b2, info := l.mustAttach(t, ModeAuto, opts)
	if !info.Adopted || info.Mode != ModeNative {
		t.Errorf("AttachInfo = %+v, want adopted in native mode", info)
	}
	newProg := progID(t, b2.Program())
	if newProg == oldProg {
		t.Errorf("program %d not replaced", oldProg)
	}
	if got := linkID(t, linkPath); got != oldLink {
		t.Errorf("link %d replaced by %d: want the same link updated in place", oldLink, got)
	}
	if x := l.xdp(t); !x.Attached || x.ProgId != newProg || x.AttachMode != xdpAttachedDrv {
		t.Errorf("netlink XDP = %+v, want the new program %d in native mode", x, newProg)
	}
	if got, err := b2.LookupVIP(e.VIP); err != nil || got != e {
		t.Errorf("adopted VIP = %+v, %v; want %+v", got, err, e)
	}
	if r, _ := b2.Ring(e.Index); !slices.Equal(ring(13, 3, 0), r) {
		t.Errorf("adopted ring = %v", r)
	}
	if got, err := b2.Backend(3); err != nil || got.Addr != netip.MustParseAddr("198.18.0.2") {
		t.Errorf("adopted backend = %v, %v", got, err)
	}
	var flows []Flow
	b2.Flows(func(x Flow) bool { flows = append(flows, x); return true })
	if len(flows) != 1 || flows[0] != f {
		t.Errorf("adopted flows = %+v, want [%+v]", flows, f)
	}
	got, _ := b2.Config()
	want := c
	want.IfMAC, want.MTU = l.lb.MAC(l.dev), 1500 // refreshed from the interface
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("adopted config = %+v, want %+v", got, want)
	}
	// Both handles share the maps.
	addVIP(t, b2, "198.18.1.101:80/tcp", VIPConfig{})
	if list, _ := b1.VIPs(); len(list) != 2 {
		t.Errorf("old handle sees %d VIPs, want 2 (maps shared)", len(list))
	}
	if got := pins(t, filepath.Join(l.pinRoot, l.dev)); !slices.Equal(wantPins, got) {
		t.Errorf("pins after adopt %v, want %v", got, wantPins)
	}
}

// TestAttachAdoptsRoundedFlows attaches with a flow count that rounds up
// to whole buckets: the same options, and any that round to the same
// table, adopt the pins; others are refused.
func TestAttachAdoptsRoundedFlows(t *testing.T) {
	l := newLab(t)
	opts := smallOptions()
	opts.MaxFlows = 64*FlowWays + 1
	b, _ := l.mustAttach(t, ModeAuto, opts)
	var flows MapInfo
	infos, err := b.MapInfos()
	if err != nil {
		t.Fatal(err)
	}
	for _, mi := range infos {
		if mi.Name == "flows" {
			flows = mi
		}
	}
	if want := uint32(65); flows.MaxEntries != want {
		t.Errorf("flows map holds %d buckets, want %d (MaxFlows %d rounded up to buckets of %d)", flows.MaxEntries, want, opts.MaxFlows, FlowWays)
	}
	b.Close()

	for _, n := range []uint32{opts.MaxFlows, 65 * FlowWays} {
		o := opts
		o.MaxFlows = n
		a, info, err := l.attach(ModeAuto, o)
		if err != nil || !info.Adopted {
			t.Fatalf("Attach with MaxFlows %d over pins made with %d: adopted %v, %+v", n, opts.MaxFlows, info.Adopted, err)
		}
		a.Close()
	}
	o := opts
	o.MaxFlows = 65*FlowWays + 1
	if _, _, err := l.attach(ModeAuto, o); !errors.Is(err, ErrIncompatiblePins) {
		t.Errorf("Attach with MaxFlows %d over pins made with %d = %v, want ErrIncompatiblePins", o.MaxFlows, opts.MaxFlows, err)
	}
	ob, err := Open(l.dev, l.pinRoot)
	if err != nil {
		t.Fatalf("Open: %+v", err)
	}
	ob.Close()
}

func TestReattachAfterLinkLost(t *testing.T) {
	l := newLab(t)
	opts := smallOptions()
	b, _ := l.mustAttach(t, ModeAuto, opts)
	e := addVIP(t, b, "198.18.1.100:80/udp", VIPConfig{})
	b.Close()

	// Removing the link pin with no handle open detaches the program.
	linkPath := filepath.Join(l.pinRoot, l.dev, "link")
	if err := os.Remove(linkPath); err != nil {
		t.Fatal(err)
	}
	// The kernel drops the last reference after an RCU grace period.
	for deadline := time.Now().Add(5 * time.Second); l.xdp(t).Attached; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("program still attached 5s after its link pin was removed: %+v", l.xdp(t))
		}
	}
	_, err := Open(l.dev, l.pinRoot)
	if !errors.Is(err, ErrNotAttached) || !strings.Contains(err.Error(), "xdplb attach "+l.dev) {
		t.Errorf("Open without a link = %v, want ErrNotAttached saying to attach", err)
	}

	b2, info := l.mustAttach(t, ModeAuto, opts)
	if !info.Adopted {
		t.Error("maps were not adopted")
	}
	if _, err := b2.LookupVIP(e.VIP); err != nil {
		t.Errorf("VIP lost: %v", err)
	}
	if x := l.xdp(t); !x.Attached || x.ProgId != progID(t, b2.Program()) {
		t.Errorf("netlink XDP = %+v, want the new program attached", x)
	}
}

func TestAttachErrors(t *testing.T) {
	l := newLab(t)
	tests := []struct {
		name    string
		attach  func() error
		wantErr error
		want    string
	}{
		{"unknown interface", func() error {
			return l.lb.Do(func() error {
				_, _, err := Attach("nosuchdev0", ModeAuto, smallOptions(), l.pinRoot, nil)
				return err
			})
		}, ErrUnknownInterface, "ip link show"},
		{"not bpffs", func() error {
			dir := t.TempDir()
			return l.lb.Do(func() error {
				_, _, err := Attach(l.dev, ModeAuto, smallOptions(), dir, nil)
				return err
			})
		}, ErrNoBPFFS, "mount -t bpf"},
		{"bad options", func() error {
			_, _, err := l.attach(ModeAuto, Options{MaxVIPs: 1, MaxBackends: 2, MaxFlows: 1, RingSize: 9})
			return err
		}, ErrInvalidOptions, "not prime"},
		{"open not attached", func() error {
			_, err := Open(l.dev, l.pinRoot)
			return err
		}, ErrNotAttached, "xdplb attach " + l.dev},
		{"detach not attached", func() error { return Detach(l.dev, l.pinRoot) }, ErrNotAttached, "nothing"},
		{"open decap not attached", func() error {
			_, err := OpenDecap(l.dev, l.pinRoot)
			return err
		}, ErrNotAttached, "xdplb decap attach " + l.dev},
		{"detach decap not attached", func() error { return DetachDecap(l.dev, l.pinRoot) }, ErrNotAttached, "nothing"},
		{"not root", func() error { return checkRoot("attach", 1000) }, ErrNotRoot, "sudo"},
		{"no BTF", func() error { return checkBTF("/nonexistent/vmlinux") }, ErrNoBTF, "CONFIG_DEBUG_INFO_BTF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.attach()
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %v saying %q", err, tt.wantErr, tt.want)
			}
		})
	}
	if x := l.xdp(t); x.Attached {
		t.Errorf("a failed attach left a program: %+v", x)
	}
	if _, err := os.Stat(filepath.Join(l.pinRoot, l.dev)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed attach left pins (%v)", err)
	}
}

func TestAttachBusyInterface(t *testing.T) {
	l := newLab(t)
	// Another program attached through its own link.
	other, err := Load(smallOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Interface indexes belong to a namespace: attach from inside it.
	var lk link.Link
	err = l.lb.Do(func() error {
		var err error
		lk, err = link.AttachXDP(link.XDPOptions{Program: other.Program(), Interface: l.lb.Link(l.dev).Attrs().Index})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	_, _, err = l.attach(ModeAuto, smallOptions())
	if err == nil || !strings.Contains(err.Error(), "another XDP program is attached") {
		t.Errorf("Attach over a foreign program = %v, want a clear 'another XDP program' error", err)
	}
	if _, err := os.Stat(filepath.Join(l.pinRoot, l.dev)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed attach left pins (%v)", err)
	}
}

func TestDecapAttach(t *testing.T) {
	l := newLab(t)
	var d *Decap
	err := l.lb.Do(func() error {
		var err error
		d, err = AttachDecap(l.dev, ModeAuto, l.pinRoot, nil, nil)
		return err
	})
	if err != nil {
		t.Fatalf("AttachDecap: %+v", err)
	}
	defer d.Close()
	dir := filepath.Join(l.pinRoot, "decap", l.dev)
	if want, got := []string{"decap_addrs", "link", "reason_stats"}, pins(t, dir); !slices.Equal(want, got) {
		t.Errorf("decap pins %v, want %v", got, want)
	}
	if x := l.xdp(t); !x.Attached || x.ProgId != progID(t, d.Program()) || x.AttachMode != xdpAttachedDrv {
		t.Errorf("netlink XDP = %+v, want the decap program in native mode", x)
	}
	addrs, err := d.Addrs()
	if want := []netip.Addr{netip.MustParseAddr("198.18.0.1")}; err != nil || !slices.Equal(want, addrs) {
		t.Errorf("default decap addresses = %v, %v; want %v (the interface's)", addrs, err, want)
	}
	if err := d.AddAddr(netip.MustParseAddr("198.18.1.100")); err != nil {
		t.Fatal(err)
	}
	if err := d.AddAddr(netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("AddAddr accepted an IPv6 address")
	}

	// Plain UDP is not IPIP: passed and counted.
	l.sendUDP(t, 2)
	waitReason(t, ReasonPassNotIPIP, d.Stats)
	d.Close()

	o, err := OpenDecap(l.dev, l.pinRoot)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	addrs, _ = o.Addrs()
	if want := []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.1.100")}; !slices.Equal(want, addrs) {
		t.Errorf("OpenDecap addresses = %v, want %v", addrs, want)
	}
	if s, err := o.Stats(); err != nil || len(s) != NumReasons || s[ReasonPassNotIPIP] == 0 {
		t.Errorf("OpenDecap stats = %v, %v; want every reason and pass_not_ipip > 0", s, err)
	}

	// Attaching again adopts: addresses kept, same link, new program.
	var d2 *Decap
	err = l.lb.Do(func() error {
		var err error
		d2, err = AttachDecap(l.dev, ModeAuto, l.pinRoot, []netip.Addr{netip.MustParseAddr("198.18.1.101")}, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	addrs, _ = d2.Addrs()
	if len(addrs) != 3 {
		t.Errorf("addresses after re-attach = %v, want the two kept plus 198.18.1.101", addrs)
	}
	if x := l.xdp(t); x.ProgId != progID(t, d2.Program()) {
		t.Errorf("netlink XDP program %d, want the new %d", x.ProgId, progID(t, d2.Program()))
	}

	if err := DetachDecap(l.dev, l.pinRoot); err != nil {
		t.Fatal(err)
	}
	if x := l.xdp(t); x.Attached {
		t.Errorf("after DetachDecap: %+v, want nothing attached", x)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("decap pins left after DetachDecap (%v)", err)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAttachFallsBackToGeneric(t *testing.T) {
	l := newLab(t)
	// veth refuses native XDP when its peer's MTU exceeds a page.
	if err := l.peer.Netlink().LinkSetMTU(l.peer.Link(l.peerDev), 9000); err != nil {
		t.Fatal(err)
	}
	err := l.lb.Do(func() error {
		_, _, err := Attach(l.dev, ModeNative, smallOptions(), l.pinRoot, nil)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "native mode") {
		t.Fatalf("native attach with a 9000-byte peer MTU = %v, want a native-mode error", err)
	}

	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var b *Balancer
	var info AttachInfo
	err = l.lb.Do(func() error {
		var err error
		b, info, err = Attach(l.dev, ModeAuto, smallOptions(), l.pinRoot, log)
		return err
	})
	if err != nil {
		t.Fatalf("auto attach: %+v", err)
	}
	defer b.Close()
	if info.Mode != ModeGeneric || b.Mode() != ModeGeneric {
		t.Errorf("mode %s (handle %s), want generic", info.Mode, b.Mode())
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "falling back to generic") || !strings.Contains(out, "iface="+l.dev) {
		t.Errorf("log:\n%s\nwant a warning about the generic fallback naming the interface", out)
	}
	if x := l.xdp(t); !x.Attached || x.AttachMode != xdpAttachedSkb {
		t.Errorf("netlink XDP = %+v, want generic (skb) mode", x)
	}
	o, err := Open(l.dev, l.pinRoot)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Mode() != ModeGeneric {
		t.Errorf("Open: mode %s, want generic", o.Mode())
	}
}

func TestIncompatibleMeta(t *testing.T) {
	l := newLab(t)
	b, _ := l.mustAttach(t, ModeAuto, smallOptions())
	b.Close()
	m, err := ebpf.LoadPinnedMap(filepath.Join(l.pinRoot, l.dev, "meta"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tests := []struct {
		name string
		meta pinMeta
		want string
	}{
		{"future layout", func() pinMeta { p := newPinMeta(smallOptions(), ModeNative); p.Layout = 99; return p }(), "layout 99"},
		{"corrupt options", newPinMeta(Options{RingSize: 4}, ModeNative), "not prime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := m.Put(uint32(0), tt.meta); err != nil {
				t.Fatal(err)
			}
			_, err := Open(l.dev, l.pinRoot)
			if !errors.Is(err, ErrIncompatiblePins) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open = %v, want ErrIncompatiblePins mentioning %q", err, tt.want)
			}
			_, _, err = l.attach(ModeAuto, smallOptions())
			if !errors.Is(err, ErrIncompatiblePins) || !strings.Contains(err.Error(), "xdplb detach "+l.dev) {
				t.Errorf("Attach = %v, want ErrIncompatiblePins saying to detach", err)
			}
		})
	}
	if err := Detach(l.dev, l.pinRoot); err != nil {
		t.Errorf("Detach of incompatible pins: %v", err)
	}
	if x := l.xdp(t); x.Attached {
		t.Errorf("still attached after Detach: %+v", x)
	}
}
