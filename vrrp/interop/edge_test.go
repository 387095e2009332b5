package interop_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/testenv"
	"github.com/xdplb/xdplb/vrrp"
	"github.com/xdplb/xdplb/vrrp/interop"
)

var v3 = protos[1]

// Unicast peers (keepalived's unicast_src_ip and unicast_peer) instead of
// multicast, for networks without it. The VRRPv3 checksum then covers the
// peer's address, which both sides must agree on; the virtual addresses
// are listed in a different order on each side, which both must accept.
func TestUnicastPeers(t *testing.T) {
	vip2 := netip.MustParsePrefix("198.18.0.101/32")
	bestOf(t, func(t *testing.T) []timing {
		l := newLAN(t)
		kUnicast := func(in *interop.Instance) {
			in.UnicastSource, in.UnicastPeers = kAddr, []netip.Addr{xAddr}
			in.Addresses = []netip.Prefix{vip, vip2}
		}
		k := l.keepalived(v3, 200, kUnicast)
		waitState(t, k, "MASTER", v3.startup())
		x := l.xdplb(v3, 100, func(in *vrrp.InstanceConfig) {
			in.Peers, in.CheckPeers = []netip.Addr{kAddr}, true
			in.Addresses = []netip.Prefix{vip2, vip}
		})
		waitFor(t, v3.startup(), "xdplb backup of keepalived, 3 adverts in", func() bool {
			in := x.status()
			return in.State == vrrp.Backup && in.Master == kAddr && in.Counters.AdvertsReceived >= 3
		})
		if n := x.status().Counters.BecameMaster; n != 0 {
			t.Fatalf("xdplb became master %d times beside a live keepalived master", n)
		}
		x.noDrops()
		l.vipOn(false)

		// keepalived's unicast advert: to the peer, summed over the peer's
		// address, which xdplb's packet code verifies.
		kAdv, _ := l.wire(0, soon, "keepalived's unicast advert", advertFrom(kAddr, 200))
		checkUnicast(t, kAdv, kAddr, xAddr, []netip.Addr{vip.Addr(), vip2.Addr()})

		// keepalived stops: xdplb takes over after Skew_Time and sends
		// its own unicast adverts.
		mark := l.cap.Mark()
		if err := k.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		p0, _ := l.wire(mark, soon, "keepalived's priority 0", advertFrom(kAddr, 0))
		xTake, _ := l.wire(mark, v3.mdi(100)+soon, "xdplb's first advert as master", advertFrom(xAddr, 100))
		got := timing{"xdplb takeover after keepalived's unicast priority 0", xTake.At.Sub(p0.At), v3.skew(100)}
		checkUnicast(t, xTake, xAddr, kAddr, []netip.Addr{vip2.Addr(), vip.Addr()})
		l.vipOn(true)

		// keepalived returns, hears xdplb's unicast adverts, refuses none,
		// and preempts.
		k = l.keepalived(v3, 200, kUnicast)
		waitState(t, k, "MASTER", v3.startup())
		waitFor(t, soon, "xdplb back to backup", func() bool { return x.status().State == vrrp.Backup })
		if s := l.stats(k); s.Counters["advert_rcvd"] == 0 || len(s.Errors()) != 0 {
			t.Fatalf("keepalived as backup of xdplb: %d adverts received, errors %v", s.Counters["advert_rcvd"], s.Errors())
		}
		x.noDrops()
		l.vipOn(false)
		return []timing{got}
	})
}

// checkUnicast checks a unicast advert: sent to the peer with TTL 255,
// with a checksum over the pseudo-header of src and the peer (RFC 5798
// 5.2.8, keepalived's current default), carrying addrs in that order.
func checkUnicast(t *testing.T, f interop.Frame, src, peer netip.Addr, addrs []netip.Addr) {
	t.Helper()
	if f.Src() != src || f.Dst() != peer || f.IP.TTL != vrrp.TTL || f.IP.TOS != vrrp.TOS {
		t.Fatalf("unicast advert %v > %v TTL %d TOS %#x, want %v > %v TTL %d TOS %#x",
			f.Src(), f.Dst(), f.IP.TTL, f.IP.TOS, src, peer, vrrp.TTL, vrrp.TOS)
	}
	a, err := f.Advert()
	if err != nil {
		t.Fatalf("unicast advert from %v does not check with the peer's address in the pseudo-header: %v\n% x", src, err, f.VRRP)
	}
	if !slices.Equal(addrs, a.Addresses) {
		t.Fatalf("unicast advert from %v carries %v, want %v", src, a.Addresses, addrs)
	}
}

