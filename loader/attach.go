package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
)

// metaPin is the file name of the meta map in a pin directory: it records
// the Options the maps were created with and the attach mode, so Open and
// a later Attach can recover them.
const metaPin = "meta"

// metaLayout numbers the meaning of the pinned maps. Raise it when a change
// makes old pins unusable although their sizes still match. 2: flows hold
// their VIP's index and use per-CPU LRU lists; vip_info and vip_filter.
// 3: the rings' inner maps are memory-mappable (an old rings map refuses
// them). 4: flows is a memory-mappable array of buckets (bpf/flow.h), not
// an LRU hash.
const metaLayout = 4

const metaMagic = 0x78646c62 // "xdlb"

type pinMeta struct {
	Magic       uint32
	Layout      uint32
	MaxVIPs     uint32
	MaxBackends uint32
	MaxFlows    uint32
	RingSize    uint32
	HashSeed    uint32
	Mode        uint32
}

func (m pinMeta) options() Options {
	return Options{MaxVIPs: m.MaxVIPs, MaxBackends: m.MaxBackends, MaxFlows: m.MaxFlows, RingSize: m.RingSize, HashSeed: m.HashSeed}
}

func newPinMeta(o Options, mode Mode) pinMeta {
	return pinMeta{Magic: metaMagic, Layout: metaLayout, MaxVIPs: o.MaxVIPs, MaxBackends: o.MaxBackends,
		MaxFlows: o.MaxFlows, RingSize: o.RingSize, HashSeed: o.HashSeed, Mode: uint32(mode)}
}

func newMetaMap() (*ebpf.Map, error) {
	return ebpf.NewMap(&ebpf.MapSpec{Name: "xdplb_meta", Type: ebpf.Array, KeySize: 4, ValueSize: 32, MaxEntries: 1})
}

// readMeta opens the meta pin in dir. It returns a nil map and no error if
// there is none.
func readMeta(dir string) (*ebpf.Map, pinMeta, error) {
	path := filepath.Join(dir, metaPin)
	m, err := ebpf.LoadPinnedMap(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, pinMeta{}, nil
	}
	if err != nil {
		return nil, pinMeta{}, fmt.Errorf("open %s: %w", path, err)
	}
	var pm pinMeta
	if err := m.Lookup(uint32(0), &pm); err != nil {
		m.Close()
		return nil, pinMeta{}, fmt.Errorf("read %s: %w", path, err)
	}
	if pm.Magic != metaMagic || pm.Layout != metaLayout {
		m.Close()
		return nil, pinMeta{}, fmt.Errorf("%w: %s has layout %d (magic %#x), this xdplb uses layout %d", ErrIncompatiblePins, path, pm.Layout, pm.Magic, metaLayout)
	}
	if err := pm.options().Validate(); err != nil {
		m.Close()
		return nil, pinMeta{}, fmt.Errorf("%w: %s: %w", ErrIncompatiblePins, path, err)
	}
	return m, pm, nil
}

// AttachInfo describes what Attach did.
type AttachInfo struct {
	Mode    Mode   // ModeNative or ModeGeneric: how the program runs
	Adopted bool   // pins existed: their maps were kept and the program replaced in place
	PinDir  string // where the link and maps are pinned
	Memlock uint64 // bytes of kernel memory the maps (Maglev tables included) and program hold
}

// Attach loads the balancer with opts, attaches it to iface through a BPF
// link and pins the link and every map under pinRoot/iface (pinRoot ""
// means DefaultPinRoot), mounting bpffs at /sys/fs/bpf if needed. The
// program keeps forwarding after the Balancer is closed and the process
// exits; Detach removes it.
//
// If pins exist for iface already, Attach adopts them: the new program is
// loaded against the pinned maps (VIPs, backends, rings, flows and counters
// are kept) and replaces the old program in the pinned link atomically, so
// forwarding never stops. opts must equal the pinned options, and an
// explicit mode the pinned mode; otherwise the error wraps
// ErrIncompatiblePins and says how to start over.
//
// A fresh attachment fills the config map from the interface: its MAC,
// MTU, primary IPv4 address as tunnel source, and TTL 64. An adopted one
// refreshes the MAC and MTU and keeps the rest. iface is resolved in the
// calling thread's network namespace.
func Attach(iface string, mode Mode, opts Options, pinRoot string, log *slog.Logger) (*Balancer, AttachInfo, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if pinRoot == "" {
		pinRoot = DefaultPinRoot
	}
	b, info, err := attach(iface, mode, opts, pinRoot, log)
	if err != nil {
		return nil, AttachInfo{}, fmt.Errorf("attach to %s: %w", iface, err)
	}
	log.Info("xdplb attached", "iface", iface, "mode", info.Mode.String(), "adopted", info.Adopted,
		"pin_dir", info.PinDir, "memlock_bytes", info.Memlock)
	return b, info, nil
}

