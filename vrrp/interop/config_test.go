package interop

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/netns"
	"github.com/xdplb/xdplb/internal/testenv"
	"github.com/xdplb/xdplb/vrrp"
)

var vip = netip.MustParsePrefix("198.18.0.100/32")

func v2Instance() Instance {
	return Instance{
		Name: "VI_2", Interface: "eth0", VRID: 52, Version: vrrp.V2, Priority: 200,
		Interval: time.Second, Password: "s3cr3t",
		Addresses: []netip.Prefix{vip, netip.MustParsePrefix("198.18.0.101/24")},
		GARP:      vrrp.GARP{Repeat: 2, Delay: -1},
	}
}

func v3Instance() Instance {
	return Instance{
		Name: "VI_1", Interface: "eth0", VRID: 51, Version: vrrp.V3, Priority: 100,
		Interval: 100 * time.Millisecond, Addresses: []netip.Prefix{vip}, NoPreempt: true,
		UnicastSource: netip.MustParseAddr("198.18.0.2"),
		UnicastPeers:  []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.3")},
		GARP:          vrrp.GARP{Delay: 2 * time.Second, Interval: 50 * time.Millisecond, Refresh: 60 * time.Second},
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		fifo string
		want string
	}{
		{
			name: "v2 with a password and one garp burst",
			cfg:  Config{RouterID: "lb1", Instances: []Instance{v2Instance()}},
			fifo: "/run/x/notify.fifo",
			want: `global_defs {
    router_id lb1
    notify_fifo /run/x/notify.fifo
}

vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    version 2
    priority 200
    advert_int 1
    garp_master_repeat 2
    garp_master_delay 0
    authentication {
        auth_type PASS
        auth_pass s3cr3t
    }
    virtual_ipaddress {
        198.18.0.100/32
        198.18.0.101/24
    }
}
`,
		},
		{
			name: "v3 at 100ms, nopreempt, garp timings",
			cfg:  Config{Instances: []Instance{v3Instance()}},
			want: `global_defs {
    vrrp_garp_interval 0.05
}

vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    version 3
    priority 100
    advert_int 0.1
    nopreempt
    garp_master_delay 2
    garp_master_refresh 60
    unicast_src_ip 198.18.0.2
    unicast_peer {
        198.18.0.1
        198.18.0.3
    }
    virtual_ipaddress {
        198.18.0.100/32
    }
}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.Render(tt.fifo)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != string(got) {
				t.Errorf("Render:\nwant:\n%s\ngot:\n%s", tt.want, got)
			}
		})
	}
}

func TestRenderRejects(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*Instance)
		fifo  string
		want  string
	}{
		{name: "v2 interval not whole seconds", tweak: func(in *Instance) { in.Interval = 1500 * time.Millisecond }, want: "whole seconds"},
		{name: "v3 interval not centiseconds", tweak: func(in *Instance) { in.Version, in.Password, in.Interval = vrrp.V3, "", 15*time.Millisecond }, want: "multiple of 10ms"},
		{name: "password on v3", tweak: func(in *Instance) { in.Version, in.Interval = vrrp.V3, 100*time.Millisecond }, want: "needs VRRPv2"},
		{name: "password too long", tweak: func(in *Instance) { in.Password = "123456789" }, want: "1 to 8"},
		{name: "password with a space", tweak: func(in *Instance) { in.Password = "a b" }, want: "spaces"},
		{name: "version 4", tweak: func(in *Instance) { in.Version = 4 }, want: "version 4"},
		{name: "vrid 0", tweak: func(in *Instance) { in.VRID = 0 }, want: "virtual router id"},
		{name: "priority 0", tweak: func(in *Instance) { in.Priority = 0 }, want: "priority"},
		{name: "no addresses", tweak: func(in *Instance) { in.Addresses = nil }, want: "no virtual addresses"},
		{name: "ipv6 address", tweak: func(in *Instance) { in.Addresses = []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")} }, want: "not IPv4"},
		{name: "name with a brace", tweak: func(in *Instance) { in.Name = "VI{" }, want: "name"},
		{name: "interface name too long", tweak: func(in *Instance) { in.Interface = "abcdefghijklmnop" }, want: "interface name"},
		{name: "ipv6 unicast peer", tweak: func(in *Instance) { in.UnicastPeers = []netip.Addr{netip.MustParseAddr("2001:db8::1")} }, want: "unicast peer"},
		{name: "ipv6 unicast source", tweak: func(in *Instance) { in.UnicastSource = netip.MustParseAddr("2001:db8::1") }, want: "unicast source"},
		{name: "garp delay in ms", tweak: func(in *Instance) { in.GARP.Delay = 1500 * time.Millisecond }, want: "whole seconds"},
		{name: "fifo path with a space", tweak: func(*Instance) {}, fifo: "/tmp/a b", want: "notify fifo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := v2Instance()
			tt.tweak(&in)
			_, err := Config{Instances: []Instance{in}}.Render(tt.fifo)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Render: got error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := (Config{}).Render(""); err == nil {
		t.Error("Render of no instances succeeded")
	}
	twice := Config{Instances: []Instance{v2Instance(), v2Instance()}}
	if _, err := twice.Render(""); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("Render of a name used twice: %v", err)
	}
	spaced := v3Instance()
	spaced.Name, spaced.GARP.Interval = "VI_3", 0
	mixed := Config{Instances: []Instance{v3Instance(), spaced}}
	if _, err := mixed.Render(""); err == nil || !strings.Contains(err.Error(), "GARP interval") {
		t.Errorf("Render of instances with different GARP intervals: %v", err)
	}
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		line string
		want Event
		bad  bool
	}{
		{line: `INSTANCE "VI_1" MASTER 200`, want: Event{Kind: "INSTANCE", Name: "VI_1", State: "MASTER", Priority: 200}},
		{line: `INSTANCE "VI_1" BACKUP 100` + "\n", want: Event{Kind: "INSTANCE", Name: "VI_1", State: "BACKUP", Priority: 100}},
		{line: `INSTANCE "VI 1" STOP 0`, want: Event{Kind: "INSTANCE", Name: "VI 1", State: "STOP", Priority: 0}},
		{line: `GROUP "G1" FAULT`, want: Event{Kind: "GROUP", Name: "G1", State: "FAULT", Priority: -1}},
		{line: `INSTANCE "VI_1" MASTER_RX_LOWER_PRI 150`, want: Event{Kind: "INSTANCE", Name: "VI_1", State: "MASTER_RX_LOWER_PRI", Priority: 150}},
		{line: `INSTANCE VI_1 MASTER 200`, bad: true},
		{line: `INSTANCE "VI_1 MASTER 200`, bad: true},
		{line: `INSTANCE "VI_1" MASTER`, bad: true},
		{line: `INSTANCE "VI_1" MASTER 256`, bad: true},
		{line: `GROUP "G1" MASTER 3`, bad: true},
		{line: `VS [198.18.0.1]:80 UP`, bad: true},
		{line: ``, bad: true},
	}
	for _, tt := range tests {
		got, err := ParseEvent(tt.line)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseEvent(%q) = %+v, want an error", tt.line, got)
			}
			continue
		}
		if err != nil || tt.want != got {
			t.Errorf("ParseEvent(%q):\nwant %+v\ngot  %+v, %v", tt.line, tt.want, got, err)
		}
	}
}

