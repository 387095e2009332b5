package loader

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/testenv"
)

func TestLoadDecap(t *testing.T) {
	testenv.Privileged(t)
	d, err := LoadDecap()
	if err != nil {
		t.Fatalf("LoadDecap: %+v", err)
	}
	defer d.Close()
	if d.Program() == nil || d.Program().Type() != ebpf.XDP {
		t.Fatalf("Program() = %v, want an XDP program", d.Program())
	}
	a, b := netip.MustParseAddr("198.18.0.22"), netip.MustParseAddr("198.18.0.21")
	for _, x := range []netip.Addr{a, b, a} {
		if err := d.AddAddr(x); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := d.Addrs(); err != nil || !slices.Equal([]netip.Addr{b, a}, got) {
		t.Errorf("Addrs() = %v, %v; want [%s %s]", got, err, b, a)
	}
	// The key is the IPv4-mapped address, as the program looks it up.
	var v uint8
	if err := d.maps.DecapAddrs.Lookup([16]byte{10: 0xff, 11: 0xff, 12: 198, 13: 18, 14: 0, 15: 22}, &v); err != nil || v != 1 {
		t.Errorf("decap_addrs[::ffff:198.18.0.22] = %d, %v; want 1", v, err)
	}
	if err := d.DeleteAddr(a); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Addrs(); !slices.Equal([]netip.Addr{b}, got) {
		t.Errorf("Addrs() after delete = %v, want [%s]", got, b)
	}
	s, err := d.Stats()
	if err != nil || len(s) != NumReasons {
		t.Errorf("Stats() = %v, %v; want all %d reasons", s, err, NumReasons)
	}
}
