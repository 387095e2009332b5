package vrrp

import "errors"

// Reason says why a received advertisement was dropped. Its String is a
// stable, lower-case name for counters and metric labels; its Error is a
// short description, so a Reason is also the error that parsing and
// validation wrap: errors.Is(err, vrrp.ReasonChecksum). Values are never
// renumbered.
//
// The checks follow RFC 3768 and RFC 5798 section 7.1 in order: TTL,
// version, complete message, checksum, VRID, address owner, v2
// authentication, address list, v2 interval; plus the structural checks
// (type, zero address count) of sections 5.2 and 5.3, and keepalived's
// unicast checks (multicast or unicast destination, unicast peer source).
type Reason uint8

// Drop reasons.
const (
	ReasonTruncated    Reason = iota + 1 // shorter than its header, address count and v2 auth data need
	ReasonVersion                        // version is not 2 or 3, or not the instance's version
	ReasonType                           // type is not 1 (advertisement)
	ReasonCount                          // longer than its address count says
	ReasonZeroCount                      // address count is 0 (the minimum is 1)
	ReasonChecksum                       // checksum does not match
	ReasonTTL                            // IPv4 TTL is not 255
	ReasonUnknownVRID                    // no instance for the VRID on the receiving interface
	ReasonOwner                          // the local router owns the addresses (priority 255)
	ReasonAuthType                       // v2 authentication type differs from the configured one
	ReasonAuthPassword                   // v2 simple password differs
	ReasonInterval                       // v2 advertisement interval differs, or v3 interval is 0
	ReasonAddressList                    // address list differs from the configured one (sender is not the owner)
	ReasonDestination                    // multicast advert for a unicast instance, or unicast for a multicast one
	ReasonPeer                           // unicast source is not a configured peer
	reasonEnd
)

var _ error = ReasonChecksum

// Reasons returns every drop reason, for pre-registering counters.
func Reasons() []Reason {
	rs := make([]Reason, 0, reasonEnd-1)
	for r := ReasonTruncated; r < reasonEnd; r++ {
		rs = append(rs, r)
	}
	return rs
}

// String returns the reason's stable counter name.
func (r Reason) String() string {
	switch r {
	case ReasonTruncated:
		return "truncated"
	case ReasonVersion:
		return "version"
	case ReasonType:
		return "type"
	case ReasonCount:
		return "count_mismatch"
	case ReasonZeroCount:
		return "zero_count"
	case ReasonChecksum:
		return "checksum"
	case ReasonTTL:
		return "ttl"
	case ReasonUnknownVRID:
		return "unknown_vrid"
	case ReasonOwner:
		return "local_owner"
	case ReasonAuthType:
		return "auth_type"
	case ReasonAuthPassword:
		return "auth_password"
	case ReasonInterval:
		return "interval"
	case ReasonAddressList:
		return "address_list"
	case ReasonDestination:
		return "destination"
	case ReasonPeer:
		return "unknown_peer"
	}
	return "unknown"
}

// Error describes the reason.
func (r Reason) Error() string {
	switch r {
	case ReasonTruncated:
		return "truncated advertisement"
	case ReasonVersion:
		return "wrong vrrp version"
	case ReasonType:
		return "not an advertisement"
	case ReasonCount:
		return "length does not match address count"
	case ReasonZeroCount:
		return "address count is zero"
	case ReasonChecksum:
		return "bad checksum"
	case ReasonTTL:
		return "ttl is not 255"
	case ReasonUnknownVRID:
		return "unknown virtual router id"
	case ReasonOwner:
		return "advertisement for a virtual router this host owns"
	case ReasonAuthType:
		return "authentication type mismatch"
	case ReasonAuthPassword:
		return "authentication password mismatch"
	case ReasonInterval:
		return "advertisement interval mismatch"
	case ReasonAddressList:
		return "virtual address list mismatch"
	case ReasonDestination:
		return "multicast and unicast mixed up"
	case ReasonPeer:
		return "source is not a unicast peer"
	}
	return "invalid advertisement"
}

// MarshalText encodes the reason as its name, so maps keyed by Reason
// encode to JSON objects keyed by name.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// ReasonOf returns the Reason err wraps.
func ReasonOf(err error) (Reason, bool) {
	var r Reason
	if errors.As(err, &r) {
		return r, true
	}
	return 0, false
}
