package vrrp_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv4"

	"github.com/xdplb/xdplb/internal/netns"
	"github.com/xdplb/xdplb/vrrp"
)

// margin is the slack allowed on top of an RFC bound when two Routers run
// on the real clock over real sockets. It absorbs timer and scheduling
// delay on a shared, loaded 2-core machine; the bounds themselves are
// checked to the nanosecond on a virtual clock in fsm_sim_test.go.
const margin = 250 * time.Millisecond

var (
	addrA = netip.MustParseAddr("198.18.0.1")
	addrB = netip.MustParseAddr("198.18.0.2")
	vip   = netip.MustParsePrefix("198.18.0.100/32")
)

// With 100ms adverts: Master_Down_Interval is 3 x 100ms plus the skew.
var (
	mdi200  = 300*time.Millisecond + 21875*time.Microsecond   // priority 200: skew 56/256 x 100ms
	mdi100  = 300*time.Millisecond + 60937500*time.Nanosecond // priority 100: skew 156/256 x 100ms
	skew100 = 60937500 * time.Nanosecond
)

// site is one director: a namespace with a veth end, its transport and
// announcer.
type site struct {
	t    *testing.T
	ns   *netns.NS
	link string
	addr netip.Addr
	tr   *vrrp.IPv4Transport
	ann  *vrrp.NetlinkAnnouncer
}

// newLAN builds two namespaces joined by a veth pair: 198.18.0.1/24 and
// 198.18.0.2/24.
func newLAN(t *testing.T) (a, b *site) {
	e := netns.New(t)
	nsA, nsB := e.NS("a"), e.NS("b")
	la, lb := e.Veth(nsA, "va", nsB, "vb")
	nsA.AddAddr(la, netip.PrefixFrom(addrA, 24))
	nsB.AddAddr(lb, netip.PrefixFrom(addrB, 24))
	a = &site{t: t, ns: nsA, link: la, addr: addrA}
	b = &site{t: t, ns: nsB, link: lb, addr: addrB}
	a.open()
	b.open()
	return a, b
}

// open makes the transport and announcer inside the site's namespace.
func (s *site) open() {
	s.t.Helper()
	err := s.ns.Do(func() error {
		tr, err := vrrp.ListenIPv4(s.link)
		if err != nil {
			return err
		}
		ann, err := vrrp.NewAnnouncer(s.link)
		if err != nil {
			tr.Close()
			return err
		}
		s.tr, s.ann = tr, ann
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	tr, ann := s.tr, s.ann
	s.t.Cleanup(func() { tr.Close(); ann.Close() })
}

func (s *site) instance(prio uint8) vrrp.InstanceConfig {
	return vrrp.InstanceConfig{
		Name: "VI_1", Interface: s.link, VRID: 51, Version: vrrp.V3,
		Priority: prio, Interval: 100 * time.Millisecond,
		Addresses: []netip.Prefix{vip},
		Source:    s.addr,
		Transport: s.tr, Announcer: s.ann,
		GARP: vrrp.GARP{Repeat: 2, Delay: -1},
	}
}

func (s *site) hasVIP() bool {
	s.t.Helper()
	addrs, err := s.ns.Netlink().AddrList(s.ns.Link(s.link), netlink.FAMILY_V4)
	if err != nil {
		s.t.Fatal(err)
	}
	return slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IP.Equal(vip.Addr().AsSlice()) })
}

type router struct {
	t      *testing.T
	name   string
	r      *vrrp.Router
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *site) run(name string, cfg vrrp.Config) *router {
	s.t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(tlog{s.t, name}, nil))
	r, err := vrrp.NewRouter(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rr := &router{t: s.t, name: name, r: r, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rr.done)
		if err := r.Run(ctx); err != nil {
			s.t.Errorf("%s: Run: %v", name, err)
		}
	}()
	s.t.Cleanup(rr.stop)
	return rr
}

