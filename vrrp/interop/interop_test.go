package interop_test

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdplb/xdplb/vrrp"
	"github.com/xdplb/xdplb/vrrp/interop"
)

// protos are the settings operators run keepalived with: VRRPv2 at one
// second with a simple password (auth_type PASS), and VRRPv3 at 100ms.
var protos = []proto{
	{name: "v2", version: vrrp.V2, interval: time.Second, vrid: 52, password: "s3cr3t"},
	{name: "v3", version: vrrp.V3, interval: 100 * time.Millisecond, vrid: 51},
}

// startup bounds how long a freshly started pair takes to elect its
// master: Master_Down_Interval of the first router to start, plus time for
// keepalived to start.
func (p proto) startup() time.Duration { return p.mdi(100) + 5*time.Second }

// keepalived is the master (priority 200), xdplb the backup (100). Both
// agree on it; xdplb accepts keepalived's adverts without a drop and its
// own are keepalived's byte for byte but for priority and source. xdplb
// takes over when keepalived crashes (after Master_Down_Interval) and
// when it stops (after Skew_Time, on its priority 0); keepalived takes the
// VIP back when it returns, having accepted xdplb's adverts meanwhile.
func TestKeepalivedMasterXDPLBBackup(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			bestOf(t, func(t *testing.T) []timing { return keepalivedMaster(t, p) })
		})
	}
}