// Equal priorities: when both routers are master, as after a partition
// heals, the one with the lower primary address gives way (RFC 3768/5798
// 6.4.3), whichever implementation it is.
func TestTieBreakAfterPartition(t *testing.T) {
	testenv.Command(t, "nft")
	low, high := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	for _, tt := range []struct {
		name   string
		xa, ka netip.Addr
	}{
		{name: "keepalived has the higher address", xa: low, ka: high},
		{name: "xdplb has the higher address", xa: high, ka: low},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLANWith(t, tt.xa, tt.ka)
			sw := l.partition()
			x := l.xdplb(v3, 150)
			k := l.keepalived(v3, 150)
			waitFor(t, v3.startup(), "xdplb master behind the partition", func() bool { return x.status().State == vrrp.Master })
			waitState(t, k, "MASTER", v3.startup())

			sw.heal()
			xWins := tt.xa.Compare(tt.ka) > 0
			if xWins {
				waitState(t, k, "BACKUP", soon)
			} else {
				waitFor(t, soon, "xdplb backup after healing", func() bool { return x.status().State == vrrp.Backup })
				if c := x.change(vrrp.Backup); c.Cause != vrrp.CauseTieBreak {
					t.Fatalf("xdplb left master for %q, want %q", c.Cause, vrrp.CauseTieBreak)
				}
			}
			// And it stays so.
			n, kn := len(x.status().Transitions), len(k.Transitions("VI_1"))
			time.Sleep(10 * v3.interval)
			in := x.status()
			if len(in.Transitions) != n || len(k.Transitions("VI_1")) != kn {
				t.Fatalf("states moved after healing: xdplb %+v, keepalived %+v", in.Transitions, k.Transitions("VI_1"))
			}
			wantX, wantK := vrrp.Backup, "MASTER"
			if xWins {
				wantX, wantK = vrrp.Master, "BACKUP"
			}
			if in.State != wantX || k.State("VI_1") != wantK {
				t.Fatalf("after healing: xdplb %v, keepalived %s; want %v, %s", in.State, k.State("VI_1"), wantX, wantK)
			}
			l.vipOn(xWins)
			x.noDrops()
			if s := l.stats(k); len(s.Errors()) != 0 {
				t.Fatalf("keepalived errors %v", s.Errors())
			}
		})
	}
}

// partitioned is a partition of the link: the bridge drops VRRP.
type partitioned struct{ l *lan }

// partition makes the bridge drop every VRRP frame until heal.
func (l *lan) partition() partitioned {
	l.t.Helper()
	s := l.sw
	for _, args := range [][]string{
		{"add", "table", "bridge", "part"},
		{"add", "chain", "bridge", "part", "cut", "{", "type", "filter", "hook", "forward", "priority", "0", ";", "}"},
		{"add", "rule", "bridge", "part", "cut", "ip", "protocol", "112", "drop"},
	} {
		if _, err := s.Exec("nft", args...); err != nil {
			l.t.Fatal(err)
		}
	}
	return partitioned{l}
}

func (p partitioned) heal() {
	p.l.t.Helper()
	if _, err := p.l.sw.Exec("nft", "delete", "table", "bridge", "part"); err != nil {
		p.l.t.Fatal(err)
	}
}

