package controlplane

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"net/netip"
	"slices"

	"github.com/xdplb/xdplb/controlplane/maglev"
	"github.com/xdplb/xdplb/loader"
)

// Programmer keeps the data plane's VIPs, backends and rings equal to the
// desired Services, with as few map writes as it takes. The CLI and the
// daemon both program the balancer through it. A Programmer must not be
// used by two goroutines at once.
//
// A Programmer remembers, per VIP index, a 64-bit hash of the last Maglev
// table it wrote or found in place, and trusts it: Apply reads a table
// back from the map (65537 slots take milliseconds) only for a VIP it has
// no hash of, the first time after it was created, which is how a
// restarted daemon adopts the tables an earlier run wrote. A table
// changed behind a warm Programmer's back is not noticed: it is replaced
// only when the desired table changes, or by a new Programmer. Backend
// slots are trusted the same way: read once, then kept as written, and
// read again after any failed write. The daemon
// owns the maps while it runs (the CLI goes through its API, and the pin
// directory's lock keeps other writers out), so nothing else writes them;
// the CLI makes a new Programmer for every command.
type Programmer struct {
	dp      Dataplane
	log     *slog.Logger
	builder maglev.Builder

	// rings holds, by VIP index, what was last written to or read from
	// that index's table.
	rings map[uint32]ringMark
	seed  maphash.Seed
	// slots holds the backends map's used slots by VIP index and id, as
	// read once and then kept up to date with every write this
	// Programmer makes; nil means read them again. Reading the whole
	// backends map for every Apply made programming N services cost N
	// reads of every slot.
	slots map[uint32]map[uint32]loader.Backend
}

// ringMark identifies the table a VIP index holds: the VIP it belongs to
// and a hash of its slots.
type ringMark struct {
	vip loader.VIP
	sum uint64
}

// NewProgrammer returns a Programmer for dp that logs changes to log.
func NewProgrammer(dp Dataplane, log *slog.Logger) *Programmer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Programmer{dp: dp, log: log, rings: map[uint32]ringMark{}, seed: maphash.MakeSeed()}
}

// Result says what Apply changed.
type Result struct {
	VIP        loader.VIPEntry
	VIPAdded   bool
	VIPUpdated bool
	Added      []netip.Addr // backends given a new slot
	Updated    []netip.Addr // backends whose weight, MAC or state changed
	Removed    []netip.Addr // backends whose slot was freed
	// RingWritten is set when a new Maglev table was swapped in.
	RingWritten bool
}

// Changed reports whether Apply wrote anything.
func (r Result) Changed() bool {
	return r.VIPAdded || r.VIPUpdated || r.RingWritten ||
		len(r.Added)+len(r.Updated)+len(r.Removed) > 0
}