func attach(iface string, mode Mode, opts Options, pinRoot string, log *slog.Logger) (*Balancer, AttachInfo, error) {
	if err := checkRoot("attach", os.Geteuid()); err != nil {
		return nil, AttachInfo{}, err
	}
	if err := checkBTF(btfPath); err != nil {
		return nil, AttachInfo{}, err
	}
	if err := opts.Validate(); err != nil {
		return nil, AttachInfo{}, err
	}
	if mode < ModeAuto || mode > ModeGeneric {
		return nil, AttachInfo{}, fmt.Errorf("unknown mode %s", mode)
	}
	if iface == decapDir {
		return nil, AttachInfo{}, fmt.Errorf("interface name %q clashes with the decap pin directory under %s: choose another pin root", iface, pinRoot)
	}
	ifi, err := lookupIface(iface)
	if err != nil {
		return nil, AttachInfo{}, err
	}
	dir := filepath.Join(pinRoot, iface)
	if err := ensurePinDir(dir); err != nil {
		return nil, AttachInfo{}, err
	}
	meta, pm, err := readMeta(dir)
	if err != nil {
		return nil, AttachInfo{}, fmt.Errorf("%w: run `xdplb detach %s` to remove the old pins, then attach again (VIPs, backends and flows are lost)", err, iface)
	}
	var b *Balancer
	adopted := meta != nil
	if adopted {
		b, err = adopt(dir, meta, pm, ifi, mode, opts, log)
	} else {
		b, err = attachFresh(dir, ifi, mode, opts, log)
	}
	if err != nil {
		return nil, AttachInfo{}, err
	}
	memlock, err := b.memlock()
	if err != nil {
		b.Close()
		return nil, AttachInfo{}, err
	}
	return b, AttachInfo{Mode: b.mode, Adopted: adopted, PinDir: dir, Memlock: memlock}, nil
}

// attachFresh loads new maps, pins them, fills the config and attaches.
// Any failure removes what it pinned.
func attachFresh(dir string, ifi ifaceInfo, mode Mode, opts Options, log *slog.Logger) (_ *Balancer, err error) {
	b, err := loadBalancer(opts, nil)
	if err != nil {
		return nil, fmt.Errorf("load balancer: %w", err)
	}
	defer func() {
		if err != nil {
			b.Close()
			removePinDir(dir)
		}
	}()
	if b.meta, err = newMetaMap(); err != nil {
		return nil, fmt.Errorf("create meta map: %w", err)
	}
	// The meta pin goes first: it marks the directory as ours, so a run
	// that dies half-way is adopted and completed by the next Attach.
	if err := b.meta.Put(uint32(0), newPinMeta(opts, ModeAuto)); err != nil {
		return nil, fmt.Errorf("write meta map: %w", err)
	}
	if err := b.meta.Pin(filepath.Join(dir, metaPin)); err != nil {
		return nil, fmt.Errorf("pin meta map: %w", err)
	}
	if err := b.pinMaps(dir, nil); err != nil {
		return nil, err
	}
	c := Config{IfMAC: ifi.MAC, MTU: clampMTU(ifi.MTU), TunTTL: 64}
	if len(ifi.IPv4) > 0 {
		c.TunSource = ifi.IPv4[0]
	} else {
		log.Warn("interface has no IPv4 address: set a tunnel source before adding TUN VIPs", "iface", ifi.Name)
	}
	if err := b.SetConfig(c); err != nil {
		return nil, err
	}
	var adopted bool
	b.link, b.mode, adopted, err = attachOrUpdate(b.prog, dir, ifi, mode, log)
	if err != nil {
		return nil, err
	}
	if adopted {
		// Only possible if someone pinned a link between our checks.
		return nil, fmt.Errorf("a link appeared in %s while attaching", dir)
	}
	if err := b.meta.Put(uint32(0), newPinMeta(opts, b.mode)); err != nil {
		return nil, fmt.Errorf("write meta map: %w", err)
	}
	return b, nil
}

