package main

import (
	"context"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/lab"
	"github.com/xdplb/xdplb/internal/testenv"
)

// TestLabLoadCheck proves the lab section fails on what a user would call
// a broken run: a lost request, silence, a backend that never answered a
// VIP, or a direct load answered by another host.
func TestLabLoadCheck(t *testing.T) {
	topo := lab.DefaultTopology()
	all := map[string]int{"be1": 5, "be2": 5, "be3": 10}
	vip := labTarget{name: "dr/web-dr", urls: []string{"http://198.18.1.100/"}}
	direct := labTarget{name: "direct/be1", urls: []string{"http://198.18.0.21/"}, only: "be1"}
	tests := []struct {
		name    string
		target  labTarget
		load    labLoad
		wantErr bool
	}{
		{name: "vip spread over all", target: vip, load: labLoad{answered: 20, backends: all}},
		{name: "vip with an error", target: vip, load: labLoad{answered: 20, errors: 1, backends: all, firstErrs: []string{"reset"}}, wantErr: true},
		{name: "nothing answered", target: vip, load: labLoad{backends: map[string]int{}}, wantErr: true},
		{name: "vip missing a backend", target: vip, load: labLoad{answered: 10, backends: map[string]int{"be1": 5, "be3": 5}}, wantErr: true},
		{name: "vip unknown backend", target: vip, load: labLoad{answered: 21, backends: map[string]int{"be1": 5, "be2": 5, "be3": 10, "x": 1}}, wantErr: true},
		{name: "direct from its backend", target: direct, load: labLoad{answered: 7, backends: map[string]int{"be1": 7}}},
		{name: "direct from another", target: direct, load: labLoad{answered: 7, backends: map[string]int{"be1": 6, "be2": 1}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.load.check(tt.target, topo)
			if got := err != nil; got != tt.wantErr {
				t.Errorf("check = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestPercentileMS(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, tt := range []struct {
		p    float64
		want float64
	}{{0.50, 50}, {0.90, 90}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := percentileMS(lat, tt.p); got != tt.want {
			t.Errorf("percentileMS(1..100 ms, %v) = %v, want %v", tt.p, got, tt.want)
		}
	}
}

// TestLabSpread proves the direct/spread floor asks each backend as often
// as its weight, interleaved.
func TestLabSpread(t *testing.T) {
	urls, names := labSpread(lab.DefaultTopology())
	wantNames := []string{"be1", "be2", "be3", "be3"}
	wantURLs := []string{"http://198.18.0.21/", "http://198.18.0.22/", "http://198.18.0.23/", "http://198.18.0.23/"}
	if !slices.Equal(names, wantNames) || !slices.Equal(urls, wantURLs) {
		t.Errorf("labSpread = %v %v, want %v %v", urls, names, wantURLs, wantNames)
	}
	topo := lab.DefaultTopology()
	topo.Backends[0].Weight, topo.Backends[1].Weight, topo.Backends[2].Weight = 3, 0, 1
	_, names = labSpread(topo)
	if want := []string{"be1", "be3", "be1", "be1"}; !slices.Equal(names, want) {
		t.Errorf("labSpread of weights 3,0,1 = %v, want %v", names, want)
	}
}

// TestPairedRatio proves the ratio compares rounds with rounds: drift that
// moves both targets alike cancels.
func TestPairedRatio(t *testing.T) {
	load := func(rps ...float64) []labLoad {
		var out []labLoad
		for _, r := range rps {
			out = append(out, labLoad{answered: int(r), took: time.Second})
		}
		return out
	}
	tests := []struct {
		name string
		a, b []labLoad
		want float64
	}{
		{name: "same", a: load(100, 200, 300), b: load(100, 200, 300), want: 1},
		{name: "drift cancels", a: load(90, 180, 270), b: load(100, 200, 300), want: 0.9},
		{name: "median of rounds", a: load(50, 90, 200), b: load(100, 100, 100), want: 0.9},
		{name: "shorter b", a: load(80, 1000), b: load(100), want: 0.8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pairedRatio(tt.a, tt.b); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("pairedRatio = %v, want %v", got, tt.want)
			}
		})
	}
	if got := pairedRatio(nil, nil); !math.IsNaN(got) {
		t.Errorf("pairedRatio of no rounds = %v, want NaN", got)
	}
}

func TestParseProcTicks(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{name: "plain", in: "1234 (xdplb) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1000 0 0", want: 325},
		{name: "name with spaces and parens", in: "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 5 0 0", want: 7},
		{name: "short", in: "1 (x) S 1 2 3", wantErr: true},
		{name: "no name", in: "1 x S", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcTicks(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseProcTicks = %d, %v, want error %v", got, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseProcTicks = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestLabSection runs the lab section for one round and checks what a
// reader relies on: the floor, direct/be1 and both VIPs, each answered, with
// its ratio to the floor and the CPU use by who.
func TestLabSection(t *testing.T) {
	testenv.Privileged(t)
	testenv.Command(t, "go")
	rep, err := labSection{}.Run(context.Background(), Config{Rounds: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"direct/spread (floor)", "direct/be1", "dr/web-dr", "tun/web-tun"}
	if len(rep.Results) != len(wantNames) {
		t.Fatalf("got %d results, want %v", len(rep.Results), wantNames)
	}
	for i, res := range rep.Results {
		if res.Name != wantNames[i] {
			t.Errorf("result %d = %q, want %q", i, res.Name, wantNames[i])
		}
		if res.Value <= 0 || res.Metrics["requests"] <= 0 {
			t.Errorf("%s: %v rps over %v requests, want both above 0", res.Name, res.Value, res.Metrics["requests"])
		}
		if res.RatioToFloor == nil || *res.RatioToFloor <= 0 {
			t.Errorf("%s: ratio to the floor %v, want one above 0", res.Name, res.RatioToFloor)
		}
		for _, k := range []string{"busy_cpus", "client_cpus", "backend_cpus", "director_cpus", "softirq_cpus", "p50_ms", "p99_ms"} {
			if _, ok := res.Metrics[k]; !ok {
				t.Errorf("%s: no metric %s", res.Name, k)
			}
		}
		_, hasMet := res.Metrics["met"]
		if want := i >= 2; hasMet != want {
			t.Errorf("%s: met reported %v, want %v", res.Name, hasMet, want)
		}
		answered := 0
		for _, c := range res.Checked {
			if strings.HasPrefix(c, "answers_") {
				answered++
			}
		}
		want := len(lab.DefaultTopology().Backends)
		if i == 1 {
			want = 1 // direct/be1
		}
		if answered != want {
			t.Errorf("%s: answers from %d backends (%v), want %d", res.Name, answered, res.Checked, want)
		}
	}
	if got := *rep.Results[0].RatioToFloor; got != 1 {
		t.Errorf("floor's ratio to itself = %v, want 1", got)
	}
}
