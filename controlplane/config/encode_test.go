package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// The effective configuration reads back to the same Config, so that
// `config check --effective` output can be used as a configuration.
func TestStringRoundTrip(t *testing.T) {
	for _, file := range []string{"testdata/issue3.yaml", "testdata/issue3-issue4.yaml", "testdata/full.yaml"} {
		t.Run(file, func(t *testing.T) {
			c, err := Load(file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			out := c.String()
			again, err := Parse("effective.yaml", []byte(out))
			if err != nil {
				t.Fatalf("effective configuration refused:\n%v\n%s", err, out)
			}
			if want, got := bare(c), bare(again); !reflect.DeepEqual(want, got) {
				t.Errorf("round trip:\nwant %+v\n got %+v\n%s", want, got, out)
			}
			// Read back, nothing is a default any more.
			if strings.Contains(again.String(), " # default\n") {
				t.Errorf("second effective configuration still marks defaults:\n%s", again)
			}
		})
	}
}

// Defaulted values are marked, written ones are not.
func TestStringMarksDefaults(t *testing.T) {
	c, err := Load("testdata/issue3.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(c.String(), "\n")
	has := func(want string) {
		t.Helper()
		for _, l := range lines {
			if strings.TrimSpace(l) == want {
				return
			}
		}
		t.Errorf("effective configuration has no line %q:\n%s", want, c)
	}
	has("# Effective configuration of testdata/issue3.yaml; \"# default\" marks values the file leaves out.")
	has("interface: eth0")
	has("api_socket: /run/xdplb/xdplb.sock # default")
	has("hash_seed: 0x5eed1b0b # default")
	has("ring_size: 65537 # default")
	has("weight: 2")
	has("weight: 1 # default")
	has("port: 3306 # default") // the exec check's port, from the service
	has("timeout: 500ms")
	has("command: [/etc/xdplb/galera-check, '{{.Address}}']")
}

// A Config built in code has no positions; String still writes a file
// that parses back to it, zero weights and preempt: false included.
func TestStringOfBuiltConfig(t *testing.T) {
	want := wantIssue3()
	want.Services[0].Backends[1].Weight = 0
	want.VRRP = wantIssue4()
	want.VRRP.Instances[0].Preempt = false
	want.Director.HashSeed = 0
	out := want.String()
	if strings.Contains(out, " # default\n") {
		t.Errorf("a Config built in code has no defaults to mark:\n%s", out)
	}
	got, err := Parse("built.yaml", []byte(out))
	if err != nil {
		t.Fatalf("String of a built Config refused:\n%v\n%s", err, out)
	}
	if !reflect.DeepEqual(want, bare(got)) {
		t.Errorf("round trip:\nwant %+v\n got %+v\n%s", want, bare(got), out)
	}
}

func TestProblemf(t *testing.T) {
	data, err := os.ReadFile("testdata/issue3.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, string(data))
	for _, tc := range []struct{ path, want string }{
		// Written fields are located at their value.
		{"director.interface", "xdplb.yaml:2:14: director.interface: no such interface"},
		{"services[1].backends[1].address", "xdplb.yaml:35:18: services[1].backends[1].address: no such interface"},
		// Defaulted fields at their section.
		{"director.api_socket", "xdplb.yaml:1:1: director.api_socket: no such interface"},
		{"services[1].health_check.port", "xdplb.yaml:36:5: services[1].health_check.port: no such interface"},
		// Sections at their key, list items at the item.
		{"services[0].backends", "xdplb.yaml:12:5: services[0].backends: no such interface"},
		{"services[1]", "xdplb.yaml:26:5: services[1]: no such interface"},
		{"vrrp.instances[0]", "xdplb.yaml:1:1: vrrp.instances[0]: no such interface"},
	} {
		if got := c.Problemf(tc.path, "no such %s", "interface").String(); got != tc.want {
			t.Errorf("Problemf(%q):\nwant %s\n got %s", tc.path, tc.want, got)
		}
	}
	var built Config
	if got, want := built.Problemf("director.interface", "gone").String(), ": director.interface: gone"; got != want {
		t.Errorf("Problemf on a built Config = %q, want %q", got, want)
	}
}