func keepalivedMaster(t *testing.T, p proto) []timing {
	l := newLAN(t)
	// The backup joins a running master, so it never wins the first
	// election however late either process starts.
	k := l.keepalived(p, 200)
	waitState(t, k, "MASTER", p.startup())
	x := l.xdplb(p, 100)

	// Both agree that keepalived is master.
	waitFor(t, p.startup(), "xdplb backup of keepalived, 3 adverts in", func() bool {
		in := x.status()
		return in.State == vrrp.Backup && in.Master == kAddr && in.MasterPriority == 200 && in.Counters.AdvertsReceived >= 3
	})
	if in := x.status(); in.Counters.BecameMaster != 0 {
		t.Fatalf("xdplb became master %d times beside a live keepalived master: %+v", in.Counters.BecameMaster, in.Transitions)
	}
	x.noDrops()
	l.vipOn(false)
	if s := l.stats(k); s.State != "MASTER" || len(s.Errors()) != 0 {
		t.Fatalf("keepalived: state %s, errors %v", s.State, s.Errors())
	}

	// keepalived's advert, decoded by xdplb's packet code and equal to what
	// xdplb would send in its place.
	kAdv, _ := l.wire(0, soon, "keepalived's advert", advertFrom(kAddr, 200))
	checkAdvert(t, kAdv, p, 200, kAddr, l.k.MAC(l.kLink))
	kGARP, _ := l.wire(0, soon, "keepalived's gratuitous ARP", garpFrom(l.k.MAC(l.kLink)))

	// keepalived crashes right after an advert, the worst moment: xdplb
	// takes over Master_Down_Interval after that advert.
	var timings []timing
	_, mark := l.wire(l.cap.Mark(), soon, "keepalived's next advert", advertFrom(kAddr, 200))
	killed := time.Now()
	if err := k.Kill(); err != nil {
		t.Fatal(err)
	}
	xTake, end := l.wire(mark, p.mdi(100)+soon, "xdplb's first advert as master", advertFrom(xAddr, 100))
	kLast, _ := l.cap.Last(end, advertFrom(kAddr, 200))
	if !kLast.At.Before(killed) {
		t.Fatalf("keepalived advertised at %v, after it was killed at %v", kLast.At, killed)
	}
	timings = append(timings, timing{"xdplb takeover after keepalived's last advert", xTake.At.Sub(kLast.At), p.mdi(100)})
	waitFor(t, soon, "xdplb master", func() bool { return x.status().State == vrrp.Master })
	if c := x.change(vrrp.Master); c.Cause != vrrp.CauseMasterDown {
		t.Fatalf("xdplb became master for %q, want %q", c.Cause, vrrp.CauseMasterDown)
	}
	if n := x.status().Counters.Priority0Received; n != 0 {
		t.Fatalf("xdplb received %d priority 0 adverts from a killed keepalived", n)
	}
	// A crashed box takes its addresses with it; keepalived left them.
	if !hasVIP(t, l.k, l.kLink) {
		t.Fatal("keepalived removed the VIP although it was killed")
	}
	if _, err := l.k.Exec("ip", "addr", "del", vip.String(), "dev", l.kLink); err != nil {
		t.Fatal(err)
	}
	l.vipOn(true)

	// xdplb's own advert and gratuitous ARP on the wire, against
	// keepalived's.
	checkAdvert(t, xTake, p, 100, xAddr, l.x.MAC(l.xLink))
	sameAdvert(t, kAdv, xTake)
	xGARP, _ := l.wire(mark, soon, "xdplb's gratuitous ARP", garpFrom(l.x.MAC(l.xLink)))
	sameGARP(t, kGARP, xGARP)

	// keepalived returns and preempts; it heard xdplb's adverts meanwhile
	// and refused none.
	k = l.keepalived(p, 200)
	waitState(t, k, "MASTER", p.startup())
	waitFor(t, soon, "xdplb back to backup", func() bool {
		in := x.status()
		return in.State == vrrp.Backup && in.Master == kAddr
	})
	if c := x.change(vrrp.Backup); c.Cause != vrrp.CauseHigherPriority {
		t.Fatalf("xdplb left master for %q, want %q", c.Cause, vrrp.CauseHigherPriority)
	}
	l.vipOn(false)
	if s := l.stats(k); s.Counters["advert_rcvd"] == 0 || len(s.Errors()) != 0 {
		t.Fatalf("keepalived as backup of xdplb: %d adverts received, errors %v", s.Counters["advert_rcvd"], s.Errors())
	}
	x.noDrops()

	// keepalived stops: its priority 0 lets xdplb take over after
	// Skew_Time.
	mark = l.cap.Mark()
	if err := k.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	p0, _ := l.wire(mark, soon, "keepalived's priority 0", advertFrom(kAddr, 0))
	xTake, _ = l.wire(mark, p.mdi(100)+soon, "xdplb's first advert as master", advertFrom(xAddr, 100))
	timings = append(timings, timing{"xdplb takeover after keepalived's priority 0", xTake.At.Sub(p0.At), p.skew(100)})
	waitFor(t, soon, "xdplb master", func() bool { return x.status().State == vrrp.Master })
	if in := x.status(); in.Counters.Priority0Received == 0 {
		t.Fatal("xdplb counted no priority 0 advert")
	}
	x.noDrops()
	l.vipOn(true)
	return timings
}

// xdplb is the master (priority 200), keepalived the backup (100). Both
// agree on it; keepalived counts xdplb's adverts and refuses none.
// keepalived takes over when xdplb stops (after Skew_Time, on its priority
// 0) and when it crashes (after Master_Down_Interval); xdplb preempts when
// it returns, having accepted keepalived's adverts meanwhile.
func TestXDPLBMasterKeepalivedBackup(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			bestOf(t, func(t *testing.T) []timing { return xdplbMaster(t, p) })
		})
	}
}

