package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a [Router].
type Config struct {
	Instances []InstanceConfig
	Groups    []SyncGroup
	// Trackers are the trackers instances refer to by name. Each runs once
	// per Router whatever the number of instances using it.
	Trackers map[string]Tracker
	Logger   *slog.Logger // nil: discard
	Clock    Clock        // nil: the system clock
	// DropLogInterval is the least time between two log lines for the same
	// instance (or link) and drop reason; the ones in between are counted
	// and reported with the next line. Default 10s.
	DropLogInterval time.Duration
	// NotifyTimeout bounds each notify command (default 10s).
	NotifyTimeout time.Duration
	// AnnounceTimeout bounds each Announcer call (default 5s).
	AnnounceTimeout time.Duration
	// Changes, if set, receives every state change as it happens, for
	// metrics or for the daemon to act on. The Router never blocks on it: a
	// change that does not fit is dropped and counted in
	// Counters.ChangesDropped, and Status still shows it.
	Changes chan<- Change
}

// Change is a state change of one instance, sent on Config.Changes.
type Change struct {
	Instance string
	VRID     uint8
	StateChange
	// Priority is the instance's effective priority after the change.
	Priority uint8
}

// InstanceConfig configures one virtual router instance, as a keepalived
// vrrp_instance block.
type InstanceConfig struct {
	Name string
	// Interface names the link, for logs and status.
	Interface string
	VRID      uint8
	Version   Version
	// Priority from 1 to 255; 255 means this router owns the addresses.
	Priority uint8
	// Interval is the advertisement interval: whole seconds from 1s for
	// VRRPv2, multiples of 10ms for VRRPv3.
	Interval     time.Duration
	NoPreempt    bool
	PreemptDelay time.Duration
	// Addresses are the virtual addresses with their prefix length, as they
	// are put on the interface; advertisements carry their addresses.
	Addresses []netip.Prefix
	// AuthType and Password configure VRRPv2 authentication: AuthNone or
	// AuthPass with a password of up to 8 bytes (keepalived's auth_type
	// PASS). VRRPv3 has no authentication.
	AuthType AuthType
	Password string
	// Source is the address advertisements are sent from: the interface's
	// primary address or keepalived's unicast_src_ip. It breaks priority
	// ties, so it must be unique among the routers.
	Source netip.Addr
	// Peers switch the instance from multicast to unicast: an advertisement
	// goes to each peer (keepalived's unicast_peer).
	Peers []netip.Addr
	// CheckPeers drops unicast advertisements whose source is not a peer
	// (keepalived's check_unicast_src).
	CheckPeers bool
	// AnyUnicastTTL accepts unicast advertisements whatever their TTL, for
	// peers behind a router, as keepalived does unless a peer has min_ttl
	// or max_ttl set. Multicast ones must always have TTL 255.
	AnyUnicastTTL bool
	// OldUnicastChecksum computes the VRRPv3 unicast checksum over the
	// multicast group instead of the peer address, as older keepalived
	// releases did (keepalived's old_unicast_checksum). A router also
	// switches to it by itself when it receives such a checksum, as current
	// keepalived does.
	OldUnicastChecksum bool
	Transport          Transport
	Announcer          Announcer
	GARP               GARP
	// Track names trackers of Config.Trackers and the weight of each.
	Track []Track
	// Notify is a command run without a shell on every state change, with
	// the arguments keepalived gives its notify script appended: "INSTANCE",
	// the name, the new state (MASTER, BACKUP, FAULT or STOP) and the
	// priority.
	Notify []string
}

// Track ties an instance to a tracker. Weight 0 puts the instance in Fault
// while the tracker is down; a negative weight lowers the priority by its
// size while down; a positive weight raises it while up. The effective
// priority stays within 1..254; an owner (255) ignores weights.
type Track struct {
	Name   string
	Weight int
}

