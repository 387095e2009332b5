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
		unlock, err := controlplane.Lock(ctx, dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, a.notAttached(iface)
		}
		if err != nil {
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
