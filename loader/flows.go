package loader

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The flow table is an array of buckets that the program reads and writes
// with plain loads and stores (bpf/flow.h). The control plane maps it and
// reads it the way the program does: a way counts when its tag is set and
// its check word matches its value, so a way another CPU is writing at that
// moment is skipped, not misread.

// flowBucketSize is the size of struct lb_flow_bucket, and the distance
// between two buckets in the mapped array: a multiple of 8, the size the
// array rounds values up to (mmapArray), as the check below asserts.
const flowBucketSize = int(unsafe.Sizeof(lbLbFlowBucket{}))

var _ = [1]struct{}{}[flowBucketSize%8]

// flowCheck mirrors flow_check in bpf/flow.h.
func flowCheck(tag, backendID, vipIndex uint32) uint32 {
	c := tag ^ (backendID * 0x9e3779b1) ^ (vipIndex * 0x85ebca6b)
	return c ^ (c >> 15)
}

// flowTable is the mapped memory of a flows map.
type flowTable struct {
	mem     []byte
	buckets int
}

// mapFlows maps the flows map m for reading and, with write, writing.
// The caller calls close.
func mapFlows(m *ebpf.Map, write bool) (*flowTable, error) {
	mem, err := mmapArray(m, "flows", uint32(flowBucketSize), write)
	if err != nil {
		return nil, err
	}
	return &flowTable{mem: mem, buckets: int(m.MaxEntries())}, nil
}

func (t *flowTable) close() error { return unix.Munmap(t.mem) }

// bucket returns bucket i. The program writes the memory concurrently:
// plain reads of a way must be confirmed by its check word (way), and the
// tag is only written with atomics.
func (t *flowTable) bucket(i int) *lbLbFlowBucket {
	return (*lbLbFlowBucket)(unsafe.Pointer(&t.mem[i*flowBucketSize]))
}

// way returns the flow in way w of bucket b and its tag, or ok false when
// the way is empty or torn.
func way(b *lbLbFlowBucket, w int) (f Flow, tag uint32, ok bool) {
	tag = atomic.LoadUint32(&b.Tag[w])
	if tag == 0 {
		return Flow{}, 0, false
	}
	e := b.Way[w]
	if atomic.LoadUint32(&b.Check[w]) != flowCheck(tag, e.Val.BackendId, e.Val.VipIndex) {
		return Flow{}, 0, false
	}
	return flowFromKey(e.Key, e.Val), tag, true
}

// each calls fn for every whole way of the table until fn returns false.
func (t *flowTable) each(fn func(b *lbLbFlowBucket, w int, f Flow, tag uint32) bool) {
	for i := 0; i < t.buckets; i++ {
		b := t.bucket(i)
		for w := range FlowWays {
			f, tag, ok := way(b, w)
			if ok && !fn(b, w, f, tag) {
				return
			}
		}
	}
}

// Flows calls fn for every entry of the flow table until fn returns false.
// The program keeps inserting and evicting meanwhile, so the walk is a
// best-effort snapshot.
func (b *Balancer) Flows(fn func(Flow) bool) error {
	t, err := mapFlows(b.maps.Flows, false)
	if err != nil {
		return fmt.Errorf("read flows: %w", err)
	}
	t.each(func(_ *lbLbFlowBucket, _ int, f Flow, _ uint32) bool { return fn(f) })
	if err := t.close(); err != nil {
		return fmt.Errorf("read flows: %w", err)
	}
	return nil
}

// DeleteFlows removes every flow for which fn returns true and returns how
// many it removed. A flow is removed by clearing its tag, and only if the
// tag is still the one read: a way the program gave to another flow
// meanwhile keeps it.
func (b *Balancer) DeleteFlows(fn func(Flow) bool) (int, error) {
	t, err := mapFlows(b.maps.Flows, true)
	if err != nil {
		return 0, fmt.Errorf("delete flows: %w", err)
	}
	n := 0
	t.each(func(bk *lbLbFlowBucket, w int, f Flow, tag uint32) bool {
		if fn(f) && atomic.CompareAndSwapUint32(&bk.Tag[w], tag, 0) {
			n++
		}
		return true
	})
	if err := t.close(); err != nil {
		return n, fmt.Errorf("delete flows: %w", err)
	}
	return n, nil
}