// SyncGroup keeps instances in the same state, as keepalived's
// vrrp_sync_group: when one faults all do, when one gives up master all do,
// and they become master together once every member's Master_Down_Timer
// has fired.
type SyncGroup struct {
	Name      string
	Instances []string
	// Notify runs with "GROUP", the group name and its new state appended.
	Notify []string
}

// Router runs VRRP instances. Create it with [NewRouter], then call Run.
type Router struct {
	log             *slog.Logger
	clock           Clock
	notifyTimeout   time.Duration
	announceTimeout time.Duration
	hook            func(ctx context.Context, argv []string, timeout time.Duration) error

	insts    []*instance
	links    []*link
	demux    map[demuxKey]*instance
	groups   []*group
	trackers []*tracker
	limiter  limiter

	recv    chan received
	trackCh chan trackUpdate
	changes chan<- Change

	running atomic.Bool
	mu      sync.Mutex
	status  Status
}

type demuxKey struct {
	tr   Transport
	vrid uint8
}

type link struct {
	name       string
	tr         Transport
	received   uint64
	recvErrors uint64
	drops      [reasonEnd]uint64
}

type received struct {
	link *link
	pkt  Packet
	err  error
}

type tracker struct {
	name  string
	t     Tracker
	known bool
	up    bool
	users []*instance
}

type trackUpdate struct {
	t  *tracker
	up bool
}

type group struct {
	name    string
	members []*instance
	state   State
	notify  []string
	queue   *notifier
}

// NewRouter checks cfg and returns a Router for it.
func NewRouter(cfg Config) (*Router, error) {
	r := &Router{
		log:             cfg.Logger,
		clock:           cfg.Clock,
		notifyTimeout:   cfg.NotifyTimeout,
		announceTimeout: cfg.AnnounceTimeout,
		hook:            RunScript,
		demux:           map[demuxKey]*instance{},
		limiter:         limiter{every: cfg.DropLogInterval, last: map[string]time.Time{}, suppressed: map[string]int{}},
		recv:            make(chan received),
		trackCh:         make(chan trackUpdate),
		changes:         cfg.Changes,
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.clock == nil {
		r.clock = SystemClock()
	}
	if r.notifyTimeout <= 0 {
		r.notifyTimeout = 10 * time.Second
	}
	if r.announceTimeout <= 0 {
		r.announceTimeout = 5 * time.Second
	}
	if r.limiter.every <= 0 {
		r.limiter.every = 10 * time.Second
	}
	if len(cfg.Instances) == 0 {
		return nil, errors.New("vrrp config: no instances")
	}

	trackers := map[string]*tracker{}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range cfg.Trackers {
			if !yield(n) {
				return
			}
		}
	}) {
		t := cfg.Trackers[name]
		if t == nil {
			return nil, fmt.Errorf("vrrp config: tracker %q is nil", name)
		}
		tr := &tracker{name: name, t: t}
		trackers[name] = tr
		r.trackers = append(r.trackers, tr)
	}

	names := map[string]*instance{}
	links := map[Transport]*link{}
	for i := range cfg.Instances {
		ic := cfg.Instances[i]
		inst, err := newInstance(ic, r.log)
		if err != nil {
			return nil, fmt.Errorf("vrrp config: %w", err)
		}
		if names[ic.Name] != nil {
			return nil, fmt.Errorf("vrrp config: instance name %q used twice", ic.Name)
		}
		names[ic.Name] = inst
		l := links[ic.Transport]
		if l == nil {
			l = &link{name: ic.Interface, tr: ic.Transport}
			if l.name == "" {
				l.name = "link" + strconv.Itoa(len(r.links))
			}
			links[ic.Transport] = l
			r.links = append(r.links, l)
		}
		inst.link = l
		key := demuxKey{ic.Transport, ic.VRID}
		if other := r.demux[key]; other != nil {
			return nil, fmt.Errorf("vrrp config: instances %q and %q share VRID %d on one transport", other.cfg.Name, ic.Name, ic.VRID)
		}
		r.demux[key] = inst
		for _, tr := range ic.Track {
			t := trackers[tr.Name]
			if t == nil {
				return nil, fmt.Errorf("vrrp config: instance %q tracks unknown tracker %q", ic.Name, tr.Name)
			}
			if tr.Weight < -253 || tr.Weight > 253 {
				return nil, fmt.Errorf("vrrp config: instance %q: tracker %q weight %d outside -253..253", ic.Name, tr.Name, tr.Weight)
			}
			if !slices.Contains(t.users, inst) {
				t.users = append(t.users, inst)
			}
			inst.trackers = append(inst.trackers, trackRef{t: t, weight: tr.Weight})
		}
		r.insts = append(r.insts, inst)
	}

	seen := map[string]bool{}
	for _, gc := range cfg.Groups {
		if gc.Name == "" || seen[gc.Name] {
			return nil, fmt.Errorf("vrrp config: sync group name %q empty or used twice", gc.Name)
		}
		seen[gc.Name] = true
		if len(gc.Instances) == 0 {
			return nil, fmt.Errorf("vrrp config: sync group %q has no instances", gc.Name)
		}
		g := &group{name: gc.Name, notify: gc.Notify, queue: newNotifier()}
		for _, n := range gc.Instances {
			inst := names[n]
			if inst == nil {
				return nil, fmt.Errorf("vrrp config: sync group %q: unknown instance %q", gc.Name, n)
			}
			if inst.group != nil {
				return nil, fmt.Errorf("vrrp config: instance %q is in sync groups %q and %q", n, inst.group.name, gc.Name)
			}
			inst.group = g
			inst.m.p.Sync = true
			g.members = append(g.members, inst)
		}
		r.groups = append(r.groups, g)
	}
	r.publish()
	return r, nil
}

