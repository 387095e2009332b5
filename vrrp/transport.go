package vrrp

import (
	"context"
	"net/netip"
)

// Packet is a VRRP message with the IPv4 header fields that matter to the
// protocol.
type Packet struct {
	Src, Dst netip.Addr
	// TTL is the IPv4 time to live: the received value, or the value to send
	// (always [TTL]).
	TTL uint8
	// Payload is the VRRP message, without the IP header.
	Payload []byte
}

// Transport sends and receives VRRP packets on one interface. Several
// instances on the interface share one Transport; the Router demultiplexes
// by VRID. [ListenIPv4] is the Linux implementation.
type Transport interface {
	// Send sends p with p.Src as the IPv4 source and p.TTL as the TTL.
	Send(p Packet) error
	// Receive blocks until a packet arrives, ctx is done or the transport
	// is closed. It returns ctx.Err() when ctx ends it.
	Receive(ctx context.Context) (Packet, error)
}
