package lab

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/config"
)

func TestDefaultTopologyConfigs(t *testing.T) {
	for _, vrrp := range []bool{true, false} {
		topo := DefaultTopology()
		topo.VRRP.Enabled = vrrp
		if err := topo.Validate(); err != nil {
			t.Fatalf("default topology (vrrp %v): %v", vrrp, err)
		}
		for _, d := range topo.ActiveDirectors() {
			p := DirectorPaths{Config: "/run/lab/" + d.Name + ".yaml", Socket: "/run/lab/x.sock", StateDir: "/run/lab/state", PinRoot: "/sys/fs/bpf/lab/" + d.Name}
			b, err := topo.DirectorConfig(d, p)
			if err != nil {
				t.Fatalf("config of %s (vrrp %v): %v", d.Name, vrrp, err)
			}
			c, err := config.Parse(p.Config, b)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := c.Director.SourceAddress, d.Addr; got != want {
				t.Errorf("%s: source_address %v, want %v", d.Name, got, want)
			}
			if c.Director.PinRoot != p.PinRoot || c.Director.APISocket != p.Socket || c.Director.StateDir != p.StateDir {
				t.Errorf("%s: paths %q %q %q, want %+v", d.Name, c.Director.PinRoot, c.Director.APISocket, c.Director.StateDir, p)
			}
			if len(c.Services) != len(topo.Services) {
				t.Fatalf("%s: %d services, want %d", d.Name, len(c.Services), len(topo.Services))
			}
			for i, s := range c.Services {
				want := topo.Services[i]
				if s.Name != want.Name || s.VIP != want.VIP || s.Port != want.Port || s.Forwarding != want.Forwarding {
					t.Errorf("service %d = %s %v:%d %s, want %+v", i, s.Name, s.VIP, s.Port, s.Forwarding, want)
				}
				if len(s.Backends) != len(topo.Backends) {
					t.Errorf("service %s: %d backends, want %d", s.Name, len(s.Backends), len(topo.Backends))
				}
				for j, b := range s.Backends {
					if b.Address != topo.Backends[j].Addr || b.Weight != topo.Backends[j].Weight {
						t.Errorf("service %s backend %d = %v weight %d, want %+v", s.Name, j, b.Address, b.Weight, topo.Backends[j])
					}
				}
				hc := s.HealthCheck
				if hc.Type != config.CheckHTTP || hc.Path != HealthPath || hc.Interval != topo.Check.Interval ||
					hc.Timeout != topo.Check.Timeout || hc.Rise != topo.Check.Rise || hc.Fall != topo.Check.Fall {
					t.Errorf("service %s: health check %+v, want http %s %+v", s.Name, hc, HealthPath, topo.Check)
				}
			}
			if !vrrp {
				if len(c.VRRP.Instances) != 0 {
					t.Errorf("%s: VRRP instances without VRRP: %+v", d.Name, c.VRRP.Instances)
				}
				continue
			}
			if len(c.VRRP.Instances) != 1 {
				t.Fatalf("%s: %d VRRP instances, want 1", d.Name, len(c.VRRP.Instances))
			}
			in := c.VRRP.Instances[0]
			if in.Priority != d.Priority || in.Version != 3 || in.AdvertInterval != topo.VRRP.AdvertInterval || in.VirtualRouterID != topo.VRRP.RouterID {
				t.Errorf("%s: instance %+v, want priority %d, v3, %s, vrid %d", d.Name, in, d.Priority, topo.VRRP.AdvertInterval, topo.VRRP.RouterID)
			}
			var vips []netip.Addr
			for _, p := range in.VirtualAddresses {
				vips = append(vips, p.Addr())
			}
			if got, want := vips, topo.VIPs(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
				t.Errorf("%s: virtual addresses %v, want %v", d.Name, got, want)
			}
		}
	}
	topo := DefaultTopology()
	topo.VRRP.Enabled = true
	if n := len(topo.ActiveDirectors()); n != 2 {
		t.Errorf("with VRRP the lab runs %d directors, want 2", n)
	}
	topo.VRRP.Enabled = false
	if n := len(topo.ActiveDirectors()); n != 1 {
		t.Errorf("without VRRP the lab runs %d directors, want 1", n)
	}
}

func TestTopologyValidate(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name   string
		change func(*Topology)
		want   string // substring of the error; empty: valid
	}{
		{"default", func(*Topology) {}, ""},
		{"outside the lab range", func(t *Topology) { t.Subnet = netip.MustParsePrefix("10.0.0.0/24") }, "not inside 198.18.0.0/15"},
		{"VIP outside its network", func(t *Topology) { t.Services[0].VIP = a("198.18.2.1") }, "VIP 198.18.2.1 is not in 198.18.1.0/24"},
		{"host outside the subnet", func(t *Topology) { t.Backends[0].Addr = a("198.18.1.21") }, "address 198.18.1.21 is not in 198.18.0.0/24"},
		{"address twice", func(t *Topology) { t.Backends[1].Addr = t.Backends[0].Addr }, "is also be1's"},
		{"address of the client", func(t *Topology) { t.Backends[0].Addr = t.Client }, "is also client's"},
		{"address of a client alias", func(t *Topology) { t.Backends[0].Addr = t.ClientAliases[0] }, "is also client's"},
		{"alias outside the subnet", func(t *Topology) { t.ClientAliases[0] = netip.MustParseAddr("198.18.1.3") }, "client address 198.18.1.3 is not in"},
		{"alias twice", func(t *Topology) { t.ClientAliases[1] = t.ClientAliases[0] }, "given twice"},
		{"name twice", func(t *Topology) { t.Backends[1].Name = "dir1" }, `"dir1" is used twice`},
		{"reserved name", func(t *Topology) { t.Backends[0].Name = "sw" }, `"sw" is used twice`},
		{"long name", func(t *Topology) { t.Backends[0].Name = "backend-number-1" }, "want 1 to 15 characters"},
		{"overlap", func(t *Topology) { t.VIPNet = t.Subnet }, "overlaps"},
		{"no backend", func(t *Topology) { t.Backends = nil }, "at least one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := DefaultTopology()
			tt.change(&topo)
			err := topo.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestBounds(t *testing.T) {
	c := CheckSpec{Interval: 500 * time.Millisecond, Rise: 2, Fall: 3}
	if got, want := c.OutBound(), 2*time.Second; got != want {
		t.Errorf("OutBound = %v, want %v", got, want)
	}
	if got, want := c.InBound(), 1500*time.Millisecond; got != want {
		t.Errorf("InBound = %v, want %v", got, want)
	}
	// RFC 5798 section 6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
	v := VRRPSpec{AdvertInterval: 100 * time.Millisecond}
	tests := []struct {
		prio uint8
		want time.Duration
	}{
		{100, 300*time.Millisecond + 60937500*time.Nanosecond},
		{254, 300*time.Millisecond + 781250*time.Nanosecond},
		{1, 300*time.Millisecond + 99609375*time.Nanosecond},
	}
	for _, tt := range tests {
		if got := v.MasterDownInterval(tt.prio); got != tt.want {
			t.Errorf("MasterDownInterval(%d) = %v, want %v", tt.prio, got, tt.want)
		}
	}
}
