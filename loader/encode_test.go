package loader

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// layout returns the bytes cilium/ebpf hands the kernel for v: the struct in
// host order.
func layout(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := binary.Write(&b, binary.NativeEndian, v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestVIPKeyLayout(t *testing.T) {
	v := VIP{netip.MustParseAddr("198.18.1.100"), 0x1f90, TCP}
	want := []byte{
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 1, 100, // IPv4-mapped
		0x1f, 0x90, // port 8080, network order
		6, 0, // proto, pad
	}
	if got := layout(t, vipKey(v)); !bytes.Equal(want, got) {
		t.Errorf("vip key bytes\n got % x\nwant % x", got, want)
	}
	if got := vipFromKey(vipKey(v)); v != got {
		t.Errorf("round trip = %+v, want %+v", got, v)
	}
}

func TestFlowKeyLayout(t *testing.T) {
	f := Flow{
		Src:   netip.MustParseAddrPort("198.18.0.10:40000"),
		Dst:   netip.MustParseAddrPort("198.18.1.100:80"),
		Proto: UDP,
	}
	want := []byte{
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 10,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 1, 100,
		0x9c, 0x40, 0x00, 0x50, // 40000, 80
		17, 0, 0, 0,
	}
	if got := layout(t, flowKey(f)); !bytes.Equal(want, got) {
		t.Errorf("flow key bytes\n got % x\nwant % x", got, want)
	}
	f.BackendID = 7
	if got := flowFromKey(flowKey(f), lbLbFlow{BackendId: 7}); f != got {
		t.Errorf("round trip = %+v, want %+v", got, f)
	}
}

func TestBackendAndConfigLayout(t *testing.T) {
	b := Backend{ID: 3, VIPIndex: 2, Addr: netip.MustParseAddr("198.18.0.21"),
		MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x21}, State: StateDraining, Weight: 5}
	v, err := backendValue(b)
	if err != nil {
		t.Fatal(err)
	}
	got := layout(t, v)
	if want := []byte{198, 18, 0, 21, 2, 0, 0, 0, 0, 0x21, 2, 0}; !bytes.Equal(want, got[12:24]) {
		t.Errorf("backend addr/mac/state bytes % x, want % x", got[12:24], want)
	}
	if r := backendFromValue(3, v); r.String() != b.String() {
		t.Errorf("round trip = %+v, want %+v", r, b)
	}
	if _, err := backendValue(Backend{MAC: net.HardwareAddr{1, 2, 3}}); err == nil {
		t.Error("3-byte MAC accepted")
	}

	c := Config{TunSource: netip.MustParseAddr("198.18.0.1"), IfMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, MTU: 1500, TunTTL: 64}
	cv, err := configValue(c)
	if err != nil {
		t.Fatal(err)
	}
	cb := layout(t, cv)
	mtu := make([]byte, 2)
	binary.NativeEndian.PutUint16(mtu, 1500)
	if !bytes.Equal(mtu, cb[22:24]) || cb[24] != 64 {
		t.Errorf("config mtu/ttl bytes % x, want % x 40", cb[22:25], mtu)
	}
	if r := configFromValue(cv); r.TunSource != c.TunSource || r.IfMAC.String() != c.IfMAC.String() || r.MTU != c.MTU || r.TunTTL != c.TunTTL {
		t.Errorf("config round trip = %+v, want %+v", r, c)
	}
	if r := configFromValue(lbLbConfig{}); r.TunSource.IsValid() {
		t.Errorf("zero config TunSource = %v, want unset", r.TunSource)
	}
}

func TestVIPMetaFlags(t *testing.T) {
	tests := []struct {
		c         VIPConfig
		wantFlags uint32
	}{
		{VIPConfig{Forwarding: ForwardDR}, 0},
		{VIPConfig{Forwarding: ForwardTUN}, 1},
		{VIPConfig{Forwarding: ForwardDR, Persist: true, PersistPrefix: 24}, 2},
		{VIPConfig{Forwarding: ForwardTUN, Persist: true, PersistPrefix: 32}, 3},
		{VIPConfig{Forwarding: ForwardDR, Failover: true}, 4},
		{VIPConfig{Forwarding: ForwardTUN, Failover: true}, 5},
	}
	for _, tt := range tests {
		m := vipMeta(tt.c, 9)
		if tt.wantFlags != m.Flags || m.Index != 9 || m.PersistPrefix != tt.c.PersistPrefix {
			t.Errorf("vipMeta(%+v) = %+v, want flags %d", tt.c, m, tt.wantFlags)
		}
		if got := vipConfigFromMeta(m); tt.c != got {
			t.Errorf("round trip = %+v, want %+v", got, tt.c)
		}
	}
}
