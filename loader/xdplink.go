package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// linkPin is the file name of the pinned BPF link in a pin directory.
const linkPin = "link"

// attachXDP attaches prog to the interface through a BPF link in the
// requested mode and returns the link and the mode in use.
func attachXDP(prog *ebpf.Program, iface ifaceInfo, mode Mode, log *slog.Logger) (link.Link, Mode, error) {
	try := func(m Mode) (link.Link, error) {
		flags := link.XDPDriverMode
		if m == ModeGeneric {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: iface.Index, Flags: flags})
		if err != nil {
			err = fmt.Errorf("attach XDP to %s in %s mode: %w", iface.Name, m, err)
			if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("%w: another XDP program is attached to %s; remove it first (`ip link set dev %s xdp off`, or detach whatever attached it)", err, iface.Name, iface.Name)
			}
		}
		return l, err
	}
	switch mode {
	case ModeNative, ModeGeneric:
		l, err := try(mode)
		return l, mode, err
	case ModeAuto:
		l, err := try(ModeNative)
		if err == nil {
			return l, ModeNative, nil
		}
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
			// Occupied, not unsupported: generic mode would run a
			// second program beside the first.
			return nil, ModeAuto, err
		}
		log.Warn("native XDP not available, falling back to generic mode: forwarding works but is much slower",
			"iface", iface.Name, "error", err)
		l, gerr := try(ModeGeneric)
		if gerr != nil {
			return nil, ModeAuto, errors.Join(err, gerr)
		}
		return l, ModeGeneric, nil
	}
	return nil, mode, fmt.Errorf("attach XDP to %s: unknown mode %s", iface.Name, mode)
}

// attachOrUpdate attaches prog to the interface and pins the link in dir,
// or, when dir holds a live link for this interface, replaces its program
// atomically. It reports whether an existing link was updated.
func attachOrUpdate(prog *ebpf.Program, dir string, iface ifaceInfo, mode Mode, log *slog.Logger) (link.Link, Mode, bool, error) {
	path := filepath.Join(dir, linkPin)
	old, err := link.LoadPinnedLink(path, nil)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, mode, false, fmt.Errorf("open pinned link %s: %w", path, err)
	default:
		info, ierr := old.Info()
		if ierr == nil && info.Type == link.XDPType && info.XDP() != nil && int(info.XDP().Ifindex) == iface.Index {
			if err := old.Update(prog); err != nil {
				old.Close()
				return nil, mode, false, fmt.Errorf("replace program in pinned link %s: %w", path, err)
			}
			return old, mode, true, nil
		}
		// The interface went away (the kernel detached the link) or
		// was recreated with another index: the old link is dead.
		log.Warn("pinned XDP link no longer attached to the interface; attaching a new one", "iface", iface.Name, "pin", path)
		old.Unpin()
		old.Close()
	}
	l, used, err := attachXDP(prog, iface, mode, log)
	if err != nil {
		return nil, mode, false, err
	}
	if err := l.Pin(path); err != nil {
		l.Close()
		return nil, mode, false, fmt.Errorf("pin link: %w", err)
	}
	return l, used, false, nil
}

// openPinnedLink opens the pinned link in dir and the program it runs,
// failing with ErrNotAttached when there is none or it is defunct.
func openPinnedLink(dir, iface, attachCmd string) (link.Link, *ebpf.Program, error) {
	path := filepath.Join(dir, linkPin)
	l, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: maps of %s are pinned under %s but no program is attached: run `%s` to attach it again (the maps are kept)", ErrNotAttached, iface, dir, attachCmd)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open pinned link %s: %w", path, err)
	}
	info, err := l.Info()
	if err != nil {
		l.Close()
		return nil, nil, fmt.Errorf("pinned link %s: %w", path, err)
	}
	if info.XDP() == nil || info.XDP().Ifindex == 0 {
		l.Close()
		return nil, nil, fmt.Errorf("%w: the pinned link of %s is no longer attached (interface removed?): run `%s`", ErrNotAttached, iface, attachCmd)
	}
	prog, err := ebpf.NewProgramFromID(info.Program)
	if err != nil {
		l.Close()
		return nil, nil, fmt.Errorf("open program %d of pinned link %s: %w", info.Program, path, err)
	}
	return l, prog, nil
}

// detachPinned detaches the link pinned in dir (even if other processes
// hold it open) and removes every pin in dir, and dir.
func detachPinned(dir, iface, what string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: nothing of %s is pinned for %s under %s", ErrNotAttached, what, iface, dir)
	}
	path := filepath.Join(dir, linkPin)
	l, err := link.LoadPinnedLink(path, nil)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("open pinned link %s: %w", path, err)
	default:
		derr := l.Detach()
		l.Close()
		if derr != nil && !errors.Is(derr, ebpf.ErrNotSupported) {
			return fmt.Errorf("detach %s from %s: %w", what, iface, derr)
		}
	}
	if err := removePinDir(dir); err != nil {
		return fmt.Errorf("remove pins of %s: %w", iface, err)
	}
	return nil
}
