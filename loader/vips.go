package loader

import (
	"errors"
	"fmt"
	"sort"

	"github.com/cilium/ebpf"
)

func validateVIP(v VIP, c VIPConfig) error {
	if err := requireIPv4("VIP address", v.Addr); err != nil {
		return err
	}
	if v.Proto != TCP && v.Proto != UDP {
		return fmt.Errorf("VIP protocol %s: want tcp or udp", v.Proto)
	}
	if c.Forwarding != ForwardDR && c.Forwarding != ForwardTUN {
		return fmt.Errorf("VIP forwarding %s: want dr or tun", c.Forwarding)
	}
	if c.PersistPrefix > 32 {
		return fmt.Errorf("persistence prefix /%d: IPv4 prefixes are 0..32", c.PersistPrefix)
	}
	return nil
}

// AddVIP adds v with the lowest free index and returns its entry. It
// fails with ErrVIPExists if v is configured already and ErrTableFull if
// every index is taken. The VIP forwards nothing until it has backends and
// a ring (SetBackend, SetRing): until then its packets are dropped with
// reason drop_no_backend.
func (b *Balancer) AddVIP(v VIP, c VIPConfig) (VIPEntry, error) {
	if err := validateVIP(v, c); err != nil {
		return VIPEntry{}, fmt.Errorf("add VIP %s: %w", v, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	used := make(map[uint32]bool)
	exists := false
	bucket := vipBucket(v.Addr)
	inBucket := uint32(0)
	err := dumpMap(b.maps.Vips, func(k lbLbVipKey, m lbLbVipMeta) bool {
		used[m.Index] = true
		exists = exists || vipFromKey(k) == v
		if keyBucket(k) == bucket {
			inBucket++
		}
		return true
	})
	if err != nil {
		return VIPEntry{}, fmt.Errorf("add VIP %s: read vips: %w", v, err)
	}
	if exists {
		return VIPEntry{}, fmt.Errorf("add VIP %s: %w", v, ErrVIPExists)
	}
	index := uint32(0)
	for used[index] {
		index++
	}
	if index >= b.opts.MaxVIPs {
		return VIPEntry{}, fmt.Errorf("add VIP %s: all %d VIP indexes in use (raise MaxVIPs): %w", v, b.opts.MaxVIPs, ErrTableFull)
	}
	// A process that died half-way through DeleteVIP may have left state
	// for this index behind; the new VIP starts clean.
	if err := b.clearIndex(index); err != nil {
		return VIPEntry{}, fmt.Errorf("add VIP %s: %w", v, err)
	}
	// The derived maps go first (filter.go): from the moment the key is
	// in vips, the filter lets its packets through and established flows
	// find its info.
	if err := b.setVIPInfo(index, vipInfo(v, c, index)); err != nil {
		return VIPEntry{}, fmt.Errorf("add VIP %s: %w", v, err)
	}
	if err := b.setFilter(bucket, inBucket+1); err != nil {
		return VIPEntry{}, fmt.Errorf("add VIP %s: %w", v, b.undoAdd(index, bucket, err))
	}
	if err := b.maps.Vips.Update(vipKey(v), vipMeta(c, index), ebpf.UpdateNoExist); err != nil {
		if errors.Is(err, ebpf.ErrKeyExist) {
			err = ErrVIPExists
		}
		return VIPEntry{}, fmt.Errorf("add VIP %s: %w", v, b.undoAdd(index, bucket, err))
	}
	if err := b.refreshFilter(bucket); err != nil {
		// The bucket counts the VIP already: it forwards.
		return VIPEntry{}, fmt.Errorf("add VIP %s: %w", v, err)
	}
	return VIPEntry{VIP: v, Config: c, Index: index}, nil
}

// undoAdd clears what AddVIP wrote for index and bucket before its key
// insert failed with err, and returns err with any failure to undo. The
// info stays if a VIP has the index meanwhile (another handle's).
func (b *Balancer) undoAdd(index, bucket uint32, err error) error {
	errs := []error{err}
	if inUse, ierr := b.vipIndexInUse(index); ierr != nil {
		errs = append(errs, ierr)
	} else if !inUse {
		errs = append(errs, b.setVIPInfo(index, lbLbVipInfo{}))
	}
	return errors.Join(append(errs, b.refreshFilter(bucket))...)
}

// UpdateVIP changes the configuration of an existing VIP, keeping its
// index, ring and backends. ErrVIPNotFound if v is not configured.
func (b *Balancer) UpdateVIP(v VIP, c VIPConfig) error {
	if err := validateVIP(v, c); err != nil {
		return fmt.Errorf("update VIP %s: %w", v, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.LookupVIP(v)
	if err != nil {
		return fmt.Errorf("update VIP: %w", err)
	}
	if err := b.maps.Vips.Update(vipKey(v), vipMeta(c, e.Index), ebpf.UpdateExist); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("update VIP %s: %w", v, ErrVIPNotFound)
		}
		return fmt.Errorf("update VIP %s: %w", v, err)
	}
	// Established flows read the forwarding method from vip_info.
	if err := b.setVIPInfo(e.Index, vipInfo(v, c, e.Index)); err != nil {
		return fmt.Errorf("update VIP %s: %w", v, err)
	}
	return nil
}

// DeleteVIP removes v, then its ring, its backends (freed to StateUnused),
// the flows pinned to those backends and its counters. ErrVIPNotFound if v
// is not configured.
func (b *Balancer) DeleteVIP(v VIP) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.LookupVIP(v)
	if err != nil {
		return fmt.Errorf("delete VIP: %w", err)
	}
	// Its info goes first, so established flows take the VIP lookup,
	// then the key, so no packet matches while the rest is cleaned up.
	// The filter bucket is lowered only after the key is gone.
	if err := b.setVIPInfo(e.Index, lbLbVipInfo{}); err != nil {
		return fmt.Errorf("delete VIP %s: %w", v, err)
	}
	if err := b.maps.Vips.Delete(vipKey(v)); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete VIP %s: %w", v, ErrVIPNotFound)
		}
		return fmt.Errorf("delete VIP %s: %w", v, errors.Join(err, b.setVIPInfo(e.Index, vipInfo(v, e.Config, e.Index))))
	}
	if err := b.refreshFilter(vipBucket(v.Addr)); err != nil {
		return fmt.Errorf("delete VIP %s: %w", v, err)
	}
	if err := b.clearIndex(e.Index); err != nil {
		return fmt.Errorf("delete VIP %s: %w", v, err)
	}
	return nil
}

