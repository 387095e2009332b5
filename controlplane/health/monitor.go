package health

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrStopped is returned by a Monitor that has been stopped.
var ErrStopped = errors.New("health monitor stopped")

// Spec is one target to monitor and how to check it.
type Spec struct {
	// ID identifies the target across updates, e.g. "web/198.18.0.21".
	ID      string
	Target  Target
	Checker Checker
	// Interval is the time from the start of one check to the start of
	// the next. Timeout bounds one check; it may exceed Interval, but
	// checks of one target never overlap.
	Interval time.Duration
	Timeout  time.Duration
	// Rise and Fall are the consecutive successes and failures that
	// change the state.
	Rise, Fall int
	// Initial is the state before the first check. It applies when the
	// target is added; updates keep the current state.
	Initial Initial
}

func (s Spec) validate() error {
	var problems []string
	if s.ID == "" {
		problems = append(problems, "ID is empty")
	}
	if s.Checker == nil {
		problems = append(problems, "Checker is nil")
	}
	if s.Interval <= 0 {
		problems = append(problems, fmt.Sprintf("interval %s must be positive", s.Interval))
	}
	if s.Timeout <= 0 {
		problems = append(problems, fmt.Sprintf("timeout %s must be positive", s.Timeout))
	}
	if s.Rise < 1 {
		problems = append(problems, fmt.Sprintf("rise %d must be at least 1", s.Rise))
	}
	if s.Fall < 1 {
		problems = append(problems, fmt.Sprintf("fall %d must be at least 1", s.Fall))
	}
	if s.Initial > InitFullyDown {
		problems = append(problems, fmt.Sprintf("initial state %d is unknown", s.Initial))
	}
	if len(problems) > 0 {
		return fmt.Errorf("health check %q: %s", s.ID, strings.Join(problems, "; "))
	}
	return nil
}

// Transition is a change of a target's state.
type Transition struct {
	ID       string
	Target   Target
	From, To State
	// At is when the check that decided it ended.
	At time.Time
	// Duration is how long that check took.
	Duration time.Duration
	// Err is the error of that check (nil when To is Up); Reason is its
	// reason.
	Err    error
	Reason Reason
}

// Result is one completed check, as Options.Observe sees it.
type Result struct {
	ID       string
	Target   Target
	Start    time.Time
	Duration time.Duration
	// Err is nil when the check passed; Reason is "" then.
	Err    error
	Reason Reason
	// State is the target's state after this result; Changed says whether
	// this result changed it.
	State   State
	Changed bool
}

// Status is a snapshot of one target.
type Status struct {
	ID     string
	Target Target
	State  State
	// Since is when the target entered State (when it was added, for the
	// initial state).
	Since time.Time
	// Streak counts the consecutive results against State: failures
	// while up, successes while down.
	Streak int
	// Checks counts completed checks.
	Checks uint64
	// LastStart, LastDuration and LastErr describe the last completed
	// check; LastStart is zero before the first one.
	LastStart    time.Time
	LastDuration time.Duration
	LastErr      error
}

// Options configure a Monitor. The zero value is usable.
type Options struct {
	// Clock defaults to SystemClock(). Check timeouts are context
	// deadlines on the system clock whatever Clock is.
	Clock Clock
	// Logger receives one line per transition. Default: discard.
	Logger *slog.Logger
	// Seed varies the spread of first checks (see the package
	// documentation). Directors sharing backends may use different seeds
	// so their checks do not coincide.
	Seed uint64
	// OnTransition, when set, receives every transition in order, from a
	// single goroutine holding no lock. A slow callback delays later
	// transitions but not checks. It may call Set, Apply, Remove and
	// Status, but not Stop. Transitions not yet delivered when Stop is
	// called, or when their target is removed, are dropped.
	OnTransition func(Transition)
	// Observe, when set, is called after every completed check from the
	// goroutine of that target, holding no lock; it should be quick
	// (count, record a histogram). It may call Status, but not Remove
	// or Set for its own target or Stop. Checks cut short by Remove or
	// Stop are not observed.
	Observe func(Result)
}

// Monitor checks targets on their intervals and turns results into
// transitions. Its methods are safe for concurrent use.
type Monitor struct {
	clock   Clock
	log     *slog.Logger
	seed    uint64
	notify  func(Transition)
	observe func(Result)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	cond    *sync.Cond // signals queue or stopped changes, with mu
	workers map[string]*worker
	queue   []Transition
	stopped bool
}