// stop shuts the router down gracefully and waits for Run to return.
func (rr *router) stop() {
	rr.cancel()
	select {
	case <-rr.done:
	case <-time.After(10 * time.Second):
		rr.t.Fatalf("%s: Run did not return", rr.name)
	}
}

func (rr *router) status() vrrp.InstanceStatus {
	in, _ := rr.r.Status().Instance("VI_1")
	return in
}

func (rr *router) state() vrrp.State { return rr.status().State }

// change returns the last transition into state to.
func (rr *router) change(to vrrp.State) vrrp.StateChange {
	rr.t.Helper()
	in := rr.status()
	for i := len(in.Transitions) - 1; i >= 0; i-- {
		if in.Transitions[i].To == to {
			return in.Transitions[i]
		}
	}
	rr.t.Fatalf("%s never entered %v: %+v", rr.name, to, in.Transitions)
	return vrrp.StateChange{}
}

func (rr *router) transitions() int { return len(rr.status().Transitions) }

// tlog sends log lines to the test log.
type tlog struct {
	t    *testing.T
	name string
}

func (l tlog) Write(p []byte) (int, error) {
	l.t.Logf("%s: %s", l.name, bytes.TrimSpace(p))
	return len(p), nil
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// elect starts A (priority 200) and B (priority 100) and waits for A to
// win.
func elect(t *testing.T, a, b *site, tweak func(*vrrp.InstanceConfig)) (ra, rb *router) {
	t.Helper()
	ca, cb := a.instance(200), b.instance(100)
	if tweak != nil {
		tweak(&ca)
		tweak(&cb)
	}
	ra = a.run("A", vrrp.Config{Instances: []vrrp.InstanceConfig{ca}})
	rb = b.run("B", vrrp.Config{Instances: []vrrp.InstanceConfig{cb}})
	eventually(t, 5*time.Second, "A master and B backup", func() bool {
		return ra.state() == vrrp.Master && rb.state() == vrrp.Backup
	})
	eventually(t, 2*time.Second, "the VIP on A only", func() bool { return a.hasVIP() && !b.hasVIP() })
	return ra, rb
}

// sniff opens a raw VRRP socket and an ARP socket in the site's namespace
// and collects what they receive until the test ends.
type sniffer struct {
	mu      sync.Mutex
	adverts []sniffed
	arps    []*arp.Packet
}

type sniffed struct {
	h *ipv4.Header
	p []byte
}

func (s *site) sniff() *sniffer {
	s.t.Helper()
	var raw *ipv4.RawConn
	var ac *arp.Client
	err := s.ns.Do(func() error {
		ifi, err := net.InterfaceByName(s.link)
		if err != nil {
			return err
		}
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		if raw, err = ipv4.NewRawConn(c); err != nil {
			return err
		}
		if err := raw.JoinGroup(ifi, &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)}); err != nil {
			return err
		}
		ac, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	sn := &sniffer{}
	var wg sync.WaitGroup
	var closing atomic.Bool
	s.t.Cleanup(func() { closing.Store(true); raw.Close(); ac.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			h, p, _, err := raw.ReadFrom(buf)
			if err != nil {
				return
			}
			sn.mu.Lock()
			sn.adverts = append(sn.adverts, sniffed{h, slices.Clone(p)})
			sn.mu.Unlock()
		}
	})
	wg.Go(func() {
		for {
			p, _, err := ac.Read()
			if err != nil {
				// Frames that are not ARP are errors too: read on,
				// until the clean-up closes the socket. The error
				// of a read on a closed socket is not always one
				// that says "closed", so the flag decides.
				if closing.Load() {
					return
				}
				continue
			}
			sn.mu.Lock()
			sn.arps = append(sn.arps, p)
			sn.mu.Unlock()
		}
	})
	return sn
}

func (sn *sniffer) advert(src netip.Addr, prio uint8) (sniffed, bool) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	for _, a := range sn.adverts {
		if a.h.Src.Equal(src.AsSlice()) && len(a.p) > 2 && a.p[2] == prio {
			return a, true
		}
	}
	return sniffed{}, false
}