// Apply makes the data plane carry s, writing only what differs:
//
//   - the VIP is added, or updated when its configuration changed;
//   - a backend keeps its slot id while its address stays, so flows pinned
//     to it survive; a new address gets a free id; a removed address has
//     its slot freed (its pinned flows re-hash on their next packet);
//   - every backend stays in the backends map with its weight and state,
//     but only active backends with a weight enter the table; down ones
//     are marked down, so flows pinned to them re-hash;
//   - the table is rebuilt and swapped in only when it differs from the
//     one in place: the one this Programmer last wrote, or, the first
//     time, the one read back from the map.
//
// Writes are ordered so that no packet meets a half-done change: new and
// promoted backends are written before the table that names them, the new
// table is in place before a backend leaves the active state, and slots
// are freed last, once no table names them. Apply is idempotent: after a
// failure part-way, applying s again completes the change.
func (p *Programmer) Apply(s Service) (Result, error) {
	if err := s.Validate(); err != nil {
		return Result{}, fmt.Errorf("apply %v: %w", s.VIP, err)
	}
	var res Result
	sched := effectiveScheduler(s)
	cfg := encodeConfig(s)

	entry, err := p.dp.LookupVIP(s.VIP)
	switch {
	case errors.Is(err, loader.ErrVIPNotFound):
		if entry, err = p.dp.AddVIP(s.VIP, cfg); err != nil {
			return res, fmt.Errorf("apply %v: add VIP: %w", s.VIP, err)
		}
		res.VIPAdded = true
		p.log.Info("VIP added", "vip", s.VIP.String(), "forwarding", cfg.Forwarding.String(), "scheduler", sched.String())
	case err != nil:
		return res, fmt.Errorf("apply %v: look up VIP: %w", s.VIP, err)
	case entry.Config != cfg:
		if err := p.dp.UpdateVIP(s.VIP, cfg); err != nil {
			return res, fmt.Errorf("apply %v: update VIP: %w", s.VIP, err)
		}
		entry.Config = cfg
		res.VIPUpdated = true
		p.log.Info("VIP updated", "vip", s.VIP.String(), "forwarding", cfg.Forwarding.String(), "scheduler", sched.String())
	}
	res.VIP = entry
	if res.VIPAdded {
		// AddVIP frees whatever slots a crashed writer left for the
		// index.
		delete(p.slots, entry.Index)
	}

	current, extra, err := p.backendsOf(entry.Index)
	if err != nil {
		return res, fmt.Errorf("apply %v: %w", s.VIP, err)
	}

	want := slices.Clone(s.Backends)
	sortBackends(want)
	ids := make([]uint32, len(want))
	var demoted []loader.Backend

	// New backends and changes that may only help: before the table.
	for i, b := range want {
		// The map holds 6 bytes: a backend without a MAC (down, not
		// resolvable) is stored with zeros.
		lb := loader.Backend{VIPIndex: entry.Index, Addr: b.Addr, MAC: normMAC(b.MAC), State: b.State, Weight: b.Weight}
		cur, ok := current[b.Addr]
		if ok {
			delete(current, b.Addr)
			lb.ID = cur.ID
			ids[i] = cur.ID
			if sameBackend(cur, lb) {
				continue
			}
			if cur.State == loader.StateActive && lb.State != loader.StateActive {
				demoted = append(demoted, lb)
				continue
			}
			if err := p.setBackend(lb, s.VIP, "backend updated"); err != nil {
				return res, err
			}
			res.Updated = append(res.Updated, b.Addr)
			continue
		}
		id, err := p.dp.FreeBackendID()
		if err != nil {
			p.slots = nil
			return res, fmt.Errorf("apply %v: allocate backend %v: %w", s.VIP, b.Addr, err)
		}
		lb.ID = id
		ids[i] = id
		if err := p.setBackend(lb, s.VIP, "backend added"); err != nil {
			return res, err
		}
		res.Added = append(res.Added, b.Addr)
	}

	ring, err := buildRing(&p.builder, sched, want, ids, p.dp.Options().RingSize)
	if err != nil {
		return res, fmt.Errorf("apply %v: %w", s.VIP, err)
	}
	sum := p.ringSum(ring)
	if res.VIPAdded {
		// A new VIP starts without a table, whatever its index held.
		delete(p.rings, entry.Index)
	}
	var stale bool
	if mark, ok := p.rings[entry.Index]; ok && mark.vip == s.VIP {
		stale = mark.sum != sum
	} else {
		old, err := p.dp.Ring(entry.Index)
		if err != nil {
			return res, fmt.Errorf("apply %v: read ring: %w", s.VIP, err)
		}
		stale = old == nil || !slices.Equal(old, ring)
	}
	if stale {
		if err := p.dp.SetRing(entry.Index, ring); err != nil {
			// What the map holds now is unknown: read it back next time.
			delete(p.rings, entry.Index)
			return res, fmt.Errorf("apply %v: write ring: %w", s.VIP, err)
		}
		res.RingWritten = true
		p.log.Info("ring written", "vip", s.VIP.String(), "active", activeCount(want))
	}
	p.rings[entry.Index] = ringMark{vip: s.VIP, sum: sum}

	// Leaving the active state: after the table no longer names them.
	for _, lb := range demoted {
		if err := p.setBackend(lb, s.VIP, "backend updated"); err != nil {
			return res, err
		}
		res.Updated = append(res.Updated, lb.Addr)
	}

	// Removed: last, once no table names the slot.
	gone := extra
	for _, b := range current {
		gone = append(gone, b)
	}
	slices.SortFunc(gone, func(a, b loader.Backend) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	for _, b := range gone {
		if err := p.dp.DeleteBackend(b.ID); err != nil {
			p.slots = nil
			return res, fmt.Errorf("apply %v: free backend %v (id %d): %w", s.VIP, b.Addr, b.ID, err)
		}
		delete(p.slots[b.VIPIndex], b.ID)
		res.Removed = append(res.Removed, b.Addr)
		p.log.Info("backend removed", "vip", s.VIP.String(), "backend", b.Addr.String(), "id", b.ID)
	}
	slices.SortFunc(res.Updated, netip.Addr.Compare)
	return res, nil
}

// ringSum hashes a table, slot by slot. With a seed drawn per
// Programmer, two different tables share a sum with probability 2^-64.
func (p *Programmer) ringSum(ring []uint32) uint64 {
	var (
		h   maphash.Hash
		buf [4096]byte
	)
	h.SetSeed(p.seed)
	for len(ring) > 0 {
		n := min(len(ring), len(buf)/4)
		for i, id := range ring[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], id)
		}
		h.Write(buf[:4*n])
		ring = ring[n:]
	}
	return h.Sum64()
}