// clearIndex removes everything tied to a VIP index: its ring, its
// backends and the flows pinned to them, and its counters.
func (b *Balancer) clearIndex(index uint32) error {
	if err := b.maps.Rings.Delete(index); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("clear ring %d: %w", index, err)
	}
	freed := make(map[uint32]bool)
	err := dumpMap(b.maps.Backends, func(id uint32, be lbLbBackend) bool {
		if be.State != uint8(StateUnused) && be.VipIndex == index {
			freed[id] = true
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("read backends: %w", err)
	}
	for id := range freed {
		if err := b.deleteBackend(id); err != nil {
			return err
		}
	}
	if len(freed) > 0 {
		if _, err := b.DeleteFlows(func(f Flow) bool { return freed[f.BackendID] }); err != nil {
			return err
		}
	}
	if err := zeroPerCPU[lbLbCounter](b.maps.VipStats, index); err != nil {
		return fmt.Errorf("clear counters of VIP index %d: %w", index, err)
	}
	return nil
}

// LookupVIP returns the entry of v, or an error wrapping ErrVIPNotFound.
func (b *Balancer) LookupVIP(v VIP) (VIPEntry, error) {
	var m lbLbVipMeta
	if err := b.maps.Vips.Lookup(vipKey(v), &m); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return VIPEntry{}, fmt.Errorf("VIP %s: %w (xdplb vip list shows the configured VIPs)", v, ErrVIPNotFound)
		}
		return VIPEntry{}, fmt.Errorf("lookup VIP %s: %w", v, err)
	}
	return VIPEntry{VIP: v, Config: vipConfigFromMeta(m), Index: m.Index}, nil
}

// VIPs returns every configured VIP, sorted by address, port and protocol.
func (b *Balancer) VIPs() ([]VIPEntry, error) {
	var out []VIPEntry
	err := dumpMap(b.maps.Vips, func(k lbLbVipKey, m lbLbVipMeta) bool {
		out = append(out, VIPEntry{VIP: vipFromKey(k), Config: vipConfigFromMeta(m), Index: m.Index})
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("list VIPs: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		a, c := out[i].VIP, out[j].VIP
		if cmp := a.Addr.Compare(c.Addr); cmp != 0 {
			return cmp < 0
		}
		if a.Port != c.Port {
			return a.Port < c.Port
		}
		return a.Proto < c.Proto
	})
	return out, nil
}

// vipIndexInUse reports whether a configured VIP has the index, with two
// lookups rather than a walk of vips (it runs for every backend and ring
// written): vip_info names the VIP at each index in use, written before
// its vips key goes in and cleared before it goes out, and the vips map
// confirms that key still has the index.
func (b *Balancer) vipIndexInUse(index uint32) (bool, error) {
	if index >= b.opts.MaxVIPs {
		return false, nil
	}
	var info lbLbVipInfo
	if err := b.maps.VipInfo.Lookup(index, &info); err != nil {
		return false, err
	}
	if info.Key.Proto == 0 {
		return false, nil
	}
	var m lbLbVipMeta
	switch err := b.maps.Vips.Lookup(info.Key, &m); {
	case errors.Is(err, ebpf.ErrKeyNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	return m.Index == index, nil
}
