// Package packet builds and decodes the Ethernet frames that xdplb's tests
// and benchmarks feed to the XDP programs: Ethernet with any number of
// 802.1Q/802.1ad tags, IPv4 with options and fragment fields, TCP, UDP,
// ICMP, and IPv4-in-IPv4.
//
// Every field is encoded explicitly in network byte order and every
// checksum is computed (RFC 1071, with the TCP and UDP pseudo-header), so a
// test states what goes on the wire and never depends on the host's byte
// order. Fields that are normally derived (IPv4 version, header length and
// total length, TCP data offset) can be overridden to build malformed
// packets on purpose. Decode takes a frame apart again, and Diff prints two
// frames side by side in hex for test failures.
//
// The package is for tests: it favours plain values and clear failure
// messages over speed.
package packet
