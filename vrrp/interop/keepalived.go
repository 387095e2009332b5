//go:build linux

package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Keepalived is a keepalived process (its parent and VRRP child) running in
// a network namespace. Create it with [Start]; end it with Stop (graceful:
// masters send priority 0) or Kill (a crash: nothing more on the wire).
type Keepalived struct {
	dir     string
	cmd     *exec.Cmd
	fifo    *os.File
	out     *syncBuffer
	exited  chan struct{}
	waitErr error // set before exited closes
	read    sync.WaitGroup

	mu      sync.Mutex
	events  []Event
	wake    chan struct{} // closed and replaced on every event
	jsonSig syscall.Signal
}

// Event is one line keepalived wrote to its notify FIFO, with the time it
// was read.
type Event struct {
	At time.Time
	// Kind is INSTANCE or GROUP.
	Kind string
	Name string
	// State is MASTER, BACKUP, FAULT, STOP or DELETED; or, for an event
	// that changes no state, its name, such as MASTER_RX_LOWER_PRI (a
	// master heard a lower priority).
	State string
	// Priority is the instance's priority; -1 for a group.
	Priority int
}

// ParseEvent parses one notify FIFO line, such as
// `INSTANCE "VI_1" MASTER 200`.
func ParseEvent(line string) (Event, error) {
	kind, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok || (kind != "INSTANCE" && kind != "GROUP") || !strings.HasPrefix(rest, `"`) {
		return Event{}, fmt.Errorf("notify line %q: want INSTANCE or GROUP and a quoted name", line)
	}
	name, rest, ok := strings.Cut(rest[1:], `"`)
	if !ok || name == "" {
		return Event{}, fmt.Errorf("notify line %q: unterminated name", line)
	}
	f := strings.Fields(rest)
	ev := Event{Kind: kind, Name: name, Priority: -1}
	switch {
	case kind == "INSTANCE" && len(f) == 2:
		p, err := strconv.Atoi(f[1])
		if err != nil || p < 0 || p > 255 {
			return Event{}, fmt.Errorf("notify line %q: priority %q", line, f[1])
		}
		ev.State, ev.Priority = f[0], p
	case kind == "GROUP" && len(f) == 1:
		ev.State = f[0]
	default:
		return Event{}, fmt.Errorf("notify line %q: want a state and, for an instance, a priority", line)
	}
	return ev, nil
}

// Start writes cfg to dir/keepalived.conf and runs keepalived's VRRP
// subsystem in the network namespace netns (a name under /run/netns), in
// the foreground, logging to its console. Everything keepalived writes
// lives in dir, which must be new to this process: pid files, the notify
// FIFO and the dumps it makes on a signal (it puts them in $TMPDIR). So
// any number of keepalived processes run side by side.
func Start(netns, dir string, cfg Config) (*Keepalived, error) {
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		return nil, fmt.Errorf("start keepalived: %w", err)
	}
	ipBin, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("start keepalived: %w", err)
	}
	fifoPath := filepath.Join(dir, "notify.fifo")
	conf, err := cfg.Render(fifoPath)
	if err != nil {
		return nil, fmt.Errorf("start keepalived: %w", err)
	}
	confPath := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return nil, fmt.Errorf("start keepalived: %w", err)
	}
	// Made here, and opened for reading and writing, so that neither side
	// ever blocks on the other or reads an end of file.
	if err := unix.Mkfifo(fifoPath, 0o600); err != nil {
		return nil, fmt.Errorf("start keepalived: notify fifo: %w", err)
	}
	fifo, err := os.OpenFile(fifoPath, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("start keepalived: notify fifo: %w", err)
	}

	k := &Keepalived{
		dir:    dir,
		fifo:   fifo,
		out:    &syncBuffer{},
		exited: make(chan struct{}),
		wake:   make(chan struct{}),
	}
	k.cmd = exec.Command(ipBin, "netns", "exec", netns, bin,
		"--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp",
		"--use-file", confPath,
		"--pid", filepath.Join(dir, "keepalived.pid"),
		"--vrrp_pid", filepath.Join(dir, "vrrp.pid"))
	k.cmd.Dir = dir
	k.cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	k.cmd.Stdout, k.cmd.Stderr = k.out, k.out
	// Its own process group, so Kill ends parent and child at one stroke.
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		fifo.Close()
		return nil, fmt.Errorf("start keepalived in %s: %w", netns, err)
	}
	go func() {
		k.waitErr = k.cmd.Wait()
		close(k.exited)
	}()
	k.read.Go(k.readFIFO)
	return k, nil
}

