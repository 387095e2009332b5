package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// batchChunk is how many entries one batch syscall moves. It must exceed
// the largest hash bucket, or the kernel answers ENOSPC.
const batchChunk = 1024

// dumpMap calls fn for every entry of m, in batches when the kernel
// supports it and entry by entry otherwise, until fn returns false.
// Values must not be per-CPU.
func dumpMap[K, V any](m *ebpf.Map, fn func(K, V) bool) error {
	keys := make([]K, batchChunk)
	vals := make([]V, batchChunk)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		if errors.Is(err, ebpf.ErrNotSupported) {
			return iterateMap(m, fn)
		}
		for i := range n {
			if !fn(keys[i], vals[i]) {
				return nil
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func iterateMap[K, V any](m *ebpf.Map, fn func(K, V) bool) error {
	var k K
	var v V
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !fn(k, v) {
			return nil
		}
	}
	return it.Err()
}

// mmapArray maps the memory of m, a memory-mappable array of valueSize-byte
// values, for reading and, with write, writing. The array rounds every
// value up to 8 bytes: value i is at i*((valueSize+7)&^7). what names the
// map in errors. The caller unmaps the memory with unix.Munmap.
func mmapArray(m *ebpf.Map, what string, valueSize uint32, write bool) ([]byte, error) {
	if m.Flags()&unix.BPF_F_MMAPABLE == 0 || m.ValueSize() != valueSize {
		return nil, fmt.Errorf("%s map (flags %#x, value size %d) is not a memory-mappable array of %d-byte values", what, m.Flags(), m.ValueSize(), valueSize)
	}
	stride := int(valueSize+7) &^ 7
	prot := unix.PROT_READ
	if write {
		prot |= unix.PROT_WRITE
	}
	mem, err := unix.Mmap(m.FD(), 0, int(m.MaxEntries())*stride, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map %s memory: %w", what, err)
	}
	return mem, nil
}

// sumPerCPU returns the sum over CPUs of the per-CPU value at key.
func sumPerCPU[V any](m *ebpf.Map, key uint32, add func(*V, V)) (V, error) {
	var sum V
	var per []V
	if err := m.Lookup(key, &per); err != nil {
		return sum, err
	}
	for _, v := range per {
		add(&sum, v)
	}
	return sum, nil
}

// zeroPerCPU resets the per-CPU value at key on every CPU.
func zeroPerCPU[V any](m *ebpf.Map, key uint32) error {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	return m.Put(key, make([]V, n))
}