// Status returns a snapshot of every instance. It is safe to call at any
// time, from any goroutine, also after Run returned.
func (r *Router) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status.clone()
}

// Run runs the instances until ctx is done, then shuts them down as RFC
// 3768/5798 say: masters send a priority 0 advertisement so a backup takes
// over after Skew_Time; the addresses are removed and notify commands run
// with STOP. Run returns nil after a shutdown, or an error if it cannot
// run. A Router runs once.
func (r *Router) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("vrrp router: Run called twice")
	}
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	// Address and notify work outlives ctx: shutting down still removes
	// the addresses and runs the STOP notifications.
	work := context.WithoutCancel(ctx)

	var bg sync.WaitGroup // readers and trackers: end with inner
	for _, l := range r.links {
		bg.Go(func() { r.read(inner, l) })
	}
	for _, t := range r.trackers {
		bg.Go(func() {
			t.t.Track(inner, func(up bool) {
				select {
				case r.trackCh <- trackUpdate{t, up}:
				case <-inner.Done():
				}
			})
		})
	}

	var workers sync.WaitGroup // announcers and notifiers: end after shutdown
	stop := make(chan struct{})
	for _, inst := range r.insts {
		workers.Go(func() { r.runAnnouncer(work, stop, inst) })
		workers.Go(func() { r.runNotifier(work, inst.notify, inst.log) })
	}
	for _, g := range r.groups {
		workers.Go(func() { r.runNotifier(work, g.queue, r.log.With("group", g.name)) })
	}

	r.startReady(r.clock.Now())
	r.loop(ctx)

	now := r.clock.Now()
	for _, inst := range r.insts {
		r.step(inst, now, Shutdown{})
	}
	for _, g := range r.groups {
		if g.state != Initialize {
			g.state = Initialize
			g.queue.enqueue(g.notify, "GROUP", g.name, "STOP")
		}
	}
	r.publish()
	cancel()
	bg.Wait()
	close(stop)
	for _, inst := range r.insts {
		inst.notify.close()
	}
	for _, g := range r.groups {
		g.queue.close()
	}
	workers.Wait()
	r.publish()
	return nil
}