func (k *Keepalived) readFIFO() {
	sc := bufio.NewScanner(k.fifo)
	for sc.Scan() {
		ev, err := ParseEvent(sc.Text())
		if err != nil {
			continue // keepalived writes nothing else; a torn line is not a state
		}
		ev.At = time.Now()
		k.mu.Lock()
		k.events = append(k.events, ev)
		close(k.wake)
		k.wake = make(chan struct{})
		k.mu.Unlock()
	}
}

// Dir returns the process's private directory.
func (k *Keepalived) Dir() string { return k.dir }

// Pid returns the pid of keepalived's parent process.
func (k *Keepalived) Pid() int { return k.cmd.Process.Pid }

// Log returns what keepalived has logged so far.
func (k *Keepalived) Log() string { return k.out.String() }

// Events returns every notify event so far, oldest first.
func (k *Keepalived) Events() []Event {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Event(nil), k.events...)
}

// IsState reports whether the event reports a state, rather than
// something that happened in one (MASTER_RX_LOWER_PRI).
func (e Event) IsState() bool {
	switch e.State {
	case "MASTER", "BACKUP", "FAULT", "STOP", "DELETED":
		return true
	}
	return false
}

// Transitions returns the states keepalived reported for the instance,
// oldest first.
func (k *Keepalived) Transitions(instance string) []Event {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Event
	for _, e := range k.events {
		if e.Kind == "INSTANCE" && e.Name == instance && e.IsState() {
			out = append(out, e)
		}
	}
	return out
}

// State returns the last state keepalived reported for the instance, or ""
// before the first report.
func (k *Keepalived) State(instance string) string {
	ev, _ := k.last(instance)
	return ev.State
}

func (k *Keepalived) last(instance string) (Event, <-chan struct{}) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := len(k.events) - 1; i >= 0; i-- {
		if e := k.events[i]; e.Kind == "INSTANCE" && e.Name == instance && e.IsState() {
			return e, k.wake
		}
	}
	return Event{}, k.wake
}

// WaitState waits until the last state reported for the instance is state
// and returns the event that reported it.
func (k *Keepalived) WaitState(ctx context.Context, instance, state string) (Event, error) {
	for {
		ev, wake := k.last(instance)
		if ev.State == state {
			return ev, nil
		}
		select {
		case <-wake:
		case <-k.exited:
			if ev, _ := k.last(instance); ev.State == state {
				return ev, nil
			}
			return Event{}, fmt.Errorf("keepalived %s exited (%v) before %s reported %s; last %q", k.dir, k.waitErr, instance, state, ev.State)
		case <-ctx.Done():
			return Event{}, fmt.Errorf("keepalived %s: %s still %q, not %s: %w", k.dir, instance, ev.State, state, ctx.Err())
		}
	}
}

// Kill ends keepalived as a crash would: SIGKILL to the parent and its VRRP
// child at once, so no priority 0 advertisement is sent and the virtual
// addresses stay where they are. It returns when both are gone.
func (k *Keepalived) Kill() error {
	child := k.childPid()
	select {
	case <-k.exited:
	default:
		if err := syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill keepalived: %w", err)
		}
		<-k.exited
	}
	if child > 0 {
		waitGone(child)
	}
	k.closeFIFO()
	return nil
}

// Stop ends keepalived as an operator would: SIGTERM to the parent, which
// stops the VRRP child; masters send a priority 0 advertisement and remove
// their virtual addresses. If ctx ends first, the process is killed.
func (k *Keepalived) Stop(ctx context.Context) error {
	select {
	case <-k.exited:
		k.closeFIFO()
		return nil
	default:
	}
	child := k.childPid()
	if err := k.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop keepalived: %w", err)
	}
	select {
	case <-k.exited:
	case <-ctx.Done():
		k.Kill()
		return fmt.Errorf("stop keepalived: killed: %w", ctx.Err())
	}
	if child > 0 {
		waitGone(child)
	}
	k.closeFIFO()
	return nil
}

func (k *Keepalived) closeFIFO() {
	k.fifo.Close()
	k.read.Wait()
}

