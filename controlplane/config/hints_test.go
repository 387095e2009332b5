package config

import (
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

// firstProblem parses text and returns its only problem's path and message.
func firstProblem(t *testing.T, text string) (string, string) {
	t.Helper()
	_, err := Parse("xdplb.yaml", []byte(text))
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 1 {
		t.Fatalf("want exactly one problem, got %v", err)
	}
	return e.Problems[0].Path, e.Problems[0].Message
}

// Keywords operators bring from keepalived and IPVS get a translation.
func TestMigrationHints(t *testing.T) {
	inService := func(line string) string { return edit(svc, "    port: 80\n", "    port: 80\n    "+line+"\n") }
	inCheck := func(line string) string { return edit(svc, "      type: tcp\n", "      type: tcp\n      "+line+"\n") }
	inInstance := func(line string) string {
		return edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      "+line+"\n")
	}
	for _, tc := range []struct {
		yaml, path, msg string
	}{
		{inService("lb_algo: wrr"), "services[0].lb_algo", "unknown field; keepalived's lb_algo is scheduler here (maglev, source-hash or failover)"},
		{inService("delay_loop: 5"), "services[0].delay_loop", "unknown field; keepalived's delay_loop is health_check.interval here"},
		{inService("real_server: []"), "services[0].real_server", "unknown field; real servers are listed under backends"},
		{inService("persistence_timeout: 300"), "services[0].persistence_timeout", "unknown field; there is no persistence timeout: established flows keep their backend through the flow table, and scheduler: source-hash keeps a client on one backend"},
		{edit(svc, "    vip: 198.18.1.100\n", "    virtual_server: 198.18.1.100\n"), "services[0].virtual_server", "unknown field; the service's address is vip"},
		{edit(svc, "- address: 198.18.0.21", "- ip: 198.18.0.21"), "services[0].backends[0].ip", "unknown field; did you mean address?"},
		{inCheck("connect_port: 9200"), "services[0].health_check.connect_port", "unknown field; keepalived's connect_port is port here"},
		{inCheck("delay_loop: 5"), "services[0].health_check.delay_loop", "unknown field; keepalived's delay_loop is interval here"},
		{inCheck("status_code: 200"), "services[0].health_check.status_code", "unknown field; did you mean expect_status?"},
		{inCheck("url: /healthz"), "services[0].health_check.url", "unknown field; give the URL's path as path (and its host as host)"},
		{inCheck("retry: 3"), "services[0].health_check.retry", "unknown field; use fall (consecutive failures before a backend goes down)"},
		{edit(vr, "virtual_addresses:", "virtual_ipaddress:"), "vrrp.instances[0].virtual_ipaddress", "unknown field; keepalived's virtual_ipaddress is virtual_addresses here"},
		{inInstance("unicast_peer: [198.18.0.11]"), "vrrp.instances[0].unicast_peer", "unknown field; did you mean unicast_peers?"},
		{inInstance("vrrp_version: 3"), "vrrp.instances[0].vrrp_version", "unknown field; did you mean version?"},
		{inInstance("auth_type: PASS"), "vrrp.instances[0].auth_type", "unknown field; write authentication: {type: pass, password: ...}"},
		{inInstance("authentication: {auth_type: pass, password: x}"), "vrrp.instances[0].authentication.auth_type", "unknown field; did you mean type?"},
		{inInstance("authentication: {type: pass, auth_pass: x}"), "vrrp.instances[0].authentication.auth_pass", "unknown field; did you mean password?"},
		{inInstance("authentication: {type: ah, password: x}"), "vrrp.instances[0].authentication.type", `"ah" is not allowed; use pass (IPsec AH authentication is not supported)`},
		{inService("scheduler: sh"), "services[0].scheduler", `"sh" is not allowed; use maglev, source-hash or failover (IPVS sh is source-hash)`},
		{inService("scheduler: mh"), "services[0].scheduler", `"mh" is not allowed; use maglev, source-hash or failover (IPVS mh is maglev)`},
		{inService("scheduler: fo"), "services[0].scheduler", `"fo" is not allowed; use maglev, source-hash or failover (IPVS fo is failover)`},
		{edit(svc, "forwarding: dr", "forwarding: tunnel"), "services[0].forwarding", `"tunnel" is not allowed; use dr or tun (IPIP tunnelling is tun)`},
		{edit(svc, "forwarding: dr", "forwarding: DR"), "services[0].forwarding", `"DR" is not allowed; values are lower-case: use dr`},
		// A misspelt required key is one problem, not also "missing".
		{edit(svc, "    forwarding: dr\n", "    lb_kind: dr\n"), "services[0].lb_kind", "unknown field; keepalived's lb_kind is forwarding here (dr or tun)"},
		{edit(svc, "    vip:", "    vpi:"), "services[0].vpi", "unknown field; did you mean vip?"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			path, msg := firstProblem(t, tc.yaml)
			if path != tc.path || msg != tc.msg {
				t.Errorf("problem:\nwant %s: %s\n got %s: %s", tc.path, tc.msg, path, msg)
			}
		})
	}
}

