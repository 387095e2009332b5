package vrrp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Wire vectors, written out by hand from RFC 3768 5.1 / RFC 5798 5.1 and
// the way keepalived fills each field. Checksums were computed separately
// (RFC 1071 arithmetic) and are not derived from the code under test.
var (
	addrA = netip.MustParseAddr("198.18.0.1")
	addrB = netip.MustParseAddr("198.18.0.2")
	vip1  = netip.MustParseAddr("198.18.1.100")
	vip2  = netip.MustParseAddr("198.18.1.101")
)

// keepalived: vrrp_version 2, virtual_router_id 51, priority 150,
// advert_int 1, authentication { auth_type PASS auth_pass s3cr3t },
// virtual_ipaddress { 198.18.1.100 198.18.1.101 }.
var advV2Pass = mustHex(
	"21" + // version 2, type 1 (advertisement)
		"33" + // VRID 51
		"96" + // priority 150
		"02" + // count IP addrs 2
		"01" + // auth type 1 (keepalived's PASS)
		"01" + // advert interval 1 second
		"aec0" + // checksum over the 24-byte VRRP message
		"c6120164" + // 198.18.1.100
		"c6120165" + // 198.18.1.101
		"7333637233740000") // "s3cr3t" zero padded to 8 bytes

// keepalived, VRRPv2 without authentication, stopping: priority 0, one VIP.
var advV2Stop = mustHex(
	"21" + "33" + // v2 advertisement, VRID 51
		"00" + // priority 0: the master is leaving
		"01" + // one address
		"00" + // auth type 0
		"01" + // 1 second
		"1754" + // checksum
		"c6120164" + // 198.18.1.100
		"0000000000000000") // authentication data, still present in v2

// keepalived: vrrp_version 3, VRID 51, priority 150, advert_int 0.1, sent
// from 198.18.0.1 to 224.0.0.18.
var advV3Multicast = mustHex(
	"31" + // version 3, type 1
		"33" + "96" + "02" + // VRID 51, priority 150, 2 addresses
		"000a" + // 4 reserved bits 0, max advert interval 10 centiseconds
		"032b" + // checksum including the pseudo-header 198.18.0.1 > 224.0.0.18, proto 112, len 16
		"c6120164" + "c6120165")

// The same advert sent by keepalived to unicast_peer 198.18.0.2: only the
// pseudo-header destination, and so the checksum, differ.
var advV3Unicast = mustHex("31339602" + "000a" + "1d29" + "c6120164" + "c6120165")

// An address owner (priority 255) advertising once a second in VRRPv3.
var advV3Owner = mustHex(
	"31" + "07" + "ff" + "01" + // v3, VRID 7, priority 255, one address
		"0064" + // 100 centiseconds
		"5edc" + // checksum, pseudo-header 198.18.2.1 > 224.0.0.18
		"c6120201") // 198.18.2.1

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestMarshalWireBytes(t *testing.T) {
	owner := netip.MustParseAddr("198.18.2.1")
	pw, err := Password("s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		adv      Advertisement
		src, dst netip.Addr
		want     []byte
	}{
		{
			name: "v2 pass",
			adv:  Advertisement{Version: V2, VRID: 51, Priority: 150, Interval: 1, AuthType: AuthPass, AuthData: pw, Addresses: []netip.Addr{vip1, vip2}},
			src:  addrA, dst: Group(),
			want: advV2Pass,
		},
		{
			name: "v2 priority 0",
			adv:  Advertisement{Version: V2, VRID: 51, Priority: 0, Interval: 1, Addresses: []netip.Addr{vip1}},
			src:  addrA, dst: Group(),
			want: advV2Stop,
		},
		{
			name: "v3 multicast",
			adv:  Advertisement{Version: V3, VRID: 51, Priority: 150, Interval: 10, Addresses: []netip.Addr{vip1, vip2}},
			src:  addrA, dst: Group(),
			want: advV3Multicast,
		},
		{
			name: "v3 unicast",
			adv:  Advertisement{Version: V3, VRID: 51, Priority: 150, Interval: 10, Addresses: []netip.Addr{vip1, vip2}},
			src:  addrA, dst: addrB,
			want: advV3Unicast,
		},
		{
			name: "v3 owner",
			adv:  Advertisement{Version: V3, VRID: 7, Priority: 255, Interval: 100, Addresses: []netip.Addr{owner}},
			src:  owner, dst: Group(),
			want: advV3Owner,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.adv.Marshal(tt.src, tt.dst)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(tt.want, got) {
				t.Fatalf("Marshal bytes:\nwant %x\ngot  %x", tt.want, got)
			}
			if want, got := len(tt.want), tt.adv.Len(); want != got {
				t.Errorf("Len: want %d, got %d", want, got)
			}
			parsed, err := Parse(got, tt.src, tt.dst)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := tt.adv
			want.Checksum = binary.BigEndian.Uint16(tt.want[6:8])
			if !reflect.DeepEqual(want, parsed) {
				t.Fatalf("Parse:\nwant %+v\ngot  %+v", want, parsed)
			}
		})
	}
}

