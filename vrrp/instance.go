package vrrp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// instance is the runtime of one virtual router: its state machine and
// everything the Router's loop keeps for it. Only the loop touches it,
// except ann and notify, which hand work to the instance's workers.
type instance struct {
	cfg      InstanceConfig
	log      *slog.Logger
	m        Machine
	link     *link
	group    *group
	trackers []trackRef

	tmpl          Advertisement // what every advertisement carries but the priority
	intervalField uint16
	vips          map[netip.Addr]bool
	dsts          []netip.Addr // 224.0.0.18 or the unicast peers
	unicast       bool
	peers         map[netip.Addr]bool
	compat        bool // VRRPv3 unicast checksum over the multicast group
	garp          GARP

	started     bool
	ownFaults   []string // fault trackers (weight 0) that are down
	faulted     bool     // the fault last given to the machine
	steppedDown bool     // left Master for Backup by itself since the last sync

	counters   Counters
	drops      [reasonEnd]uint64
	lastAdvert time.Time
	changes    []StateChange

	ann    *announcement
	notify *notifier
}

type trackRef struct {
	t      *tracker
	weight int
}

func newInstance(c InstanceConfig, log *slog.Logger) (*instance, error) {
	if c.Name == "" {
		return nil, errors.New("instance has no name")
	}
	fail := func(format string, args ...any) (*instance, error) {
		return nil, fmt.Errorf("instance %q: %s", c.Name, fmt.Sprintf(format, args...))
	}
	if c.Transport == nil || c.Announcer == nil {
		return fail("needs a transport and an announcer")
	}
	if c.VRID == 0 {
		return fail("virtual router id must be 1 to 255")
	}
	if c.Version != V2 && c.Version != V3 {
		return fail("version %d, want 2 or 3", c.Version)
	}
	if c.Priority == 0 {
		return fail("priority must be 1 to 255")
	}
	field, err := IntervalField(c.Version, c.Interval)
	if err != nil {
		return fail("%v", err)
	}
	if c.PreemptDelay < 0 {
		return fail("negative preempt delay")
	}
	if !c.Source.Is4() {
		return fail("source address %v is not IPv4", c.Source)
	}
	if len(c.Addresses) == 0 || len(c.Addresses) > MaxAddresses {
		return fail("%d virtual addresses, want 1 to %d", len(c.Addresses), MaxAddresses)
	}
	inst := &instance{
		cfg:           c,
		log:           log.With("instance", c.Name, "vrid", c.VRID, "iface", c.Interface),
		intervalField: field,
		vips:          map[netip.Addr]bool{},
		peers:         map[netip.Addr]bool{},
		compat:        c.OldUnicastChecksum,
		garp:          c.GARP.withDefaults(),
		ann:           newAnnouncement(),
		notify:        newNotifier(),
	}
	inst.tmpl = Advertisement{Version: c.Version, VRID: c.VRID, Interval: field}
	for _, p := range c.Addresses {
		a := p.Addr()
		if !p.IsValid() || !a.Is4() {
			return fail("virtual address %v is not IPv4", p)
		}
		if inst.vips[a] {
			return fail("virtual address %v listed twice", a)
		}
		inst.vips[a] = true
		inst.tmpl.Addresses = append(inst.tmpl.Addresses, a)
	}
	switch {
	case c.Version == V3 && (c.AuthType != AuthNone || c.Password != ""):
		return fail("VRRPv3 has no authentication")
	case c.AuthType == AuthPass:
		d, err := Password(c.Password)
		if err != nil {
			return fail("%v", err)
		}
		inst.tmpl.AuthType, inst.tmpl.AuthData = AuthPass, d
	case c.AuthType != AuthNone:
		return fail("authentication type %d unsupported (none or pass)", c.AuthType)
	case c.Password != "":
		return fail("password without authentication type pass")
	}
	for _, p := range c.Peers {
		if !p.Is4() || p == c.Source {
			return fail("unicast peer %v is not a remote IPv4 address", p)
		}
		inst.peers[p] = true
	}
	inst.unicast = len(c.Peers) > 0
	inst.dsts = []netip.Addr{Group()}
	if inst.unicast {
		inst.dsts = slices.Clone(c.Peers)
	}
	inst.m = NewMachine(Params{
		Version:      c.Version,
		Priority:     c.Priority,
		Interval:     c.Interval,
		NoPreempt:    c.NoPreempt,
		PreemptDelay: c.PreemptDelay,
		Addr:         c.Source,
	})
	inst.garp.Repeat = max(inst.garp.Repeat, 0)
	return inst, nil
}

func (i *instance) trackersKnown() bool {
	return !slices.ContainsFunc(i.trackers, func(r trackRef) bool { return !r.t.known })
}

