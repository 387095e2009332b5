package loader

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Balancer is a handle on the balancer program and its maps: freshly
// loaded (Load), attached (Attach) or opened from pins (Open). Its methods
// are safe for concurrent use; allocation of VIP indexes is serialised
// within one handle, and across processes the maps must have one writer
// (the daemon, or the CLI when no daemon runs).
type Balancer struct {
	// mu serialises read-modify-write sequences (index allocation, VIP
	// deletion and its cleanup).
	mu sync.Mutex

	opts  Options
	mode  Mode // mode of the attachment; ModeAuto when not attached
	prog  *ebpf.Program
	maps  lbMaps
	all   map[string]*ebpf.Map // every map by its name in the object
	inner *ebpf.MapSpec        // one Maglev table, for SetRing

	link link.Link // nil unless attached or opened
	meta *ebpf.Map // nil unless attached or opened

	ids backendIDs // backend ids last seen unused (backends.go)
}

// specFor returns the balancer's collection spec with the sizes and
// constants of opts applied.
func specFor(opts Options) (*ebpf.CollectionSpec, error) {
	spec, err := loadLb()
	if err != nil {
		return nil, err
	}
	sizes := map[string]uint32{
		lbMapVips:         opts.MaxVIPs,
		lbMapRings:        opts.MaxVIPs,
		lbMapVipStats:     opts.MaxVIPs,
		lbMapVipInfo:      opts.MaxVIPs,
		lbMapBackends:     opts.MaxBackends,
		lbMapBackendStats: opts.MaxBackends,
		lbMapFlows:        opts.flowBuckets(),
	}
	for name, n := range sizes {
		ms, ok := spec.Maps[name]
		if !ok {
			return nil, fmt.Errorf("balancer object has no map %s", name)
		}
		ms.MaxEntries = n
	}
	if f, ok := spec.Maps[lbMapVipFilter]; !ok || f.MaxEntries != vipFilterSize {
		return nil, fmt.Errorf("balancer object: map %s does not have the %d buckets loader/filter.go hashes into", lbMapVipFilter, vipFilterSize)
	}
	rings := spec.Maps[lbMapRings]
	if rings.InnerMap == nil {
		return nil, fmt.Errorf("balancer object: map %s has no inner map", lbMapRings)
	}
	rings.InnerMap.MaxEntries = opts.RingSize
	consts := map[string]uint32{lbVarRingSize: opts.RingSize, lbVarHashSeed: opts.HashSeed, lbVarFlowBuckets: opts.flowBuckets()}
	for name, v := range consts {
		vs, ok := spec.Variables[name]
		if !ok {
			return nil, fmt.Errorf("balancer object has no constant %s", name)
		}
		if err := vs.Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	return spec, nil
}

// Load loads the balancer program and its maps with the given options,
// without attaching or pinning anything: for tests and benchmarks, which
// run the program with BPF_PROG_TEST_RUN. Close releases it.
func Load(opts Options) (*Balancer, error) {
	b, err := loadBalancer(opts, nil)
	if err != nil {
		return nil, fmt.Errorf("load balancer: %w", err)
	}
	return b, nil
}

// loadBalancer loads the program, reusing the maps in replace (by name)
// instead of creating them.
func loadBalancer(opts Options, replace map[string]*ebpf.Map) (*Balancer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise memlock limit: %w", err)
	}
	spec, err := specFor(opts)
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
	prog := coll.DetachProgram(lbProgXdplbBalancer)
	all := make(map[string]*ebpf.Map)
	for name := range coll.Maps {
		if strings.HasPrefix(name, ".") {
			continue // .rodata and friends: part of the program, never pinned
		}
		all[name] = coll.DetachMap(name)
	}
	coll.Close()
	b := &Balancer{opts: opts.effective(), prog: prog, all: all, inner: spec.Maps[lbMapRings].InnerMap.Copy()}
	if err := assignMaps(&b.maps, all); err != nil {
		b.Close()
		return nil, err
	}
	if prog == nil {
		b.Close()
		return nil, fmt.Errorf("balancer object has no program %s", lbProgXdplbBalancer)
	}
	return b, nil
}

// assignMaps fills the *ebpf.Map fields of dst (tagged `ebpf:"name"`) from
// maps by name.
func assignMaps(dst any, maps map[string]*ebpf.Map) error {
	v := reflect.ValueOf(dst).Elem()
	var missing []string
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Tag.Get("ebpf")
		m, ok := maps[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		v.Field(i).Set(reflect.ValueOf(m))
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("maps missing: %s", strings.Join(missing, ", "))
	}
	return nil
}

// Close releases the handle's file descriptors. Pinned maps and an
// attached program stay: forwarding continues.
func (b *Balancer) Close() error {
	var errs []error
	if b.link != nil {
		errs = append(errs, b.link.Close())
	}
	if b.prog != nil {
		errs = append(errs, b.prog.Close())
	}
	for _, m := range b.all {
		errs = append(errs, m.Close())
	}
	if b.meta != nil {
		errs = append(errs, b.meta.Close())
	}
	return errors.Join(errs...)
}

// Program returns the balancer program, for BPF_PROG_TEST_RUN in tests and
// benchmarks. The Balancer owns it.
func (b *Balancer) Program() *ebpf.Program { return b.prog }

// Options returns the load-time options; for an opened Balancer, those the
// pins were created with.
func (b *Balancer) Options() Options { return b.opts }

// Mode returns how the program is attached (ModeNative or ModeGeneric), or
// ModeAuto for a Balancer from Load.
func (b *Balancer) Mode() Mode { return b.mode }

// Slot returns the ring slot the program picks for a new flow from src to
// dst of VIP v: the flow hash (or, with source persistence, the hash of the
// masked client address) modulo RingSize.
func (b *Balancer) Slot(v VIPEntry, src, dst netip.AddrPort) uint32 {
	if v.Config.Persist {
		return SourceHash(b.opts.HashSeed, src.Addr(), v.Config.PersistPrefix) % b.opts.RingSize
	}
	return FlowHash(b.opts.HashSeed, src, dst, v.VIP.Proto) % b.opts.RingSize
}
