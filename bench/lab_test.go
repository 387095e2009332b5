package main

import (
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/lab"
)

// TestLabLoadCheck proves the lab section fails on what a user would call
// a broken run: a lost request, silence, a backend that never answered a
// VIP, or a direct load answered by another host.
func TestLabLoadCheck(t *testing.T) {
	topo := lab.DefaultTopology()
	all := map[string]int{"be1": 5, "be2": 5, "be3": 10}
	vip := labTarget{name: "dr/web-dr", url: "http://198.18.1.100/"}
	direct := labTarget{name: "direct/be1", url: "http://198.18.0.21/", only: "be1"}
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
