package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/testenv"
)

// TestBenchSmoke runs every section with tiny counts, so that the harness,
// its self-checks and the JSON schema cannot rot unnoticed. The figures
// themselves are not judged: they mean nothing at this size.
func TestBenchSmoke(t *testing.T) {
	testenv.Privileged(t)
	testenv.Command(t, "ip")
	testenv.Command(t, "sysctl")
	var out, errb bytes.Buffer
	args := []string{"--json", "--repeat", "64", "--rounds", "1", "--attempts", "1", "--flows", "32",
		"--live-repeat", "256", "--live-rounds", "1", "--live-batch", "16"}
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("run %v: %v\n%s", args, err, errb.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if rep.Schema != Schema {
		t.Errorf("schema = %q, want %q", rep.Schema, Schema)
	}
	wantSections := []string{"dataplane", "live"}
	if len(rep.Sections) != len(wantSections) {
		t.Fatalf("got %d sections, want %v", len(rep.Sections), wantSections)
	}
	for i, s := range rep.Sections {
		if s.Name != wantSections[i] {
			t.Errorf("section %d = %q, want %q", i, s.Name, wantSections[i])
		}
		names := map[string]Result{}
		for _, r := range s.Results {
			names[r.Name] = r
			if r.Value <= 0 || r.Rounds != 1 {
				t.Errorf("%s %s: value %v over %d rounds, want a positive figure over 1 round", s.Name, r.Name, r.Value, r.Rounds)
			}
			if r.RatioToFloor == nil {
				t.Errorf("%s %s: no ratio to the floor", s.Name, r.Name)
			}
		}
		// 2 methods x 3 backend counts x 4 kinds, and the references.
		for _, want := range []string{"dr/1/new", "dr/100/est", "dr/1000/est-many", "tun/1/pass", "tun/1000/new"} {
			r, ok := names[want]
			if !ok {
				t.Errorf("%s: no result for %s", s.Name, want)
				continue
			}
			if len(r.Checked) == 0 {
				t.Errorf("%s %s: no counters checked", s.Name, want)
			}
		}
		if got := len(s.Results); got < 24+3 {
			t.Errorf("%s: %d results, want the 24 cases and the references", s.Name, got)
		}
	}
	dp := rep.Sections[0]
	for _, r := range dp.Results {
		if strings.HasSuffix(r.Name, "/new") && !contains(r.Checked, "flow_new=64") {
			t.Errorf("%s checked %v, want flow_new=64 (every run a new flow)", r.Name, r.Checked)
		}
		if strings.HasSuffix(r.Name, "/est") && !contains(r.Checked, "flow_hit=64") {
			t.Errorf("%s checked %v, want flow_hit=64", r.Name, r.Checked)
		}
		if strings.HasPrefix(r.Name, "tun/") && !strings.HasSuffix(r.Name, "/pass") && !contains(r.Checked, "tx_tun=64") {
			t.Errorf("%s checked %v, want tx_tun=64", r.Name, r.Checked)
		}
		if strings.HasSuffix(r.Name, "/new") && r.Target == nil {
			t.Errorf("%s has no target", r.Name)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "zero repeat", args: []string{"--repeat", "0"}},
		{name: "repeat overflow", args: []string{"--repeat", "4294967296"}},
		{name: "no rounds", args: []string{"--rounds", "0"}},
		{name: "no attempts", args: []string{"--attempts", "0"}},
		{name: "one flow", args: []string{"--flows", "1"}},
		{name: "batch too big", args: []string{"--live-batch", "257"}},
		{name: "unknown section", args: []string{"--sections", "nope"}},
		{name: "stray argument", args: []string{"extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := run(context.Background(), tt.args, io.Discard, io.Discard); err == nil {
				t.Errorf("run(%v) succeeded, want an error", tt.args)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pat, name string
		want      bool
	}{
		{"dr/*/new", "dr/100/new", true},
		{"dr/*/new", "tun/100/new", false},
		{"new", "tun/1000/new", true},
		{"new", "tun/1000/est", false},
		{"est*", "dr/1/est-many", true},
		{"1000", "dr/1000/pass", true},
		{"tun/1/*", "tun/1/est", true},
		{"tun/1/*", "tun/100/est", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pat, tt.name); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pat, tt.name, got, tt.want)
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