// childPid returns the pid of the VRRP child from its pid file, or 0.
func (k *Keepalived) childPid() int {
	b, err := os.ReadFile(filepath.Join(k.dir, "vrrp.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// waitGone waits up to 5 seconds until pid has exited: its /proc entry is
// gone or it is a zombie waiting for a reaper.
func waitGone(pid int) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// The state follows the parenthesised command name.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stats are one instance's counters and state from keepalived's JSON dump.
// Field names follow the dump's.
type Stats struct {
	Name              string
	State             string // INIT, BACKUP, MASTER or FAULT
	EffectivePriority int
	MasterPriority    int
	// Counters by the dump's names: advert_rcvd, advert_sent,
	// become_master, release_master, pri_zero_rcvd, pri_zero_sent and the
	// error counters listed in [ErrorCounters].
	Counters map[string]uint64
}

// ErrorCounters names the counters keepalived raises for a received
// advertisement it refuses: bad length, interval, TTL, type, address list,
// authentication type and password. keepalived counts a checksum error in
// none of them but logs it; advert_rcvd only counts adverts whose type,
// version, length and checksum are right.
func ErrorCounters() []string {
	return []string{"packet_len_err", "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd",
		"addr_list_err", "invalid_authtype", "authtype_mismatch", "auth_failure"}
}

// Errors returns the error counters that are not zero.
func (s Stats) Errors() map[string]uint64 {
	m := map[string]uint64{}
	for _, name := range ErrorCounters() {
		if n := s.Counters[name]; n != 0 {
			m[name] = n
		}
	}
	return m
}

// Stats asks keepalived for its JSON dump (the signal `keepalived
// --signum=JSON` names) and returns each instance's figures.
func (k *Keepalived) Stats(ctx context.Context) ([]Stats, error) {
	sig, err := k.jsonSignal(ctx)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(k.dir, "keepalived.json")
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("keepalived stats: %w", err)
	}
	if err := k.cmd.Process.Signal(sig); err != nil {
		return nil, fmt.Errorf("keepalived stats: %w", err)
	}
	// The child writes the file in several steps: wait until it parses.
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			if st, err := parseStats(b); err == nil {
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("keepalived stats: no complete %s: %w", path, ctx.Err())
		case <-k.exited:
			return nil, fmt.Errorf("keepalived stats: keepalived exited: %v", k.waitErr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// jsonSignal returns the signal that makes keepalived write its JSON dump,
// as `keepalived --signum=JSON` prints it.
func (k *Keepalived) jsonSignal(ctx context.Context) (syscall.Signal, error) {
	k.mu.Lock()
	sig := k.jsonSig
	k.mu.Unlock()
	if sig != 0 {
		return sig, nil
	}
	out, err := exec.CommandContext(ctx, "keepalived", "--signum=JSON").Output()
	if err != nil {
		return 0, fmt.Errorf("keepalived --signum=JSON: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("keepalived --signum=JSON: %q is not a signal (built without JSON support?)", out)
	}
	k.mu.Lock()
	k.jsonSig = syscall.Signal(n)
	k.mu.Unlock()
	return syscall.Signal(n), nil
}

func parseStats(b []byte) ([]Stats, error) {
	var dump []struct {
		Data struct {
			Name              string `json:"iname"`
			State             int    `json:"state"`
			EffectivePriority int    `json:"effective_priority"`
			MasterPriority    int    `json:"master_priority"`
		} `json:"data"`
		Stats map[string]uint64 `json:"stats"`
	}
	if err := json.Unmarshal(b, &dump); err != nil {
		return nil, fmt.Errorf("parse keepalived json dump: %w", err)
	}
	var out []Stats
	for _, d := range dump {
		if d.Data.Name == "" || d.Stats == nil {
			return nil, errors.New("parse keepalived json dump: instance without name or stats")
		}
		out = append(out, Stats{
			Name:              d.Data.Name,
			State:             stateName(d.Data.State),
			EffectivePriority: d.Data.EffectivePriority,
			MasterPriority:    d.Data.MasterPriority,
			Counters:          d.Stats,
		})
	}
	return out, nil
}

// stateName names keepalived's numeric instance states.
func stateName(s int) string {
	switch s {
	case 0:
		return "INIT"
	case 1:
		return "BACKUP"
	case 2:
		return "MASTER"
	case 3:
		return "FAULT"
	}
	return "state" + strconv.Itoa(s)
}

// syncBuffer is a bytes.Buffer safe for the process's writers and readers.
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
