package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// sim runs several Machines on a simulated link in virtual time: every
// advertisement reaches every other running, connected node after delay.
// It checks whole protocol runs (election, failover, preemption, healing)
// against the RFC timings to the nanosecond.
type sim struct {
	t       *testing.T
	now     time.Time
	delay   time.Duration
	nodes   []*simNode
	pending []simPacket
	log     []simTransition
}

type simNode struct {
	name    string
	m       Machine
	running bool
	cut     bool // partitioned from the link
}

type simPacket struct {
	at   time.Time
	from int
	adv  Advert
}

type simTransition struct {
	at       time.Duration
	node     string
	from, to State
}

func (s simTransition) String() string {
	return fmt.Sprintf("%v %s %v->%v", s.at, s.node, s.from, s.to)
}

func newSim(t *testing.T, delay time.Duration, ps ...Params) *sim {
	s := &sim{t: t, now: t0, delay: delay}
	for i, p := range ps {
		s.nodes = append(s.nodes, &simNode{name: string(rune('A' + i)), m: NewMachine(p)})
	}
	return s
}

func (s *sim) apply(i int, ev Event) {
	n := s.nodes[i]
	var acts []Action
	n.m, acts = n.m.Step(s.now, ev)
	for _, a := range acts {
		switch a := a.(type) {
		case SendAdvert:
			if n.cut {
				continue
			}
			s.pending = append(s.pending, simPacket{
				at: s.now.Add(s.delay), from: i,
				adv: Advert{Priority: a.Priority, Interval: n.m.p.Interval, Source: n.m.p.Addr},
			})
		case Transition:
			s.log = append(s.log, simTransition{s.now.Sub(t0), n.name, a.From, a.To})
		}
	}
}

func (s *sim) start(i int) {
	s.nodes[i].running = true
	s.apply(i, Startup{})
}

// crash stops a node without a word, as a killed process or a dead box.
func (s *sim) crash(i int) {
	s.nodes[i].running = false
	s.nodes[i].m = NewMachine(s.nodes[i].m.p)
}

func (s *sim) stop(i int) {
	s.apply(i, Shutdown{})
	s.nodes[i].running = false
	s.nodes[i].m = NewMachine(s.nodes[i].m.p)
}

// run advances virtual time to until, delivering packets and ticks in
// time order (packets first at equal times, then nodes in order).
func (s *sim) run(until time.Duration) {
	end := at(until)
	for {
		next := end
		for _, p := range s.pending {
			if p.at.Before(next) {
				next = p.at
			}
		}
		for _, n := range s.nodes {
			if d := n.m.Deadline(); n.running && !d.IsZero() && d.Before(next) {
				next = d
			}
		}
		s.now = next
		var due []simPacket
		s.pending = slices.DeleteFunc(s.pending, func(p simPacket) bool {
			if p.at.After(next) {
				return false
			}
			due = append(due, p)
			return true
		})
		for _, p := range due {
			for i, n := range s.nodes {
				if i != p.from && n.running && !n.cut {
					s.apply(i, p.adv)
				}
			}
		}
		for i, n := range s.nodes {
			if d := n.m.Deadline(); n.running && !d.IsZero() && !d.After(next) {
				s.apply(i, Tick{})
			}
		}
		if !next.Before(end) && len(due) == 0 {
			return
		}
	}
}

func (s *sim) masters() []string {
	var ms []string
	for _, n := range s.nodes {
		if n.running && n.m.State() == Master {
			ms = append(ms, n.name)
		}
	}
	return ms
}

// wantLog checks the transitions logged since mark.
func (s *sim) wantLog(mark int, want ...simTransition) int {
	s.t.Helper()
	got := s.log[mark:]
	if !slices.Equal(want, got) {
		s.t.Fatalf("transitions:\nwant %v\ngot  %v", want, got)
	}
	return len(s.log)
}

func (s *sim) wantMasters(want ...string) {
	s.t.Helper()
	if got := s.masters(); !slices.Equal(want, got) {
		s.t.Fatalf("masters at %v: want %v, got %v", s.now.Sub(t0), want, got)
	}
}

func simParams(prio uint8, addr netip.Addr) Params {
	return Params{Version: V3, Priority: prio, Interval: 100 * time.Millisecond, Addr: addr}
}

