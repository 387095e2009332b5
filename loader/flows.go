package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// Flows calls fn for every entry of the flow table until fn returns false.
// The program keeps inserting and evicting meanwhile, so the walk is a
// best-effort snapshot.
func (b *Balancer) Flows(fn func(Flow) bool) error {
	err := dumpMap(b.maps.Flows, func(k lbLbFlowKey, v lbLbFlow) bool {
		return fn(flowFromKey(k, v))
	})
	if err != nil {
		return fmt.Errorf("read flows: %w", err)
	}
	return nil
}

// DeleteFlows removes every flow for which fn returns true and returns how
// many it removed.
func (b *Balancer) DeleteFlows(fn func(Flow) bool) (int, error) {
	var keys []lbLbFlowKey
	err := dumpMap(b.maps.Flows, func(k lbLbFlowKey, v lbLbFlow) bool {
		if fn(flowFromKey(k, v)) {
			keys = append(keys, k)
		}
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("delete flows: %w", err)
	}
	n := 0
	for _, k := range keys {
		switch err := b.maps.Flows.Delete(k); {
		case err == nil:
			n++
		case errors.Is(err, ebpf.ErrKeyNotExist):
			// evicted by the LRU since the walk
		default:
			return n, fmt.Errorf("delete flows: %w", err)
		}
	}
	return n, nil
}
