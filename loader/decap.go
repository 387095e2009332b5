package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// decapDir is the directory below the pin root that holds one directory
// per interface running the decap program.
const decapDir = "decap"

// Decap is a handle on the decap program, which runs on the backends of
// TUN VIPs: it strips the outer IPv4 header of IPIP packets addressed to
// one of its addresses and passes the inner packet to the kernel.
type Decap struct {
	prog *ebpf.Program
	maps decapMaps
	all  map[string]*ebpf.Map
	link link.Link // nil unless attached or opened
}

// LoadDecap loads the decap program and its maps without attaching or
// pinning them: for tests and benchmarks.
func LoadDecap() (*Decap, error) {
	d, err := loadDecapWith(nil)
	if err != nil {
		return nil, fmt.Errorf("load decap: %w", err)
	}
	return d, nil
}

func loadDecapWith(replace map[string]*ebpf.Map) (*Decap, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise memlock limit: %w", err)
	}
	spec, err := loadDecap()
	if err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: replace})
	if err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("%w: %w", ErrIncompatiblePins, err)
		}
		return nil, err
	}
	d := &Decap{prog: coll.DetachProgram(decapProgXdplbDecap), all: make(map[string]*ebpf.Map)}
	for _, name := range mapNames(spec) {
		d.all[name] = coll.DetachMap(name)
	}
	coll.Close()
	if err := assignMaps(&d.maps, d.all); err != nil {
		d.Close()
		return nil, err
	}
	if d.prog == nil {
		d.Close()
		return nil, fmt.Errorf("decap object has no program %s", decapProgXdplbDecap)
	}
	return d, nil
}

// AttachDecap loads the decap program, attaches it to iface through a BPF
// link and pins the link and maps under pinRoot/decap/iface (pinRoot ""
// means DefaultPinRoot). It accepts IPIP for addrs, or, when addrs is
// empty, for every IPv4 address of iface. When pins exist, it adopts them
// as Attach does: the accepted addresses are kept and the program is
// replaced in the pinned link without a gap.
func AttachDecap(iface string, mode Mode, pinRoot string, addrs []netip.Addr, log *slog.Logger) (*Decap, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if pinRoot == "" {
		pinRoot = DefaultPinRoot
	}
	d, err := attachDecap(iface, mode, pinRoot, addrs, log)
	if err != nil {
		return nil, fmt.Errorf("attach decap to %s: %w", iface, err)
	}
	return d, nil
}

func attachDecap(iface string, mode Mode, pinRoot string, addrs []netip.Addr, log *slog.Logger) (_ *Decap, err error) {
	if err := checkRoot("attach decap", os.Geteuid()); err != nil {
		return nil, err
	}
	if err := checkBTF(btfPath); err != nil {
		return nil, err
	}
	if mode < ModeAuto || mode > ModeGeneric {
		return nil, fmt.Errorf("unknown mode %s", mode)
	}
	for _, a := range addrs {
		if err := requireIPv4("decap address", a); err != nil {
			return nil, err
		}
	}
	ifi, err := lookupIface(iface)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		addrs = ifi.IPv4
	}
	dir := filepath.Join(pinRoot, decapDir, iface)
	if err := ensurePinDir(dir); err != nil {
		return nil, err
	}
	pinned := make(map[string]*ebpf.Map)
	spec, err := loadDecap()
	if err != nil {
		return nil, err
	}
	for _, name := range mapNames(spec) {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if err == nil {
			pinned[name] = m
		}
	}
	adopted := len(pinned) > 0
	d, err := loadDecapWith(pinned)
	for _, m := range pinned {
		m.Close()
	}
	if err != nil {
		if errors.Is(err, ErrIncompatiblePins) {
			return nil, fmt.Errorf("%w: run `xdplb decap detach %s` and attach again", err, iface)
		}
		return nil, fmt.Errorf("load decap: %w", err)
	}
	defer func() {
		if err != nil {
			d.Close()
			if !adopted {
				removePinDir(dir)
			}
		}
	}()
	for name, m := range d.all {
		if _, ok := pinned[name]; ok {
			continue
		}
		if err := m.Pin(filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("pin map %s: %w", name, err)
		}
	}
	for _, a := range addrs {
		if err := d.AddAddr(a); err != nil {
			return nil, err
		}
	}
	if n, err := d.Addrs(); err == nil && len(n) == 0 {
		log.Warn("decap accepts no address: IPIP packets are passed untouched until one is added", "iface", iface)
	}
	var used Mode
	d.link, used, _, err = attachOrUpdate(d.prog, dir, ifi, mode, log)
	if err != nil {
		return nil, err
	}
	log.Info("decap attached", "iface", iface, "mode", used.String(), "adopted", adopted, "pin_dir", dir)
	return d, nil
}

