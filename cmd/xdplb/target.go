package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/loader"
)

// errNeedRoot is the answer to every command run without the privileges
// BPF needs.
var errNeedRoot = errors.New("run as root (needs CAP_BPF and CAP_NET_ADMIN)")

// Capability bits, from linux/capability.h.
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capBPF      = 39
)

// effectiveCaps reads the process's effective capability set.
func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}

// requirePrivileges fails early, with what to do, when the process cannot
// use BPF or change interfaces. CAP_SYS_ADMIN stands in for CAP_BPF, as on
// kernels before 5.8.
func (a *app) requirePrivileges() error {
	caps, err := a.caps()
	if err != nil {
		// Cannot tell: let the kernel decide.
		return nil
	}
	has := func(bit uint) bool { return caps&(1<<bit) != 0 }
	if has(capNetAdmin) && (has(capBPF) || has(capSysAdmin)) {
		return nil
	}
	return errNeedRoot
}

// attachedIfaces lists the interfaces with a balancer pinned under the pin
// root: its subdirectories, except decap/ (where the decap program's pins
// live).
func (a *app) attachedIfaces() ([]string, error) {
	entries, err := os.ReadDir(a.pinRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return nil, errNeedRoot
	}
	if err != nil {
		return nil, fmt.Errorf("list attachments: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "decap" {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

// target returns the interface a map command acts on: --iface, or the only
// one attached.
func (a *app) target() (string, error) {
	if a.iface != "" {
		return a.iface, nil
	}
	ifaces, err := a.attachedIfaces()
	if err != nil {
		return "", err
	}
	switch len(ifaces) {
	case 0:
		return "", fmt.Errorf("xdplb is not attached to any interface (nothing pinned under %s): run 'xdplb attach IFACE' first", a.pinRoot)
	case 1:
		return ifaces[0], nil
	}
	return "", usageErrorf("xdplb is attached to several interfaces (%s): choose one with --iface", strings.Join(ifaces, ", "))
}

// lockWait bounds the wait for the lock of an attachment's maps. Another
// command holds it for a few milliseconds, or for its ARP exchange (1s by
// default); a daemon holds it as long as it runs, and a command that finds
// it held that long says who holds it instead of waiting forever.
const lockWait = 3 * time.Second

// errLocked is the error of a command that could not take the lock of
// the maps it would change.
var errLocked = errors.New("cannot take the lock of the maps")

// lockHolder names the process holding the flock on dir, from /proc/locks,
// as "pid N (command line)"; or "another process" when it cannot tell.
func lockHolder(dir string) string {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "another process"
	}
	dev := uint64(st.Dev)
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(dev), unix.Minor(dev), st.Ino)
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return "another process"
	}
	// 1: FLOCK  ADVISORY  WRITE 4242 00:23:1234 0 EOF
	// 1: -> FLOCK  ADVISORY  WRITE 4243 00:23:1234 0 EOF  (a waiter)
	for _, line := range strings.Split(string(locks), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != id {
			continue
		}
		pid := f[4]
		cmd, _ := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		args := strings.Fields(strings.ReplaceAll(string(cmd), "\x00", " "))
		if len(args) == 0 {
			return "pid " + pid
		}
		return fmt.Sprintf("pid %s (%s)", pid, strings.Join(args, " "))
	}
	return "another process"
}

// session is an open balancer with the Programmer that edits it.
type session struct {
	iface  string
	b      *loader.Balancer
	prog   *controlplane.Programmer
	unlock func()
}

func (s *session) Close() {
	if s.unlock != nil {
		s.unlock()
	}
	s.b.Close()
}

// open opens the balancer of the target interface. A session that will
// write holds the attachment's lock until Close, so two commands never
// interleave their read-modify-write of a service.
func (a *app) open(ctx context.Context, write bool) (*session, error) {
	if err := a.requirePrivileges(); err != nil {
		return nil, err
	}
	iface, err := a.target()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(a.pinRoot, iface)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, a.notAttached(iface)
	}
	s := &session{iface: iface}
	if write {
		lctx, cancel := context.WithTimeout(ctx, lockWait)
		unlock, err := controlplane.Lock(lctx, dir)
		cancel()
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, a.notAttached(iface)
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return nil, fmt.Errorf("%w: the maps of %s (%s) are held by %s, which did not release them within %v",
				errLocked, iface, dir, lockHolder(dir), lockWait)
		case err != nil:
			return nil, err
		}
		s.unlock = unlock
	}
	b, err := loader.Open(iface, a.pinRoot)
	if err != nil {
		if s.unlock != nil {
			s.unlock()
		}
		return nil, a.explain(err, iface)
	}
	s.b = b
	s.prog = controlplane.NewProgrammer(b, a.log())
	return s, nil
}

func (a *app) notAttached(iface string) error {
	hint := fmt.Sprintf("run 'xdplb attach %s' first", iface)
	if ifaces, _ := a.attachedIfaces(); len(ifaces) > 0 {
		hint += fmt.Sprintf(", or choose an attached interface with --iface (%s)", strings.Join(ifaces, ", "))
	}
	return fmt.Errorf("xdplb is not attached to %s (nothing pinned under %s): %s: %w",
		iface, filepath.Join(a.pinRoot, iface), hint, loader.ErrNotAttached)
}

// explain turns the loader's errors into what to do, where the CLI knows
// better than the loader.
func (a *app) explain(err error, iface string) error {
	switch {
	case errors.Is(err, loader.ErrNotRoot), errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %w", errNeedRoot, err)
	case errors.Is(err, loader.ErrNotAttached):
		return a.notAttached(iface)
	}
	return err
}

// vipNotFound says that v does not exist and lists those that do.
func vipNotFound(s *session, v loader.VIP) error {
	all, err := s.b.VIPs()
	if err != nil || len(all) == 0 {
		return fmt.Errorf("VIP %v does not exist on %s, which has no VIPs: add one with 'xdplb vip add %v --forwarding dr|tun': %w",
			v, s.iface, v, loader.ErrVIPNotFound)
	}
	names := make([]string, len(all))
	for i, e := range all {
		names[i] = e.VIP.String()
	}
	return fmt.Errorf("VIP %v does not exist on %s; existing VIPs: %s: %w",
		v, s.iface, strings.Join(names, ", "), loader.ErrVIPNotFound)
}