func (sn *sniffer) garps(ip netip.Addr) []*arp.Packet {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	var out []*arp.Packet
	for _, p := range sn.arps {
		if p.SenderIP == ip && p.TargetIP == ip {
			out = append(out, p)
		}
	}
	return out
}

// The master's advertisement and gratuitous ARP as another box on the link
// sees them, byte for byte.
func TestNetnsElectionOnTheWire(t *testing.T) {
	a, b := newLAN(t)
	sn := b.sniff()
	ra, rb := elect(t, a, b, nil)

	var got sniffed
	eventually(t, 2*time.Second, "A's advert on the wire", func() bool {
		var ok bool
		got, ok = sn.advert(addrA, 200)
		return ok
	})
	want := mustHex(t,
		"31"+ // version 3, advertisement
			"33"+"c8"+"01"+ // VRID 51, priority 200, one address
			"000a"+ // 10 centiseconds
			"99a7"+ // checksum with pseudo-header 198.18.0.1 > 224.0.0.18
			"c6120064") // 198.18.0.100
	if !bytes.Equal(want, got.p) {
		t.Fatalf("advert payload:\nwant %x\ngot  %x", want, got.p)
	}
	h := got.h
	if h.TTL != 255 || h.TOS != 0xc0 || h.Protocol != 112 || h.Flags != 0 || !h.Dst.Equal(net.IPv4(224, 0, 0, 18)) {
		t.Fatalf("advert IP header: TTL %d TOS %#x protocol %d flags %v dst %v; want 255, 0xc0, 112, 0, 224.0.0.18",
			h.TTL, h.TOS, h.Protocol, h.Flags, h.Dst)
	}

	eventually(t, 2*time.Second, "gratuitous ARP for the VIP", func() bool { return len(sn.garps(vip.Addr())) >= 2 })
	g := sn.garps(vip.Addr())[0]
	if g.Operation != arp.OperationRequest || !bytes.Equal(g.SenderHardwareAddr, a.ns.MAC(a.link)) ||
		!bytes.Equal(g.TargetHardwareAddr, ethernet.Broadcast) {
		t.Fatalf("gratuitous ARP: op %v sender %v target %v; want request from %v to broadcast",
			g.Operation, g.SenderHardwareAddr, g.TargetHardwareAddr, a.ns.MAC(a.link))
	}

	in := rb.status()
	if in.Master != addrA || in.MasterPriority != 200 || in.Counters.AdvertsReceived == 0 || len(in.Counters.Drops) != 0 {
		t.Fatalf("B's view: master %v priority %d, received %d, drops %v", in.Master, in.MasterPriority, in.Counters.AdvertsReceived, in.Counters.Drops)
	}
	if n := ra.status().Counters.AdvertsSent; n == 0 {
		t.Fatal("A sent no adverts")
	}
}

// The master dies without a word: the backup takes over once
// Master_Down_Interval has passed since the last advert it heard.
func TestNetnsCrashFailover(t *testing.T) {
	vrrp.BestOf(t, "crash failover after the last advert", mdi100, mdi100+margin, func(t *testing.T) time.Duration {
		a, b := newLAN(t)
		ra, rb := elect(t, a, b, nil)
		time.Sleep(300 * time.Millisecond) // let B hear a few adverts

		killed := time.Now()
		a.tr.Close() // the box is gone: no priority 0, nothing more on the wire
		ra.stop()
		eventually(t, 3*time.Second, "B master", func() bool { return rb.state() == vrrp.Master })
		took := rb.change(vrrp.Master).At
		in := rb.status()
		t.Logf("crash failover %v after the kill", took.Sub(killed))
		if in.Counters.Priority0Received != 0 {
			t.Fatalf("B received %d priority 0 adverts from a crashed master", in.Counters.Priority0Received)
		}
		eventually(t, 2*time.Second, "the VIP on B", b.hasVIP)
		return took.Sub(in.LastAdvert)
	})
}

