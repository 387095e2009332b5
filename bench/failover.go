package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"time"

	"github.com/xdplb/xdplb/vrrp"
	"github.com/xdplb/xdplb/vrrp/interop"
)

// failoverSection measures VRRP failover: how long after the master dies
// (crash) or stops (graceful) the backup is seen on the wire as the new
// master, for xdplb and for keepalived on the same link in the same run,
// next to the bound RFC 3768/5798 set.
type failoverSection struct{}

func (failoverSection) Name() string { return "failover" }

const failoverMethod = "Two routers of one implementation on a bridge in namespaces of the benchmark's own: A " +
	"(priority 200, master) and B (priority 100, backup); an observer namespace captures every frame with the " +
	"kernel's receive timestamp. Crash: right after one of A's adverts is seen, A is killed (keepalived: SIGKILL " +
	"of its process group; xdplb: its socket closed, then the Router stopped), the worst moment, so the time is " +
	"directly comparable with Master_Down_Interval = 3 x interval + Skew_Time. Graceful: A is stopped " +
	"(keepalived: SIGTERM; xdplb: context cancelled) and sends priority 0; the bound is Skew_Time = " +
	"(256 - 100)/256 of a second (v2) or of the interval (v3). ms: from the kill or stop request to B's first " +
	"advert or gratuitous ARP on the wire, whichever comes first; after last word: from A's last advert (crash) " +
	"or its priority 0 (graceful) on the wire to B's first advert, the part the RFC bounds. A returns after " +
	"each measurement and preempts B. Both implementations send one burst of 5 gratuitous ARPs (no second " +
	"burst) and run at normal scheduling priority. keepalived: its median for the same case. B's drop counters " +
	"(xdplb) or error counters (keepalived JSON dump) must stay zero. Medians over %d rounds (v3), %d (v2 at 1s)."

// foCase is one protocol setting both implementations run with.
type foCase struct {
	name     string
	version  vrrp.Version
	interval time.Duration
	vrid     uint8
	password string
}

var foCases = []foCase{
	{name: "v2-1s", version: vrrp.V2, interval: time.Second, vrid: 52, password: "s3cr3t"},
	{name: "v3-100ms", version: vrrp.V3, interval: 100 * time.Millisecond, vrid: 51},
}

// Backup's priority and its RFC timings.
const foBackupPrio = 100

func (c foCase) skew() time.Duration {
	if c.version == vrrp.V2 {
		return time.Duration(256-foBackupPrio) * time.Second / 256
	}
	return time.Duration(256-foBackupPrio) * c.interval / 256
}

func (c foCase) mdi() time.Duration { return 3*c.interval + c.skew() }

// rounds gives v2, whose one-second adverts make a round last about 11s,
// a third of the rounds.
func (c foCase) rounds(cfg Config) int {
	if c.version == vrrp.V2 {
		return max(1, (cfg.Rounds+2)/3)
	}
	return cfg.Rounds
}

var (
	foAddrA = netip.MustParseAddr("198.18.0.1")
	foAddrB = netip.MustParseAddr("198.18.0.2")
	foAddrO = netip.MustParseAddr("198.18.0.3")
	foVIP   = netip.MustParsePrefix("198.18.0.100/32")
)

// foSample is one takeover. Durations are from the kill or stop request.
type foSample struct {
	took      time.Duration // to B's first advert or gratuitous ARP
	advert    time.Duration // to B's first advert
	garp      time.Duration // to B's first gratuitous ARP
	afterLast time.Duration // from A's last advert or priority 0 to B's first advert
}

// foSamples are one implementation's takeovers for one case.
type foSamples struct {
	crash, graceful []foSample
	checked         []string
}