// VRRPv3 backups learn the master's advertisement interval (RFC 5798
// 6.4.2): a backup configured for 1s behind a master at 100ms takes over
// 3 x 100ms + Skew_Time after the master dies, not 3.6s.
func TestLearnsMasterInterval(t *testing.T) {
	slow := func(in *vrrp.InstanceConfig) { in.Interval = time.Second }
	t.Run("xdplb learns keepalived's", func(t *testing.T) {
		t.Parallel()
		bestOf(t, func(t *testing.T) []timing {
			l := newLAN(t)
			k := l.keepalived(v3, 200)
			waitState(t, k, "MASTER", v3.startup())
			x := l.xdplb(v3, 100, slow)
			waitFor(t, v3.startup(), "xdplb backup at keepalived's interval", func() bool {
				in := x.status()
				return in.State == vrrp.Backup && in.Master == kAddr && in.MasterAdvertInterval == v3.interval
			})
			_, mark := l.wire(l.cap.Mark(), soon, "keepalived's advert", advertFrom(kAddr, 200))
			if err := k.Kill(); err != nil {
				t.Fatal(err)
			}
			xTake, end := l.wire(mark, soon, "xdplb's first advert as master", advertFrom(xAddr, 100))
			kLast, _ := l.cap.Last(end, advertFrom(kAddr, 200))
			x.noDrops()
			return []timing{{"xdplb takeover at the learned interval", xTake.At.Sub(kLast.At), v3.mdi(100)}}
		})
	})
	t.Run("keepalived learns xdplb's", func(t *testing.T) {
		t.Parallel()
		bestOf(t, func(t *testing.T) []timing {
			l := newLAN(t)
			x := l.xdplb(v3, 200)
			waitFor(t, v3.startup(), "xdplb master", func() bool { return x.status().State == vrrp.Master })
			k := l.keepalived(v3, 100, func(in *interop.Instance) { in.Interval = time.Second })
			waitState(t, k, "BACKUP", v3.startup())
			// keepalived learns from the next advert it accepts.
			_, mark := l.wire(l.cap.Mark(), soon, "xdplb's advert", advertFrom(xAddr, 200))
			_, mark = l.wire(mark, soon, "xdplb's advert", advertFrom(xAddr, 200))
			x.crash()
			kTake, end := l.wire(mark, soon, "keepalived's first advert as master", advertFrom(kAddr, 100))
			xLast, _ := l.cap.Last(end, advertFrom(xAddr, 200))
			return []timing{{"keepalived takeover at the learned interval", kTake.At.Sub(xLast.At), v3.mdi(100)}}
		})
	})
}

// Misconfigured pairs refuse each other's adverts, so both become master;
// each side counts why, under the name an operator would look for.
func TestMisconfiguredPeers(t *testing.T) {
	v2 := protos[0]
	for _, tt := range []struct {
		name  string
		x     func(*vrrp.InstanceConfig)
		k     func(*interop.Instance)
		xDrop vrrp.Reason
		kErr  string // keepalived's error counter, if it counts one
	}{
		{
			name:  "password",
			x:     func(*vrrp.InstanceConfig) {},
			k:     func(in *interop.Instance) { in.Password = "0ther" },
			xDrop: vrrp.ReasonAuthPassword, kErr: "auth_failure",
		},
		{
			name:  "interval",
			x:     func(*vrrp.InstanceConfig) {},
			k:     func(in *interop.Instance) { in.Interval = 2 * time.Second },
			xDrop: vrrp.ReasonInterval,
		},
		{
			name: "version",
			x: func(in *vrrp.InstanceConfig) {
				in.Version, in.AuthType, in.Password = vrrp.V3, vrrp.AuthNone, ""
			},
			k:     func(in *interop.Instance) { in.Password = "" },
			xDrop: vrrp.ReasonVersion,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLAN(t)
			x := l.xdplb(v2, 200, tt.x)
			k := l.keepalived(v2, 100, tt.k)
			waitFor(t, v2.startup(), "xdplb master", func() bool { return x.status().State == vrrp.Master })
			waitState(t, k, "MASTER", v2.startup()+3*time.Second)
			waitFor(t, soon, "xdplb counting "+tt.xDrop.String(), func() bool {
				return x.status().Counters.Drops[tt.xDrop] > 0
			})
			in := x.status()
			if in.Counters.AdvertsReceived != 0 || len(in.Counters.Drops) != 1 {
				t.Fatalf("xdplb accepted %d adverts and dropped %v, want only %s drops", in.Counters.AdvertsReceived, in.Counters.Drops, tt.xDrop)
			}
			s := l.stats(k)
			if tt.kErr != "" && s.Counters[tt.kErr] == 0 {
				t.Fatalf("keepalived counted no %s: %v", tt.kErr, s.Counters)
			}
			t.Logf("xdplb drops %v; keepalived errors %v", in.Counters.Drops, s.Errors())
		})
	}
}