func xdplbMaster(t *testing.T, p proto) []timing {
	l := newLAN(t)
	x := l.xdplb(p, 200)
	waitFor(t, p.startup(), "xdplb master", func() bool { return x.status().State == vrrp.Master })
	k := l.keepalived(p, 100)

	// Both agree that xdplb is master, and keepalived hears it.
	waitState(t, k, "BACKUP", p.startup())
	xAdv, mark := l.wire(l.cap.Mark(), soon, "xdplb's advert", advertFrom(xAddr, 200))
	checkAdvert(t, xAdv, p, 200, xAddr, l.x.MAC(l.xLink))
	for range 3 {
		_, mark = l.wire(mark, soon, "xdplb's advert", advertFrom(xAddr, 200))
	}
	s := l.stats(k)
	if s.State != "BACKUP" || s.MasterPriority != 200 || s.Counters["become_master"] != 0 ||
		s.Counters["advert_rcvd"] < 3 || len(s.Errors()) != 0 {
		t.Fatalf("keepalived beside xdplb: state %s, master priority %d, became master %d times, %d adverts received, errors %v",
			s.State, s.MasterPriority, s.Counters["become_master"], s.Counters["advert_rcvd"], s.Errors())
	}
	l.vipOn(true)

	// xdplb stops: its priority 0 lets keepalived take over after
	// Skew_Time.
	var timings []timing
	mark = l.cap.Mark()
	x.stop()
	p0, _ := l.wire(mark, soon, "xdplb's priority 0", advertFrom(xAddr, 0))
	kTake, _ := l.wire(mark, p.mdi(100)+soon, "keepalived's first advert as master", advertFrom(kAddr, 100))
	timings = append(timings, timing{"keepalived takeover after xdplb's priority 0", kTake.At.Sub(p0.At), p.skew(100)})
	waitState(t, k, "MASTER", soon)
	if n := x.status().Counters.Priority0Sent; n != 1 {
		t.Fatalf("xdplb sent %d priority 0 adverts, want 1", n)
	}
	if s := l.stats(k); s.Counters["pri_zero_rcvd"] == 0 || len(s.Errors()) != 0 {
		t.Fatalf("keepalived: %d priority 0 adverts received, errors %v", s.Counters["pri_zero_rcvd"], s.Errors())
	}
	l.vipOn(false)

	// xdplb returns and preempts; it heard keepalived's adverts meanwhile
	// and dropped none.
	x = l.xdplb(p, 200)
	waitFor(t, p.startup(), "xdplb master again", func() bool { return x.status().State == vrrp.Master })
	waitState(t, k, "BACKUP", soon)
	l.vipOn(true)
	if in := x.status(); in.Counters.AdvertsReceived == 0 {
		t.Fatal("xdplb heard no advert from keepalived before preempting it")
	}
	x.noDrops()

	// xdplb crashes right after an advert: keepalived takes over
	// Master_Down_Interval after it.
	_, mark = l.wire(l.cap.Mark(), soon, "xdplb's next advert", advertFrom(xAddr, 200))
	x.crash()
	kTake, end := l.wire(mark, p.mdi(100)+soon, "keepalived's first advert as master", advertFrom(kAddr, 100))
	xLast, _ := l.cap.Last(end, advertFrom(xAddr, 200))
	timings = append(timings, timing{"keepalived takeover after xdplb's last advert", kTake.At.Sub(xLast.At), p.mdi(100)})
	for _, f := range l.cap.Since(mark) {
		if f.IsAdvert(xAddr, 0) {
			t.Fatal("a crashed xdplb sent priority 0")
		}
	}
	waitState(t, k, "MASTER", soon)
	l.vipOn(false)
	if s := l.stats(k); len(s.Errors()) != 0 {
		t.Fatalf("keepalived errors %v", s.Errors())
	}
	return timings
}

