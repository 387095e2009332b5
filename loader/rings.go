package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// SetRing replaces the Maglev table of the VIP with index vipIndex. ids
// holds RingSize backend ids (0 for "no backend"). A new inner map is
// created and filled completely first, then swapped into the VIP's slot of
// the rings map with a single update: every packet sees either the old
// table or the new one.
func (b *Balancer) SetRing(vipIndex uint32, ids []uint32) error {
	if uint32(len(ids)) != b.opts.RingSize {
		return fmt.Errorf("set ring %d: %d entries, want RingSize %d", vipIndex, len(ids), b.opts.RingSize)
	}
	for slot, id := range ids {
		if id >= b.opts.MaxBackends {
			return fmt.Errorf("set ring %d: slot %d: backend id %d out of range 0..%d", vipIndex, slot, id, b.opts.MaxBackends-1)
		}
	}
	inner, err := ebpf.NewMap(b.inner)
	if err != nil {
		return fmt.Errorf("set ring %d: create table: %w", vipIndex, err)
	}
	defer inner.Close() // the rings map holds its own reference
	if err := fillRing(inner, ids); err != nil {
		return fmt.Errorf("set ring %d: fill table: %w", vipIndex, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	inUse, err := b.vipIndexInUse(vipIndex)
	if err != nil {
		return fmt.Errorf("set ring %d: read vips: %w", vipIndex, err)
	}
	if !inUse {
		return fmt.Errorf("set ring %d: no VIP has this index: %w", vipIndex, ErrVIPNotFound)
	}
	if err := b.maps.Rings.Put(vipIndex, inner); err != nil {
		return fmt.Errorf("set ring %d: swap table: %w", vipIndex, err)
	}
	return nil
}

// Ring returns the Maglev table of the VIP with index vipIndex, or nil and
// no error when it has none yet.
func (b *Balancer) Ring(vipIndex uint32) ([]uint32, error) {
	inner, err := b.ringMap(vipIndex)
	if err != nil || inner == nil {
		return nil, err
	}
	defer inner.Close()
	ids, err := readRing(inner)
	if err != nil {
		return nil, fmt.Errorf("read ring %d: %w", vipIndex, err)
	}
	return ids, nil
}

// ringValueSize is the size of a ring slot, a __u32.
const ringValueSize = 4

// ringStride is the distance in bytes between two slots of a mapped ring:
// an array map rounds every value up to 8 bytes (mmapArray).
const ringStride = (ringValueSize + 7) &^ 7

// mapRing maps the memory of ring, a memory-mappable array of __u32, for
// reading and, with write, writing. The caller unmaps it with unix.Munmap.
func mapRing(ring *ebpf.Map, write bool) ([]byte, error) {
	return mmapArray(ring, "ring", ringValueSize, write)
}

// fillRing writes ids into slots 0..len(ids)-1 of a new ring through its
// memory: about 1 ms for 65537 slots, where a batch update took 15-30 ms.
// The ring is not in use yet, so plain stores race with no reader.
func fillRing(ring *ebpf.Map, ids []uint32) error {
	if uint32(len(ids)) > ring.MaxEntries() {
		return fmt.Errorf("%d ids for a ring of %d slots", len(ids), ring.MaxEntries())
	}
	mem, err := mapRing(ring, true)
	if err != nil {
		return err
	}
	for i, id := range ids {
		binary.NativeEndian.PutUint32(mem[i*ringStride:], id)
	}
	return unix.Munmap(mem)
}

// readRing returns every slot of ring. A ring in use is only ever replaced
// whole, never written, so the copy is consistent.
func readRing(ring *ebpf.Map) ([]uint32, error) {
	mem, err := mapRing(ring, false)
	if err != nil {
		return nil, err
	}
	ids := make([]uint32, ring.MaxEntries())
	for i := range ids {
		ids[i] = binary.NativeEndian.Uint32(mem[i*ringStride:])
	}
	return ids, unix.Munmap(mem)
}

// ringMap opens the inner map in slot vipIndex, or returns nil if empty.
func (b *Balancer) ringMap(vipIndex uint32) (*ebpf.Map, error) {
	var id uint32
	if err := b.maps.Rings.Lookup(vipIndex, &id); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read ring %d: %w", vipIndex, err)
	}
	inner, err := ebpf.NewMapFromID(ebpf.MapID(id))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // replaced and freed since the lookup
		}
		return nil, fmt.Errorf("open ring %d: %w", vipIndex, err)
	}
	return inner, nil
}
