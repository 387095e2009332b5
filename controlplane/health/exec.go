package health

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"text/template"
	"time"
	"unsafe"
)

// DefaultMaxOutput bounds the command output kept for a failure message.
const DefaultMaxOutput = 4 << 10

// pipeGrace is how long Exec waits, once the command's process group is
// gone, for its output pipes to close. Only a descendant that left the group
// (setsid) can hold them longer; such a process is outside what a process
// group kill can reach.
const pipeGrace = 100 * time.Millisecond

// ExecConfig describes an exec check.
type ExecConfig struct {
	// Command is the program and its arguments, run directly without a
	// shell. Each element is a text/template executed with the Target, e.g.
	// ["/etc/xdplb/galera-check", "{{.Address}}", "{{.Port}}"]. A program
	// without a slash is looked up in PATH.
	Command []string
	// Env is added to the daemon's environment ("KEY=value").
	Env []string
	// MaxOutput bounds the bytes of combined stdout and stderr kept for the
	// failure message (the last ones are kept). Default DefaultMaxOutput.
	MaxOutput int
}

// Exec checks a backend by running a command: exit status 0 means healthy.
// The command runs in a process group of its own. When the check's context
// is done the whole group is killed; when the command exits, whatever it
// left in its group is killed too, so no process outlives the check (except
// one that moved itself to another group or session).
type Exec struct {
	args   []*template.Template
	env    []string
	maxOut int
}

// NewExec validates cfg, including every template against a sample target,
// and returns the checker.
func NewExec(cfg ExecConfig) (*Exec, error) {
	if len(cfg.Command) == 0 || strings.TrimSpace(cfg.Command[0]) == "" {
		return nil, errors.New("exec check command: must name a program")
	}
	c := &Exec{maxOut: cfg.MaxOutput}
	if c.maxOut <= 0 {
		c.maxOut = DefaultMaxOutput
	}
	for i, a := range cfg.Command {
		tmpl, err := template.New(fmt.Sprintf("arg%d", i)).Option("missingkey=error").Parse(a)
		if err != nil {
			return nil, fmt.Errorf("exec check command argument %d %q: %w", i, a, err)
		}
		c.args = append(c.args, tmpl)
	}
	for _, e := range cfg.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return nil, fmt.Errorf("exec check env %q: must be KEY=value", e)
		}
	}
	if len(cfg.Env) > 0 {
		c.env = append(os.Environ(), cfg.Env...)
	}
	sample := Target{
		Address: netip.MustParseAddr("192.0.2.1"), Port: 1, Service: "sample",
		VIP: netip.MustParseAddr("192.0.2.2"), ServicePort: 1,
	}
	if _, err := c.argv(sample); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Exec) argv(t Target) ([]string, error) {
	argv := make([]string, len(c.args))
	var b strings.Builder
	for i, tmpl := range c.args {
		b.Reset()
		if err := tmpl.Execute(&b, t); err != nil {
			return nil, fmt.Errorf("exec check command argument %d: %w", i, err)
		}
		argv[i] = b.String()
	}
	if argv[0] == "" {
		return nil, errors.New("exec check command: program name is empty for this target")
	}
	return argv, nil
}

// Check runs the command for t and waits for it.
func (c *Exec) Check(ctx context.Context, t Target) error {
	argv, err := c.argv(t)
	if err != nil {
		return &Error{Reason: ReasonExec, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return failure(ctx, ReasonExec, fmt.Errorf("run %s: %w", argv[0], err))
	}
	out := &tailBuffer{max: c.maxOut}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = pipeGrace
	if err := cmd.Start(); err != nil {
		return &Error{Reason: ReasonExec, Err: fmt.Errorf("start %s: %w", argv[0], err)}
	}
	pgid := cmd.Process.Pid // Setpgid with Pgid 0: the group is the leader's pid

	// The leader is not reaped until cmd.Wait, and Linux keeps a process
	// group id reserved while a zombie leader holds it, so every kill(-pgid)
	// below reaches this command's group and nothing else.
	killed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		syscall.Kill(-pgid, syscall.SIGKILL)
		syscall.Kill(pgid, syscall.SIGKILL) // in case the group kill failed
		close(killed)
	})
	waitErr := waitExited(pgid)
	if !stop() {
		<-killed
	}
	syscall.Kill(-pgid, syscall.SIGKILL) // leftovers of a command that exited
	err = cmd.Wait()
	if waitErr != nil && err == nil {
		err = waitErr
	}

	state := cmd.ProcessState
	switch {
	case state != nil && state.Success():
		// Exit 0, even if the deadline passed just after. A pipe still
		// held by a process outside the group (ErrWaitDelay) does not
		// change the verdict.
		return nil
	case ctx.Err() != nil:
		return failure(ctx, ReasonExit, fmt.Errorf("run %s: killed after %w%s", argv[0], ctx.Err(), out.suffix()))
	case state != nil:
		return &Error{Reason: ReasonExit, Err: fmt.Errorf("run %s: %s%s", argv[0], state, out.suffix())}
	default:
		return &Error{Reason: ReasonExec, Err: fmt.Errorf("run %s: %w%s", argv[0], err, out.suffix())}
	}
}

// waitExited blocks until process pid has exited, without reaping it.
func waitExited(pid int) error {
	const pPID = 1     // P_PID
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return fmt.Errorf("wait for pid %d: %w", pid, errno)
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max     int
	buf     []byte
	dropped int64
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > b.max {
		b.dropped += int64(len(b.buf) + len(p) - b.max)
		b.buf = append(b.buf[:0], p[len(p)-b.max:]...)
		return n, nil
	}
	if over := len(b.buf) + len(p) - b.max; over > 0 {
		b.dropped += int64(over)
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

// suffix renders the kept output for an error message: "" when empty.
func (b *tailBuffer) suffix() string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b.buf), "\uFFFD"))
	if s == "" {
		return ""
	}
	if b.dropped > 0 {
		return fmt.Sprintf(": output (last %d bytes): %s", len(b.buf), s)
	}
	return ": output: " + s
}