func (failoverSection) Run(ctx context.Context, cfg Config, log *slog.Logger) (SectionReport, error) {
	var v2, v3 int
	for _, c := range foCases {
		if c.version == vrrp.V2 {
			v2 = c.rounds(cfg)
		} else {
			v3 = c.rounds(cfg)
		}
	}
	rep := SectionReport{
		Name:   "failover",
		Method: fmt.Sprintf(failoverMethod, v3, v2),
		Columns: []Column{
			{Key: "rfc_bound_ms", Header: "RFC bound"},
			{Key: "keepalived_ms", Header: "keepalived"},
			{Key: "after_last_word_ms", Header: "after last word"},
			{Key: "first_advert_ms", Header: "1st advert"},
			{Key: "first_garp_ms", Header: "1st garp"},
		},
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		return rep, fmt.Errorf("keepalived is needed as the reference (make deps installs it): %w", err)
	}
	t, err := newFoTopo(ctx)
	if err != nil {
		return rep, err
	}
	defer func() {
		if err := t.Close(); err != nil {
			log.Error("remove failover topology", "err", err)
		}
	}()
	var capture *interop.Capture
	if err := inNS(t.ns("o"), func() (err error) {
		capture, err = interop.Listen(t.link("o"))
		return err
	}); err != nil {
		return rep, err
	}
	defer capture.Close()
	dir, err := os.MkdirTemp("", "xdplb-failover-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)

	// keepalived first: xdplb's rows show its figures.
	impls := []foImpl{keepalivedImpl{dir: dir}, xdplbImpl{}}
	for _, c := range foCases {
		got := map[string]*foSamples{}
		for _, impl := range impls {
			if !cfg.selected(c.name+"/crash/"+impl.name()) && !cfg.selected(c.name+"/graceful/"+impl.name()) {
				continue
			}
			log.Info("failover", "case", c.name, "impl", impl.name(), "rounds", c.rounds(cfg))
			s, err := foMeasure(ctx, log, t, capture, impl, c, c.rounds(cfg))
			if err != nil {
				return rep, fmt.Errorf("%s %s: %w", c.name, impl.name(), err)
			}
			got[impl.name()] = s
		}
		for _, kind := range []string{"crash", "graceful"} {
			bound := c.mdi()
			if kind == "graceful" {
				bound = c.skew()
			}
			// xdplb's row first, keepalived's under it.
			for _, impl := range []foImpl{impls[1], impls[0]} {
				s := got[impl.name()]
				name := c.name + "/" + kind + "/" + impl.name()
				if s == nil || !cfg.selected(name) {
					continue
				}
				samples := s.crash
				if kind == "graceful" {
					samples = s.graceful
				}
				r := newResult(name, "ms", pick(samples, func(x foSample) float64 { return ms(x.took) }))
				r.Metrics = map[string]float64{
					"rfc_bound_ms":       ms(bound),
					"after_last_word_ms": median(pick(samples, func(x foSample) float64 { return ms(x.afterLast) })),
					"first_advert_ms":    median(pick(samples, func(x foSample) float64 { return ms(x.advert) })),
					"first_garp_ms":      median(pick(samples, func(x foSample) float64 { return ms(x.garp) })),
				}
				if ref := got["keepalived"]; impl.name() != "keepalived" && ref != nil {
					refSamples := ref.crash
					if kind == "graceful" {
						refSamples = ref.graceful
					}
					r.Metrics["keepalived_ms"] = median(pick(refSamples, func(x foSample) float64 { return ms(x.took) }))
				}
				r.Checked = s.checked
				rep.Results = append(rep.Results, r)
			}
		}
	}
	return rep, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// foMeasure runs rounds of crash and graceful takeovers for one
// implementation: A (priority 200) in namespace a, B (100) in b.
func foMeasure(ctx context.Context, log *slog.Logger, t *foTopo, capture *interop.Capture, impl foImpl, c foCase, rounds int) (*foSamples, error) {
	start := func(role string, prio uint8, addr netip.Addr) (foRouter, error) {
		return impl.start(t.ns(role), t.link(role), addr, prio, c)
	}
	macB, err := t.mac("b")
	if err != nil {
		return nil, err
	}
	isA := func(prio uint8) func(interop.Frame) bool {
		return func(f interop.Frame) bool { return f.IsAdvert(foAddrA, prio) }
	}
	isB := func(f interop.Frame) bool { return f.IsAdvert(foAddrB, foBackupPrio) }
	isGARP := func(f interop.Frame) bool { return f.IsGARP(foVIP.Addr(), macB) }
	wait := func(mark int, d time.Duration, what string, match func(interop.Frame) bool) (interop.Frame, int, error) {
		wctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		f, next, err := capture.Wait(wctx, mark, match)
		if err != nil {
			return f, next, fmt.Errorf("%s not seen on the wire: %w", what, err)
		}
		return f, next, nil
	}
	startup := c.mdi() + 5*time.Second
	// soon bounds waits for what should follow at once but is not timed,
	// long enough for a starved process to catch up.
	const soon = 5 * time.Second

	// A (the master) starts first; B joins once A advertises, so B never
	// wins the first election however slowly a process starts.
	mark := capture.Mark()
	a, err := start("a", 200, foAddrA)
	if err != nil {
		return nil, err
	}
	defer func() { a.stop() }()
	if _, _, err := wait(mark, startup, "A's first advert", isA(200)); err != nil {
		return nil, err
	}
	b, err := start("b", foBackupPrio, foAddrB)
	if err != nil {
		return nil, err
	}
	defer b.stop()
	// A is master once it advertises; B is its backup once it heard that.
	aMaster := func() error {
		_, m, err := wait(mark, startup, "A's advert as master", isA(200))
		if err != nil {
			return err
		}
		if _, _, err := wait(m, soon, "A's next advert", isA(200)); err != nil {
			return err
		}
		deadline := time.Now().Add(soon)
		for b.state() != "BACKUP" {
			if time.Now().After(deadline) {
				return fmt.Errorf("B is %q beside master A, want BACKUP", b.state())
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	}
	if err := aMaster(); err != nil {
		return nil, err
	}
	for _, f := range capture.Since(mark) {
		if isB(f) {
			return nil, errors.New("B advertised as master during the first election")
		}
	}

	s := &foSamples{}
	// takeover waits for B to show up as master after mark and returns
	// the sample, measured from t0 and from the last word, and the mark
	// after B's advert.
	takeover := func(mark int, t0, last time.Time) (foSample, int, error) {
		adv, next, err := wait(mark, c.mdi()+5*time.Second, "B's first advert as master", isB)
		if err != nil {
			return foSample{}, 0, err
		}
		garp, _, err := wait(mark, soon, "B's gratuitous ARP", isGARP)
		if err != nil {
			return foSample{}, 0, err
		}
		first := min(adv.At.Sub(t0), garp.At.Sub(t0))
		return foSample{took: first, advert: adv.At.Sub(t0), garp: garp.At.Sub(t0), afterLast: adv.At.Sub(last)}, next, nil
	}
	var p0Seen int
	for r := 0; r < rounds; r++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Crash, right after an advert.
		_, m, err := wait(capture.Mark(), soon, "A's advert", isA(200))
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := a.crash(); err != nil {
			return nil, err
		}
		_, end, err := wait(m, c.mdi()+5*time.Second, "B's first advert as master", isB)
		if err != nil {
			return nil, err
		}
		last, ok := capture.Last(end, isA(200))
		if !ok || !last.At.Before(t0) {
			return nil, fmt.Errorf("A's last advert at %v, not before its crash at %v", last.At, t0)
		}
		crash, _, err := takeover(m, t0, last.At)
		if err != nil {
			return nil, err
		}
		for _, f := range capture.Since(m) {
			if f.IsAdvert(foAddrA, 0) {
				return nil, errors.New("a crashed A sent priority 0")
			}
		}
		s.crash = append(s.crash, crash)

		// A returns and preempts B.
		mark = capture.Mark()
		if a, err = start("a", 200, foAddrA); err != nil {
			return nil, err
		}
		if err := aMaster(); err != nil {
			return nil, err
		}

		// Graceful stop.
		m = capture.Mark()
		t0 = time.Now()
		if err := a.stop(); err != nil {
			return nil, err
		}
		p0, _, err := wait(m, soon, "A's priority 0", isA(0))
		if err != nil {
			return nil, err
		}
		p0Seen++
		graceful, _, err := takeover(m, t0, p0.At)
		if err != nil {
			return nil, err
		}
		s.graceful = append(s.graceful, graceful)
		log.Info("failover round", "impl", impl.name(), "case", c.name, "round", r+1,
			"crash", crash.took, "graceful", graceful.took)

		// A returns for the next round.
		mark = capture.Mark()
		if a, err = start("a", 200, foAddrA); err != nil {
			return nil, err
		}
		if err := aMaster(); err != nil {
			return nil, err
		}
	}
	checked, err := b.check()
	if err != nil {
		return nil, fmt.Errorf("B: %w", err)
	}
	s.checked = append(checked, fmt.Sprintf("priority0_seen=%d", p0Seen), "crash_priority0=0")
	return s, nil
}

// foImpl starts routers of one implementation.
type foImpl interface {
	name() string
	start(ns, link string, addr netip.Addr, prio uint8, c foCase) (foRouter, error)
}

// foRouter is one running router.
type foRouter interface {
	// crash ends it with nothing more on the wire.
	crash() error
	// stop ends it gracefully: a master sends priority 0. It may be called
	// again after crash or stop.
	stop() error
	// state is MASTER, BACKUP, or another keepalived state name.
	state() string
	// check returns the counters proving it refused no advert.
	check() ([]string, error)
}

// foGARP is what both implementations announce with: one burst of 5.
var foGARP = vrrp.GARP{Repeat: 5, Delay: -1}

type xdplbImpl struct{}

func (xdplbImpl) name() string { return "xdplb" }

func (xdplbImpl) start(ns, link string, addr netip.Addr, prio uint8, c foCase) (foRouter, error) {
	x := &xdplbRouter{done: make(chan struct{})}
	if err := inNS(ns, func() error {
		tr, err := vrrp.ListenIPv4(link)
		if err != nil {
			return err
		}
		ann, err := vrrp.NewAnnouncer(link)
		if err != nil {
			tr.Close()
			return err
		}
		x.tr, x.ann = tr, ann
		return nil
	}); err != nil {
		return nil, err
	}
	in := vrrp.InstanceConfig{
		Name: "VI_1", Interface: link, VRID: c.vrid, Version: c.version,
		Priority: prio, Interval: c.interval, Addresses: []netip.Prefix{foVIP},
		Source: addr, Transport: x.tr, Announcer: x.ann, GARP: foGARP,
	}
	if c.password != "" {
		in.AuthType, in.Password = vrrp.AuthPass, c.password
	}
	r, err := vrrp.NewRouter(vrrp.Config{Instances: []vrrp.InstanceConfig{in}})
	if err != nil {
		x.tr.Close()
		x.ann.Close()
		return nil, err
	}
	x.r = r
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel = cancel
	go func() {
		defer close(x.done)
		x.err = r.Run(ctx)
	}()
	return x, nil
}

type xdplbRouter struct {
	tr     *vrrp.IPv4Transport
	ann    *vrrp.NetlinkAnnouncer
	r      *vrrp.Router
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	closed bool
}

func (x *xdplbRouter) crash() error {
	x.tr.Close()
	return x.stop()
}

func (x *xdplbRouter) stop() error {
	if x.closed {
		return nil
	}
	x.closed = true
	x.cancel()
	select {
	case <-x.done:
	case <-time.After(10 * time.Second):
		return errors.New("xdplb Router did not stop")
	}
	x.tr.Close()
	x.ann.Close()
	return x.err
}

func (x *xdplbRouter) state() string {
	in, _ := x.r.Status().Instance("VI_1")
	return in.State.String()
}

func (x *xdplbRouter) check() ([]string, error) {
	st := x.r.Status()
	in, _ := st.Instance("VI_1")
	var drops uint64
	for _, n := range in.Counters.Drops {
		drops += n
	}
	for _, l := range st.Links {
		for _, n := range l.Drops {
			drops += n
		}
	}
	if drops != 0 || in.Counters.AdvertsReceived == 0 {
		return nil, fmt.Errorf("xdplb received %d adverts and dropped %d: %v", in.Counters.AdvertsReceived, drops, in.Counters.Drops)
	}
	return []string{fmt.Sprintf("adverts_received=%d", in.Counters.AdvertsReceived), "drops=0"}, nil
}

type keepalivedImpl struct{ dir string }

func (keepalivedImpl) name() string { return "keepalived" }

func (k keepalivedImpl) start(ns, link string, addr netip.Addr, prio uint8, c foCase) (foRouter, error) {
	dir, err := os.MkdirTemp(k.dir, ns+"-")
	if err != nil {
		return nil, err
	}
	cfg := interop.Config{RouterID: ns, Instances: []interop.Instance{{
		Name: "VI_1", Interface: link, VRID: c.vrid, Version: c.version, Priority: prio,
		Interval: c.interval, Password: c.password, Addresses: []netip.Prefix{foVIP}, GARP: foGARP,
	}}}
	p, err := interop.Start(ns, dir, cfg)
	if err != nil {
		return nil, err
	}
	return keepalivedRouter{p}, nil
}

type keepalivedRouter struct{ p *interop.Keepalived }

func (k keepalivedRouter) crash() error { return k.p.Kill() }

func (k keepalivedRouter) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return k.p.Stop(ctx)
}

func (k keepalivedRouter) state() string { return k.p.State("VI_1") }

func (k keepalivedRouter) check() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := k.p.Stats(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		if s.Name != "VI_1" {
			continue
		}
		if errs := s.Errors(); len(errs) != 0 || s.Counters["advert_rcvd"] == 0 {
			return nil, fmt.Errorf("keepalived received %d adverts, errors %v", s.Counters["advert_rcvd"], errs)
		}
		return []string{fmt.Sprintf("advert_rcvd=%d", s.Counters["advert_rcvd"]), "errors=0"}, nil
	}
	return nil, errors.New("keepalived reports no VI_1")
}

// foTopo is the failover section's link: namespaces a and b for the two
// routers and o for the observer, each with a veth port on a bridge in
// namespace s. Nothing is created outside them.
type foTopo struct {
	prefix string
	made   []string // namespaces created, for Close
}

func (t *foTopo) ns(role string) string   { return t.prefix + role }
func (t *foTopo) link(role string) string { return t.prefix + role + "e" }

func (t *foTopo) mac(role string) (net.HardwareAddr, error) {
	_, mac, err := linkInfo(context.Background(), t.ns(role), t.link(role))
	return mac, err
}

func newFoTopo(ctx context.Context) (*foTopo, error) {
	prefix, err := randomName("xf")
	if err != nil {
		return nil, fmt.Errorf("topology name: %w", err)
	}
	t := &foTopo{prefix: prefix}
	br := t.prefix + "br"
	sw := t.ns("s")
	var steps [][]string
	for _, role := range []string{"s", "a", "b", "o"} {
		steps = append(steps,
			[]string{"netns", "add", t.ns(role)},
			// No IPv6: nothing on the link but what is measured.
			[]string{"netns", "exec", t.ns(role), "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"},
			[]string{"-n", t.ns(role), "link", "set", "lo", "up"})
	}
	steps = append(steps, []string{"-n", sw, "link", "add", br, "type", "bridge"}, []string{"-n", sw, "link", "set", br, "up"})
	for role, addr := range map[string]netip.Addr{"a": foAddrA, "b": foAddrB, "o": foAddrO} {
		port := t.prefix + "s" + role
		steps = append(steps,
			[]string{"-n", sw, "link", "add", port, "type", "veth", "peer", "name", t.link(role), "netns", t.ns(role)},
			[]string{"-n", sw, "link", "set", port, "master", br},
			[]string{"-n", sw, "link", "set", port, "up"},
			[]string{"-n", t.ns(role), "addr", "add", netip.PrefixFrom(addr, 24).String(), "dev", t.link(role)},
			[]string{"-n", t.ns(role), "link", "set", t.link(role), "up"})
	}
	for _, args := range steps {
		if args[0] == "netns" && args[1] == "add" {
			t.made = append(t.made, args[2])
		}
		if _, err := ip(ctx, args...); err != nil {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}

// Close deletes the namespaces, and with them the links.
func (t *foTopo) Close() error {
	var errs []error
	for _, ns := range t.made {
		if _, err := ip(context.Background(), "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