// validate applies the receiver checks of RFC 3768/5798 section 7.1 that
// need the instance, in the RFC's order, plus keepalived's unicast checks.
// The structural checks ran in Unmarshal.
func (i *instance) validate(now time.Time, p Packet, a *Advertisement, lim *limiter) error {
	if p.TTL != TTL && !(i.unicast && i.cfg.AnyUnicastTTL) {
		return fmt.Errorf("%w: %d", ReasonTTL, p.TTL)
	}
	if a.Version != i.cfg.Version {
		return fmt.Errorf("%w: got %d, instance runs %d", ReasonVersion, a.Version, i.cfg.Version)
	}
	if err := VerifyChecksum(p.Payload, p.Src, p.Dst); err != nil {
		// Older keepalived releases summed VRRPv3 unicast over 224.0.0.18;
		// accept it and answer in kind, as current keepalived does.
		if a.Version != V3 || !i.unicast || p.Dst.IsMulticast() || VerifyChecksum(p.Payload, p.Src, Group()) != nil {
			return err
		}
		if !i.compat {
			i.compat = true
			i.log.Info("vrrp peer uses the old unicast checksum; using it too", "src", p.Src)
		}
	}
	if p.Dst.IsMulticast() == i.unicast {
		return fmt.Errorf("%w: sent to %v", ReasonDestination, p.Dst)
	}
	if i.cfg.Priority == OwnerPriority {
		return fmt.Errorf("%w: priority %d from %v", ReasonOwner, a.Priority, p.Src)
	}
	if a.Version == V2 {
		if a.AuthType != i.tmpl.AuthType {
			return fmt.Errorf("%w: got %d, want %d", ReasonAuthType, a.AuthType, i.tmpl.AuthType)
		}
		if a.AuthType == AuthPass && subtle.ConstantTimeCompare(a.AuthData[:], i.tmpl.AuthData[:]) != 1 {
			return ReasonAuthPassword
		}
		if a.Interval != i.intervalField {
			return fmt.Errorf("%w: got %ds, want %ds", ReasonInterval, a.Interval, i.intervalField)
		}
	} else if a.Interval == 0 {
		return fmt.Errorf("%w: 0", ReasonInterval)
	}
	if !i.sameAddresses(a.Addresses) {
		// RFC 3768/5798 7.1: drop unless the owner sent it. keepalived
		// drops it even then.
		if a.Priority != OwnerPriority {
			return fmt.Errorf("%w: got %v", ReasonAddressList, a.Addresses)
		}
		if ok, n := lim.allow(i.cfg.Name+":owner-addresses", now); ok {
			i.log.Warn("vrrp address owner advertises other addresses", "src", p.Src, "addresses", a.Addresses, "suppressed", n)
		}
	}
	if i.unicast && i.cfg.CheckPeers && !i.peers[p.Src] {
		return fmt.Errorf("%w: %v", ReasonPeer, p.Src)
	}
	return nil
}

func (i *instance) sameAddresses(addrs []netip.Addr) bool {
	if len(addrs) != len(i.vips) {
		return false
	}
	seen := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		if !i.vips[a] || seen[a] {
			return false
		}
		seen[a] = true
	}
	return true
}

func (i *instance) status() InstanceStatus {
	master, mprio := i.m.Master()
	s := InstanceStatus{
		Name:                 i.cfg.Name,
		Interface:            i.cfg.Interface,
		VRID:                 i.cfg.VRID,
		Version:              i.cfg.Version,
		State:                i.m.State(),
		Priority:             i.cfg.Priority,
		EffectivePriority:    i.m.Priority(),
		Master:               master,
		MasterPriority:       mprio,
		AdvertInterval:       i.cfg.Interval,
		MasterAdvertInterval: i.m.MasterAdverInterval(),
		Addresses:            slices.Clone(i.cfg.Addresses),
		LastAdvert:           i.lastAdvert,
		Counters:             i.counters,
		Transitions:          slices.Clone(i.changes),
	}
	s.Counters.Drops = dropMap(&i.drops)
	if i.group != nil {
		s.Group = i.group.name
		for _, m := range i.group.members {
			for _, f := range m.ownFaults {
				if m == i {
					s.Faults = append(s.Faults, f)
				} else {
					s.Faults = append(s.Faults, "group:"+f)
				}
			}
		}
	} else {
		s.Faults = slices.Clone(i.ownFaults)
	}
	if s.Transitions == nil {
		s.Transitions = []StateChange{}
	}
	return s
}

// announcement is the address state the loop wants for an instance. The
// worker applies the latest wish, so the loop never blocks on netlink and a
// burst of flaps ends in the right state.
type announcement struct {
	mu   sync.Mutex
	hold bool
	gen  uint64 // counts wishes to hold: each new mastership announces again
	wake chan struct{}
}

