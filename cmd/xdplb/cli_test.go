package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// allCaps is a capability set with CAP_BPF and CAP_NET_ADMIN.
const allCaps = 1<<capBPF | 1<<capNetAdmin

// run executes the CLI in-process with args and the given capabilities.
// The pin root is an empty temporary directory unless args set one, so
// nothing outside the test is ever touched.
func run(t *testing.T, caps uint64, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.caps = func() (uint64, error) { return caps, nil }
	root := newRootCmdFor(a)
	hasRoot := false
	for _, arg := range args {
		hasRoot = hasRoot || strings.HasPrefix(arg, "--pin-root")
	}
	if !hasRoot {
		args = append([]string{"--pin-root", t.TempDir()}, args...)
	}
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestBadArgumentsAreUsageErrors(t *testing.T) {
	const vip = "198.18.1.100:80/tcp"
	tests := []struct {
		name    string
		args    []string
		wantMsg string
	}{
		// VIPs.
		{"VIP without protocol", []string{"vip", "add", "198.18.1.100:80", "--forwarding", "dr"}, "such as 198.18.1.100:80/tcp"},
		{"VIP with unknown protocol", []string{"vip", "add", "198.18.1.100:80/icmp", "--forwarding", "dr"}, `bad VIP "198.18.1.100:80/icmp"`},
		{"VIP with a name", []string{"vip", "del", "www:80/tcp"}, `bad VIP "www:80/tcp"`},
		{"VIP port out of range", []string{"vip", "del", "198.18.1.100:70000/tcp"}, "bad VIP"},
		{"IPv6 VIP", []string{"vip", "add", "[2001:db8::1]:80/tcp", "--forwarding", "dr"}, "only IPv4"},
		{"VIP in backend add", []string{"backend", "add", "198.18.1.100/80/tcp", "198.18.0.21"}, "bad VIP"},
		// Backend addresses.
		{"backend with port", []string{"backend", "add", vip, "198.18.0.21:80"}, "without a port"},
		{"backend not an address", []string{"backend", "del", vip, "web1"}, "want an IPv4 address"},
		{"IPv6 backend", []string{"backend", "add", vip, "2001:db8::21"}, "only IPv4"},
		{"multicast backend", []string{"backend", "add", vip, "224.0.0.5"}, "unicast"},
		// MACs.
		{"MAC garbage", []string{"backend", "add", vip, "198.18.0.21", "--mac", "zz:zz"}, `bad --mac "zz:zz"`},
		{"MAC too short", []string{"backend", "add", vip, "198.18.0.21", "--mac", "02:00:00:00:00"}, "6-byte"},
		{"MAC EUI-64", []string{"backend", "add", vip, "198.18.0.21", "--mac", "02:00:00:00:00:00:00:01"}, "6-byte"},
		{"MAC multicast", []string{"backend", "set", vip, "198.18.0.21", "--mac", "01:00:5e:00:00:01"}, "multicast"},
		{"MAC broadcast", []string{"backend", "add", vip, "198.18.0.21", "--mac", "ff:ff:ff:ff:ff:ff"}, "broadcast"},
		{"MAC zero", []string{"backend", "add", vip, "198.18.0.21", "--mac", "00:00:00:00:00:00"}, "zero address"},
		// Weights and states.
		{"negative weight", []string{"backend", "add", vip, "198.18.0.21", "--weight", "-1"}, `bad --weight "-1"`},
		{"weight not a number", []string{"backend", "set", vip, "198.18.0.21", "--weight", "heavy"}, "whole number"},
		{"fractional weight", []string{"backend", "add", vip, "198.18.0.21", "--weight", "1.5"}, "whole number"},
		{"weight too big", []string{"backend", "add", vip, "198.18.0.21", "--weight", "70000"}, "0 to 65535"},
		{"unknown state", []string{"backend", "set", vip, "198.18.0.21", "--state", "sleeping"}, "want active, draining"},
		{"state unused", []string{"backend", "add", vip, "198.18.0.21", "--state", "unused"}, "want active, draining"},
		{"set without change", []string{"backend", "set", vip, "198.18.0.21"}, "give --state, --weight or --mac"},
		{"ARP timeout zero", []string{"backend", "add", vip, "198.18.0.21", "--arp-timeout", "0s"}, "positive duration"},
		// VIP options.
		{"forwarding missing", []string{"vip", "add", vip}, "--forwarding is required"},
		{"forwarding unknown", []string{"vip", "add", vip, "--forwarding", "nat"}, `bad --forwarding "nat"`},
		{"scheduler unknown", []string{"vip", "add", vip, "--forwarding", "dr", "--scheduler", "rr"}, "maglev, source-hash or failover"},
		{"granularity without source-hash", []string{"vip", "add", vip, "--forwarding", "dr", "--persistence-granularity", "24"}, "only to --scheduler source-hash"},
		{"granularity bad", []string{"vip", "add", vip, "--forwarding", "dr", "--scheduler", "source-hash", "--persistence-granularity", "33"}, "0 to 32"},
		{"granularity bad netmask", []string{"vip", "add", vip, "--forwarding", "dr", "--scheduler", "source-hash", "--persistence-granularity", "255.0.255.0"}, "netmask"},
		// Attach options.
		{"mode unknown", []string{"attach", "eth0", "--mode", "fast"}, `bad --mode "fast"`},
		{"ring size not prime", []string{"attach", "eth0", "--ring-size", "65536"}, "not prime"},
		{"ring size not a number", []string{"attach", "eth0", "--ring-size", "big"}, `invalid argument "big"`},
		{"max VIPs zero", []string{"attach", "eth0", "--max-vips", "0"}, "max VIPs 0 out of range"},
		{"tunnel source bad", []string{"attach", "eth0", "--tun-source", "2001:db8::1"}, "bad --tun-source"},
		{"decap address bad", []string{"decap", "attach", "eth0", "--address", "198.18.0.300"}, `bad --address "198.18.0.300"`},
		// Command line shape.
		{"unknown flag", []string{"vip", "add", vip, "--forwarding", "dr", "--bogus"}, "unknown flag: --bogus"},
		{"unknown command", []string{"viip", "list"}, "did you mean vip"},
		{"unknown subcommand", []string{"backend", "remove", vip, "198.18.0.21"}, "choose one of: add, del, drain, set, undrain"},
		{"missing argument", []string{"backend", "add", vip}, "missing ADDR"},
		{"extra argument", []string{"vip", "del", vip, "198.18.1.101:80/tcp"}, "unexpected"},
		{"arguments to list", []string{"vip", "list", "all"}, "takes no arguments"},
		{"unknown map", []string{"maps", "dump", "routes"}, "choose one of vips, backends"},
		{"stats interval too short", []string{"stats", "--watch", "--interval", "1ms"}, "100ms or more"},
		{"stats interval without watch", []string{"stats", "--interval", "5s"}, "only with --watch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Full capabilities: the argument must be rejected before
			// anything looks at the system.
			_, _, err := run(t, allCaps, tt.args...)
			if err == nil {
				t.Fatalf("xdplb %s succeeded, want an error", strings.Join(tt.args, " "))
			}
			if want, got := 2, exitCode(err); want != got {
				t.Errorf("exit code %d, want %d (usage error); error: %v", got, want, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	const vip = "198.18.1.100:80/tcp"
	several := t.TempDir()
	for _, d := range []string{"eth1", "eth0", "decap"} {
		if err := os.Mkdir(filepath.Join(several, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		caps     uint64
		args     []string
		wantCode int
		wantMsgs []string
	}{
		{"not root: attach", 0, []string{"attach", "eth0"}, 1, []string{"run as root (needs CAP_BPF and CAP_NET_ADMIN)"}},
		{"not root: vip add", 0, []string{"vip", "add", vip, "--forwarding", "dr"}, 1, []string{"run as root"}},
		{"not root: stats", 0, []string{"stats"}, 1, []string{"run as root"}},
		{"not root: detach", 1 << capNetAdmin, []string{"detach", "eth0"}, 1, []string{"run as root"}},
		{"CAP_SYS_ADMIN stands in for CAP_BPF", 1<<capSysAdmin | 1<<capNetAdmin, []string{"vip", "list"}, 1, []string{"run 'xdplb attach IFACE' first"}},
		{"nothing attached", allCaps, []string{"vip", "list"}, 1, []string{"not attached to any interface", "run 'xdplb attach IFACE' first"}},
		{"nothing attached: backend add", allCaps, []string{"backend", "add", vip, "198.18.0.21"}, 1, []string{"run 'xdplb attach IFACE' first"}},
		{"iface not attached", allCaps, []string{"--iface", "eth7", "maps", "list"}, 1, []string{"not attached to eth7", "run 'xdplb attach eth7' first"}},
		{"iface not attached, others are", allCaps, []string{"--pin-root", several, "--iface", "eth7", "vip", "add", vip, "--forwarding", "dr"}, 1,
			[]string{"run 'xdplb attach eth7' first", "--iface (eth0, eth1)"}},
		{"several attached", allCaps, []string{"--pin-root", several, "stats"}, 2, []string{"several interfaces (eth0, eth1)", "--iface"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, tt.caps, tt.args...)
			if err == nil {
				t.Fatal("succeeded, want an error")
			}
			if got := exitCode(err); got != tt.wantCode {
				t.Errorf("exit code %d, want %d; error: %v", got, tt.wantCode, err)
			}
			for _, m := range tt.wantMsgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %q", err, m)
				}
			}
			if errors.Is(err, errNeedRoot) != strings.Contains(tt.wantMsgs[0], "run as root") {
				t.Errorf("errors.Is(err, errNeedRoot) = %v", errors.Is(err, errNeedRoot))
			}
		})
	}
}

func TestEveryCommandTeaches(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() || sub.Name() == "help" {
				continue
			}
			walk(sub)
		}
		if c.Short == "" || c.Long == "" {
			t.Errorf("%q lacks Short or Long help", c.CommandPath())
		}
		if c.Runnable() && !c.HasSubCommands() && c.Example == "" {
			t.Errorf("%q has no Example", c.CommandPath())
		}
		if c.Runnable() && !c.SilenceUsage && !c.Root().SilenceUsage {
			t.Errorf("%q prints usage on errors", c.CommandPath())
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if strings.ContainsAny(f.Name, "_ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
				t.Errorf("%q: flag --%s is not kebab-case", c.CommandPath(), f.Name)
			}
		})
	}
	walk(newRootCmd(&bytes.Buffer{}, &bytes.Buffer{}))

	// And --help shows the examples.
	out, _, err := run(t, 0, "backend", "add", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Examples:") || !strings.Contains(out, "xdplb backend add 198.18.1.100:80/tcp 198.18.0.21") {
		t.Errorf("backend add --help lacks its examples:\n%s", out)
	}
}

func TestParentWithoutSubcommandPrintsHelp(t *testing.T) {
	out, _, err := run(t, 0, "vip")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"add", "del", "list"} {
		if !strings.Contains(out, want) {
			t.Errorf("'xdplb vip' output lacks %q:\n%s", want, out)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, 0, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "xdplb ") || !strings.Contains(out, "go1.") {
		t.Errorf("version printed %q, want xdplb, a version and the Go version", out)
	}
}

func TestParseGranularity(t *testing.T) {
	tests := []struct {
		in   string
		want uint8
	}{
		{"24", 24}, {"/16", 16}, {"0", 0}, {"32", 32},
		{"255.255.255.0", 24}, {"255.255.0.0", 16}, {"255.255.255.255", 32},
	}
	for _, tt := range tests {
		got, err := parseGranularity(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseGranularity(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestExitCodes(t *testing.T) {
	if want, got := 0, exitCode(nil); want != got {
		t.Errorf("exitCode(nil) = %d", got)
	}
	if want, got := 1, exitCode(errors.New("boom")); want != got {
		t.Errorf("exitCode(error) = %d, want %d", got, want)
	}
	if want, got := 2, exitCode(usageErrorf("bad")); want != got {
		t.Errorf("exitCode(usage) = %d, want %d", got, want)
	}
}

func TestWithRates(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	prev := statsJSON{
		Time:     t0,
		Reasons:  map[string]uint64{"tx_dr": 100},
		Events:   map[string]uint64{"flow_new": 10},
		VIPs:     []vipStatsJSON{{VIP: "198.18.1.100:80/tcp", Packets: 100, Bytes: 6000}},
		Backends: []backendStatsJSON{{ID: 1, Address: "198.18.0.21", Packets: 60}, {ID: 2, Address: "198.18.0.22", Packets: 40}},
	}
	cur := statsJSON{
		Time:    t0.Add(2 * time.Second),
		Reasons: map[string]uint64{"tx_dr": 300},
		Events:  map[string]uint64{"flow_new": 10},
		VIPs:    []vipStatsJSON{{VIP: "198.18.1.100:80/tcp", Packets: 300, Bytes: 18000}},
		// Slot 2 was freed and reused by another backend: its counter
		// restarted and counts from zero.
		Backends: []backendStatsJSON{{ID: 1, Address: "198.18.0.21", Packets: 160}, {ID: 2, Address: "198.18.0.23", Packets: 20}},
	}
	withRates(&cur, prev)
	if cur.IntervalSeconds != 2 || cur.ReasonRates["tx_dr"] != 100 || cur.EventRates["flow_new"] != 0 {
		t.Errorf("interval %v, tx_dr %v/s, flow_new %v/s; want 2s, 100/s, 0/s", cur.IntervalSeconds, cur.ReasonRates["tx_dr"], cur.EventRates["flow_new"])
	}
	if v := cur.VIPs[0]; *v.PacketsPerSecond != 100 || *v.BytesPerSecond != 6000 {
		t.Errorf("VIP rates %v pkt/s %v B/s, want 100 and 6000", *v.PacketsPerSecond, *v.BytesPerSecond)
	}
	if b := cur.Backends; *b[0].PacketsPerSecond != 50 || *b[1].PacketsPerSecond != 10 {
		t.Errorf("backend rates %v and %v pkt/s, want 50 and 10", *b[0].PacketsPerSecond, *b[1].PacketsPerSecond)
	}
}
