package lab

import (
	"math"
	"slices"
	"testing"
)

func TestShares(t *testing.T) {
	backends := []BackendSpec{{Name: "be1", Weight: 1}, {Name: "be2", Weight: 1}, {Name: "be3", Weight: 2}}
	tests := []struct {
		name   string
		spread Spread
		out    []string
		want   []Share // Tolerance checked separately
		ok     []bool
	}{
		{
			name:   "by weight",
			spread: Spread{Requests: 400, Counts: map[string]int{"be1": 100, "be2": 90, "be3": 210}},
			want:   []Share{{"be1", 1, 100, 100, 0}, {"be2", 1, 100, 90, 0}, {"be3", 2, 200, 210, 0}},
			ok:     []bool{true, true, true},
		},
		{
			name:   "weights ignored",
			spread: Spread{Requests: 900, Counts: map[string]int{"be1": 300, "be2": 300, "be3": 300}},
			want:   []Share{{"be1", 1, 225, 300, 0}, {"be2", 1, 225, 300, 0}, {"be3", 2, 450, 300, 0}},
			ok:     []bool{false, false, false},
		},
		{
			name:   "one out, failures left out",
			spread: Spread{Requests: 310, Failed: 10, Counts: map[string]int{"be2": 100, "be3": 200}},
			out:    []string{"be1"},
			want:   []Share{{"be1", 0, 0, 0, 0}, {"be2", 1, 100, 100, 0}, {"be3", 2, 200, 200, 0}},
			ok:     []bool{true, true, true},
		},
		{
			name:   "an out backend that answers",
			spread: Spread{Requests: 300, Counts: map[string]int{"be1": 5, "be2": 95, "be3": 200}},
			out:    []string{"be1"},
			want:   []Share{{"be1", 0, 0, 5, 0}, {"be2", 1, 100, 95, 0}, {"be3", 2, 200, 200, 0}},
			ok:     []bool{false, true, true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.spread.Shares(backends, tt.out...)
			for i, s := range got {
				w := tt.want[i]
				if s.Backend != w.Backend || s.Weight != w.Weight || s.Got != w.Got || math.Abs(s.Expected-w.Expected) > 1e-9 {
					t.Errorf("share %d = %+v, want %+v", i, s, w)
				}
				if s.OK() != tt.ok[i] {
					t.Errorf("share %s OK() = %v (tolerance %.1f), want %v", s.Backend, s.OK(), s.Tolerance, tt.ok[i])
				}
			}
		})
	}
}

func TestSpreadUnknown(t *testing.T) {
	sp := Spread{Counts: map[string]int{"be1": 1, "zz": 2, "aa": 1}}
	if got, want := sp.Unknown([]BackendSpec{{Name: "be1"}}), []string{"aa", "zz"}; !slices.Equal(got, want) {
		t.Errorf("Unknown = %v, want %v", got, want)
	}
}
