package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parse parses text as "xdplb.yaml" and fails the test on any problem.
func parse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse("xdplb.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Parse: unexpected problems:\n%v", err)
	}
	return c
}

// problems parses text, expecting it to be refused, and returns the
// problems formatted one per line.
func problems(t *testing.T, text string) []string {
	t.Helper()
	c, err := Parse("xdplb.yaml", []byte(text))
	if err == nil {
		t.Fatalf("Parse accepted the file; effective config:\n%s", c)
	}
	if c != nil {
		t.Errorf("Parse returned a config together with an error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse error is %T, want *Error: %v", err, err)
	}
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p.String()
	}
	return out
}

// bare returns a copy of c without its source positions, for comparison
// with a Config literal.
func bare(c *Config) Config {
	cp := *c
	cp.src = nil
	return cp
}

func addr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// wantIssue3 is the issue-3 example with every default filled in.
func wantIssue3() Config {
	return Config{
		Director: Director{
			Interface:     "eth0",
			SourceAddress: addr("198.18.0.10"),
			MetricsListen: "127.0.0.1:9469",
			APISocket:     "/run/xdplb/xdplb.sock",
			StateDir:      "/var/lib/xdplb",
			PinRoot:       "/sys/fs/bpf/xdplb",
			XDPMode:       XDPAuto,
			LogFormat:     LogText,
			LogLevel:      LogInfo,
			MaxVIPs:       256,
			MaxBackends:   4096,
			MaxFlows:      65536,
			RingSize:      65537,
			HashSeed:      0x5eed1b0b,
		},
		Services: []Service{
			{
				Name: "web", VIP: addr("198.18.1.100"), Port: 80, Protocol: TCP,
				Forwarding: ForwardDR, Scheduler: SchedulerMaglev,
				Backends: []Backend{
					{Address: addr("198.18.0.21"), Weight: 1},
					{Address: addr("198.18.0.22"), Weight: 2},
				},
				HealthCheck: HealthCheck{
					Type: CheckHTTP, Port: 80, Path: "/healthz", ExpectStatus: 200,
					Interval: time.Second, Timeout: 500 * time.Millisecond,
					Rise: 2, Fall: 3, OnFailure: OnFailureRemove,
				},
			},
			{
				Name: "mysql-write", VIP: addr("198.18.1.101"), Port: 3306, Protocol: TCP,
				Forwarding: ForwardTUN, Scheduler: SchedulerSourceHash, PersistenceGranularity: 24,
				Backends: []Backend{
					{Address: addr("198.18.0.31"), Weight: 1},
					{Address: addr("198.18.0.32"), Weight: 1},
				},
				HealthCheck: HealthCheck{
					Type: CheckExec, Port: 3306,
					Command:  []string{"/etc/xdplb/galera-check", "{{.Address}}"},
					Interval: 2 * time.Second, Timeout: time.Second,
					Rise: 1, Fall: 2, OnFailure: OnFailureRemove,
				},
			},
		},
	}
}

// wantIssue4 is the issue-4 vrrp section with every default filled in.
func wantIssue4() VRRP {
	return VRRP{Instances: []Instance{{
		Name: "VI_1", Interface: "eth0", VirtualRouterID: 51, Priority: 150, Version: 3,
		AdvertInterval:   100 * time.Millisecond,
		Preempt:          true,
		VirtualAddresses: []netip.Prefix{prefix("198.18.1.100/32"), prefix("198.18.1.101/32")},
		TrackInterfaces:  []string{"eth0"},
		TrackScripts: []TrackScript{{
			Name: "chk_httpd", Command: []string{"/usr/bin/pgrep", "-x", "httpd"},
			Interval: 2 * time.Second, Timeout: time.Second, Weight: -50, Rise: 1, Fall: 1,
		}},
		Notify:           []string{"/etc/xdplb/notify.sh"},
		GARPMasterRepeat: 5,
		GARPMasterDelay:  5 * time.Second,
	}}}
}

// The examples in issues 3 and 4 are accepted exactly as written, with
// the values and defaults an operator would expect.
func TestIssueExamples(t *testing.T) {
	withVRRP := wantIssue3()
	withVRRP.VRRP = wantIssue4()
	for _, tc := range []struct {
		file string
		want Config
	}{
		{"testdata/issue3.yaml", wantIssue3()},
		{"testdata/issue3-issue4.yaml", withVRRP},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			c, err := Load(tc.file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := bare(c); !reflect.DeepEqual(tc.want, got) {
				t.Errorf("Load(%s):\nwant %+v\n got %+v", tc.file, tc.want, got)
			}
			if c.File() != tc.file {
				t.Errorf("File() = %q, want %q", c.File(), tc.file)
			}
		})
	}
}

// The issue-4 section is a fragment of the same file: alone it lacks the
// director, and says so.
func TestIssue4FragmentAlone(t *testing.T) {
	data, err := os.ReadFile("testdata/issue4-vrrp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"xdplb.yaml:1:1: director: missing; expected a mapping with at least interface"}
	if got := problems(t, string(data)); !reflect.DeepEqual(want, got) {
		t.Errorf("problems:\nwant %q\n got %q", want, got)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Run("missing file", func(t *testing.T) {
		_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load of a missing file: %v, want fs.ErrNotExist", err)
		}
		var e *Error
		if errors.As(err, &e) {
			t.Errorf("Load of a missing file gave a config *Error: %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if _, err := Load(t.TempDir()); err == nil {
			t.Error("Load of a directory succeeded")
		}
	})
	t.Run("too large", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "big.yaml")
		if err := os.WriteFile(path, []byte(strings.Repeat("#\n", MaxFileSize/2+1)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		var e *Error
		if !errors.As(err, &e) || len(e.Problems) != 1 || !strings.Contains(e.Problems[0].Message, "larger than 16 MiB") {
			t.Errorf("Load of a 16 MiB+ file: %v, want one problem saying it is too large", err)
		}
	})
	t.Run("names the file in problems", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "xdplb.yaml")
		if err := os.WriteFile(path, []byte("director:\n  interface: eth0\n  bogus: 1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		want := path + ":3:3: director.bogus: unknown field; the fields here are interface, source_address, metrics_listen, api_socket, state_dir, pin_root, xdp_mode, log_format, log_level, max_vips, max_backends, max_flows, ring_size or hash_seed"
		if err == nil || err.Error() != want {
			t.Errorf("Load error:\nwant %s\n got %v", want, err)
		}
	})
}