// A dump keepalived 2.2.7 wrote for a VRRPv2 master, trimmed of the
// fields Stats does not read.
const dump = `[{"data":{"iname":"VI_1","ifp_ifname":"xkq2va","master_priority":0,"vrid":51,
"base_priority":200,"effective_priority":200,"state":2,"wantstate":2,"version":2,"auth_type":1,"auth_data":"s3cr3t"},
"stats":{"advert_rcvd":4,"advert_sent":2,"become_master":1,"release_master":0,"packet_len_err":0,
"advert_interval_err":0,"ip_ttl_err":0,"invalid_type_rcvd":0,"addr_list_err":0,"invalid_authtype":0,
"authtype_mismatch":0,"auth_failure":3,"pri_zero_rcvd":1,"pri_zero_sent":0}}]`

func TestEventIsState(t *testing.T) {
	for state, want := range map[string]bool{
		"MASTER": true, "BACKUP": true, "FAULT": true, "STOP": true, "DELETED": true,
		"MASTER_RX_LOWER_PRI": false, "": false,
	} {
		if got := (Event{State: state}).IsState(); got != want {
			t.Errorf("IsState(%q) = %v, want %v", state, got, want)
		}
	}
}

func TestParseStats(t *testing.T) {
	got, err := parseStats([]byte(dump))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d instances, want 1", len(got))
	}
	s := got[0]
	if s.Name != "VI_1" || s.State != "MASTER" || s.EffectivePriority != 200 || s.Counters["advert_rcvd"] != 4 || s.Counters["pri_zero_rcvd"] != 1 {
		t.Errorf("stats: %+v", s)
	}
	if want, got := map[string]uint64{"auth_failure": 3}, s.Errors(); len(got) != 1 || got["auth_failure"] != want["auth_failure"] {
		t.Errorf("Errors: want %v, got %v", want, got)
	}
	for _, bad := range []string{``, `{}`, `[{"data":{},"stats":{}}]`, `[{"data":{"iname":"VI_1"}}]`} {
		if _, err := parseStats([]byte(bad)); err == nil {
			t.Errorf("parseStats(%q) succeeded", bad)
		}
	}
}

// keepalived itself accepts what Render writes, without a warning.
func TestRenderAcceptedByKeepalived(t *testing.T) {
	testenv.Privileged(t)
	testenv.Command(t, "keepalived")
	e := netns.New(t)
	n := e.NS("k")
	link, _ := e.Veth(n, "ka", n, "kb")
	for _, in := range []Instance{v2Instance(), v3Instance()} {
		t.Run(in.Name, func(t *testing.T) {
			in.Interface = link
			b, err := Config{RouterID: "t", Instances: []Instance{in}}.Render(filepath.Join(t.TempDir(), "fifo"))
			if err != nil {
				t.Fatal(err)
			}
			conf := filepath.Join(t.TempDir(), "keepalived.conf")
			if err := os.WriteFile(conf, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var out []byte
			err = n.Do(func() error {
				var err error
				out, err = exec.Command("keepalived", "--config-test", "--use-file", conf).CombinedOutput()
				return err
			})
			if err != nil || len(out) != 0 {
				t.Fatalf("keepalived --config-test: %v\n%s\nconfig:\n%s", err, out, b)
			}
		})
	}
}