// adopt loads the program against the pinned maps and swaps it into the
// pinned link.
func adopt(dir string, meta *ebpf.Map, pm pinMeta, ifi ifaceInfo, mode Mode, opts Options, log *slog.Logger) (*Balancer, error) {
	pinnedOpts, pinnedMode := pm.options(), Mode(pm.Mode)
	// MaxFlows values that round to the same buckets are the same maps.
	if pinnedOpts.effective() != opts.effective() {
		meta.Close()
		return nil, fmt.Errorf("%w: pinned maps under %s were created with %+v, not %+v: attach with the same options, or run `xdplb detach %s` first (VIPs, backends and flows are lost)",
			ErrIncompatiblePins, dir, pinnedOpts, opts, ifi.Name)
	}
	if mode != ModeAuto && pinnedMode != ModeAuto && mode != pinnedMode {
		meta.Close()
		return nil, fmt.Errorf("%w: already attached in %s mode, %s requested: run `xdplb detach %s` first to change the mode",
			ErrIncompatiblePins, pinnedMode, mode, ifi.Name)
	}
	pinned, err := loadPinnedMaps(dir, opts)
	if err != nil {
		meta.Close()
		return nil, err
	}
	b, err := loadBalancer(opts, pinned)
	for _, m := range pinned {
		m.Close() // loadBalancer holds clones
	}
	if err != nil {
		meta.Close()
		if errors.Is(err, ErrIncompatiblePins) {
			return nil, fmt.Errorf("%w: run `xdplb detach %s` and attach again (VIPs, backends and flows are lost)", err, ifi.Name)
		}
		return nil, fmt.Errorf("load balancer against pinned maps: %w", err)
	}
	b.meta = meta
	if err := b.pinMaps(dir, pinned); err != nil {
		b.Close()
		return nil, err
	}
	// A process that died while changing VIPs may have left the derived
	// maps behind; this one is the maps' writer now.
	if err := b.repairDerived(true); err != nil {
		b.Close()
		return nil, err
	}
	c, err := b.Config()
	if err != nil {
		b.Close()
		return nil, err
	}
	c.IfMAC, c.MTU = ifi.MAC, clampMTU(ifi.MTU)
	if !c.TunSource.IsValid() && len(ifi.IPv4) > 0 {
		c.TunSource = ifi.IPv4[0]
	}
	if c.TunTTL == 0 {
		c.TunTTL = 64
	}
	if err := b.SetConfig(c); err != nil {
		b.Close()
		return nil, err
	}
	if mode == ModeAuto && pinnedMode != ModeAuto {
		mode = pinnedMode
	}
	var updated bool
	b.link, b.mode, updated, err = attachOrUpdate(b.prog, dir, ifi, mode, log)
	if err != nil {
		b.Close()
		return nil, err
	}
	if updated {
		b.mode = pinnedMode
	}
	if err := b.meta.Put(uint32(0), newPinMeta(opts, b.mode)); err != nil {
		b.Close()
		return nil, fmt.Errorf("write meta map: %w", err)
	}
	return b, nil
}

// mapNames returns the names of the balancer's pinnable maps.
func mapNames(spec *ebpf.CollectionSpec) []string {
	var names []string
	for name := range spec.Maps {
		if !strings.HasPrefix(name, ".") {
			names = append(names, name)
		}
	}
	return names
}

// loadPinnedMaps opens the map pins in dir that the balancer object
// defines; maps without a pin are left out (they are created fresh).
func loadPinnedMaps(dir string, opts Options) (map[string]*ebpf.Map, error) {
	spec, err := specFor(opts)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*ebpf.Map)
	for _, name := range mapNames(spec) {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			for _, m := range out {
				m.Close()
			}
			return nil, fmt.Errorf("open pinned map %s: %w", name, err)
		}
		out[name] = m
	}
	return out, nil
}