// The master stops gracefully: its priority 0 advert lets the backup take
// over after Skew_Time.
func TestNetnsGracefulHandover(t *testing.T) {
	vrrp.BestOf(t, "graceful handover", skew100, skew100+margin, func(t *testing.T) time.Duration {
		a, b := newLAN(t)
		ra, rb := elect(t, a, b, nil)
		ra.stop()
		stopped := ra.change(vrrp.Initialize).At
		eventually(t, 3*time.Second, "B master", func() bool { return rb.state() == vrrp.Master })
		if n := rb.status().Counters.Priority0Received; n != 1 {
			t.Fatalf("B received %d priority 0 adverts, want 1", n)
		}
		if a.hasVIP() {
			t.Fatal("A kept the VIP after stopping")
		}
		eventually(t, 2*time.Second, "the VIP on B", b.hasVIP)
		return rb.change(vrrp.Master).At.Sub(stopped)
	})
}

// A restarted higher-priority router takes the VIP back after its own
// Master_Down_Interval, unless it runs with nopreempt.
func TestNetnsPreemption(t *testing.T) {
	restart := func(t *testing.T, nopreempt bool) (a, b *site, ra, rb *router) {
		a, b = newLAN(t)
		ra, rb = elect(t, a, b, nil)
		ra.stop()
		eventually(t, 3*time.Second, "B master", func() bool { return rb.state() == vrrp.Master })
		ca := a.instance(200)
		ca.NoPreempt = nopreempt
		ra = a.run("A2", vrrp.Config{Instances: []vrrp.InstanceConfig{ca}})
		eventually(t, time.Second, "A back", func() bool { return ra.state() != vrrp.Initialize })
		return a, b, ra, rb
	}
	t.Run("preempt", func(t *testing.T) {
		vrrp.BestOf(t, "preemption after restart", mdi200, mdi200+margin, func(t *testing.T) time.Duration {
			a, b, ra, rb := restart(t, false)
			eventually(t, 3*time.Second, "A master again", func() bool { return ra.state() == vrrp.Master && rb.state() == vrrp.Backup })
			eventually(t, 2*time.Second, "the VIP back on A", func() bool { return a.hasVIP() && !b.hasVIP() })
			return ra.change(vrrp.Master).At.Sub(ra.change(vrrp.Backup).At)
		})
	})
	t.Run("nopreempt", func(t *testing.T) {
		a, b, ra, rb := restart(t, true)
		time.Sleep(3 * mdi200)
		if ra.state() != vrrp.Backup || rb.state() != vrrp.Master {
			t.Fatalf("nopreempt: A %v, B %v; want BACKUP, MASTER", ra.state(), rb.state())
		}
		if !b.hasVIP() || a.hasVIP() {
			t.Fatal("nopreempt: the VIP moved")
		}
	})
}

// Cut B off from A's adverts: both become master. Heal: exactly one master
// remains, the higher priority, and stays.
func TestNetnsPartitionHeals(t *testing.T) {
	vrrp.BestOf(t, "partition heal", 0, 100*time.Millisecond+margin, func(t *testing.T) time.Duration {
		a, b := newLAN(t)
		ra, rb := elect(t, a, b, nil)
		nft := func(args ...string) {
			t.Helper()
			if _, err := b.ns.Exec("nft", args...); err != nil {
				t.Fatal(err)
			}
		}
		nft("add", "table", "ip", "part")
		nft("add", "chain", "ip", "part", "in", "{", "type", "filter", "hook", "input", "priority", "0", ";", "}")
		nft("add", "rule", "ip", "part", "in", "ip", "protocol", "112", "drop")
		eventually(t, 3*time.Second, "B master behind the partition", func() bool { return rb.state() == vrrp.Master })
		if ra.state() != vrrp.Master {
			t.Fatalf("A %v during the partition, want MASTER", ra.state())
		}

		// The partition can heal while nft is still exiting: take the
		// time before the delete, so the heal is never measured as
		// having happened before it.
		healed := time.Now()
		nft("delete", "table", "ip", "part")
		eventually(t, 3*time.Second, "B backup after healing", func() bool { return rb.state() == vrrp.Backup })
		took := rb.change(vrrp.Backup).At.Sub(healed)

		na, nb := ra.transitions(), rb.transitions()
		time.Sleep(time.Second)
		if ra.state() != vrrp.Master || rb.state() != vrrp.Backup || ra.transitions() != na || rb.transitions() != nb {
			t.Fatalf("after healing: A %v (%d -> %d transitions), B %v (%d -> %d)",
				ra.state(), na, ra.transitions(), rb.state(), nb, rb.transitions())
		}
		eventually(t, 2*time.Second, "the VIP on A only", func() bool { return a.hasVIP() && !b.hasVIP() })
		return took
	})
}

