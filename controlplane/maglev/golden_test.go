package maglev

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// The values below were computed once and pinned. They are the table
// format: directors running another version of xdplb must compute the
// same, or flows change backend when the VIP moves. If one of these tests
// fails, the change is incompatible; do not update the values without
// making that a deliberate, announced format change.

func TestGoldenPermutations(t *testing.T) {
	tests := []struct {
		name         string
		m            uint32
		offset, skip uint32
	}{
		{"198.18.0.21", DefaultSize, 8144, 34044},
		{"198.18.0.22", DefaultSize, 33158, 11472},
		{"2001:db8::1", DefaultSize, 40554, 30511},
		{"198.18.0.21", LargeSize, 415201, 83976},
		{"198.18.0.22", LargeSize, 619175, 47520},
		{"2001:db8::1", LargeSize, 170187, 230963},
	}
	for _, tt := range tests {
		offset, skip := permutation(tt.name, tt.m)
		if offset != tt.offset || skip != tt.skip {
			t.Errorf("permutation(%q, %d) = (%d, %d), want (%d, %d)", tt.name, tt.m, offset, skip, tt.offset, tt.skip)
		}
	}
}

func TestGoldenTables(t *testing.T) {
	tests := []struct {
		name     string
		backends []Backend
		m        uint32
		want     Table
	}{
		{
			name:     "equal weights",
			backends: []Backend{{"198.18.0.31", 1}, {"198.18.0.32", 1}, {"198.18.0.33", 1}},
			m:        13,
			want:     Table{1, 0, 0, 2, 1, 2, 1, 0, 2, 2, 0, 0, 1},
		},
		{
			name:     "weights 1:2:3 and a zero",
			backends: []Backend{{"198.18.0.21", 1}, {"198.18.0.22", 2}, {"198.18.0.23", 3}, {"198.18.0.24", 0}},
			m:        31,
			want: Table{1, 2, 1, 0, 1, 0, 0, 2, 2, 1, 2, 1, 2, 2, 2, 0,
				0, 2, 1, 1, 2, 1, 2, 1, 2, 2, 2, 2, 2, 2, 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustBuild(t, tt.backends, tt.m)
			if !slices.Equal(tt.want, got) {
				t.Errorf("table = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestGoldenDigests pins full-size tables by the SHA-256 of their owners'
// names, one per line, slot 0 first.
func TestGoldenDigests(t *testing.T) {
	bs := addrs(10, 0)
	for i := range bs {
		bs[i].Weight = uint32(i%3 + 1)
	}
	tests := []struct {
		m    uint32
		want string
	}{
		{DefaultSize, "ea85bccb0e9d0678e174bcd7283ae87783e9efc5d4cfc7254ffedf0d07b3b09c"},
		{LargeSize, "f4713852905be1d1c5bf1e732964d94564dda4cae0fb9f7d47921c6d0c8f770d"},
	}
	for _, tt := range tests {
		sum := sha256.Sum256([]byte(strings.Join(owners(t, mustBuild(t, bs, tt.m), bs), "\n")))
		if got := hex.EncodeToString(sum[:]); got != tt.want {
			t.Errorf("m=%d: table digest = %s, want %s", tt.m, got, tt.want)
		}
	}
}