// checkAdvert checks an advertisement seen on the wire: the IPv4 header
// RFC 3768/5798 section 5.1 requires, and a VRRP message that xdplb's
// packet code decodes and would encode to the very same bytes for the
// same parameters.
func checkAdvert(t *testing.T, f interop.Frame, p proto, prio uint8, src netip.Addr, mac net.HardwareAddr) {
	t.Helper()
	group := vrrp.Group()
	h := f.IP
	if h.Version != 4 || h.Len != 20 || h.TOS != vrrp.TOS || h.TTL != vrrp.TTL || h.Protocol != vrrp.Protocol ||
		h.Flags != 0 || h.FragOff != 0 || f.Src() != src || f.Dst() != group {
		t.Fatalf("advert from %v: IP header %+v; want no options, TOS %#x, TTL %d, protocol %d, no DF, %v > %v",
			src, h, vrrp.TOS, vrrp.TTL, vrrp.Protocol, src, group)
	}
	if want := (net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}); !bytes.Equal(want, f.DstMAC) || !bytes.Equal(mac, f.SrcMAC) {
		t.Fatalf("advert from %v: Ethernet %v > %v, want %v > %v", src, f.SrcMAC, f.DstMAC, mac, want)
	}
	got, err := f.Advert()
	if err != nil {
		t.Fatalf("xdplb cannot decode the advert from %v: %v\n% x", src, err, f.VRRP)
	}
	field, err := vrrp.IntervalField(p.version, p.interval)
	if err != nil {
		t.Fatal(err)
	}
	want := vrrp.Advertisement{
		Version: p.version, VRID: p.vrid, Priority: prio, Interval: field,
		Addresses: []netip.Addr{vip.Addr()}, Checksum: got.Checksum,
	}
	if p.password != "" {
		want.AuthType = vrrp.AuthPass
		want.AuthData, _ = vrrp.Password(p.password)
	}
	if want.Version != got.Version || want.VRID != got.VRID || want.Priority != got.Priority || want.Interval != got.Interval ||
		want.Reserved != got.Reserved || want.AuthType != got.AuthType || want.AuthData != got.AuthData ||
		!slices.Equal(want.Addresses, got.Addresses) {
		t.Fatalf("advert from %v decodes to\n%+v\nwant\n%+v", src, got, want)
	}
	b, err := want.Marshal(src, group)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, f.VRRP) {
		t.Fatalf("advert from %v:\non the wire % x\nxdplb       % x", src, f.VRRP, b)
	}
}

// sameAdvert checks that keepalived's and xdplb's adverts differ only where
// they must: the priority, the IP source, and the checksums and IP ID that
// follow from them.
func sameAdvert(t *testing.T, k, x interop.Frame) {
	t.Helper()
	ipHeader := func(f interop.Frame) []byte {
		b, err := f.IP.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{4, 5, 10, 11, 12, 13, 14, 15} { // ID, checksum, source
			b[i] = 0
		}
		return b
	}
	if kh, xh := ipHeader(k), ipHeader(x); !bytes.Equal(kh, xh) {
		t.Fatalf("IP headers differ beyond ID, checksum and source:\nkeepalived % x\nxdplb      % x", kh, xh)
	}
	mask := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[2], b[6], b[7] = 0, 0, 0 // priority, checksum
		return b
	}
	if kb, xb := mask(k.VRRP), mask(x.VRRP); !bytes.Equal(kb, xb) {
		t.Fatalf("VRRP messages differ beyond priority and checksum:\nkeepalived % x\nxdplb      % x", k.VRRP, x.VRRP)
	}
	t.Logf("keepalived's advert % x\nxdplb's advert      % x (same but priority and checksum)", k.VRRP, x.VRRP)
}

// sameGARP checks that two gratuitous ARPs for the VIP differ only in the
// sender's hardware address (Ethernet source and ARP sender); trailing
// padding to the Ethernet minimum is not compared.
func sameGARP(t *testing.T, k, x interop.Frame) {
	t.Helper()
	const n = 14 + 28 // Ethernet header and ARP for IPv4 over Ethernet
	if len(k.Raw) < n || len(x.Raw) < n {
		t.Fatalf("gratuitous ARPs of %d and %d bytes, want at least %d", len(k.Raw), len(x.Raw), n)
	}
	mask := func(b []byte) []byte {
		b = bytes.Clone(b[:n])
		clear(b[6:12])  // Ethernet source
		clear(b[22:28]) // ARP sender hardware address
		return b
	}
	if kb, xb := mask(k.Raw), mask(x.Raw); !bytes.Equal(kb, xb) {
		t.Fatalf("gratuitous ARPs differ beyond the sender's MAC:\nkeepalived % x\nxdplb      % x", k.Raw, x.Raw)
	}
	if len(k.Raw) != len(x.Raw) {
		t.Logf("gratuitous ARP frames are %d (keepalived) and %d (xdplb) bytes: padding only", len(k.Raw), len(x.Raw))
	}
}