// OpenDecap opens the decap program pinned for iface under pinRoot ("" means
// DefaultPinRoot). The error wraps ErrNotAttached when nothing is pinned.
func OpenDecap(iface, pinRoot string) (*Decap, error) {
	if pinRoot == "" {
		pinRoot = DefaultPinRoot
	}
	return openDecap(iface, pinRoot)
}

func openDecap(iface, pinRoot string) (_ *Decap, err error) {
	if err := checkRoot("open decap", os.Geteuid()); err != nil {
		return nil, err
	}
	dir := filepath.Join(pinRoot, decapDir, iface)
	d := &Decap{all: make(map[string]*ebpf.Map)}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	spec, err := loadDecap()
	if err != nil {
		return nil, err
	}
	for _, name := range mapNames(spec) {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open decap on %s: %w: %s is not pinned: run `xdplb decap attach %s`", iface, ErrNotAttached, filepath.Join(dir, name), iface)
		}
		if err != nil {
			return nil, fmt.Errorf("open decap on %s: %w", iface, err)
		}
		d.all[name] = m
	}
	if err := assignMaps(&d.maps, d.all); err != nil {
		return nil, fmt.Errorf("open decap on %s: %w", iface, err)
	}
	if d.link, d.prog, err = openPinnedLink(dir, iface, "xdplb decap attach "+iface); err != nil {
		return nil, fmt.Errorf("open decap on %s: %w", iface, err)
	}
	return d, nil
}

// DetachDecap detaches the decap program from iface and removes its pins
// under pinRoot/decap/iface ("" means DefaultPinRoot). The error wraps
// ErrNotAttached when nothing is pinned.
func DetachDecap(iface, pinRoot string) error {
	if pinRoot == "" {
		pinRoot = DefaultPinRoot
	}
	if err := checkRoot("detach decap", os.Geteuid()); err != nil {
		return err
	}
	dir := filepath.Join(pinRoot, decapDir, iface)
	if err := detachPinned(dir, iface, "decap"); err != nil {
		return fmt.Errorf("detach decap from %s: %w", iface, err)
	}
	os.Remove(filepath.Join(pinRoot, decapDir)) // only if empty
	os.Remove(pinRoot)
	return nil
}

// Program returns the decap program, for BPF_PROG_TEST_RUN. The Decap owns
// it.
func (d *Decap) Program() *ebpf.Program { return d.prog }

// AddAddr accepts IPIP packets whose outer destination is a (IPv4).
func (d *Decap) AddAddr(a netip.Addr) error {
	if err := requireIPv4("decap address", a); err != nil {
		return fmt.Errorf("add decap address: %w", err)
	}
	if err := d.maps.DecapAddrs.Put(addrTo16(a), uint8(1)); err != nil {
		return fmt.Errorf("add decap address %s: %w", a, err)
	}
	return nil
}

// DeleteAddr stops accepting IPIP packets for a.
func (d *Decap) DeleteAddr(a netip.Addr) error {
	if err := d.maps.DecapAddrs.Delete(addrTo16(a)); err != nil {
		return fmt.Errorf("delete decap address %s: %w", a, err)
	}
	return nil
}

// Addrs returns the accepted outer destination addresses, sorted.
func (d *Decap) Addrs() ([]netip.Addr, error) {
	var out []netip.Addr
	err := dumpMap(d.maps.DecapAddrs, func(k [16]byte, _ uint8) bool {
		out = append(out, addrFrom16(k))
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("list decap addresses: %w", err)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// Stats returns the decap program's reason counters summed over CPUs, every
// reason included.
func (d *Decap) Stats() (map[Reason]uint64, error) {
	s, err := readReasons(d.maps.ReasonStats)
	if err != nil {
		return nil, fmt.Errorf("decap stats: %w", err)
	}
	return s, nil
}

// Close releases the handle's file descriptors; pins and an attached
// program stay.
func (d *Decap) Close() error {
	var errs []error
	if d.link != nil {
		errs = append(errs, d.link.Close())
	}
	if d.prog != nil {
		errs = append(errs, d.prog.Close())
	}
	for _, m := range d.all {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}