func TestIntervalDuration(t *testing.T) {
	tests := []struct {
		b    []byte
		want time.Duration
	}{
		{advV2Pass, time.Second},
		{advV3Multicast, 100 * time.Millisecond},
		{advV3Owner, time.Second},
	}
	for _, tt := range tests {
		var a Advertisement
		if err := a.Unmarshal(tt.b); err != nil {
			t.Fatal(err)
		}
		if got := a.IntervalDuration(); tt.want != got {
			t.Errorf("%x: want %v, got %v", tt.b, tt.want, got)
		}
	}
}

// with returns a copy of b with the bytes at off replaced.
func with(b []byte, off int, repl ...byte) []byte {
	c := bytes.Clone(b)
	copy(c[off:], repl)
	return c
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		want     Reason
	}{
		{"empty", nil, addrA, Group(), ReasonTruncated},
		{"version 1", with(advV3Multicast, 0, 0x11), addrA, Group(), ReasonVersion},
		{"version 4", with(advV3Multicast, 0, 0x41), addrA, Group(), ReasonVersion},
		{"version 0 short", []byte{0x01}, addrA, Group(), ReasonVersion},
		{"type 0", with(advV3Multicast, 0, 0x30), addrA, Group(), ReasonType},
		{"type 2", with(advV2Pass, 0, 0x22), addrA, Group(), ReasonType},
		{"header cut", advV3Multicast[:7], addrA, Group(), ReasonTruncated},
		{"v3 one address missing", advV3Multicast[:12], addrA, Group(), ReasonTruncated},
		{"v2 auth data missing", advV2Pass[:16], addrA, Group(), ReasonTruncated},
		{"v2 auth data cut", advV2Pass[:23], addrA, Group(), ReasonTruncated},
		{"count says more", with(advV3Multicast, 3, 3), addrA, Group(), ReasonTruncated},
		{"count says fewer", with(advV3Multicast, 3, 1), addrA, Group(), ReasonCount},
		{"trailing bytes", append(bytes.Clone(advV3Multicast), 0, 0, 0, 0), addrA, Group(), ReasonCount},
		{"zero count", with(advV3Multicast, 3, 0), addrA, Group(), ReasonZeroCount},
		{"v2 zero count", mustHex("2133960001010000" + "0000000000000000"), addrA, Group(), ReasonZeroCount},
		{"v2 checksum", with(advV2Pass, 6, 0xae, 0xc1), addrA, Group(), ReasonChecksum},
		{"v2 changed priority", with(advV2Pass, 2, 0x97), addrA, Group(), ReasonChecksum},
		{"v2 changed password", with(advV2Pass, 16, 'S'), addrA, Group(), ReasonChecksum},
		{"v3 checksum", with(advV3Multicast, 7, 0x2c), addrA, Group(), ReasonChecksum},
		{"v3 other source", advV3Multicast, addrB, Group(), ReasonChecksum},
		{"v3 unicast checksum to multicast", advV3Unicast, addrA, Group(), ReasonChecksum},
		{"v3 no addresses for pseudo-header", advV3Multicast, netip.Addr{}, Group(), ReasonChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.b, tt.src, tt.dst)
			if err == nil {
				t.Fatalf("Parse(%x): want %v, got no error", tt.b, tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%x): want %v, got %v", tt.b, tt.want, err)
			}
			got, ok := ReasonOf(err)
			if !ok || tt.want != got {
				t.Fatalf("ReasonOf(%v): want %v, got %v %v", err, tt.want, got, ok)
			}
		})
	}
}

