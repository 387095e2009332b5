package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// State is the protocol state of one virtual router instance.
type State uint8

// The states of RFC 3768/5798 section 6.4, plus Fault, keepalived's state
// for an instance whose tracked interface or script has failed: it neither
// advertises nor holds the addresses.
const (
	Initialize State = iota
	Backup
	Master
	Fault
)

// String returns the state as keepalived names it in notify arguments and
// logs: INIT, BACKUP, MASTER, FAULT.
func (s State) String() string {
	switch s {
	case Initialize:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	case Fault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalText encodes the state by name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// OwnerPriority is the priority of the router that owns the virtual
// addresses; it becomes master at once and is never preempted.
const OwnerPriority = 255

// Params are the protocol parameters of one instance.
type Params struct {
	Version Version
	// Priority is the configured priority, 1 to 255 (255: address owner).
	Priority uint8
	// Interval is the Advertisement_Interval: whole seconds for VRRPv2,
	// multiples of 10ms for VRRPv3.
	Interval time.Duration
	// NoPreempt keeps a higher-priority backup from taking over from a
	// lower-priority master (keepalived's nopreempt). Preemption is on by
	// default, as RFC 3768/5798 Preempt_Mode.
	NoPreempt bool
	// PreemptDelay, when preempting, keeps accepting a lower-priority master
	// for this long after first seeing it (keepalived's preempt_delay).
	PreemptDelay time.Duration
	// Addr is this router's primary address on the link, the source of its
	// advertisements, compared with the sender's to break priority ties.
	Addr netip.Addr
	// Sync makes the instance a member of a sync group: when its
	// Master_Down_Timer fires it becomes [Machine.Ready] instead of master
	// and waits for a [GroupMaster] event.
	Sync bool
}

// Event is an input to [Machine.Step].
type Event interface{ event() }

// Startup starts the instance (RFC "Startup event").
type Startup struct{}

// Shutdown stops the instance (RFC "Shutdown event"); a master sends a
// priority 0 advertisement so that a backup takes over after Skew_Time.
type Shutdown struct{}

// Tick reports that the time given to Step has reached [Machine.Deadline].
type Tick struct{}

// Advert is a received advertisement that passed every check.
type Advert struct {
	Priority uint8
	// Interval is the sender's advertisement interval (VRRPv3 Max Adver
	// Int); VRRPv2 instances ignore it, having checked it equals theirs.
	Interval time.Duration
	// Source is the IP source address of the advertisement, the sender's
	// primary address.
	Source netip.Addr
}

// SetPriority changes the effective priority, as trackers with a weight do.
// An address owner keeps 255.
type SetPriority struct{ Priority uint8 }

// SetFault puts the instance in Fault (true) or lets it out (false).
type SetFault struct{ Fault bool }

// GroupMaster tells a Ready member of a sync group that every member is
// ready, so all become master together.
type GroupMaster struct{}

// GroupBackup tells a master member of a sync group that another member
// went back to Backup, so it must too.
type GroupBackup struct{}

func (Startup) event()     {}
func (Shutdown) event()    {}
func (Tick) event()        {}
func (Advert) event()      {}
func (SetPriority) event() {}
func (SetFault) event()    {}
func (GroupMaster) event() {}
func (GroupBackup) event() {}

// Action is an output of [Machine.Step], to be performed in order.
type Action interface{ action() }

// SendAdvert asks for an advertisement with the given priority: the
// effective priority, or 0 when a master resigns.
type SendAdvert struct{ Priority uint8 }

// Transition reports a change of state. Entering Master means adding the
// virtual addresses and announcing them with gratuitous ARP; leaving it
// means removing them.
type Transition struct {
	From, To State
	Cause    Cause
}

func (SendAdvert) action() {}
func (Transition) action() {}

// Cause says why a transition happened.
type Cause string

// Transition causes.
const (
	CauseStartup        Cause = "startup"
	CauseOwner          Cause = "address_owner"
	CauseMasterDown     Cause = "master_down"
	CauseHigherPriority Cause = "higher_priority"
	CauseTieBreak       Cause = "higher_address"
	CauseFault          Cause = "fault"
	CauseRecovered      Cause = "recovered"
	CauseShutdown       Cause = "shutdown"
	CauseGroup          Cause = "sync_group"
)

// Machine is the state of one instance's protocol state machine. It is a
// plain value: Step returns the next Machine and never reads a clock, so
// every timing rule can be tested by passing times.
type Machine struct {
	p     Params
	state State
	prio  uint8 // effective priority
	fault bool

	masterAdverInt time.Duration // v3 Master_Adver_Interval: learned from the master
	adverTimer     time.Time     // zero when stopped
	masterDown     time.Time     // zero when stopped
	preemptAt      time.Time     // when a lower-priority master may be preempted
	ready          bool          // sync member whose Master_Down_Timer fired
	master         netip.Addr    // the current master as far as we know
	masterPrio     uint8
}

// NewMachine returns a machine in Initialize for p.
func NewMachine(p Params) Machine {
	return Machine{p: p, prio: p.Priority, masterAdverInt: p.Interval}
}

// State returns the current state.
func (m Machine) State() State { return m.state }

// Priority returns the effective priority.
func (m Machine) Priority() uint8 { return m.prio }

// Params returns the machine's parameters.
func (m Machine) Params() Params { return m.p }

// Ready reports whether a sync group member waits in Backup with its
// Master_Down_Timer expired.
func (m Machine) Ready() bool { return m.ready }

// Master returns the address and priority of the current master: this
// router's when Master, else the last accepted advertisement's sender.
func (m Machine) Master() (netip.Addr, uint8) {
	if m.state == Master {
		return m.p.Addr, m.prio
	}
	return m.master, m.masterPrio
}

// MasterAdverInterval returns the advertisement interval in use by the
// master: VRRPv3 learns it from the master's advertisements; VRRPv2 always
// uses its own.
func (m Machine) MasterAdverInterval() time.Duration {
	if m.p.Version == V3 {
		return m.masterAdverInt
	}
	return m.p.Interval
}

// SkewTime returns Skew_Time: (256 - Priority) / 256 seconds for VRRPv2
// (RFC 3768 6.1), (256 - Priority) * Master_Adver_Interval / 256 for
// VRRPv3 (RFC 5798 6.1), with the effective priority.
func (m Machine) SkewTime() time.Duration {
	unit := time.Second
	if m.p.Version == V3 {
		unit = m.masterAdverInt
	}
	return time.Duration(int64(256-int(m.prio)) * int64(unit) / 256)
}

// MasterDownInterval returns Master_Down_Interval: three advertisement
// intervals (VRRPv3: Master_Adver_Interval) plus Skew_Time.
func (m Machine) MasterDownInterval() time.Duration {
	return 3*m.MasterAdverInterval() + m.SkewTime()
}

// Deadline returns when the machine next needs a [Tick], or the zero time
// if it needs none.
func (m Machine) Deadline() time.Time {
	switch m.state {
	case Master:
		return m.adverTimer
	case Backup:
		return m.masterDown
	}
	return time.Time{}
}

// Step applies ev at time now and returns the next machine and the actions
// to perform, in order.
func (m Machine) Step(now time.Time, ev Event) (Machine, []Action) {
	var acts []Action
	switch ev := ev.(type) {
	case Startup:
		if m.state == Initialize {
			acts = m.start(now, acts, CauseStartup)
		}
	case Shutdown:
		acts = m.shutdown(acts)
	case Tick:
		acts = m.tick(now, acts)
	case Advert:
		acts = m.advert(now, ev, acts)
	case SetPriority:
		m.setPriority(ev.Priority)
	case SetFault:
		acts = m.setFault(now, ev.Fault, acts)
	case GroupMaster:
		if m.state == Backup && m.ready {
			acts = m.becomeMaster(now, acts, CauseGroup)
		}
	case GroupBackup:
		if m.state == Master {
			acts = m.becomeBackup(now, acts, CauseGroup)
		}
	}
	return m, acts
}

// start leaves Initialize or Fault: RFC 6.4.1.
func (m *Machine) start(now time.Time, acts []Action, cause Cause) []Action {
	if m.fault {
		return m.transition(Fault, CauseFault, acts)
	}
	m.masterAdverInt = m.p.Interval
	if m.p.Priority == OwnerPriority {
		return m.becomeMaster(now, acts, CauseOwner)
	}
	m.masterDown = now.Add(m.MasterDownInterval())
	m.ready = false
	return m.transition(Backup, cause, acts)
}

func (m *Machine) shutdown(acts []Action) []Action {
	if m.state == Master {
		acts = append(acts, SendAdvert{Priority: 0})
	}
	m.adverTimer, m.masterDown, m.preemptAt = time.Time{}, time.Time{}, time.Time{}
	m.ready = false
	if m.state != Initialize {
		acts = m.transition(Initialize, CauseShutdown, acts)
	}
	return acts
}

func (m *Machine) tick(now time.Time, acts []Action) []Action {
	switch m.state {
	case Master:
		if !m.adverTimer.IsZero() && !now.Before(m.adverTimer) {
			acts = append(acts, SendAdvert{Priority: m.prio})
			// Keep the cadence unless the tick came so late that the next
			// advertisement would already be due.
			m.adverTimer = m.adverTimer.Add(m.p.Interval)
			if !m.adverTimer.After(now) {
				m.adverTimer = now.Add(m.p.Interval)
			}
		}
	case Backup:
		if !m.masterDown.IsZero() && !now.Before(m.masterDown) {
			m.masterDown = time.Time{}
			if m.p.Sync {
				m.ready = true
				return acts
			}
			acts = m.becomeMaster(now, acts, CauseMasterDown)
		}
	}
	return acts
}

// advert handles a valid advertisement: RFC 3768 6.4.2/6.4.3 and RFC 5798
// 6.4.2/6.4.3.
func (m *Machine) advert(now time.Time, a Advert, acts []Action) []Action {
	switch m.state {
	case Backup:
		if a.Priority == 0 {
			// The master resigned: take over after Skew_Time.
			m.masterDown = now.Add(m.SkewTime())
			m.ready = false
			return acts
		}
		accept := m.p.NoPreempt || a.Priority >= m.prio
		if !accept && m.p.PreemptDelay > 0 {
			if m.preemptAt.IsZero() {
				m.preemptAt = now.Add(m.p.PreemptDelay)
			}
			accept = now.Before(m.preemptAt)
		}
		if a.Priority >= m.prio {
			m.preemptAt = time.Time{}
		}
		if !accept {
			// A lower-priority master that we preempt: let the
			// Master_Down_Timer run out.
			return acts
		}
		if m.p.Version == V3 && a.Interval > 0 {
			m.masterAdverInt = a.Interval
		}
		m.masterDown = now.Add(m.MasterDownInterval())
		m.ready = false
		m.master, m.masterPrio = a.Source, a.Priority
	case Master:
		if a.Priority == 0 {
			// Another master resigned: assert ourselves at once.
			acts = append(acts, SendAdvert{Priority: m.prio})
			m.adverTimer = now.Add(m.p.Interval)
			return acts
		}
		cause := CauseHigherPriority
		if a.Priority == m.prio {
			cause = CauseTieBreak
		}
		if a.Priority > m.prio || (a.Priority == m.prio && a.Source.Compare(m.p.Addr) > 0) {
			if m.p.Version == V3 && a.Interval > 0 {
				m.masterAdverInt = a.Interval
			}
			m.master, m.masterPrio = a.Source, a.Priority
			acts = m.becomeBackup(now, acts, cause)
		}
	}
	return acts
}

func (m *Machine) setPriority(p uint8) {
	if m.p.Priority == OwnerPriority {
		return
	}
	m.prio = p
}

func (m *Machine) setFault(now time.Time, fault bool, acts []Action) []Action {
	if m.fault == fault {
		return acts
	}
	m.fault = fault
	switch {
	case fault && (m.state == Master || m.state == Backup):
		if m.state == Master {
			// Tell the backups now rather than after Master_Down_Interval,
			// as keepalived does when a master faults.
			acts = append(acts, SendAdvert{Priority: 0})
		}
		m.adverTimer, m.masterDown = time.Time{}, time.Time{}
		m.ready = false
		acts = m.transition(Fault, CauseFault, acts)
	case !fault && m.state == Fault:
		acts = m.start(now, acts, CauseRecovered)
	}
	return acts
}

func (m *Machine) becomeMaster(now time.Time, acts []Action, cause Cause) []Action {
	acts = append(acts, SendAdvert{Priority: m.prio})
	m.masterAdverInt = m.p.Interval // a master advertises at its own interval
	m.adverTimer = now.Add(m.p.Interval)
	m.masterDown = time.Time{}
	m.preemptAt = time.Time{}
	m.ready = false
	return m.transition(Master, cause, acts)
}

func (m *Machine) becomeBackup(now time.Time, acts []Action, cause Cause) []Action {
	m.adverTimer = time.Time{}
	m.masterDown = now.Add(m.MasterDownInterval())
	m.ready = false
	return m.transition(Backup, cause, acts)
}

func (m *Machine) transition(to State, cause Cause, acts []Action) []Action {
	from := m.state
	m.state = to
	return append(acts, Transition{From: from, To: to, Cause: cause})
}