// VRRPv2 with keepalived's PASS authentication: the right password elects,
// the wrong one is dropped and counted.
func TestNetnsV2Password(t *testing.T) {
	for _, pwB := range []string{"s3cr3t", "wrong"} {
		t.Run("B="+pwB, func(t *testing.T) {
			t.Parallel()
			a, b := newLAN(t)
			sn := b.sniff()
			v2 := func(c *vrrp.InstanceConfig, pw string) {
				c.VRID, c.Version, c.Interval, c.AuthType, c.Password = 52, vrrp.V2, time.Second, vrrp.AuthPass, pw
			}
			ca, cb := a.instance(200), b.instance(100)
			v2(&ca, "s3cr3t")
			v2(&cb, pwB)
			ra := a.run("A", vrrp.Config{Instances: []vrrp.InstanceConfig{ca}})
			rb := b.run("B", vrrp.Config{Instances: []vrrp.InstanceConfig{cb}})
			if pwB == "wrong" {
				eventually(t, 10*time.Second, "both master", func() bool {
					return ra.state() == vrrp.Master && rb.state() == vrrp.Master
				})
				eventually(t, 3*time.Second, "password drops on both sides", func() bool {
					return ra.status().Counters.Drops[vrrp.ReasonAuthPassword] > 0 && rb.status().Counters.Drops[vrrp.ReasonAuthPassword] > 0
				})
				return
			}
			eventually(t, 10*time.Second, "A master, B backup", func() bool {
				return ra.state() == vrrp.Master && rb.state() == vrrp.Backup
			})
			var got sniffed
			eventually(t, 3*time.Second, "A's advert on the wire", func() bool {
				var ok bool
				got, ok = sn.advert(addrA, 200)
				return ok
			})
			want := mustHex(t,
				"21"+ // version 2, advertisement
					"34"+"c8"+"01"+ // VRID 52, priority 200, one address
					"01"+"01"+ // auth type 1 (PASS), 1 second
					"4538"+ // checksum over the message
					"c6120064"+ // 198.18.0.100
					"7333637233740000") // "s3cr3t"
			if !bytes.Equal(want, got.p) {
				t.Fatalf("v2 advert:\nwant %x\ngot  %x", want, got.p)
			}
			if n := len(rb.status().Counters.Drops); n != 0 {
				t.Fatalf("B dropped adverts: %v", rb.status().Counters.Drops)
			}
		})
	}
}