// The v2 checksum does not depend on the IP addresses at all.
func TestV2ChecksumIgnoresAddresses(t *testing.T) {
	if _, err := Parse(advV2Pass, addrB, addrA); err != nil {
		t.Fatal(err)
	}
}

// A sum of 0xffff must be sent as checksum 0x0000; the equivalent 0xffff
// is refused so that every accepted message re-encodes to the same bytes.
func TestChecksumNegativeZero(t *testing.T) {
	a := Advertisement{Version: V3, VRID: 1, Interval: 100, Addresses: []netip.Addr{vip1}}
	var b []byte
	for p := 0; p < 256 && b == nil; p++ {
		for vrid := 1; vrid < 256; vrid++ {
			a.Priority, a.VRID = uint8(p), uint8(vrid)
			m, err := a.Marshal(addrA, Group())
			if err != nil {
				t.Fatal(err)
			}
			if m[6] == 0 && m[7] == 0 {
				b = m
				break
			}
		}
	}
	if b == nil {
		t.Fatal("no priority/VRID gives checksum 0; the search space is too small")
	}
	if _, err := Parse(b, addrA, Group()); err != nil {
		t.Fatalf("Parse(%x): %v", b, err)
	}
	if _, err := Parse(with(b, 6, 0xff, 0xff), addrA, Group()); !errors.Is(err, ReasonChecksum) {
		t.Fatalf("Parse with 0xffff checksum: want %v, got %v", ReasonChecksum, err)
	}
}

func TestV3ReservedBitsKept(t *testing.T) {
	b := with(advV3Multicast, 4, 0xf0) // reserved bits set, interval unchanged
	binary.BigEndian.PutUint16(b[6:], 0)
	binary.BigEndian.PutUint16(b[6:], Checksum(b, addrA, Group()))
	a, err := Parse(b, addrA, Group())
	if err != nil {
		t.Fatal(err)
	}
	if want, got := uint8(0xf), a.Reserved; want != got {
		t.Fatalf("Reserved: want %#x, got %#x", want, got)
	}
	if want, got := uint16(10), a.Interval; want != got {
		t.Fatalf("Interval: want %d, got %d", want, got)
	}
	m, err := a.Marshal(addrA, Group())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, m) {
		t.Fatalf("re-encoded: want %x, got %x", b, m)
	}
}

func TestMarshalRejects(t *testing.T) {
	many := make([]netip.Addr, 256)
	for i := range many {
		many[i] = vip1
	}
	tests := []struct {
		name string
		adv  Advertisement
		src  netip.Addr
		want string
	}{
		{"no version", Advertisement{Addresses: []netip.Addr{vip1}}, addrA, "version"},
		{"no addresses", Advertisement{Version: V3, Interval: 1}, addrA, "zero"},
		{"too many addresses", Advertisement{Version: V3, Interval: 1, Addresses: many}, addrA, "at most 255"},
		{"ipv6 address", Advertisement{Version: V3, Interval: 1, Addresses: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}, addrA, "not IPv4"},
		{"v2 interval", Advertisement{Version: V2, Interval: 256, Addresses: []netip.Addr{vip1}}, addrA, "8 bits"},
		{"v3 interval", Advertisement{Version: V3, Interval: 4096, Addresses: []netip.Addr{vip1}}, addrA, "12 bits"},
		{"v3 reserved", Advertisement{Version: V3, Interval: 1, Reserved: 16, Addresses: []netip.Addr{vip1}}, addrA, "4 bits"},
		{"v3 no source", Advertisement{Version: V3, Interval: 1, Addresses: []netip.Addr{vip1}}, netip.Addr{}, "source and destination"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.adv.Marshal(tt.src, Group())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Marshal: want error containing %q, got %v", tt.want, err)
			}
		})
	}
}

