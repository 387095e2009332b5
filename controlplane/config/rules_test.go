package config

import (
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// service writes one service entry in flow style (one line), so that the
// files below read as a list of services.
func service(name, vip string, port int, proto string, backends ...string) string {
	var bs []string
	for _, b := range backends {
		bs = append(bs, "{address: "+b+"}")
	}
	return "  - {name: " + name + ", vip: " + vip + ", port: " + strconv.Itoa(port) + ", protocol: " + proto +
		", forwarding: dr, backends: [" + strings.Join(bs, ", ") + "], health_check: {type: none}}\n"
}

const head = "director:\n  interface: eth0\nservices:\n"

func TestServiceUniqueness(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string // nil: accepted
	}{
		{"same VIP, other port", head +
			service("web", "198.18.1.100", 80, "tcp", "198.18.0.21") +
			service("tls", "198.18.1.100", 443, "tcp", "198.18.0.21"), nil},
		{"same VIP and port, other protocol", head +
			service("dns-tcp", "198.18.1.53", 53, "tcp", "198.18.0.21") +
			service("dns-udp", "198.18.1.53", 53, "udp", "198.18.0.21"), nil},
		{"port 0 beside a specific port", head +
			service("all", "198.18.1.100", 0, "tcp", "198.18.0.21") +
			service("web", "198.18.1.100", 80, "tcp", "198.18.0.22"), nil},
		{"one backend in two services", head +
			service("a", "198.18.1.100", 80, "tcp", "198.18.0.21") +
			service("b", "198.18.1.101", 80, "tcp", "198.18.0.21"), nil},
		{"same VIP, port and protocol", head +
			service("web", "198.18.1.100", 80, "tcp", "198.18.0.21") +
			service("web2", "198.18.1.100", 80, "tcp", "198.18.0.22"), []string{
			"xdplb.yaml:5:23: services[1].vip: 198.18.1.100 port 80/tcp is already served by services[0] (web, line 4); each VIP, port and protocol belongs to one service"}},
		{"same VIP and port, protocol defaulted", head +
			service("web", "198.18.1.100", 80, "tcp", "198.18.0.21") +
			"  - {name: web2, vip: 198.18.1.100, port: 80, forwarding: dr, backends: [{address: 198.18.0.22}], health_check: {type: none}}\n", []string{
			"xdplb.yaml:5:23: services[1].vip: 198.18.1.100 port 80/tcp is already served by services[0] (web, line 4); each VIP, port and protocol belongs to one service"}},
		{"same name", head +
			service("web", "198.18.1.100", 80, "tcp", "198.18.0.21") +
			service("web", "198.18.1.101", 80, "tcp", "198.18.0.21"), []string{
			`xdplb.yaml:5:12: services[1].name: "web" is already the name of services[0] (line 4); service names must be unique`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == nil {
				parse(t, tc.yaml)
				return
			}
			if got := problems(t, tc.yaml); !reflect.DeepEqual(tc.want, got) {
				t.Errorf("problems:\nwant %s\n got %s", strings.Join(tc.want, "\n     "), strings.Join(got, "\n     "))
			}
		})
	}
}

