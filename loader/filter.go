package loader

import (
	"errors"
	"fmt"
	"net/netip"
)

// The maps derived from vips: vip_filter and vip_info (bpf/lb_maps.h). The
// program reads them to skip hash lookups, so what it reads must never make
// it miss a configured VIP:
//
//   - A vip_filter bucket may count more VIPs than vips holds (the packet
//     then takes the VIP lookup, which finds none), never fewer (the packet
//     would pass to the kernel). AddVIP raises the bucket before it inserts
//     the key, DeleteVIP lowers it after it removes the key; both then
//     recompute the bucket from vips, which is idempotent and repairs a
//     bucket left wrong by a process that died in between.
//   - vip_info[i] describes the VIP with index i, or is zero. The program
//     checks it against every packet, so a stale entry costs a lookup, not
//     a wrong answer; AddVIP writes it before inserting the key, DeleteVIP
//     clears it before removing the key, UpdateVIP rewrites it after the
//     key.
//
// Attach, when it adopts pins, recomputes both from vips exactly. Open only
// raises filter buckets that count too few: it may run while another
// process (the daemon) changes VIPs, and a count that is too high is
// harmless where one that is too low is not.

// vipFilterBits mirrors LB_VIP_FILTER_BITS (bpf/lb_types.h).
const vipFilterBits = 12

// vipFilterSize is the number of vip_filter buckets.
const vipFilterSize = 1 << vipFilterBits

// vipBucket is hash_vip_bucket4 (bpf/hash.h): the vip_filter bucket of an
// IPv4 destination, the top vipFilterBits bits of Knuth's multiplicative
// hash of its big-endian number.
func vipBucket(a netip.Addr) uint32 {
	return (ipv4Word(a) * 0x9e3779b1) >> (32 - vipFilterBits)
}

// keyBucket is the vip_filter bucket of the VIP whose vips key is k.
func keyBucket(k lbLbVipKey) uint32 {
	return vipBucket(addrFrom16(k.Addr))
}

// filterCount counts the VIPs of the vips map in vip_filter bucket.
func (b *Balancer) filterCount(bucket uint32) (uint32, error) {
	n := uint32(0)
	err := dumpMap(b.maps.Vips, func(k lbLbVipKey, _ lbLbVipMeta) bool {
		if keyBucket(k) == bucket {
			n++
		}
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("read vips: %w", err)
	}
	return n, nil
}

// setFilter writes n into bucket.
func (b *Balancer) setFilter(bucket, n uint32) error {
	if err := b.maps.VipFilter.Put(bucket, n); err != nil {
		return fmt.Errorf("write VIP filter bucket %d: %w", bucket, err)
	}
	return nil
}

// refreshFilter recomputes bucket from the vips map and writes it.
func (b *Balancer) refreshFilter(bucket uint32) error {
	n, err := b.filterCount(bucket)
	if err != nil {
		return fmt.Errorf("recompute VIP filter bucket %d: %w", bucket, err)
	}
	return b.setFilter(bucket, n)
}

// setVIPInfo writes vip_info[index].
func (b *Balancer) setVIPInfo(index uint32, info lbLbVipInfo) error {
	if err := b.maps.VipInfo.Put(index, info); err != nil {
		return fmt.Errorf("write VIP info %d: %w", index, err)
	}
	return nil
}

// repairDerived makes vip_filter and vip_info agree with the vips map.
// With exact, every bucket and entry that differs is rewritten: only the
// maps' single writer may do that. Without it, only buckets that count
// too few VIPs are raised, which is safe against a concurrent writer.
func (b *Balancer) repairDerived(exact bool) error {
	// One read of vips gives both what each filter bucket counts and what
	// each vip_info entry holds.
	counts := make(map[uint32]uint32)
	want := make(map[uint32]lbLbVipInfo)
	err := dumpMap(b.maps.Vips, func(k lbLbVipKey, m lbLbVipMeta) bool {
		counts[keyBucket(k)]++
		want[m.Index] = lbLbVipInfo{Key: k, Meta: m}
		return true
	})
	if err != nil {
		return fmt.Errorf("repair VIP filter: read vips: %w", err)
	}
	var werr error
	err = dumpMap(b.maps.VipFilter, func(bucket, n uint32) bool {
		want := counts[bucket]
		delete(counts, bucket)
		if n == want || (!exact && n > want) {
			return true
		}
		werr = b.setFilter(bucket, want)
		return werr == nil
	})
	if err = errors.Join(err, werr); err != nil {
		return fmt.Errorf("repair VIP filter: %w", err)
	}
	if len(counts) > 0 {
		// Every bucket of an array is dumped; a count left over means
		// the map is not the filter this program was built with.
		return fmt.Errorf("repair VIP filter: %d addresses hash outside its %d buckets", len(counts), b.maps.VipFilter.MaxEntries())
	}
	if !exact {
		return nil
	}

	err = dumpMap(b.maps.VipInfo, func(index uint32, got lbLbVipInfo) bool {
		if w := want[index]; w != got {
			werr = b.setVIPInfo(index, w)
		}
		return werr == nil
	})
	if err = errors.Join(err, werr); err != nil {
		return fmt.Errorf("repair VIP info: %w", err)
	}
	return nil
}
