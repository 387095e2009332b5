package loader

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// This file is the one place where domain values become map layouts and
// back. Ports and addresses are network byte order in the maps; cilium/ebpf
// encodes struct fields in host order, so a port field holds the host-order
// number whose bytes in memory are the port in big-endian.

// htons returns the uint16 whose host-order bytes are p in network order.
func htons(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

// ntohs is the inverse of htons.
func ntohs(p uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], p)
	return binary.BigEndian.Uint16(b[:])
}

// addrTo16 stores a in the 16-byte layout: IPv4 as ::ffff:a.b.c.d, an
// invalid (unset) address as all zeros.
func addrTo16(a netip.Addr) [16]byte {
	if !a.IsValid() {
		return [16]byte{}
	}
	return a.As16()
}

// addrFrom16 decodes the 16-byte layout; all zeros is the unset address.
func addrFrom16(b [16]byte) netip.Addr {
	if b == ([16]byte{}) {
		return netip.Addr{}
	}
	return netip.AddrFrom16(b).Unmap()
}

// macTo6 stores a MAC; nil is all zeros.
func macTo6(m net.HardwareAddr) ([6]byte, error) {
	var b [6]byte
	if m == nil {
		return b, nil
	}
	if len(m) != 6 {
		return b, fmt.Errorf("MAC %s is not a 6-byte Ethernet address", m)
	}
	copy(b[:], m)
	return b, nil
}

// macFrom6 decodes a MAC.
func macFrom6(b [6]byte) net.HardwareAddr {
	return net.HardwareAddr(append([]byte(nil), b[:]...))
}

// requireIPv4 rejects what the IPv4-only program cannot use.
func requireIPv4(what string, a netip.Addr) error {
	if !a.Is4() {
		if !a.IsValid() {
			return fmt.Errorf("%s: address missing", what)
		}
		return fmt.Errorf("%s %s: only IPv4 is forwarded so far", what, a)
	}
	return nil
}

func vipKey(v VIP) lbLbVipKey {
	return lbLbVipKey{Addr: addrTo16(v.Addr), Port: htons(v.Port), Proto: uint8(v.Proto)}
}

func vipFromKey(k lbLbVipKey) VIP {
	return VIP{Addr: addrFrom16(k.Addr), Port: ntohs(k.Port), Proto: Proto(k.Proto)}
}

// Flags of lb_vip_meta, from lb_types.h (#defines are not in BTF).
const (
	vipFlagTUN      = 1 << 0
	vipFlagPersist  = 1 << 1
	vipFlagFailover = 1 << 2
)

func vipMeta(c VIPConfig, index uint32) lbLbVipMeta {
	m := lbLbVipMeta{Index: index, PersistPrefix: c.PersistPrefix}
	if c.Forwarding == ForwardTUN {
		m.Flags |= vipFlagTUN
	}
	if c.Persist {
		m.Flags |= vipFlagPersist
	}
	if c.Failover {
		m.Flags |= vipFlagFailover
	}
	return m
}

func vipConfigFromMeta(m lbLbVipMeta) VIPConfig {
	c := VIPConfig{
		Forwarding:    ForwardDR,
		Persist:       m.Flags&vipFlagPersist != 0,
		PersistPrefix: m.PersistPrefix,
		Failover:      m.Flags&vipFlagFailover != 0,
	}
	if m.Flags&vipFlagTUN != 0 {
		c.Forwarding = ForwardTUN
	}
	return c
}

// vipInfo is the vip_info value of VIP v with config c at index.
func vipInfo(v VIP, c VIPConfig, index uint32) lbLbVipInfo {
	return lbLbVipInfo{Key: vipKey(v), Meta: vipMeta(c, index)}
}

func backendValue(b Backend) (lbLbBackend, error) {
	mac, err := macTo6(b.MAC)
	if err != nil {
		return lbLbBackend{}, err
	}
	return lbLbBackend{
		Addr:     addrTo16(b.Addr),
		Mac:      mac,
		State:    uint8(b.State),
		VipIndex: b.VIPIndex,
		Weight:   b.Weight,
	}, nil
}

func backendFromValue(id uint32, v lbLbBackend) Backend {
	return Backend{
		ID:       id,
		VIPIndex: v.VipIndex,
		Addr:     addrFrom16(v.Addr),
		MAC:      macFrom6(v.Mac),
		State:    BackendState(v.State),
		Weight:   v.Weight,
	}
}

func flowKey(f Flow) lbLbFlowKey {
	return lbLbFlowKey{
		Src:   addrTo16(f.Src.Addr()),
		Dst:   addrTo16(f.Dst.Addr()),
		Sport: htons(f.Src.Port()),
		Dport: htons(f.Dst.Port()),
		Proto: uint8(f.Proto),
	}
}

func flowFromKey(k lbLbFlowKey, v lbLbFlow) Flow {
	return Flow{
		Src:       netip.AddrPortFrom(addrFrom16(k.Src), ntohs(k.Sport)),
		Dst:       netip.AddrPortFrom(addrFrom16(k.Dst), ntohs(k.Dport)),
		Proto:     Proto(k.Proto),
		BackendID: v.BackendId,
	}
}

func configValue(c Config) (lbLbConfig, error) {
	mac, err := macTo6(c.IfMAC)
	if err != nil {
		return lbLbConfig{}, err
	}
	return lbLbConfig{TunSrc: addrTo16(c.TunSource), IfMac: mac, Mtu: c.MTU, TunTtl: c.TunTTL}, nil
}

func configFromValue(v lbLbConfig) Config {
	return Config{TunSource: addrFrom16(v.TunSrc), IfMAC: macFrom6(v.IfMac), MTU: v.Mtu, TunTTL: v.TunTtl}
}
