package config

import (
	"reflect"
	"strings"
	"testing"
)

// svc is a minimal valid file with one service; cases below edit copies
// of it, so that line numbers stay easy to check:
//
//	 1 director:
//	 2   interface: eth0
//	 3 services:
//	 4   - name: web
//	 5     vip: 198.18.1.100
//	 6     port: 80
//	 7     forwarding: dr
//	 8     backends:
//	 9       - address: 198.18.0.21
//	10     health_check:
//	11       type: tcp
const svc = `director:
  interface: eth0
services:
  - name: web
    vip: 198.18.1.100
    port: 80
    forwarding: dr
    backends:
      - address: 198.18.0.21
    health_check:
      type: tcp
`

// vr is a minimal valid file with one VRRP instance:
//
//	1 director:
//	2   interface: eth0
//	3 vrrp:
//	4   instances:
//	5     - name: VI_1
//	6       interface: eth0
//	7       virtual_router_id: 51
//	8       virtual_addresses: [198.18.1.100/32]
const vr = `director:
  interface: eth0
vrrp:
  instances:
    - name: VI_1
      interface: eth0
      virtual_router_id: 51
      virtual_addresses: [198.18.1.100/32]
`

// edit replaces old by new in base, failing loudly if old is absent so a
// case cannot silently test the unmodified file.
func edit(base, old, new string) string {
	if !strings.Contains(base, old) {
		panic("edit: " + old + " not in base")
	}
	return strings.Replace(base, old, new, 1)
}

func TestBaseFilesValid(t *testing.T) {
	parse(t, svc)
	parse(t, vr)
}