// forget drops what the Programmer knows of v's table.
func (p *Programmer) forget(v loader.VIP) {
	for idx, m := range p.rings {
		if m.vip == v {
			delete(p.rings, idx)
		}
	}
}

// SetBackend writes one backend slot outside Apply, for a change that
// cannot wait for a new table: the daemon takes a failing backend out
// this way. What the Programmer knows of the slot follows the write, so
// the next Apply does not undo it or write it again.
func (p *Programmer) SetBackend(b loader.Backend) error {
	if err := p.dp.SetBackend(b); err != nil {
		p.slots = nil
		return err
	}
	p.noteBackend(b)
	return nil
}

// noteBackend records that slot b.ID now holds b.
func (p *Programmer) noteBackend(b loader.Backend) {
	if p.slots == nil {
		return
	}
	// An id moves between VIPs only through a free slot, so it is in no
	// other group.
	if p.slots[b.VIPIndex] == nil {
		p.slots[b.VIPIndex] = map[uint32]loader.Backend{}
	}
	b.MAC = bytes.Clone(b.MAC) // the caller's Service may change it
	p.slots[b.VIPIndex][b.ID] = b
}

func (p *Programmer) setBackend(b loader.Backend, vip loader.VIP, msg string) error {
	if err := p.dp.SetBackend(b); err != nil {
		p.slots = nil
		return fmt.Errorf("apply %v: write backend %v (id %d): %w", vip, b.Addr, b.ID, err)
	}
	p.noteBackend(b)
	p.log.Info(msg, "vip", vip.String(), "backend", b.Addr.String(), "id", b.ID,
		"state", b.State.String(), "weight", b.Weight)
	return nil
}

// backendsOf returns the backends of the VIP with index idx by address,
// and any further slot carrying an address already seen (left by an
// interrupted writer), which Apply frees.
func (p *Programmer) backendsOf(idx uint32) (map[netip.Addr]loader.Backend, []loader.Backend, error) {
	if p.slots == nil {
		all, err := p.dp.Backends()
		if err != nil {
			return nil, nil, fmt.Errorf("read backends: %w", err)
		}
		p.slots = map[uint32]map[uint32]loader.Backend{}
		for _, b := range all {
			if b.State != loader.StateUnused {
				p.noteBackend(b)
			}
		}
	}
	// By id, as the map lists them: the lowest id of an address is the
	// one kept.
	group := slices.SortedFunc(maps.Values(p.slots[idx]), func(a, b loader.Backend) int { return cmp.Compare(a.ID, b.ID) })
	byAddr := make(map[netip.Addr]loader.Backend)
	var extra []loader.Backend
	for _, b := range group {
		if _, dup := byAddr[b.Addr]; dup {
			extra = append(extra, b)
			continue
		}
		byAddr[b.Addr] = b
	}
	return byAddr, extra, nil
}