func TestVRRPUniqueness(t *testing.T) {
	inst := func(name, ifname string, vrid int, addrs string) string {
		return "    - {name: " + name + ", interface: " + ifname + ", virtual_router_id: " + strconv.Itoa(vrid) + ", virtual_addresses: [" + addrs + "]}\n"
	}
	const vhead = "director:\n  interface: eth0\nvrrp:\n  instances:\n"
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"same VRID on other interfaces", vhead +
			inst("VI_1", "eth0", 51, "198.18.1.100") +
			inst("VI_2", "eth1", 51, "198.18.1.101"), nil},
		{"same VRID on one interface", vhead +
			inst("VI_1", "eth0", 51, "198.18.1.100") +
			inst("VI_2", "eth0", 51, "198.18.1.101"), []string{
			"xdplb.yaml:6:56: vrrp.instances[1].virtual_router_id: 51 is already used on eth0 by VI_1 (line 5); instances on one interface need different virtual router ids"}},
		{"same name", vhead +
			inst("VI_1", "eth0", 51, "198.18.1.100") +
			inst("VI_1", "eth0", 52, "198.18.1.101"), []string{
			`xdplb.yaml:6:14: vrrp.instances[1].name: "VI_1" is already the name of vrrp.instances[0] (line 5); instance names must be unique`}},
		{"address in two instances", vhead +
			inst("VI_1", "eth0", 51, "198.18.1.100/32") +
			inst("VI_2", "eth0", 52, "198.18.1.100/24"), []string{
			"xdplb.yaml:6:80: vrrp.instances[1].virtual_addresses[0]: 198.18.1.100 is already a virtual address at vrrp.instances[0].virtual_addresses[0] (line 5); each address belongs to one instance"}},
		{"address twice in one instance", vhead +
			inst("VI_1", "eth0", 51, "198.18.1.100, 198.18.1.100/32"), []string{
			"xdplb.yaml:5:94: vrrp.instances[0].virtual_addresses[1]: 198.18.1.100 is already a virtual address at vrrp.instances[0].virtual_addresses[0] (line 5); each address belongs to one instance"}},
		{"sync groups", vhead +
			inst("VI_1", "eth0", 51, "198.18.1.100") +
			inst("VI_2", "eth0", 52, "198.18.1.101") +
			"  sync_groups:\n" +
			"    - {name: G1, instances: [VI_1, VI_2]}\n" +
			"    - {name: G2, instances: [VI_2, VI_3]}\n" +
			"    - {name: G1, instances: []}\n", []string{
			`xdplb.yaml:9:30: vrrp.sync_groups[1].instances[0]: "VI_2" is already in a sync group at vrrp.sync_groups[0].instances[1] (line 8); an instance belongs to at most one group`,
			`xdplb.yaml:9:36: vrrp.sync_groups[1].instances[1]: there is no vrrp instance named "VI_3"`,
			`xdplb.yaml:10:14: vrrp.sync_groups[2].name: "G1" is already the name of vrrp.sync_groups[0]; sync group names must be unique`,
			"xdplb.yaml:10:29: vrrp.sync_groups[2].instances: the list is empty; expected a list of instance names"}},
		{"track script names", vhead +
			"    - name: VI_1\n      interface: eth0\n      virtual_router_id: 51\n      virtual_addresses: [198.18.1.100]\n" +
			"      track_scripts:\n        - {name: chk, command: [/bin/true]}\n        - {name: chk, command: [/bin/false]}\n", []string{
			`xdplb.yaml:11:18: vrrp.instances[0].track_scripts[1].name: "chk" is already the name of track_scripts[0]; script names must be unique within an instance`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == nil {
				parse(t, tc.yaml)
				return
			}
			if got := problems(t, tc.yaml); !reflect.DeepEqual(tc.want, got) {
				t.Errorf("problems:\nwant %s\n got %s", strings.Join(tc.want, "\n     "), strings.Join(got, "\n     "))
			}
		})
	}
}

// Every default, each checked against the value an operator reads in the
// package documentation.
func TestDefaults(t *testing.T) {
	c := parse(t, `director:
  interface: eth0
services:
  - name: http
    vip: 198.18.1.100
    port: 80
    forwarding: dr
    backends:
      - address: 198.18.0.21
      - address: 198.18.0.22
        weight: 0
    health_check:
      type: http
  - name: sticky
    vip: 198.18.1.100
    port: 443
    forwarding: dr
    scheduler: source-hash
    backends: [{address: 198.18.0.21}]
    health_check: {type: tcp, interval: 10s}
  - name: all-ports
    vip: 198.18.1.101
    port: 0
    protocol: udp
    forwarding: dr
    backends: [{address: 198.18.0.21}]
    health_check: {type: exec, command: [/bin/check, "{{.Address}}"]}
  - name: unchecked
    vip: 198.18.1.102
    port: 53
    forwarding: dr
    backends: [{address: 198.18.0.21}]
    health_check: {type: none}
vrrp:
  instances:
    - name: VI_1
      interface: eth0
      virtual_router_id: 51
      virtual_addresses: [198.18.1.100]
      track_scripts:
        - name: chk
          command: [/bin/true]
`)
	want := Config{
		Director: Director{
			Interface: "eth0", APISocket: "/run/xdplb/xdplb.sock", StateDir: "/var/lib/xdplb",
			PinRoot: "/sys/fs/bpf/xdplb", XDPMode: XDPAuto, LogFormat: LogText, LogLevel: LogInfo,
			MaxVIPs: 256, MaxBackends: 4096, MaxFlows: 65536, RingSize: 65537, HashSeed: 0x5eed1b0b,
		},
		Services: []Service{
			{
				Name: "http", VIP: addr("198.18.1.100"), Port: 80, Protocol: TCP, Forwarding: ForwardDR,
				Scheduler: SchedulerMaglev,
				Backends:  []Backend{{addr("198.18.0.21"), 1}, {addr("198.18.0.22"), 0}},
				HealthCheck: HealthCheck{Type: CheckHTTP, Port: 80, Path: "/", ExpectStatus: 200,
					Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3, OnFailure: OnFailureRemove},
			},
			{
				Name: "sticky", VIP: addr("198.18.1.100"), Port: 443, Protocol: TCP, Forwarding: ForwardDR,
				Scheduler: SchedulerSourceHash, PersistenceGranularity: 32,
				Backends: []Backend{{addr("198.18.0.21"), 1}},
				HealthCheck: HealthCheck{Type: CheckTCP, Port: 443,
					Interval: 10 * time.Second, Timeout: 5 * time.Second, Rise: 2, Fall: 3, OnFailure: OnFailureRemove},
			},
			{
				Name: "all-ports", VIP: addr("198.18.1.101"), Port: 0, Protocol: UDP, Forwarding: ForwardDR,
				Scheduler: SchedulerMaglev,
				Backends:  []Backend{{addr("198.18.0.21"), 1}},
				HealthCheck: HealthCheck{Type: CheckExec, Command: []string{"/bin/check", "{{.Address}}"},
					Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3, OnFailure: OnFailureRemove},
			},
			{
				Name: "unchecked", VIP: addr("198.18.1.102"), Port: 53, Protocol: TCP, Forwarding: ForwardDR,
				Scheduler:   SchedulerMaglev,
				Backends:    []Backend{{addr("198.18.0.21"), 1}},
				HealthCheck: HealthCheck{Type: CheckNone},
			},
		},
		VRRP: VRRP{Instances: []Instance{{
			Name: "VI_1", Interface: "eth0", VirtualRouterID: 51, Priority: 100, Version: 2,
			AdvertInterval: time.Second, Preempt: true,
			VirtualAddresses: []netip.Prefix{prefix("198.18.1.100/32")},
			TrackScripts: []TrackScript{{Name: "chk", Command: []string{"/bin/true"},
				Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1}},
			GARPMasterRepeat: 5, GARPMasterDelay: 5 * time.Second,
		}}},
	}
	if got := bare(c); !reflect.DeepEqual(want, got) {
		t.Errorf("effective config:\nwant %+v\n got %+v", want, got)
	}
}

