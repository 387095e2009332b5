package labnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// HostLink is the name of every host's link to the switch.
const HostLink = "eth0"

// BridgeName is the bridge's name inside the switch namespace.
const BridgeName = "br0"

// SwitchRole is the role of the switch namespace: its name is
// prefix + SwitchRole.
const SwitchRole = "sw"

// Net is a star of namespaces: a switch namespace holding a bridge, and
// hosts each linked to the bridge by a veth pair.
type Net struct {
	// Prefix starts the name of every namespace of the Net.
	Prefix string
	// Switch is the namespace of the bridge. A host's switch-side port is
	// named after the host's role.
	Switch *NS
	hosts  []*Host
}

// Host is one namespace on the bridge.
type Host struct {
	*NS
	// Role names the host within its Net: the namespace is Prefix+Role and
	// the switch-side port is Role.
	Role string
	// MAC is the address of the host's end of the veth pair, HostLink.
	MAC net.HardwareAddr
	// Port is the switch-side end of the pair, in the switch namespace.
	Port string
}

// New creates the switch namespace prefix+SwitchRole with its bridge. It
// fails if a namespace with that name exists: call Destroy(prefix) first
// to clear leftovers.
func New(prefix string) (*Net, error) {
	if err := checkName("prefix", prefix, 64); err != nil {
		return nil, err
	}
	sw, err := Create(prefix + SwitchRole)
	if err != nil {
		return nil, err
	}
	n := &Net{Prefix: prefix, Switch: sw}
	if err := quiet(sw); err != nil {
		n.Close()
		return nil, err
	}
	if err := plainBridge(sw); err != nil {
		n.Close()
		return nil, err
	}
	if err := Bridge(sw, BridgeName); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// plainBridge keeps bridge netfilter out of the switch namespace, where a
// kernel with br_netfilter built in would otherwise check every IPv4
// header crossing the bridge and drop the malformed ones before they
// reach a host: the switch must deliver frames as they were sent.
func plainBridge(sw *NS) error {
	for _, k := range []string{"iptables", "ip6tables", "arptables"} {
		if err := sw.Sysctl("net.bridge.bridge-nf-call-"+k, "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Host creates the namespace Prefix+role, links it to the bridge and gives
// its link the addresses addrs. IPv6 is off in every namespace of a Net,
// so no router solicitation or neighbour discovery adds frames a test
// would have to tell apart.
func (n *Net) Host(role string, addrs ...netip.Prefix) (*Host, error) {
	if err := checkName("role", role, unix.IFNAMSIZ-1); err != nil {
		return nil, err
	}
	ns, err := Create(n.Prefix + role)
	if err != nil {
		return nil, err
	}
	h := &Host{NS: ns, Role: role, Port: role}
	n.hosts = append(n.hosts, h)
	if err := quiet(ns); err != nil {
		return nil, err
	}
	if err := Veth(ns, HostLink, n.Switch, role); err != nil {
		return nil, err
	}
	if err := Enslave(n.Switch, BridgeName, role); err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if err := ns.AddAddr(HostLink, a); err != nil {
			return nil, err
		}
	}
	if h.MAC, err = ns.MAC(HostLink); err != nil {
		return nil, err
	}
	return h, nil
}

// Hosts returns the hosts in the order they were created.
func (n *Net) Hosts() []*Host { return n.hosts }

// Close removes every namespace of the Net, stopping the processes that
// run inside (see Destroy).
func (n *Net) Close() error {
	for _, h := range n.hosts {
		h.NS.Close()
	}
	n.Switch.Close()
	_, err := Destroy(n.Prefix, 2*time.Second)
	return err
}

// quiet switches IPv6 off in ns, for the namespace's present and future
// links. A kernel without IPv6 has nothing to switch off.
func quiet(ns *NS) error {
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		if err := ns.Sysctl(k, "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// checkName accepts names of letters, digits, '-' and '_', up to max bytes.
func checkName(what, s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%s %q: want 1 to %d characters", what, s, max)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%s %q: only letters, digits, '-' and '_' are allowed", what, s)
		}
	}
	return nil
}

// List returns the names of the namespaces under RunDir that start with
// prefix, sorted.
func List(prefix string) ([]string, error) {
	if prefix == "" {
		return nil, errors.New("list namespaces: empty prefix")
	}
	entries, err := os.ReadDir(RunDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Pids returns the processes whose network namespace is the named one,
// leaving out the calling process: one of its threads may have entered
// the namespace (NS.Do), and the kernel shows the namespace of the main
// thread as the process's.
func Pids(name string) ([]int, error) {
	var want unix.Stat_t
	if err := unix.Stat(filepath.Join(RunDir, name), &want); err != nil {
		return nil, fmt.Errorf("processes in namespace %s: %w", name, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("processes in namespace %s: %w", name, err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &st) != nil {
			continue // gone, or a kernel thread
		}
		if st.Dev == want.Dev && st.Ino == want.Ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Destroy removes every namespace whose name starts with prefix: it sends
// SIGTERM to the processes inside, SIGKILL to those still there after
// grace, and deletes the namespace, which removes its links. It returns
// the names it removed. It is how a lab is cleared after a crash: the
// prefix is all it needs.
func Destroy(prefix string, grace time.Duration) ([]string, error) {
	names, err := List(prefix)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, name := range names {
		p, err := Pids(name)
		if err != nil {
			return nil, err
		}
		pids = append(pids, p...)
	}
	stopProcesses(pids, grace)
	var errs []error
	var removed []string
	for _, name := range names {
		if err := netns.DeleteNamed(name); err != nil {
			errs = append(errs, fmt.Errorf("delete namespace %s: %w", name, err))
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// stopProcesses terminates pids, waiting up to grace before killing those
// left.
func stopProcesses(pids []int, grace time.Duration) {
	if len(pids) == 0 {
		return
	}
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		alive := 0
		for _, p := range pids {
			if running(p) {
				alive++
			}
		}
		if alive == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range pids {
		if running(p) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
