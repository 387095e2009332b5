package loader

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultPinRoot is where Attach pins by default: one directory per
// interface below it, and decap/IFACE for the decap program.
const DefaultPinRoot = "/sys/fs/bpf/xdplb"

// btfPath is where the kernel exposes its BTF.
const btfPath = "/sys/kernel/btf/vmlinux"

// bpffsMount is the conventional mount point of the BPF file system.
const bpffsMount = "/sys/fs/bpf"

// checkRoot fails unless euid is 0: loading, attaching and pinning need
// CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN, and the pins are root's.
func checkRoot(op string, euid int) error {
	if euid == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w (uid %d): BPF programs and their pins need root; run the command with sudo", op, ErrNotRoot, euid)
}

// checkBTF fails when the kernel has no BTF at path.
func checkBTF(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%w: %s: %w: xdplb needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.8 or later)", ErrNoBTF, path, err)
	}
	return nil
}

// isBPFFS reports whether path lies on a BPF file system.
func isBPFFS(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Type == unix.BPF_FS_MAGIC, nil
}

// existingAncestor returns path or its nearest existing parent.
func existingAncestor(path string) string {
	for {
		if _, err := os.Stat(path); err == nil {
			return path
		}
		parent := filepath.Dir(path)
		if parent == path {
			return path
		}
		path = parent
	}
}

// ensurePinDir creates dir on a BPF file system, mounting one at
// /sys/fs/bpf first when dir is below it and nothing is mounted there.
func ensurePinDir(dir string) error {
	ok, err := isBPFFS(existingAncestor(dir))
	if err != nil {
		return fmt.Errorf("check pin directory %s: %w", dir, err)
	}
	if !ok && (dir == bpffsMount || strings.HasPrefix(dir, bpffsMount+"/")) {
		if err := unix.Mount("bpf", bpffsMount, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("%w at %s, and mounting one failed: %w: mount it with `mount -t bpf bpf %s`", ErrNoBPFFS, bpffsMount, err, bpffsMount)
		}
		if ok, err = isBPFFS(existingAncestor(dir)); err != nil {
			return fmt.Errorf("check pin directory %s: %w", dir, err)
		}
	}
	if !ok {
		return fmt.Errorf("%w: pin directory %s is not on a BPF file system: choose a pin root below %s or mount one with `mount -t bpf bpf DIR`", ErrNoBPFFS, dir, bpffsMount)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create pin directory: %w", err)
	}
	return nil
}

// ifaceInfo is what Attach needs to know about an interface.
type ifaceInfo struct {
	Name  string
	Index int
	MAC   net.HardwareAddr
	MTU   int
	IPv4  []netip.Addr // in the kernel's order: the primary address first
}

// lookupIface resolves an interface in the calling thread's network
// namespace.
func lookupIface(name string) (ifaceInfo, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		var names []string
		if all, lerr := net.Interfaces(); lerr == nil {
			for _, i := range all {
				names = append(names, i.Name)
			}
		}
		return ifaceInfo{}, fmt.Errorf("%w %q (have: %s): check the name with `ip link show`", ErrUnknownInterface, name, strings.Join(names, ", "))
	}
	info := ifaceInfo{Name: ifi.Name, Index: ifi.Index, MAC: ifi.HardwareAddr, MTU: ifi.MTU}
	addrs, err := ifi.Addrs()
	if err != nil {
		return ifaceInfo{}, fmt.Errorf("addresses of %s: %w", name, err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			info.IPv4 = append(info.IPv4, p.Addr())
		}
	}
	return info, nil
}

// removePinDir removes every pin in dir, then dir, then its parent root if
// that is left empty. Removing a pin drops the file system's reference.
func removePinDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