// loop is the Router's only goroutine touching instance state: one select
// over the context, received packets, tracker reports and a single timer
// armed for the earliest deadline of all instances.
func (r *Router) loop(ctx context.Context) {
	timer := r.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var armed time.Time
	for {
		r.publish()
		if next := r.nextDeadline(); !next.Equal(armed) {
			timer.Stop()
			armed = next
			if !next.IsZero() {
				timer.Reset(next.Sub(r.clock.Now()))
			}
		}
		select {
		case <-ctx.Done():
			return
		case in := <-r.recv:
			r.handleReceived(r.clock.Now(), in)
		case u := <-r.trackCh:
			r.handleTrack(r.clock.Now(), u)
		case <-timer.C():
			armed = time.Time{}
			r.handleTick(r.clock.Now())
		}
	}
}

// read feeds one transport's packets to the loop. After an error other
// than the end of ctx it waits a little before reading again, so a broken
// socket cannot spin; a closed transport ends it.
func (r *Router) read(ctx context.Context, l *link) {
	for {
		p, err := l.tr.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case r.recv <- received{link: l, pkt: p, err: err}:
		case <-ctx.Done():
			return
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil && !sleep(r.clock, ctx.Done(), 100*time.Millisecond) {
			return
		}
	}
}

func (r *Router) nextDeadline() time.Time {
	var next time.Time
	for _, inst := range r.insts {
		if d := inst.m.Deadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next
}

func (r *Router) handleTick(now time.Time) {
	for _, inst := range r.insts {
		if d := inst.m.Deadline(); !d.IsZero() && !now.Before(d) {
			r.step(inst, now, Tick{})
		}
	}
	r.sync(now)
}

func (r *Router) handleReceived(now time.Time, in received) {
	l := in.link
	if in.err != nil {
		l.recvErrors++
		if ok, n := r.limiter.allow("recv:"+l.name, now); ok {
			r.log.Warn("vrrp receive failed", "iface", l.name, "err", in.err, "suppressed", n)
		}
		return
	}
	l.received++
	var a Advertisement
	if err := a.Unmarshal(in.pkt.Payload); err != nil {
		r.dropLink(now, l, in.pkt, err)
		return
	}
	inst := r.demux[demuxKey{l.tr, a.VRID}]
	if inst == nil {
		r.dropLink(now, l, in.pkt, fmt.Errorf("%w %d", ReasonUnknownVRID, a.VRID))
		return
	}
	if !inst.started {
		return // still waiting for its trackers
	}
	if err := inst.validate(now, in.pkt, &a, &r.limiter); err != nil {
		reason, _ := ReasonOf(err)
		inst.drops[reason]++
		if ok, n := r.limiter.allow(inst.cfg.Name+":"+reason.String(), now); ok {
			inst.log.Warn("vrrp advertisement dropped", "reason", reason.String(), "src", in.pkt.Src, "err", err, "suppressed", n)
		}
		return
	}
	inst.counters.AdvertsReceived++
	if a.Priority == 0 {
		inst.counters.Priority0Received++
	}
	inst.lastAdvert = now
	r.step(inst, now, Advert{Priority: a.Priority, Interval: a.IntervalDuration(), Source: in.pkt.Src})
	r.sync(now)
}

func (r *Router) dropLink(now time.Time, l *link, p Packet, err error) {
	reason, _ := ReasonOf(err)
	l.drops[reason]++
	ok, n := r.limiter.allow(l.name+":"+reason.String(), now)
	if !ok {
		return
	}
	level := slog.LevelWarn
	if reason == ReasonUnknownVRID {
		// Other virtual routers on the link are normal.
		level = slog.LevelDebug
	}
	r.log.Log(context.Background(), level, "vrrp advertisement dropped",
		"iface", l.name, "reason", reason.String(), "src", p.Src, "err", err, "suppressed", n)
}

func (r *Router) handleTrack(now time.Time, u trackUpdate) {
	t := u.t
	if !t.known || t.up != u.up {
		r.log.Info("vrrp tracker changed", "tracker", t.name, "up", u.up)
	}
	t.known, t.up = true, u.up
	for _, inst := range t.users {
		r.retrack(inst, now)
	}
	r.startReady(now)
	r.sync(now)
}

// retrack recomputes an instance's effective priority and own fault from
// its trackers, as keepalived: weight 0 faults while down, a negative
// weight counts while down, a positive one while up.
func (r *Router) retrack(inst *instance, now time.Time) {
	prio := int(inst.cfg.Priority)
	inst.ownFaults = inst.ownFaults[:0]
	for _, ref := range inst.trackers {
		if !ref.t.known {
			continue
		}
		switch {
		case ref.weight == 0 && !ref.t.up:
			inst.ownFaults = append(inst.ownFaults, ref.t.name)
		case ref.weight < 0 && !ref.t.up, ref.weight > 0 && ref.t.up:
			prio += ref.weight
		}
	}
	prio = min(max(prio, 1), OwnerPriority-1)
	if inst.cfg.Priority == OwnerPriority {
		prio = OwnerPriority
	}
	if old := inst.m.Priority(); uint8(prio) != old {
		inst.log.Info("vrrp priority changed", "from", old, "priority", prio)
		r.step(inst, now, SetPriority{Priority: uint8(prio)})
	}
}

// startReady starts every instance whose trackers (and those of its sync
// group) have all reported.
func (r *Router) startReady(now time.Time) {
	for _, inst := range r.insts {
		if inst.started || !inst.trackersKnown() {
			continue
		}
		// Members of a sync group start together.
		if g := inst.group; g != nil && slices.ContainsFunc(g.members, func(m *instance) bool { return !m.trackersKnown() }) {
			continue
		}
		inst.started = true
		r.retrack(inst, now)
		r.applyFault(inst, now)
		r.step(inst, now, Startup{})
	}
	r.sync(now)
}

func (r *Router) applyFault(inst *instance, now time.Time) {
	fault := len(inst.ownFaults) > 0
	if g := inst.group; g != nil {
		for _, m := range g.members {
			fault = fault || len(m.ownFaults) > 0
		}
	}
	if fault != inst.faulted {
		inst.faulted = fault
		r.step(inst, now, SetFault{Fault: fault})
	}
}

// sync applies faults and sync-group rules after an event, and notifies
// group state changes.
func (r *Router) sync(now time.Time) {
	for _, inst := range r.insts {
		if inst.started {
			r.applyFault(inst, now)
		}
	}
	for _, g := range r.groups {
		if slices.ContainsFunc(g.members, func(m *instance) bool { return m.steppedDown }) {
			for _, m := range g.members {
				if m.m.State() == Master {
					r.step(m, now, GroupBackup{})
				}
			}
		}
		for _, m := range g.members {
			m.steppedDown = false
		}
		allSet, anyReady := true, false
		for _, m := range g.members {
			anyReady = anyReady || m.m.Ready()
			allSet = allSet && m.started && (m.m.Ready() || m.m.State() == Master)
		}
		if allSet && anyReady {
			for _, m := range g.members {
				if m.m.Ready() {
					r.step(m, now, GroupMaster{})
				}
			}
		}
		if st := g.currentState(); st != g.state {
			r.log.Info("vrrp sync group state change", "group", g.name, "from", g.state.String(), "state", st.String())
			g.state = st
			if st != Initialize {
				g.queue.enqueue(g.notify, "GROUP", g.name, st.String())
			}
		}
	}
}

func (g *group) currentState() State {
	all := func(s State) bool {
		return !slices.ContainsFunc(g.members, func(m *instance) bool { return m.m.State() != s })
	}
	switch {
	case slices.ContainsFunc(g.members, func(m *instance) bool { return m.m.State() == Fault }):
		return Fault
	case all(Master):
		return Master
	case slices.ContainsFunc(g.members, func(m *instance) bool { return m.m.State() == Initialize }):
		return Initialize
	}
	return Backup
}

// step feeds one event to an instance's state machine and performs the
// actions.
func (r *Router) step(inst *instance, now time.Time, ev Event) {
	m, acts := inst.m.Step(now, ev)
	inst.m = m
	for _, a := range acts {
		switch a := a.(type) {
		case SendAdvert:
			r.send(inst, now, a.Priority)
		case Transition:
			r.transition(inst, now, a)
		}
	}
}

func (r *Router) send(inst *instance, now time.Time, prio uint8) {
	adv := inst.tmpl
	adv.Priority = prio
	inst.counters.AdvertsSent++
	if prio == 0 {
		inst.counters.Priority0Sent++
	}
	for _, dst := range inst.dsts {
		sumDst := dst
		if inst.cfg.Version == V3 && inst.compat {
			sumDst = Group()
		}
		b, err := adv.Marshal(inst.cfg.Source, sumDst)
		if err == nil {
			err = inst.link.tr.Send(Packet{Src: inst.cfg.Source, Dst: dst, TTL: TTL, Payload: b})
		}
		if err != nil {
			inst.counters.SendErrors++
			if ok, n := r.limiter.allow(inst.cfg.Name+":send", now); ok {
				inst.log.Warn("vrrp advertisement not sent", "dst", dst, "err", err, "suppressed", n)
			}
		}
	}
}

func (r *Router) transition(inst *instance, now time.Time, t Transition) {
	sc := StateChange{At: now, From: t.From, To: t.To, Cause: t.Cause}
	inst.counters.Transitions++
	inst.changes = append(inst.changes, sc)
	if n := len(inst.changes); n > maxChanges {
		inst.changes = slices.Delete(inst.changes, 0, n-maxChanges)
	}
	master, _ := inst.m.Master()
	inst.log.Info("vrrp state change", "from", t.From.String(), "state", t.To.String(),
		"cause", string(t.Cause), "priority", inst.m.Priority(), "master", master)
	switch {
	case t.To == Master:
		inst.counters.BecameMaster++
		inst.ann.set(true)
	case t.From == Master:
		inst.counters.ReleasedMaster++
		inst.ann.set(false)
	case t.From == Initialize:
		// Clear addresses a previous run may have left behind.
		inst.ann.set(false)
	}
	if r.changes != nil {
		select {
		case r.changes <- Change{Instance: inst.cfg.Name, VRID: inst.cfg.VRID, StateChange: sc, Priority: inst.m.Priority()}:
		default:
			inst.counters.ChangesDropped++
		}
	}
	if t.From == Master && t.To == Backup && t.Cause != CauseGroup && inst.group != nil {
		inst.steppedDown = true
	}
	state := t.To.String()
	if t.To == Initialize {
		state = "STOP"
	}
	if !inst.notify.enqueue(inst.cfg.Notify, "INSTANCE", inst.cfg.Name, state, strconv.Itoa(int(inst.m.Priority()))) {
		inst.counters.NotifyDropped++
	}
}

const maxChanges = 16

func (r *Router) publish() {
	s := Status{}
	for _, inst := range r.insts {
		s.Instances = append(s.Instances, inst.status())
	}
	for _, g := range r.groups {
		gs := GroupStatus{Name: g.name, State: g.state}
		for _, m := range g.members {
			gs.Instances = append(gs.Instances, m.cfg.Name)
		}
		s.Groups = append(s.Groups, gs)
	}
	for _, l := range r.links {
		s.Links = append(s.Links, LinkStatus{Interface: l.name, Received: l.received, ReceiveErrors: l.recvErrors, Drops: dropMap(&l.drops)})
	}
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

// limiter allows one log line per key and interval and counts the rest.
// Only the Router's loop uses it.
type limiter struct {
	every      time.Duration
	last       map[string]time.Time
	suppressed map[string]int
}

func (l *limiter) allow(key string, now time.Time) (bool, int) {
	if last, ok := l.last[key]; ok && now.Sub(last) < l.every {
		l.suppressed[key]++
		return false, 0
	}
	l.last[key] = now
	n := l.suppressed[key]
	delete(l.suppressed, key)
	return true, n
}