// A failing track_script with a weight lowers the master's priority below
// the backup's, which takes the VIP; when it succeeds again the VIP comes
// back.
func TestNetnsTrackScriptMovesVIP(t *testing.T) {
	a, b := newLAN(t)
	ok := filepath.Join(t.TempDir(), "healthy")
	if err := os.WriteFile(ok, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ca := a.instance(200)
	ca.Track = []vrrp.Track{{Name: "chk", Weight: -150}}
	ra := a.run("A", vrrp.Config{
		Instances: []vrrp.InstanceConfig{ca},
		Trackers: map[string]vrrp.Tracker{"chk": &vrrp.ScriptTracker{
			Name: "chk", Command: []string{"test", "-e", ok}, Interval: 50 * time.Millisecond, Timeout: 5 * time.Second,
		}},
	})
	rb := b.run("B", vrrp.Config{Instances: []vrrp.InstanceConfig{b.instance(100)}})
	eventually(t, 5*time.Second, "A master", func() bool { return ra.state() == vrrp.Master && rb.state() == vrrp.Backup })

	os.Remove(ok)
	eventually(t, 3*time.Second, "A's priority lowered", func() bool { return ra.status().EffectivePriority == 50 })
	eventually(t, 3*time.Second, "B master", func() bool { return rb.state() == vrrp.Master && ra.state() == vrrp.Backup })
	eventually(t, 2*time.Second, "the VIP on B", func() bool { return b.hasVIP() && !a.hasVIP() })

	os.WriteFile(ok, nil, 0o644)
	eventually(t, 3*time.Second, "A master again", func() bool { return ra.state() == vrrp.Master && rb.state() == vrrp.Backup })
	eventually(t, 2*time.Second, "the VIP back on A", func() bool { return a.hasVIP() && !b.hasVIP() })
}

// track_interface without weight: the tracked link losing carrier faults
// the master, which resigns with priority 0.
func TestNetnsLinkTrackerFaults(t *testing.T) {
	vrrp.BestOf(t, "handover after a fault", skew100, skew100+margin, func(t *testing.T) time.Duration {
		e := netns.New(t)
		nsA, nsB := e.NS("a"), e.NS("b")
		la, lb := e.Veth(nsA, "va", nsB, "vb")
		ta, tb := e.Veth(nsA, "ta", nsA, "tb") // the uplink A tracks
		nsA.AddAddr(la, netip.PrefixFrom(addrA, 24))
		nsB.AddAddr(lb, netip.PrefixFrom(addrB, 24))
		a := &site{t: t, ns: nsA, link: la, addr: addrA}
		b := &site{t: t, ns: nsB, link: lb, addr: addrB}
		a.open()
		b.open()
		var lt *vrrp.LinkTracker
		if err := nsA.Do(func() (err error) { lt, err = vrrp.NewLinkTracker(ta); return err }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lt.Close() })

		ca := a.instance(200)
		ca.Track = []vrrp.Track{{Name: "uplink", Weight: 0}}
		ra := a.run("A", vrrp.Config{Instances: []vrrp.InstanceConfig{ca}, Trackers: map[string]vrrp.Tracker{"uplink": lt}})
		rb := b.run("B", vrrp.Config{Instances: []vrrp.InstanceConfig{b.instance(100)}})
		eventually(t, 5*time.Second, "A master", func() bool { return ra.state() == vrrp.Master && rb.state() == vrrp.Backup })

		if err := nsA.Netlink().LinkSetDown(nsA.Link(tb)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 3*time.Second, "A in fault", func() bool { return ra.state() == vrrp.Fault })
		faulted := ra.change(vrrp.Fault).At
		eventually(t, 3*time.Second, "B master", func() bool { return rb.state() == vrrp.Master })
		took := rb.change(vrrp.Master).At.Sub(faulted)
		if want, got := []string{"uplink"}, ra.status().Faults; !slices.Equal(want, got) {
			t.Fatalf("A's faults: want %v, got %v", want, got)
		}
		eventually(t, 2*time.Second, "the VIP on B", func() bool { return b.hasVIP() && !a.hasVIP() })

		nsA.SetUp(tb)
		eventually(t, 3*time.Second, "A master again", func() bool { return ra.state() == vrrp.Master && rb.state() == vrrp.Backup })
		return took
	})
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (rr *router) statusOf(name string) vrrp.InstanceStatus {
	in, _ := rr.r.Status().Instance(name)
	return in
}

// Two instances share each director's interface and socket, each master
// on a different box (active-active); when B stops, A takes both.
func TestNetnsTwoVRIDsOneInterface(t *testing.T) {
	a, b := newLAN(t)
	vips1 := []netip.Prefix{vip, netip.MustParsePrefix("198.18.0.101/32")}
	vips2 := []netip.Prefix{netip.MustParsePrefix("198.18.0.110/32")}
	pair := func(s *site, p1, p2 uint8) vrrp.Config {
		c1, c2 := s.instance(p1), s.instance(p2)
		c1.Addresses = vips1
		c2.Name, c2.VRID, c2.Addresses = "VI_2", 52, vips2
		return vrrp.Config{Instances: []vrrp.InstanceConfig{c1, c2}}
	}
	ra := a.run("A", pair(a, 200, 100))
	rb := b.run("B", pair(b, 100, 200))
	states := func() string {
		return fmt.Sprint(ra.statusOf("VI_1").State, ra.statusOf("VI_2").State, rb.statusOf("VI_1").State, rb.statusOf("VI_2").State)
	}
	eventually(t, 5*time.Second, "VI_1 on A and VI_2 on B", func() bool { return states() == "MASTER BACKUP BACKUP MASTER" })
	has := func(s *site, p netip.Prefix) bool {
		addrs, err := s.ns.Netlink().AddrList(s.ns.Link(s.link), netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IP.Equal(p.Addr().AsSlice()) })
	}
	eventually(t, 2*time.Second, "each VIP on its master", func() bool {
		return has(a, vips1[0]) && has(a, vips1[1]) && !has(a, vips2[0]) &&
			has(b, vips2[0]) && !has(b, vips1[0]) && !has(b, vips1[1])
	})
	for _, r := range []*router{ra, rb} {
		for _, name := range []string{"VI_1", "VI_2"} {
			if d := r.statusOf(name).Counters.Drops; len(d) != 0 {
				t.Errorf("%s %s dropped adverts: %v", r.name, name, d)
			}
		}
	}
	rb.stop()
	eventually(t, 3*time.Second, "A master of both", func() bool { return states() == "MASTER MASTER INIT INIT" })
	eventually(t, 2*time.Second, "every VIP on A", func() bool { return has(a, vips1[0]) && has(a, vips1[1]) && has(a, vips2[0]) })
}