func sameBackend(a, b loader.Backend) bool {
	return a.ID == b.ID && a.VIPIndex == b.VIPIndex && a.Addr == b.Addr &&
		bytes.Equal(normMAC(a.MAC), normMAC(b.MAC)) && a.State == b.State && a.Weight == b.Weight
}

// normMAC treats a missing MAC as the all-zero one the map stores.
func normMAC(m []byte) []byte {
	if m == nil {
		return make([]byte, 6)
	}
	return m
}

func activeCount(bs []Backend) int {
	n := 0
	for _, b := range bs {
		if inRing(b) {
			n++
		}
	}
	return n
}

// Delete removes the VIP, its table and every backend slot it owns.
// The error wraps loader.ErrVIPNotFound when there is no such VIP.
func (p *Programmer) Delete(v loader.VIP) error {
	p.forget(v)
	entry, err := p.dp.LookupVIP(v)
	if err != nil {
		return fmt.Errorf("delete %v: %w", v, err)
	}
	if err := p.dp.DeleteVIP(v); err != nil {
		p.slots = nil
		return fmt.Errorf("delete %v: %w", v, err)
	}
	// DeleteVIP frees the VIP's slots.
	delete(p.slots, entry.Index)
	p.log.Info("VIP deleted", "vip", v.String())
	return nil
}

// Service reads the VIP's current Service back from the maps: its
// configuration, its scheduler and its backends (by address) with their
// weights, MACs and states. The error wraps loader.ErrVIPNotFound when
// there is no such VIP.
func (p *Programmer) Service(v loader.VIP) (Service, error) {
	entry, err := p.dp.LookupVIP(v)
	if err != nil {
		return Service{}, fmt.Errorf("read %v: %w", v, err)
	}
	all, err := p.dp.Backends()
	if err != nil {
		return Service{}, fmt.Errorf("read %v: read backends: %w", v, err)
	}
	return serviceOf(entry, all), nil
}

// Services reads every configured VIP back from the maps, ordered by VIP.
func (p *Programmer) Services() ([]Service, error) {
	entries, err := p.dp.VIPs()
	if err != nil {
		return nil, fmt.Errorf("read VIPs: %w", err)
	}
	all, err := p.dp.Backends()
	if err != nil {
		return nil, fmt.Errorf("read backends: %w", err)
	}
	out := make([]Service, 0, len(entries))
	for _, e := range entries {
		out = append(out, serviceOf(e, all))
	}
	slices.SortFunc(out, func(a, b Service) int { return compareVIP(a.VIP, b.VIP) })
	return out, nil
}

func serviceOf(e loader.VIPEntry, all []loader.Backend) Service {
	cfg, sched := decodeConfig(e.Config)
	s := Service{VIP: e.VIP, Config: cfg, Scheduler: sched}
	seen := make(map[netip.Addr]bool)
	for _, b := range all {
		if b.VIPIndex != e.Index || b.State == loader.StateUnused || seen[b.Addr] {
			continue
		}
		seen[b.Addr] = true
		s.Backends = append(s.Backends, Backend{Addr: b.Addr, Weight: b.Weight, MAC: b.MAC, State: b.State})
	}
	sortBackends(s.Backends)
	return s
}

// compareVIP orders VIPs by address, port, then protocol.
func compareVIP(a, b loader.VIP) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Port, b.Port); c != 0 {
		return c
	}
	return cmp.Compare(a.Proto, b.Proto)
}