// pinMaps pins every map that is not pinned already.
func (b *Balancer) pinMaps(dir string, pinned map[string]*ebpf.Map) error {
	for name, m := range b.all {
		if _, ok := pinned[name]; ok {
			continue
		}
		if err := m.Pin(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("pin map %s: %w", name, err)
		}
	}
	return nil
}

func clampMTU(mtu int) uint16 {
	if mtu > 0xffff {
		return 0xffff
	}
	return uint16(mtu)
}

// memlock sums the kernel memory of the maps and the program.
func (b *Balancer) memlock() (uint64, error) {
	infos, err := b.MapInfos()
	if err != nil {
		return 0, err
	}
	total, err := fdMemlock(b.prog.FD())
	if err != nil {
		return 0, fmt.Errorf("program: %w", err)
	}
	for _, mi := range infos {
		total += mi.Memlock
	}
	return total, nil
}

// Open opens the balancer pinned for iface under pinRoot ("" means
// DefaultPinRoot), with the Options it was attached with. The error wraps
// ErrNotAttached when nothing is pinned or the program is no longer
// attached. Open does not need iface to exist in the caller's network
// namespace.
func Open(iface, pinRoot string) (*Balancer, error) {
	if pinRoot == "" {
		pinRoot = DefaultPinRoot
	}
	b, err := open(iface, pinRoot)
	if err != nil {
		return nil, fmt.Errorf("open xdplb on %s: %w", iface, err)
	}
	return b, nil
}

func open(iface, pinRoot string) (_ *Balancer, err error) {
	if err := checkRoot("open", os.Geteuid()); err != nil {
		return nil, err
	}
	dir := filepath.Join(pinRoot, iface)
	meta, pm, err := readMeta(dir)
	if err != nil {
		return nil, err
	}
	if meta == nil {
		return nil, fmt.Errorf("%w: nothing pinned under %s: run `xdplb attach %s` first", ErrNotAttached, dir, iface)
	}
	opts := pm.options()
	b := &Balancer{opts: opts.effective(), mode: Mode(pm.Mode), meta: meta}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	spec, err := specFor(opts)
	if err != nil {
		return nil, err
	}
	b.inner = spec.Maps[lbMapRings].InnerMap.Copy()
	if b.all, err = loadPinnedMaps(dir, opts); err != nil {
		return nil, err
	}
	for name, m := range b.all {
		if err := spec.Maps[name].Compatible(m); err != nil {
			return nil, fmt.Errorf("%w: map %s: %w: run `xdplb attach %s` with this version to adopt them, or detach first", ErrIncompatiblePins, name, err, iface)
		}
	}
	if err := assignMaps(&b.maps, b.all); err != nil {
		return nil, fmt.Errorf("%w: under %s: %w: run `xdplb attach %s` to complete the pins", ErrIncompatiblePins, dir, err, iface)
	}
	// Raise filter buckets a crashed writer left too low. Only raise:
	// the daemon may be changing VIPs right now (filter.go).
	if err := b.repairDerived(false); err != nil {
		return nil, err
	}
	if b.link, b.prog, err = openPinnedLink(dir, iface, "xdplb attach "+iface); err != nil {
		return nil, err
	}
	return b, nil
}

// Detach detaches the balancer from iface and removes every pin under
// pinRoot/iface ("" means DefaultPinRoot), and the directory. The program
// stops even if another process still holds it open. The error wraps
// ErrNotAttached when nothing is pinned.
func Detach(iface, pinRoot string) error {
	if pinRoot == "" {
		pinRoot = DefaultPinRoot
	}
	if err := checkRoot("detach", os.Geteuid()); err != nil {
		return err
	}
	if err := detachPinned(filepath.Join(pinRoot, iface), iface, "xdplb"); err != nil {
		return fmt.Errorf("detach xdplb from %s: %w", iface, err)
	}
	os.Remove(pinRoot) // only if empty
	return nil
}
