// Package vrrp implements VRRP versions 2 and 3 (RFC 3768, RFC 5798) for
// IPv4, speaking the protocol byte for byte as keepalived does.
//
// The package is layered so each part can be tested on its own:
//
//   - packet.go encodes, decodes and checks advertisements. Every reason to
//     drop a received advertisement is a [Reason], which is also an error, so
//     callers count drops by a stable name and match them with errors.Is.
//   - fsm.go is the protocol state machine as a pure step function: a
//     [Machine], an [Event] and the current time give the next Machine and
//     the [Action]s to perform. It reads no clock and does no I/O.
//   - router.go runs any number of instances (virtual router IDs) in one
//     goroutine with a single select over its context, received packets,
//     tracker updates and one timer. Sockets, address changes and gratuitous
//     ARP sit behind the [Transport] and [Announcer] interfaces; the Linux
//     implementations are [ListenIPv4] and [NewAnnouncer].
//
// The package imports nothing else from xdplb, so it can be used on its own.
package vrrp