// Unicast peers instead of multicast (keepalived's unicast_src_ip and
// unicast_peer): the checksum's pseudo-header carries the peer's address.
func TestNetnsUnicast(t *testing.T) {
	vrrp.BestOf(t, "unicast graceful handover", skew100, skew100+margin, func(t *testing.T) time.Duration {
		a, b := newLAN(t)
		sn := b.sniff()
		ra, rb := elect(t, a, b, func(c *vrrp.InstanceConfig) {
			peer := addrB
			if c.Source == addrB {
				peer = addrA
			}
			c.Peers = []netip.Addr{peer}
			c.CheckPeers = true
		})
		var got sniffed
		eventually(t, 2*time.Second, "A's unicast advert", func() bool {
			var ok bool
			got, ok = sn.advert(addrA, 200)
			return ok
		})
		want := mustHex(t, "3133c801"+"000a"+
			"b3a5"+ // checksum with pseudo-header 198.18.0.1 > 198.18.0.2
			"c6120064")
		if !bytes.Equal(want, got.p) || !got.h.Dst.Equal(addrB.AsSlice()) || got.h.TTL != 255 {
			t.Fatalf("unicast advert to %v TTL %d:\nwant %x\ngot  %x", got.h.Dst, got.h.TTL, want, got.p)
		}
		ra.stop()
		eventually(t, 3*time.Second, "B master", func() bool { return rb.state() == vrrp.Master })
		if d := rb.status().Counters.Drops; len(d) != 0 {
			t.Fatalf("B dropped unicast adverts: %v", d)
		}
		return rb.change(vrrp.Master).At.Sub(ra.change(vrrp.Initialize).At)
	})
}