func newAnnouncement() *announcement {
	return &announcement{wake: make(chan struct{}, 1)}
}

func (a *announcement) set(hold bool) {
	a.mu.Lock()
	a.hold = hold
	if hold {
		a.gen++
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *announcement) want() (bool, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hold, a.gen
}

// runAnnouncer applies an instance's address wishes until stop closes,
// then applies the last one. Starting with held set makes the first wish
// to release remove addresses a previous run left on the interface.
func (r *Router) runAnnouncer(ctx context.Context, stop <-chan struct{}, inst *instance) {
	held, gen := true, uint64(0)
	var garpStop chan struct{}
	var garpDone chan struct{}
	stopGARP := func() {
		if garpStop != nil {
			close(garpStop)
			<-garpDone
			garpStop = nil
		}
	}
	reconcile := func() {
		hold, g := inst.ann.want()
		switch {
		case hold && (!held || g != gen):
			stopGARP()
			octx, cancel := context.WithTimeout(ctx, r.announceTimeout)
			err := inst.cfg.Announcer.AddAddresses(octx, inst.cfg.Addresses)
			cancel()
			if err != nil {
				inst.log.Error("vrrp add virtual addresses failed", "err", err)
			} else {
				inst.log.Info("vrrp virtual addresses added", "vip", inst.cfg.Addresses)
			}
			held, gen = true, g
			if inst.garp.Repeat == 0 {
				return
			}
			garpStop, garpDone = make(chan struct{}), make(chan struct{})
			go func(stop, done chan struct{}) {
				defer close(done)
				r.announce(ctx, stop, inst)
			}(garpStop, garpDone)
		case !hold && held:
			stopGARP()
			octx, cancel := context.WithTimeout(ctx, r.announceTimeout)
			err := inst.cfg.Announcer.RemoveAddresses(octx, inst.cfg.Addresses)
			cancel()
			if err != nil {
				inst.log.Error("vrrp remove virtual addresses failed", "err", err)
			}
			held = false
		}
	}
	for {
		select {
		case <-inst.ann.wake:
			reconcile()
		case <-stop:
			reconcile()
			stopGARP()
			return
		}
	}
}

// announce sends gratuitous ARP for every address as keepalived does: a
// burst of Repeat per address spaced by Interval at once, a second burst
// Delay after becoming master, and one every Refresh since becoming master.
func (r *Router) announce(ctx context.Context, stop <-chan struct{}, inst *instance) {
	g := inst.garp
	burst := func() bool {
		var failed error
		for n := 0; n < g.Repeat; n++ {
			for k, a := range inst.tmpl.Addresses {
				octx, cancel := context.WithTimeout(ctx, r.announceTimeout)
				if err := inst.cfg.Announcer.GratuitousARP(octx, a); err != nil {
					failed = err
				}
				cancel()
				last := n == g.Repeat-1 && k == len(inst.tmpl.Addresses)-1
				if !last && !sleep(r.clock, stop, g.Interval) {
					return false
				}
			}
		}
		if failed != nil {
			inst.log.Warn("vrrp gratuitous arp failed", "err", failed)
		}
		return true
	}
	began := r.clock.Now()
	var second, refresh time.Time
	if g.Delay > 0 {
		second = began.Add(g.Delay)
	}
	if g.Refresh > 0 {
		refresh = began.Add(g.Refresh)
	}
	if !burst() {
		return
	}
	for !second.IsZero() || !refresh.IsZero() {
		next := &refresh
		if !second.IsZero() && (refresh.IsZero() || second.Before(refresh)) {
			next = &second
		}
		if !sleep(r.clock, stop, next.Sub(r.clock.Now())) {
			return
		}
		if next == &refresh {
			refresh = refresh.Add(g.Refresh)
		} else {
			second = time.Time{}
		}
		if !burst() {
			return
		}
	}
}

// notifier queues notify commands for one instance or group and runs them
// one at a time, in order.
type notifier struct {
	ch chan []string
}

func newNotifier() *notifier { return &notifier{ch: make(chan []string, 64)} }

// enqueue queues cmd with args appended; it never blocks and reports false
// when the queue is full. An empty cmd does nothing.
func (n *notifier) enqueue(cmd []string, args ...string) bool {
	if len(cmd) == 0 {
		return true
	}
	argv := append(slices.Clone(cmd), args...)
	select {
	case n.ch <- argv:
		return true
	default:
		return false
	}
}

func (n *notifier) close() { close(n.ch) }

func (r *Router) runNotifier(ctx context.Context, n *notifier, log *slog.Logger) {
	for argv := range n.ch {
		if err := r.hook(ctx, argv, r.notifyTimeout); err != nil {
			log.Warn("vrrp notify failed", "cmd", argv, "err", err)
		}
	}
}