func TestListenAddress(t *testing.T) {
	with := func(v string) string {
		return edit(svc, "  interface: eth0\n", "  interface: eth0\n  metrics_listen: \""+v+"\"\n")
	}
	for _, ok := range []string{":9469", "127.0.0.1:9469", "localhost:9469", "[::1]:9469", "0.0.0.0:0"} {
		t.Run(ok, func(t *testing.T) { parse(t, with(ok)) })
	}
	for _, tc := range []struct{ in, msg string }{
		{"127.0.0.1:70000", "port 70000 is out of range; expected 0 to 65535"},
		{"127.0.0.1:metrics", `"metrics" is not a port number; expected a number such as 9469`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if _, msg := firstProblem(t, with(tc.in)); msg != tc.msg {
				t.Errorf("message:\nwant %s\n got %s", tc.msg, msg)
			}
		})
	}
}

func TestExpandCommand(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dns := c.Services[2]
	got, err := dns.HealthCheck.ExpandCommand(CommandVars{Service: dns.Name, VIP: dns.VIP.String(), Address: "198.18.0.31", Port: dns.HealthCheck.Port})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/usr/local/bin/check-dns", "198.18.0.31", "53", "dns", "198.18.1.53"}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("ExpandCommand = %q, want %q", got, want)
	}
	// A HealthCheck built in code is not validated; a bad template is an
	// error, not a panic.
	bad := HealthCheck{Type: CheckExec, Command: []string{"/bin/check", "{{.Nope}}"}}
	if _, err := bad.ExpandCommand(CommandVars{}); err == nil || !strings.Contains(err.Error(), "expand command[1]") {
		t.Errorf("ExpandCommand with an unknown field: %v, want an error naming command[1]", err)
	}
}

func TestLogLevel(t *testing.T) {
	for _, tc := range []struct {
		in   LogLevel
		want slog.Level
	}{{LogDebug, slog.LevelDebug}, {LogInfo, slog.LevelInfo}, {LogWarn, slog.LevelWarn}, {LogError, slog.LevelError}, {"", slog.LevelInfo}} {
		if got := tc.in.Level(); got != tc.want {
			t.Errorf("LogLevel(%q).Level() = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestFmtDuration(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"}, {time.Hour, "1h"}, {90 * time.Minute, "90m"}, {90 * time.Second, "90s"},
		{1500 * time.Millisecond, "1500ms"}, {40950 * time.Millisecond, "40950ms"}, {1500 * time.Nanosecond, "1.5µs"},
	} {
		got := fmtDuration(tc.in)
		if got != tc.want {
			t.Errorf("fmtDuration(%v) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != tc.in {
			t.Errorf("fmtDuration(%v) = %q does not read back: %v, %v", tc.in, got, back, err)
		}
	}
}