func TestIntervalField(t *testing.T) {
	tests := []struct {
		v       Version
		d       time.Duration
		want    uint16
		wantErr bool
	}{
		{V2, time.Second, 1, false},
		{V2, 255 * time.Second, 255, false},
		{V2, 1500 * time.Millisecond, 0, true},
		{V2, 0, 0, true},
		{V2, 256 * time.Second, 0, true},
		{V3, 10 * time.Millisecond, 1, false},
		{V3, 100 * time.Millisecond, 10, false},
		{V3, time.Second, 100, false},
		{V3, 40950 * time.Millisecond, 4095, false},
		{V3, 41 * time.Second, 0, true},
		{V3, 15 * time.Millisecond, 0, true},
		{V3, 0, 0, true},
		{Version(4), time.Second, 0, true},
	}
	for _, tt := range tests {
		got, err := IntervalField(tt.v, tt.d)
		if (err != nil) != tt.wantErr || tt.want != got {
			t.Errorf("IntervalField(%d, %v): want %d (error %v), got %d, %v", tt.v, tt.d, tt.want, tt.wantErr, got, err)
		}
	}
}

func TestPassword(t *testing.T) {
	got, err := Password("s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	if want := [8]byte{'s', '3', 'c', 'r', '3', 't', 0, 0}; want != got {
		t.Fatalf("want %q, got %q", want, got)
	}
	if _, err := Password("123456789"); err == nil {
		t.Fatal("9-byte password: want error, got none")
	}
	if _, err := Password(""); err == nil {
		t.Fatal("empty password: want error, got none")
	}
}

func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons() {
		name := r.String()
		if name == "unknown" || seen[name] {
			t.Errorf("reason %d: name %q unknown or repeated", r, name)
		}
		seen[name] = true
		if r.Error() == "invalid advertisement" {
			t.Errorf("reason %s has no description", name)
		}
	}
	if want, got := int(reasonEnd-1), len(seen); want != got {
		t.Errorf("want %d reasons, got %d", want, got)
	}
}

// FuzzParseMarshal feeds arbitrary bytes to the decoder. It must never
// panic, and every message it accepts must re-encode to the same bytes.
func FuzzParseMarshal(f *testing.F) {
	for _, seed := range [][]byte{advV2Pass, advV2Stop, advV3Multicast, advV3Unicast, advV3Owner, {}, {0x31}} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, unicast bool) {
		dst := Group()
		if unicast {
			dst = addrB
		}
		var a Advertisement
		uerr := a.Unmarshal(b)
		if uerr != nil {
			if _, ok := ReasonOf(uerr); !ok {
				t.Fatalf("Unmarshal(%x): error %v wraps no Reason", b, uerr)
			}
		}
		p, err := Parse(b, addrA, dst)
		if err != nil {
			if _, ok := ReasonOf(err); !ok {
				t.Fatalf("Parse(%x): error %v wraps no Reason", b, err)
			}
			return
		}
		if uerr != nil {
			t.Fatalf("Parse accepted %x that Unmarshal refused: %v", b, uerr)
		}
		m, err := p.Marshal(addrA, dst)
		if err != nil {
			t.Fatalf("Marshal of parsed %x: %v", b, err)
		}
		if !bytes.Equal(b, m) {
			t.Fatalf("round trip:\nin  %x\nout %x", b, m)
		}
	})
}
