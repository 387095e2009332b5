package maglev

import (
	"fmt"
	"testing"
)

// addrs returns n backends with weight w, named like the control plane
// names them: by address, 198.18.0.1, 198.18.0.2, ... (RFC 2544 range).
func addrs(n int, w uint32) []Backend {
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{Name: fmt.Sprintf("198.18.%d.%d", i/250, i%250+1), Weight: w}
	}
	return bs
}

// mustBuild builds a table and fails the test on error.
func mustBuild(t testing.TB, bs []Backend, m uint32) Table {
	t.Helper()
	tab, err := Build(bs, m)
	if err != nil {
		t.Fatalf("Build(%d backends, %d): %v", len(bs), m, err)
	}
	if uint32(len(tab)) != m {
		t.Fatalf("Build(%d backends, %d): table has %d slots", len(bs), m, len(tab))
	}
	return tab
}

// owners resolves a table to backend names, "" for a slot without one, so
// tables built from differently ordered inputs can be compared.
func owners(t testing.TB, tab Table, bs []Backend) []string {
	t.Helper()
	names := make([]string, len(tab))
	for s, i := range tab {
		switch {
		case i == -1:
		case i < 0 || int(i) >= len(bs):
			t.Fatalf("slot %d holds index %d, want -1 or an index below %d", s, i, len(bs))
		default:
			names[s] = bs[i].Name
		}
	}
	return names
}

// counts returns how many slots each backend name owns.
func counts(names []string) map[string]int {
	c := make(map[string]int)
	for _, n := range names {
		if n != "" {
			c[n]++
		}
	}
	return c
}

// firstDiff returns the first slot where a and b differ, or -1.
func firstDiff(a, b []string) int {
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// without returns bs without the backend at index i, in a new slice.
func without(bs []Backend, i int) []Backend {
	out := make([]Backend, 0, len(bs)-1)
	out = append(out, bs[:i]...)
	return append(out, bs[i+1:]...)
}