func TestSimulatedFailover(t *testing.T) {
	const (
		iv = 100 * time.Millisecond
	)
	mdiA := 300*time.Millisecond + ms(21.875) // prio 200: skew 56/256 of 100ms
	mdiB := 300*time.Millisecond + ms(60.9375)
	skewB := ms(60.9375)

	s := newSim(t, 0, simParams(200, addrA), simParams(100, addrB))
	s.start(0)
	s.start(1)
	s.run(time.Second)
	// Both start as backup; A's shorter Master_Down_Interval elects it,
	// and its first advert holds B back.
	mark := s.wantLog(0,
		simTransition{0, "A", Initialize, Backup},
		simTransition{0, "B", Initialize, Backup},
		simTransition{mdiA, "A", Backup, Master},
	)
	s.wantMasters("A")

	// A dies silently between two adverts: B takes over exactly
	// Master_Down_Interval after the last advert it heard.
	lastAdvert := mdiA + 6*iv
	s.crash(0)
	s.run(2 * time.Second)
	mark = s.wantLog(mark, simTransition{lastAdvert + mdiB, "B", Backup, Master})
	s.wantMasters("B")

	// A comes back with the higher priority and preempts B once its own
	// Master_Down_Interval has passed, ignoring B's lower adverts.
	s.start(0)
	s.run(3 * time.Second)
	restart := 2 * time.Second
	mark = s.wantLog(mark,
		simTransition{restart, "A", Initialize, Backup},
		simTransition{restart + mdiA, "A", Backup, Master},
		simTransition{restart + mdiA, "B", Master, Backup},
	)
	s.wantMasters("A")

	// A stops gracefully: its priority 0 advert lets B take over after
	// Skew_Time instead of Master_Down_Interval.
	s.stop(0)
	s.run(4 * time.Second)
	s.wantLog(mark,
		simTransition{3 * time.Second, "A", Master, Initialize},
		simTransition{3*time.Second + skewB, "B", Backup, Master},
	)
	s.wantMasters("B")
}

func TestSimulatedNoPreempt(t *testing.T) {
	a := simParams(200, addrA)
	a.NoPreempt = true
	s := newSim(t, time.Millisecond, a, simParams(100, addrB))
	s.start(1)
	s.run(time.Second)
	s.wantMasters("B")
	mark := len(s.log)
	s.start(0)
	s.run(5 * time.Second)
	s.wantLog(mark, simTransition{time.Second, "A", Initialize, Backup})
	s.wantMasters("B")
}

func TestSimulatedTieBreak(t *testing.T) {
	// Equal priorities: both time out together, both advertise, and the
	// sender with the higher primary address stays master.
	s := newSim(t, time.Millisecond, simParams(100, addrA), simParams(100, addrB))
	s.start(0)
	s.start(1)
	s.run(time.Second)
	mdi := 300*time.Millisecond + ms(60.9375)
	s.wantLog(0,
		simTransition{0, "A", Initialize, Backup},
		simTransition{0, "B", Initialize, Backup},
		simTransition{mdi, "A", Backup, Master},
		simTransition{mdi, "B", Backup, Master},
		simTransition{mdi + time.Millisecond, "A", Master, Backup},
	)
	s.wantMasters("B")
}

func TestSimulatedPartitionHeals(t *testing.T) {
	mdiA := 300*time.Millisecond + ms(21.875)
	mdiB := 300*time.Millisecond + ms(60.9375)
	s := newSim(t, time.Millisecond, simParams(200, addrA), simParams(100, addrB))
	s.start(0)
	s.start(1)
	s.run(time.Second)
	s.wantMasters("A")
	mark := len(s.log)

	// Cut B off: it stops hearing A and becomes a second master.
	s.nodes[1].cut = true
	lastHeard := mdiA + 6*100*time.Millisecond + time.Millisecond
	s.run(2 * time.Second)
	mark = s.wantLog(mark, simTransition{lastHeard + mdiB, "B", Backup, Master})
	s.wantMasters("A", "B")

	// Heal: B steps down on A's next advert; A ignores B's lower ones.
	s.nodes[1].cut = false
	s.run(5 * time.Second)
	nextA := mdiA + 17*100*time.Millisecond // A's first advert after 2s
	s.wantLog(mark, simTransition{nextA + time.Millisecond, "B", Master, Backup})
	s.wantMasters("A")
}

func TestSimulatedThreeRouters(t *testing.T) {
	// The highest priority wins; when it dies the next highest takes over,
	// never the lowest, because its skew is shorter.
	c := netip.MustParseAddr("198.18.0.3")
	s := newSim(t, time.Millisecond, simParams(250, addrA), simParams(150, addrB), simParams(50, c))
	for i := range s.nodes {
		s.start(i)
	}
	s.run(time.Second)
	s.wantMasters("A")
	s.crash(0)
	s.run(3 * time.Second)
	s.wantMasters("B")
	for _, tr := range s.log {
		if tr.node == "C" && tr.to == Master {
			t.Fatalf("the lowest priority became master: %v", s.log)
		}
	}
}