// NewMonitor returns a running Monitor with no targets.
func NewMonitor(opts Options) *Monitor {
	m := &Monitor{
		clock:   opts.Clock,
		log:     opts.Logger,
		seed:    opts.Seed,
		notify:  opts.OnTransition,
		observe: opts.Observe,
		workers: make(map[string]*worker),
	}
	if m.clock == nil {
		m.clock = SystemClock()
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.cond = sync.NewCond(&m.mu)
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.dispatch()
	return m
}

// Set adds the target s.ID or updates it. An update keeps the state and the
// current streak (held below the new thresholds), and takes effect from the
// next check; a check in flight finishes with the old spec. A changed
// interval reschedules the next check at once.
func (m *Monitor) Set(s Spec) error {
	if err := s.validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return ErrStopped
	}
	m.setLocked(s)
	return nil
}

// Apply makes the monitored set equal to specs: it adds the new IDs,
// updates the existing ones as Set does and removes the others. Nothing
// changes unless every spec is valid and IDs are unique. It returns once
// the removed targets' goroutines have ended.
func (m *Monitor) Apply(specs []Spec) error {
	want := make(map[string]bool, len(specs))
	for _, s := range specs {
		if err := s.validate(); err != nil {
			return err
		}
		if want[s.ID] {
			return fmt.Errorf("health check %q: ID used twice", s.ID)
		}
		want[s.ID] = true
	}
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return ErrStopped
	}
	var removed []*worker
	for id, w := range m.workers {
		if !want[id] {
			removed = append(removed, w)
			m.forgetLocked(id)
		}
	}
	for _, s := range specs {
		m.setLocked(s)
	}
	m.mu.Unlock()
	for _, w := range removed {
		w.cancel()
	}
	for _, w := range removed {
		<-w.done
	}
	return nil
}

// Remove stops monitoring id and reports whether it was monitored. It
// cancels a check in flight and returns once the target's goroutine has
// ended; no transition or result for it is reported afterwards, except a
// transition the OnTransition callback is receiving at that moment.
func (m *Monitor) Remove(id string) bool {
	m.mu.Lock()
	w, ok := m.workers[id]
	if ok {
		m.forgetLocked(id)
	}
	m.mu.Unlock()
	if !ok {
		return false
	}
	w.cancel()
	<-w.done
	return true
}

// Status returns a snapshot of target id.
func (m *Monitor) Status(id string) (Status, bool) {
	m.mu.Lock()
	w, ok := m.workers[id]
	m.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	return w.status(), true
}