// Every case is a file an operator could write; the test asserts the
// exact lines `xdplb config check` would print.
func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		// The file as a whole.
		{"empty file", "", []string{
			"xdplb.yaml: the file is empty; a configuration needs at least director.interface"}},
		{"only comments", "# director:\n#   interface: eth0\n", []string{
			"xdplb.yaml: the file is empty; a configuration needs at least director.interface"}},
		{"binary garbage", "\x00\x01\x02\xff", []string{
			"xdplb.yaml: not valid YAML: control characters are not allowed"}},
		{"unbalanced flow list", "director:\n  interface: [eth0\n", []string{
			"xdplb.yaml:2: not valid YAML: did not find expected ',' or ']'"}},
		{"key outdented", "director:\n  interface: eth0\n bogus: 1\n", []string{
			"xdplb.yaml:3: not valid YAML: did not find expected key"}},
		{"tab indentation", "director:\n\tinterface: eth0\n", []string{
			"xdplb.yaml:2: not valid YAML: found character that cannot start any token"}},
		{"top level is a list", "- director\n", []string{
			"xdplb.yaml:1:1: the top level must be a mapping with the keys director, services and vrrp; found a list"}},
		{"top level is a string", "hello world\n", []string{
			`xdplb.yaml:1:1: the top level must be a mapping with the keys director, services and vrrp; found the string "hello world"`}},
		{"two documents", svc + "---\ndirector: {}\n", []string{
			"xdplb.yaml:12:1: a second YAML document starts here (after ---); put the whole configuration in one document"}},

		// director
		{"director missing", "services: []\n", []string{
			"xdplb.yaml:1:1: director: missing; expected a mapping with at least interface"}},
		{"interface missing", "director:\n  xdp_mode: native\n", []string{
			"xdplb.yaml:1:1: director.interface: missing; expected the name of a network interface, such as eth0"}},
		{"interface misspelt", "director:\n  interfce: eth0\n", []string{
			"xdplb.yaml:2:3: director.interfce: unknown field; did you mean interface?"}},
		{"interface too long", "director:\n  interface: averyveryverylongname0\n", []string{
			`xdplb.yaml:2:14: director.interface: "averyveryverylongname0" is not a valid interface name; expected 1 to 15 characters without spaces, '/' or ':', such as eth0`}},
		{"xdp_mode", edit(svc, "  interface: eth0\n", "  interface: eth0\n  xdp_mode: fast\n"), []string{
			`xdplb.yaml:3:13: director.xdp_mode: "fast" is not allowed; use auto, native or generic`}},
		{"ring size not prime", edit(svc, "  interface: eth0\n", "  interface: eth0\n  ring_size: 65536\n"), []string{
			"xdplb.yaml:3:14: director.ring_size: 65536 is not a prime; Maglev needs a prime table size, such as 65521 or 65537"}},
		{"max_vips zero", edit(svc, "  interface: eth0\n", "  interface: eth0\n  max_vips: 0\n"), []string{
			"xdplb.yaml:3:13: director.max_vips: 0 is out of range; expected a whole number from 1 to 65536"}},
		{"more services than max_vips", edit(svc, "  interface: eth0\n", "  interface: eth0\n  max_vips: 1\n") +
			"  - name: db\n    vip: 198.18.1.101\n    port: 3306\n    forwarding: dr\n    backends: [{address: 198.18.0.31}]\n    health_check: {type: none}\n", []string{
			"xdplb.yaml:13:5: services[1]: 2 services do not fit in director.max_vips (1); raise max_vips"}},
		{"more backends than max_backends", edit(edit(svc, "  interface: eth0\n", "  interface: eth0\n  max_backends: 2\n"),
			"      - address: 198.18.0.21\n", "      - address: 198.18.0.21\n      - address: 198.18.0.22\n"), []string{
			"xdplb.yaml:9:5: services[0].backends: the services up to this one have 2 backends, more than director.max_backends (2) leaves room for (1: slot 0 is reserved); raise max_backends"}},
		{"relative api socket", edit(svc, "  interface: eth0\n", "  interface: eth0\n  api_socket: run/xdplb.sock\n"), []string{
			`xdplb.yaml:3:15: director.api_socket: "run/xdplb.sock" is not an absolute path; expected a path starting with /`}},
		{"api socket too long", edit(svc, "  interface: eth0\n", "  interface: eth0\n  api_socket: /"+strings.Repeat("s", 107)+"\n"), []string{
			"xdplb.yaml:3:15: director.api_socket: is 108 bytes long; a unix socket path holds at most 107"}},
		{"metrics without port", edit(svc, "  interface: eth0\n", "  interface: eth0\n  metrics_listen: localhost\n"), []string{
			`xdplb.yaml:3:19: director.metrics_listen: "localhost" is not host:port; expected an address and port such as 127.0.0.1:9469 (or :9469 for every address)`}},
		{"metrics host name", edit(svc, "  interface: eth0\n", "  interface: eth0\n  metrics_listen: metrics.example:9469\n"), []string{
			`xdplb.yaml:3:19: director.metrics_listen: "metrics.example" is not an IP address; expected an address such as 127.0.0.1, localhost, or nothing before the colon for every address`}},
		{"source address IPv6", edit(svc, "  interface: eth0\n", "  interface: eth0\n  source_address: 2001:db8::10\n"), []string{
			"xdplb.yaml:3:19: director.source_address: 2001:db8::10 is an IPv6 address; xdplb supports only IPv4 for now"}},
		{"tun without source address", edit(svc, "forwarding: dr", "forwarding: tun"), []string{
			"xdplb.yaml:1:1: director.source_address: missing; services with forwarding: tun (web) need it as the outer source address of their IPIP packets"}},
		{"log level", edit(svc, "  interface: eth0\n", "  interface: eth0\n  log_level: WARN\n"), []string{
			`xdplb.yaml:3:14: director.log_level: "WARN" is not allowed; values are lower-case: use warn`}},

		// services
		{"forwarding direct", edit(svc, "forwarding: dr", "forwarding: direct"), []string{
			`xdplb.yaml:7:17: services[0].forwarding: "direct" is not allowed; use dr or tun (direct routing is dr)`}},
		{"forwarding nat", edit(svc, "forwarding: dr", "forwarding: nat"), []string{
			`xdplb.yaml:7:17: services[0].forwarding: "nat" is not allowed; use dr or tun (NAT is not supported: backends must answer clients directly)`}},
		{"scheduler rr", edit(svc, "    forwarding: dr\n", "    forwarding: dr\n    scheduler: wlc\n"), []string{
			`xdplb.yaml:8:16: services[0].scheduler: "wlc" is not allowed; use maglev, source-hash or failover (round-robin and least-connection schedulers are not available: new flows are spread by consistent hashing, and maglev with weights is the closest)`}},
		{"vip IPv6", edit(svc, "vip: 198.18.1.100", "vip: 2001:db8::1"), []string{
			"xdplb.yaml:5:10: services[0].vip: 2001:db8::1 is an IPv6 address; xdplb supports only IPv4 for now"}},
		{"vip IPv4-mapped", edit(svc, "vip: 198.18.1.100", "vip: ::ffff:198.18.1.100"), []string{
			"xdplb.yaml:5:10: services[0].vip: ::ffff:198.18.1.100 is an IPv4-mapped IPv6 address; write it as 198.18.1.100"}},
		{"vip with prefix", edit(svc, "vip: 198.18.1.100", "vip: 198.18.1.100/32"), []string{
			`xdplb.yaml:5:10: services[0].vip: "198.18.1.100/32" is a CIDR; expected a plain IPv4 address such as 198.18.1.100`}},
		{"vip host name", edit(svc, "vip: 198.18.1.100", "vip: www.example.com"), []string{
			`xdplb.yaml:5:10: services[0].vip: "www.example.com" is not an IPv4 address; expected dotted decimal such as 198.18.1.100`}},
		{"vip multicast", edit(svc, "vip: 198.18.1.100", "vip: 224.0.0.18"), []string{
			"xdplb.yaml:5:10: services[0].vip: 224.0.0.18 is a multicast address; a VIP must be a unicast address"}},
		{"port quoted", edit(svc, "port: 80", `port: "80"`), []string{
			`xdplb.yaml:6:11: services[0].port: expected a whole number from 0 to 65535, found the string "80"; remove the quotes`}},
		{"port out of range", edit(svc, "port: 80", "port: 70000"), []string{
			"xdplb.yaml:6:11: services[0].port: 70000 is out of range; expected a whole number from 0 to 65535"}},
		{"port not a number", edit(svc, "port: 80", "port: http"), []string{
			`xdplb.yaml:6:11: services[0].port: "http" is not a number; expected a whole number from 0 to 65535`}},
		{"port fractional", edit(svc, "port: 80", "port: 80.5"), []string{
			"xdplb.yaml:6:11: services[0].port: 80.5 is not a whole number; expected a whole number from 0 to 65535"}},
		{"port with leading zero", edit(svc, "port: 80", "port: 080"), []string{
			"xdplb.yaml:6:11: services[0].port: 080 has a leading 0, which YAML reads as octal; write 80"}},
		{"track weight with leading zero", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      track_scripts: [{name: chk, command: [/bin/true], weight: -050}]\n"), []string{
			"xdplb.yaml:8:65: vrrp.instances[0].track_scripts[0].weight: -050 has a leading 0, which YAML reads as octal; write -50"}},
		{"port in hexadecimal", edit(svc, "port: 80", "port: 0x50"), nil},
		{"port given twice", edit(svc, "    port: 80\n", "    port: 80\n    port: 81\n"), []string{
			"xdplb.yaml:7:5: services[0].port: given twice in one mapping; the first is at line 6"}},
		{"service fields missing", "director:\n  interface: eth0\nservices:\n  - name: web\n", []string{
			"xdplb.yaml:4:5: services[0].backends: missing; expected a list of backends, each with an address",
			"xdplb.yaml:4:5: services[0].forwarding: missing; expected dr or tun",
			"xdplb.yaml:4:5: services[0].health_check: missing; expected a mapping with at least type (type: none forwards without checking)",
			"xdplb.yaml:4:5: services[0].port: missing; expected a whole number from 0 to 65535 (0 forwards every port of the VIP)",
			"xdplb.yaml:4:5: services[0].vip: missing; expected an IPv4 address"}},
		{"services not a list", "director:\n  interface: eth0\nservices:\n  web: {}\n", []string{
			"xdplb.yaml:4:3: services: expected a list of mappings; found a mapping"}},
		{"service name not a label", edit(svc, "name: web", "name: Web_1"), []string{
			`xdplb.yaml:4:11: services[0].name: "Web_1" is not a valid service name; expected 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit, such as mysql-write`}},
		{"unknown field suggestion", edit(svc, "health_check:", "healthcheck:"), []string{
			"xdplb.yaml:10:5: services[0].healthcheck: unknown field; did you mean health_check?"}},
		{"unknown field listed", edit(svc, "    port: 80\n", "    port: 80\n    colour: blue\n"), []string{
			"xdplb.yaml:7:5: services[0].colour: unknown field; the fields here are name, vip, port, protocol, forwarding, scheduler, persistence_granularity, backends or health_check"}},
		{"keepalived lb_kind", edit(svc, "    forwarding: dr\n", "    lb_kind: DR\n"), []string{
			"xdplb.yaml:7:5: services[0].lb_kind: unknown field; keepalived's lb_kind is forwarding here (dr or tun)"}},
		{"persistence without source-hash", edit(svc, "    forwarding: dr\n", "    forwarding: dr\n    persistence_granularity: 24\n"), []string{
			"xdplb.yaml:8:30: services[0].persistence_granularity: applies only to scheduler: source-hash (this service uses maglev); remove it"}},
		{"persistence prefix too long", edit(svc, "    forwarding: dr\n", "    forwarding: dr\n    scheduler: source-hash\n    persistence_granularity: 33\n"), []string{
			"xdplb.yaml:9:30: services[0].persistence_granularity: 33 is out of range; expected a whole number from 0 to 32"}},

		// backends
		{"backend port", edit(svc, "      - address: 198.18.0.21\n", "      - address: 198.18.0.21\n        port: 8080\n"), []string{
			"xdplb.yaml:10:9: services[0].backends[0].port: a backend has no port of its own: DR and TUN deliver the packet unchanged, so the backend receives it on the service's port; remove it (to check another port, set health_check.port)"}},
		{"backend weight negative", edit(svc, "      - address: 198.18.0.21\n", "      - address: 198.18.0.21\n        weight: -1\n"), []string{
			"xdplb.yaml:10:17: services[0].backends[0].weight: -1 is out of range; expected a whole number from 0 to 65535"}},
		{"backend listed twice", edit(svc, "      - address: 198.18.0.21\n", "      - address: 198.18.0.21\n      - address: 198.18.0.21\n"), []string{
			"xdplb.yaml:10:18: services[0].backends[1].address: 198.18.0.21 is already backends[0] of this service (line 9); list each backend once and use weight for a bigger share"}},
		{"backend is the VIP", edit(svc, "address: 198.18.0.21", "address: 198.18.1.100"), []string{
			"xdplb.yaml:9:18: services[0].backends[0].address: 198.18.1.100 is the service's VIP; a backend must be a real server"}},
		{"backend loopback", edit(svc, "address: 198.18.0.21", "address: 127.0.0.1"), []string{
			"xdplb.yaml:9:18: services[0].backends[0].address: 127.0.0.1 is a loopback address; a backend must be a unicast address"}},
		{"backends empty", edit(svc, "    backends:\n      - address: 198.18.0.21\n", "    backends: []\n"), []string{
			"xdplb.yaml:8:15: services[0].backends: the list is empty; expected a list of backends, each with an address"}},
		{"backend empty item", edit(svc, "      - address: 198.18.0.21\n", "      - address: 198.18.0.21\n      -\n"), []string{
			"xdplb.yaml:10:8: services[0].backends[1]: empty list item; expected a mapping of keys to values"}},

		// health checks
		{"timeout not below interval", edit(svc, "      type: tcp\n", "      type: tcp\n      interval: 1s\n      timeout: 1s\n"), []string{
			"xdplb.yaml:13:16: services[0].health_check.timeout: 1s is not shorter than interval (1s); a check must time out before the next one is due"}},
		{"timeout above default interval", edit(svc, "      type: tcp\n", "      type: tcp\n      timeout: 5s\n"), []string{
			"xdplb.yaml:12:16: services[0].health_check.timeout: 5s is not shorter than interval (2s, the default); a check must time out before the next one is due"}},
		{"interval without unit", edit(svc, "      type: tcp\n", "      type: tcp\n      interval: 2\n"), []string{
			"xdplb.yaml:12:17: services[0].health_check.interval: 2 has no unit; write 2s for seconds or 2ms for milliseconds"}},
		{"interval not a duration", edit(svc, "      type: tcp\n", "      type: tcp\n      interval: 2 seconds\n"), []string{
			`xdplb.yaml:12:17: services[0].health_check.interval: "2 seconds" is not a duration; write a number and a unit (ms, s, m or h) such as "500ms" or "2s"`}},
		{"interval too short", edit(svc, "      type: tcp\n", "      type: tcp\n      interval: 1ms\n"), []string{
			`xdplb.yaml:12:17: services[0].health_check.interval: 1ms is out of range; expected a duration from 10ms to 1h, such as "500ms" or "2s"`}},
		{"timeout negative", edit(svc, "      type: tcp\n", "      type: tcp\n      timeout: -1s\n"), []string{
			`xdplb.yaml:12:16: services[0].health_check.timeout: -1s is negative; expected a duration from 1ms to 1h, such as "500ms" or "2s"`}},
		{"timeout without value", edit(svc, "      type: tcp\n", "      type: tcp\n      timeout:\n"), []string{
			`xdplb.yaml:12:15: services[0].health_check.timeout: has no value; expected a duration from 1ms to 1h, such as "500ms" or "2s" (or remove the line)`}},
		{"check type unknown", edit(svc, "type: tcp", "type: icmp"), []string{
			`xdplb.yaml:11:13: services[0].health_check.type: "icmp" is not allowed; use tcp, http, https, exec or none`}},
		{"check type missing", edit(svc, "      type: tcp\n", "      interval: 1s\n"), []string{
			"xdplb.yaml:10:5: services[0].health_check.type: missing; expected tcp, http, https, exec or none"}},
		{"path on tcp check", edit(svc, "      type: tcp\n", "      type: tcp\n      path: /healthz\n"), []string{
			"xdplb.yaml:12:13: services[0].health_check.path: applies only to http or https checks, not tcp; remove it"}},
		{"tls option on http check", edit(svc, "      type: tcp\n", "      type: http\n      tls_skip_verify: true\n"), []string{
			"xdplb.yaml:12:24: services[0].health_check.tls_skip_verify: applies only to https checks, not http; remove it"}},
		{"interval with type none", edit(svc, "      type: tcp\n", "      type: none\n      interval: 1s\n"), []string{
			"xdplb.yaml:12:17: services[0].health_check.interval: has no effect with type: none (no check runs); remove it"}},
		{"tls_skip_verify yes", edit(svc, "      type: tcp\n", "      type: https\n      tls_skip_verify: yes\n"), []string{
			`xdplb.yaml:12:24: services[0].health_check.tls_skip_verify: "yes" is not allowed; use true or false`}},
		{"path without slash", edit(svc, "      type: tcp\n", "      type: http\n      path: healthz\n"), []string{
			`xdplb.yaml:12:13: services[0].health_check.path: "healthz" is not a URL path; expected a path starting with / and without spaces, such as /healthz`}},
		{"expect_status", edit(svc, "      type: tcp\n", "      type: http\n      expect_status: 999\n"), []string{
			"xdplb.yaml:12:22: services[0].health_check.expect_status: 999 is out of range; expected a whole number from 100 to 599"}},
		{"port-0 service check without port", edit(svc, "port: 80", "port: 0"), []string{
			"xdplb.yaml:10:5: services[0].health_check.port: missing; the service forwards every port (port: 0), so say which port the tcp check connects to"}},
		{"check port zero", edit(svc, "      type: tcp\n", "      type: tcp\n      port: 0\n"), []string{
			"xdplb.yaml:12:13: services[0].health_check.port: 0 is out of range; expected a whole number from 1 to 65535"}},
		{"exec without command", edit(svc, "type: tcp", "type: exec"), []string{
			`xdplb.yaml:10:5: services[0].health_check.command: missing; an exec check needs the command as a list, such as ["/usr/local/bin/check", "{{.Address}}"]`}},
		{"exec relative program", edit(svc, "      type: tcp\n", "      type: exec\n      command: [galera-check, \"{{.Address}}\"]\n"), []string{
			`xdplb.yaml:12:17: services[0].health_check.command[0]: "galera-check" is not an absolute path; commands run without a shell or PATH search, so write the program's full path, such as /usr/bin/galera-check`}},
		{"exec template typo", edit(svc, "      type: tcp\n", "      type: exec\n      command: [/bin/check, \"{{.Adress}}\"]\n"), []string{
			`xdplb.yaml:12:29: services[0].health_check.command[1]: "{{.Adress}}" is not a valid template: there is no field .Adress; the fields are {{.Address}}, {{.Port}}, {{.Service}} and {{.VIP}}`}},
		{"exec template syntax", edit(svc, "      type: tcp\n", "      type: exec\n      command: [/bin/check, \"{{.Address\"]\n"), []string{
			`xdplb.yaml:12:29: services[0].health_check.command[1]: "{{.Address" is not a valid template: unclosed action; the fields are {{.Address}}, {{.Port}}, {{.Service}} and {{.VIP}}`}},
		{"exec command as a string", edit(svc, "      type: tcp\n", "      type: exec\n      command: /bin/check --quiet\n"), []string{
			`xdplb.yaml:12:16: services[0].health_check.command: expected a list such as ["/usr/local/bin/check", "--quiet"]; a command runs without a shell, so each argument is its own item`}},
		{"on_failure", edit(svc, "      type: tcp\n", "      type: tcp\n      on_failure: inhibit\n"), []string{
			`xdplb.yaml:12:19: services[0].health_check.on_failure: "inhibit" is not allowed; use remove or drain`}},
		{"keepalived connect_timeout", edit(svc, "      type: tcp\n", "      type: tcp\n      connect_timeout: 3\n"), []string{
			"xdplb.yaml:12:7: services[0].health_check.connect_timeout: unknown field; keepalived's connect_timeout is timeout here"}},

		// vrrp
		{"v2 sub-second advert", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      advert_interval: 100ms\n"), []string{
			"xdplb.yaml:8:24: vrrp.instances[0].advert_interval: 100ms is not allowed with version 2, which advertises in whole seconds from 1s to 255s (version 3 allows steps of 10ms up to 40.95s)"}},
		{"v2 fractional advert", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      advert_interval: 1500ms\n"), []string{
			"xdplb.yaml:8:24: vrrp.instances[0].advert_interval: 1500ms is not allowed with version 2, which advertises in whole seconds from 1s to 255s (version 3 allows steps of 10ms up to 40.95s)"}},
		{"v2 advert at its bound", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      advert_interval: 255s\n"), nil},
		{"v2 advert past its bound", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      advert_interval: 256s\n"), []string{
			"xdplb.yaml:8:24: vrrp.instances[0].advert_interval: 256s is not allowed with version 2, which advertises in whole seconds from 1s to 255s (version 3 allows steps of 10ms up to 40.95s)"}},
		{"v3 advert at both bounds", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      version: 3\n      advert_interval: 10ms\n") +
			"    - {name: VI_2, interface: eth0, virtual_router_id: 52, version: 3, advert_interval: 40950ms, virtual_addresses: [198.18.1.101]}\n", nil},
		{"v3 advert not centiseconds", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      version: 3\n      advert_interval: 15ms\n"), []string{
			"xdplb.yaml:9:24: vrrp.instances[0].advert_interval: 15ms is not allowed with version 3, which advertises in hundredths of a second from 10ms to 40.95s"}},
		{"v3 advert too long", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      version: 3\n      advert_interval: 41s\n"), []string{
			"xdplb.yaml:9:24: vrrp.instances[0].advert_interval: 41s is not allowed with version 3, which advertises in hundredths of a second from 10ms to 40.95s"}},
		{"version 4", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      version: 4\n"), []string{
			"xdplb.yaml:8:16: vrrp.instances[0].version: 4 is out of range; expected 2 or 3"}},
		{"authentication on v3", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      version: 3\n      authentication: {type: pass, password: s3cr3t}\n"), []string{
			"xdplb.yaml:9:7: vrrp.instances[0].authentication: VRRP version 3 has no authentication (RFC 5798 removed it); remove it, or use version: 2"}},
		{"password too long", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      authentication: {type: pass, password: 0123456789}\n"), []string{
			"xdplb.yaml:8:46: vrrp.instances[0].authentication.password: is 10 bytes long; a VRRPv2 advert carries at most 8 (keepalived silently keeps the first 8: write those)"}},
		{"auth type in capitals", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      authentication: {type: PASS, password: s3cr3t}\n"), []string{
			`xdplb.yaml:8:30: vrrp.instances[0].authentication.type: "PASS" is not allowed; values are lower-case: use pass`}},
		{"vrid zero", edit(vr, "virtual_router_id: 51", "virtual_router_id: 0"), []string{
			"xdplb.yaml:7:26: vrrp.instances[0].virtual_router_id: 0 is out of range; expected a whole number from 1 to 255"}},
		{"priority 256", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      priority: 256\n"), []string{
			"xdplb.yaml:8:17: vrrp.instances[0].priority: 256 is out of range; expected a whole number from 1 to 255"}},
		{"owner without preemption", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      priority: 255\n      preempt: false\n"), []string{
			"xdplb.yaml:9:16: vrrp.instances[0].preempt: an instance with priority 255 owns its addresses and always preempts (RFC 5798 section 6.4.1); remove preempt: false or lower the priority"}},
		{"preempt_delay without preempt", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      preempt: false\n      preempt_delay: 30s\n"), []string{
			"xdplb.yaml:9:22: vrrp.instances[0].preempt_delay: has no effect with preempt: false; remove it"}},
		{"virtual address IPv6", edit(vr, "[198.18.1.100/32]", "[2001:db8::100/128]"), []string{
			"xdplb.yaml:8:27: vrrp.instances[0].virtual_addresses[0]: 2001:db8::100 is an IPv6 address; xdplb supports only IPv4 for now"}},
		{"virtual address bad CIDR", edit(vr, "[198.18.1.100/32]", "[198.18.1.100/33]"), []string{
			`xdplb.yaml:8:27: vrrp.instances[0].virtual_addresses[0]: "198.18.1.100/33" is not a valid CIDR; expected an IPv4 address and a prefix length from 0 to 32, such as 198.18.1.100/32`}},
		{"virtual addresses empty", edit(vr, "[198.18.1.100/32]", "[]"), []string{
			"xdplb.yaml:8:26: vrrp.instances[0].virtual_addresses: the list is empty; expected a list of the addresses this instance holds, such as [198.18.1.100/32]"}},
		{"unicast source without peers", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      unicast_src_ip: 198.18.0.10\n"), []string{
			"xdplb.yaml:8:23: vrrp.instances[0].unicast_src_ip: applies only with unicast_peers (without them, adverts go to the multicast group 224.0.0.18); add the peers or remove it"}},
		{"unicast peer is self", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      unicast_src_ip: 198.18.0.10\n      unicast_peers: [198.18.0.11, 198.18.0.10]\n"), []string{
			"xdplb.yaml:9:36: vrrp.instances[0].unicast_peers[1]: 198.18.0.10 is this director's own unicast_src_ip; list only the other directors"}},
		{"track interface twice", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      track_interfaces: [eth0, eth0]\n"), []string{
			`xdplb.yaml:8:32: vrrp.instances[0].track_interfaces[1]: "eth0" is already track_interfaces[0]; list each interface once`}},
		{"track script weight", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      track_scripts:\n        - {name: chk, command: [/bin/true], weight: 300}\n"), []string{
			"xdplb.yaml:9:53: vrrp.instances[0].track_scripts[0].weight: 300 is out of range; expected a whole number from -253 to 253"}},
		{"track script without command", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      track_scripts:\n        - name: chk\n"), []string{
			`xdplb.yaml:9:11: vrrp.instances[0].track_scripts[0].command: missing; expected the command as a list, such as ["/usr/local/bin/check", "--quiet"]`}},
		{"track unknown service", edit(svc+strings.TrimPrefix(vr, "director:\n  interface: eth0\n"), "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      track_services: [{service: db}]\n"), []string{
			`xdplb.yaml:17:34: vrrp.instances[0].track_services[0].service: there is no service named "db"; the services are web`}},
		{"notify relative", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      notify_master: [notify.sh, master]\n"), []string{
			`xdplb.yaml:8:23: vrrp.instances[0].notify_master[0]: "notify.sh" is not an absolute path; commands run without a shell or PATH search, so write the program's full path, such as /usr/bin/notify.sh`}},
		{"keepalived instance keywords", edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      state: MASTER\n      advert_int: 1\n      nopreempt: true\n"), []string{
			"xdplb.yaml:8:7: vrrp.instances[0].state: unknown field; there is no initial state: every instance starts as backup and the highest priority becomes master; remove it",
			`xdplb.yaml:9:7: vrrp.instances[0].advert_int: unknown field; keepalived's advert_int is advert_interval here, with a unit ("1s", "100ms")`,
			"xdplb.yaml:10:7: vrrp.instances[0].nopreempt: unknown field; write preempt: false"}},
		{"instance name", edit(vr, "name: VI_1", "name: VI 1"), []string{
			`xdplb.yaml:5:13: vrrp.instances[0].name: "VI 1" is not a valid name; expected 1 to 63 letters, digits, '-', '_' or '.', such as VI_1`}},
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
