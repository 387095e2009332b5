package loader

import (
	"errors"
	"fmt"
	"math/big"
)

// Options are the load-time settings of the balancer: map sizes and the
// constants compiled into the program. They cannot change while the
// program is attached; Open recovers them from the pins.
type Options struct {
	MaxVIPs     uint32 // entries of vips, rings and vip_stats
	MaxBackends uint32 // entries of backends and backend_stats (id 0 unused)
	MaxFlows    uint32 // flows the flow table holds, rounded up to a multiple of FlowWays
	RingSize    uint32 // Maglev table size per VIP; must be prime
	HashSeed    uint32 // seed of the flow hash; directors of a pair must agree
}

// Defaults and bounds of Options. The upper bounds keep a typo from
// locking gigabytes of kernel memory.
const (
	DefaultMaxVIPs     = 256
	DefaultMaxBackends = 4096
	DefaultMaxFlows    = 65536
	DefaultRingSize    = 65537
	DefaultHashSeed    = 0x5eed1b0b

	MaxMaxVIPs     = 1 << 16
	MaxMaxBackends = 1 << 20
	MaxMaxFlows    = 1 << 24
	MaxRingSize    = 1 << 24
)

// DefaultOptions returns the default sizes: 256 VIPs, 4096 backends,
// 65536 flows and a 65537-entry ring, with the default hash seed.
func DefaultOptions() Options {
	return Options{
		MaxVIPs:     DefaultMaxVIPs,
		MaxBackends: DefaultMaxBackends,
		MaxFlows:    DefaultMaxFlows,
		RingSize:    DefaultRingSize,
		HashSeed:    DefaultHashSeed,
	}
}

// FlowWays is the number of flows a bucket of the flow table holds
// (LB_FLOW_WAYS in bpf/lb_types.h).
const FlowWays = 4

// The build fails here when FlowWays is not LB_FLOW_WAYS, the length of the
// generated bucket's arrays: the index is then negative or out of range.
var _ = [1]struct{}{}[len(lbLbFlowBucket{}.Tag)-FlowWays]

// flowEntries returns the flows the table created for MaxFlows holds:
// MaxFlows rounded up to whole buckets of FlowWays.
func (o Options) flowEntries() uint32 {
	return o.flowBuckets() * FlowWays
}

// flowBuckets returns the buckets of the flows map.
func (o Options) flowBuckets() uint32 {
	return uint32((uint64(o.MaxFlows) + FlowWays - 1) / FlowWays)
}

// effective returns o as the loader applies it: equal when the maps they
// create are the same.
func (o Options) effective() Options {
	o.MaxFlows = o.flowEntries()
	return o
}

// Validate reports every size that is zero, above its bound, or (for
// RingSize) not prime. The error wraps ErrInvalidOptions.
func (o Options) Validate() error {
	var errs []error
	check := func(name string, v, limit uint32) {
		if v == 0 || v > limit {
			errs = append(errs, fmt.Errorf("%s %d out of range 1..%d", name, v, limit))
		}
	}
	check("max VIPs", o.MaxVIPs, MaxMaxVIPs)
	check("max flows", o.MaxFlows, MaxMaxFlows)
	if o.MaxBackends < 2 || o.MaxBackends > MaxMaxBackends {
		// Backend id 0 is reserved, so one backend needs two slots.
		errs = append(errs, fmt.Errorf("max backends %d out of range 2..%d", o.MaxBackends, MaxMaxBackends))
	}
	if o.RingSize < 2 || o.RingSize > MaxRingSize {
		errs = append(errs, fmt.Errorf("ring size %d out of range 2..%d", o.RingSize, MaxRingSize))
	} else if !big.NewInt(int64(o.RingSize)).ProbablyPrime(0) {
		// ProbablyPrime is exact below 2^64.
		errs = append(errs, fmt.Errorf("ring size %d is not prime (Maglev needs a prime, such as 65537)", o.RingSize))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
}
