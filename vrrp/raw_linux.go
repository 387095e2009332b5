//go:build linux

package vrrp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// IPv4Transport is a [Transport] over a raw IPv4 socket for protocol 112
// bound to one interface. It builds the IP header itself, as keepalived
// does: TOS 0xc0, TTL 255, no fragmentation flags, the kernel filling in
// the ID and header checksum. It joins 224.0.0.18 on the interface with
// multicast loopback off, so a router never hears its own adverts, and
// reads the TTL of received packets from their IP header.
type IPv4Transport struct {
	ifi *net.Interface
	raw *ipv4.RawConn
	buf []byte
}

var _ Transport = (*IPv4Transport)(nil)

// ListenIPv4 opens the raw VRRP socket for the interface ifname. The socket
// belongs to the network namespace of the calling thread. It needs
// CAP_NET_RAW.
func ListenIPv4(ifname string) (*IPv4Transport, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("listen vrrp on %s: %w", ifname, err)
	}
	pc, err := net.ListenPacket(fmt.Sprintf("ip4:%d", Protocol), "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("listen vrrp on %s: %w", ifname, err)
	}
	c := pc.(*net.IPConn)
	t, err := setupIPv4(c, ifi)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("listen vrrp on %s: %w", ifname, err)
	}
	return t, nil
}

func setupIPv4(c *net.IPConn, ifi *net.Interface) (*IPv4Transport, error) {
	sc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	if err := sc.Control(func(fd uintptr) {
		serr = unix.BindToDevice(int(fd), ifi.Name)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, fmt.Errorf("bind to device: %w", serr)
	}
	raw, err := ipv4.NewRawConn(c)
	if err != nil {
		return nil, err
	}
	if err := raw.SetMulticastInterface(ifi); err != nil {
		return nil, fmt.Errorf("set multicast interface: %w", err)
	}
	if err := raw.SetMulticastTTL(TTL); err != nil {
		return nil, fmt.Errorf("set multicast ttl: %w", err)
	}
	if err := raw.SetMulticastLoopback(false); err != nil {
		return nil, fmt.Errorf("set multicast loopback: %w", err)
	}
	if err := raw.JoinGroup(ifi, &net.IPAddr{IP: Group().AsSlice()}); err != nil {
		return nil, fmt.Errorf("join %v: %w", Group(), err)
	}
	// The interface index tells packets queued before SO_BINDTODEVICE took
	// effect from ours.
	if err := raw.SetControlMessage(ipv4.FlagInterface, true); err != nil {
		return nil, fmt.Errorf("set control message: %w", err)
	}
	return &IPv4Transport{ifi: ifi, raw: raw, buf: make([]byte, 1<<16)}, nil
}

// Interface returns the interface the transport is bound to.
func (t *IPv4Transport) Interface() *net.Interface { return t.ifi }

// Send implements [Transport].
func (t *IPv4Transport) Send(p Packet) error {
	if !p.Src.Is4() || !p.Dst.Is4() {
		return fmt.Errorf("send vrrp on %s: addresses %v > %v are not IPv4", t.ifi.Name, p.Src, p.Dst)
	}
	h := &ipv4.Header{
		Version:  ipv4.Version,
		Len:      ipv4.HeaderLen,
		TOS:      TOS,
		TotalLen: ipv4.HeaderLen + len(p.Payload),
		TTL:      int(p.TTL),
		Protocol: Protocol,
		Src:      p.Src.AsSlice(),
		Dst:      p.Dst.AsSlice(),
	}
	if err := t.raw.WriteTo(h, p.Payload, nil); err != nil {
		return fmt.Errorf("send vrrp on %s to %v: %w", t.ifi.Name, p.Dst, err)
	}
	return nil
}

// Receive implements [Transport]. It must not be called concurrently.
func (t *IPv4Transport) Receive(ctx context.Context) (Packet, error) {
	if err := ctx.Err(); err != nil {
		return Packet{}, err
	}
	if err := t.raw.SetReadDeadline(time.Time{}); err != nil {
		return Packet{}, fmt.Errorf("receive vrrp on %s: %w", t.ifi.Name, err)
	}
	stop := context.AfterFunc(ctx, func() {
		// A deadline in the past wakes the blocked read.
		t.raw.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	for {
		h, p, cm, err := t.raw.ReadFrom(t.buf)
		if err != nil {
			if ctx.Err() != nil {
				return Packet{}, ctx.Err()
			}
			return Packet{}, fmt.Errorf("receive vrrp on %s: %w", t.ifi.Name, err)
		}
		if cm != nil && cm.IfIndex != 0 && cm.IfIndex != t.ifi.Index {
			continue
		}
		if h.Protocol != Protocol {
			continue
		}
		if n := h.TotalLen - h.Len; n >= 0 && n < len(p) {
			p = p[:n]
		}
		src, _ := netip.AddrFromSlice(h.Src.To4())
		dst, _ := netip.AddrFromSlice(h.Dst.To4())
		return Packet{Src: src, Dst: dst, TTL: uint8(h.TTL), Payload: bytes.Clone(p)}, nil
	}
}

// Close closes the socket, which ends a blocked Receive.
func (t *IPv4Transport) Close() error { return t.raw.Close() }

// PrimaryIPv4 returns the first IPv4 address of the interface ifname, the
// address keepalived sends from unless told otherwise (unicast_src_ip).
func PrimaryIPv4(ifname string) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("primary address of %s: %w", ifname, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("primary address of %s: %w", ifname, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok && n.IP.To4() != nil {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("primary address of %s: no IPv4 address", ifname)
}