// Statuses returns a snapshot of every target, sorted by ID.
func (m *Monitor) Statuses() []Status {
	m.mu.Lock()
	ws := make([]*worker, 0, len(m.workers))
	for _, w := range m.workers {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	out := make([]Status, len(ws))
	for i, w := range ws {
		out[i] = w.status()
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Stop cancels every check in flight and returns once every goroutine of
// the Monitor has ended. Undelivered transitions are dropped. Later calls
// to Set and Apply return ErrStopped; Status keeps answering with the last
// state. Stop must not be called from OnTransition.
func (m *Monitor) Stop() {
	m.mu.Lock()
	if !m.stopped {
		m.stopped = true
		m.queue = nil
		m.cancel()
		m.cond.Broadcast()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *Monitor) setLocked(s Spec) {
	if w, ok := m.workers[s.ID]; ok {
		w.update(s)
		return
	}
	now := m.clock.Now()
	ctx, cancel := context.WithCancel(m.ctx)
	w := &worker{
		id:     s.ID,
		phase:  phaseHash(m.seed, s.ID),
		wake:   make(chan struct{}, 1),
		cancel: cancel,
		done:   make(chan struct{}),
		spec:   s,
		health: NewHealth(s.Rise, s.Fall, s.Initial),
		added:  now,
		since:  now,
	}
	m.workers[s.ID] = w
	m.wg.Add(1)
	go m.run(ctx, w)
}

// forgetLocked removes id from the map and drops its queued transitions.
func (m *Monitor) forgetLocked(id string) {
	delete(m.workers, id)
	m.queue = slices.DeleteFunc(m.queue, func(t Transition) bool { return t.ID == id })
}

// run is the goroutine of one target.
func (m *Monitor) run(ctx context.Context, w *worker) {
	defer m.wg.Done()
	defer close(w.done)
	for {
		timer := m.clock.NewTimer(w.due().Sub(m.clock.Now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-w.wake:
			timer.Stop()
			continue
		case <-timer.C():
		}
		if !m.check(ctx, w) {
			return
		}
	}
}

// check runs one check of w and applies its result. It reports false when
// ctx ended during the check, whose result is then discarded.
func (m *Monitor) check(ctx context.Context, w *worker) bool {
	w.mu.Lock()
	spec := w.spec
	w.mu.Unlock()

	start := m.clock.Now()
	cctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	err := spec.Checker.Check(cctx, spec.Target)
	cancel()
	if ctx.Err() != nil {
		return false
	}
	end := m.clock.Now()
	res := Result{
		ID:       spec.ID,
		Target:   spec.Target,
		Start:    start,
		Duration: end.Sub(start),
		Err:      err,
		Reason:   ReasonOf(err),
	}

	w.mu.Lock()
	from := w.health.State()
	res.Changed = w.health.Observe(err == nil)
	res.State = w.health.State()
	w.checks++
	w.lastStart, w.lastDuration, w.lastErr = start, res.Duration, err
	if res.Changed {
		w.since = end
	}
	w.mu.Unlock()

	if res.Changed {
		m.transition(w, Transition{
			ID: spec.ID, Target: spec.Target, From: from, To: res.State,
			At: end, Duration: res.Duration, Err: err, Reason: res.Reason,
		})
	}
	if m.observe != nil {
		m.observe(res)
	}
	return true
}

// transition logs tr and queues it for OnTransition, unless w has been
// removed or the Monitor stopped meanwhile.
func (m *Monitor) transition(w *worker, tr Transition) {
	m.mu.Lock()
	current := !m.stopped && m.workers[w.id] == w
	if current && m.notify != nil {
		m.queue = append(m.queue, tr)
		m.cond.Signal()
	}
	m.mu.Unlock()
	if !current {
		return
	}
	attrs := []any{
		slog.String("check", tr.ID),
		slog.String("service", tr.Target.Service),
		slog.String("backend", tr.Target.Address.String()),
		slog.Int("port", int(tr.Target.Port)),
		slog.String("from", tr.From.String()),
		slog.String("state", tr.To.String()),
		slog.Duration("duration", tr.Duration),
	}
	if tr.Err != nil {
		m.log.Warn("backend down", append(attrs,
			slog.String("reason", string(tr.Reason)), slog.String("err", tr.Err.Error()))...)
		return
	}
	m.log.Info("backend up", attrs...)
}

// dispatch delivers queued transitions to OnTransition, one at a time.
func (m *Monitor) dispatch() {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		for len(m.queue) == 0 && !m.stopped {
			m.cond.Wait()
		}
		if m.stopped {
			m.mu.Unlock()
			return
		}
		tr := m.queue[0]
		m.queue[0] = Transition{}
		m.queue = m.queue[1:]
		m.mu.Unlock()
		m.notify(tr)
	}
}

// phaseHash spreads targets over their interval: FNV-1a of the seed and
// the ID, finished with the SplitMix64 mixer. FNV alone leaves IDs that
// differ only in their last characters (web/198.18.0.1, .2, ...) clustered.
func phaseHash(seed uint64, id string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	h.Write([]byte(id))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// phaseOffset maps the hash onto [0, interval) without modulo bias.
func phaseOffset(hash uint64, interval time.Duration) time.Duration {
	hi, _ := bits.Mul64(hash, uint64(interval))
	return time.Duration(hi)
}

// worker is the state of one target.
type worker struct {
	id     string
	phase  uint64
	wake   chan struct{} // an update changed the schedule
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	mu           sync.Mutex
	spec         Spec
	health       Health
	added        time.Time
	since        time.Time
	checks       uint64
	lastStart    time.Time
	lastDuration time.Duration
	lastErr      error
}

// due is when the next check starts: one interval after the last start,
// or, before the first check, the target's phase after it was added.
func (w *worker) due() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.checks == 0 {
		return w.added.Add(phaseOffset(w.phase, w.spec.Interval))
	}
	return w.lastStart.Add(w.spec.Interval)
}

func (w *worker) update(s Spec) {
	w.mu.Lock()
	reschedule := s.Interval != w.spec.Interval
	w.spec = s
	w.health.SetThresholds(s.Rise, s.Fall)
	w.mu.Unlock()
	if reschedule {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

func (w *worker) status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Status{
		ID:           w.id,
		Target:       w.spec.Target,
		State:        w.health.State(),
		Since:        w.since,
		Streak:       w.health.Streak(),
		Checks:       w.checks,
		LastStart:    w.lastStart,
		LastDuration: w.lastDuration,
		LastErr:      w.lastErr,
	}
}