// Defaults are the documented constants, and the map sizes are the data
// plane's (loader.DefaultOptions in LOADER_API).
func TestDefaultConstants(t *testing.T) {
	if DefaultMaxVIPs != 256 || DefaultMaxBackends != 4096 || DefaultMaxFlows != 65536 || DefaultRingSize != 65537 {
		t.Errorf("map sizes %d/%d/%d/%d, want the data plane's 256/4096/65536/65537",
			DefaultMaxVIPs, DefaultMaxBackends, DefaultMaxFlows, DefaultRingSize)
	}
	if !isPrime(DefaultRingSize) {
		t.Errorf("DefaultRingSize %d is not prime", DefaultRingSize)
	}
	if DefaultHashSeed != 0x5eed1b0b {
		t.Errorf("DefaultHashSeed %#x, want the data plane's 0x5eed1b0b", DefaultHashSeed)
	}
}

// A file that gets many things wrong hears about all of them at once, in
// file order.
func TestAllProblemsReported(t *testing.T) {
	got := problems(t, `director:
  interface: eth0
  xdp_mode: turbo
services:
  - name: web
    vip: 198.18.1.300
    port: 80
    forwarding: dr
    backends:
      - address: 198.18.0.21
        port: 8080
    health_check:
      type: http
      timout: 1s
vrrp:
  instances:
    - name: VI_1
      interface: eth0
      virtual_router_id: 256
      virtual_addresses: [198.18.1.100]
`)
	want := []string{
		`xdplb.yaml:3:13: director.xdp_mode: "turbo" is not allowed; use auto, native or generic`,
		`xdplb.yaml:6:10: services[0].vip: "198.18.1.300" is not an IPv4 address; expected dotted decimal such as 198.18.1.100`,
		"xdplb.yaml:11:9: services[0].backends[0].port: a backend has no port of its own: DR and TUN deliver the packet unchanged, so the backend receives it on the service's port; remove it (to check another port, set health_check.port)",
		"xdplb.yaml:14:7: services[0].health_check.timout: unknown field; did you mean timeout?",
		"xdplb.yaml:19:26: vrrp.instances[0].virtual_router_id: 256 is out of range; expected a whole number from 1 to 255",
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("problems:\nwant %s\n got %s", strings.Join(want, "\n     "), strings.Join(got, "\n     "))
	}
}

func TestSuggestions(t *testing.T) {
	fields := []string{"interval", "timeout", "health_check", "backends", "expect_status", "tls_skip_verify"}
	for _, tc := range []struct{ in, want string }{
		{"healthcheck", "health_check"},
		{"healthCheck", "health_check"},
		{"health-check", "health_check"},
		{"intervall", "interval"},
		{"timout", "timeout"},
		{"backend", "backends"},
		{"expect_stauts", "expect_status"},
		{"tls_skip_verfy", "tls_skip_verify"},
		{"tiemout", "timeout"},
		{"colour", ""},
		{"ttl", ""},
	} {
		if got := closest(tc.in, fields); got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
