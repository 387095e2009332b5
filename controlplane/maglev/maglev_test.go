package maglev

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBuildErrors(t *testing.T) {
	three := addrs(3, 1)
	tests := []struct {
		name     string
		backends []Backend
		m        uint32
		want     error
	}{
		{"size zero", three, 0, ErrSize},
		{"size one", three, 1, ErrSize},
		{"size even", three, 65536, ErrSize},
		{"size odd composite", three, 65535, ErrSize},
		{"size square of prime", three, 257 * 257, ErrSize},
		{"size prime above max", three, 16777259, ErrSize},
		{"empty name", []Backend{{Name: "198.18.0.1", Weight: 1}, {Name: "", Weight: 1}}, 7, ErrEmptyName},
		{"empty name with zero weight", []Backend{{Name: "", Weight: 0}}, 7, ErrEmptyName},
		{"duplicate name", []Backend{{"198.18.0.1", 1}, {"198.18.0.2", 1}, {"198.18.0.1", 2}}, 7, ErrDuplicateName},
		{"duplicate name with zero weight", []Backend{{"198.18.0.1", 0}, {"198.18.0.1", 0}}, 7, ErrDuplicateName},
		{"more weighted backends than slots", addrs(4, 1), 3, ErrTooManyBackends},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Build(tt.backends, tt.m)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Build() error = %v, want %v", err, tt.want)
			}
			if tab != nil {
				t.Errorf("Build() returned a table of %d slots with an error", len(tab))
			}
		})
	}
}

func TestBuildAcceptsEdgeSizes(t *testing.T) {
	tests := []struct {
		name     string
		backends []Backend
		m        uint32
	}{
		{"smallest prime", addrs(2, 1), 2},
		{"as many backends as slots", addrs(7, 1), 7},
		{"zero weights do not count against the size", append(addrs(3, 1), Backend{"198.18.9.9", 0}), 3},
		{"largest size", addrs(3, 1), 16777213},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := mustBuild(t, tt.backends, tt.m)
			for s, i := range tab {
				if i < 0 {
					t.Fatalf("slot %d has no owner, want every slot owned", s)
				}
			}
		})
	}
}

func TestNoWeightedBackends(t *testing.T) {
	tests := []struct {
		name     string
		backends []Backend
	}{
		{"nil", nil},
		{"empty", []Backend{}},
		{"all zero weight", addrs(5, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := mustBuild(t, tt.backends, 13)
			for s, i := range tab {
				if i != -1 {
					t.Errorf("slot %d = %d, want -1", s, i)
				}
			}
			if got := tab.Lookup(12345); got != -1 {
				t.Errorf("Lookup() = %d, want -1", got)
			}
		})
	}
}

func TestZeroWeightOwnsNothing(t *testing.T) {
	weighted := []Backend{{"198.18.0.21", 1}, {"198.18.0.22", 2}, {"198.18.0.23", 3}}
	mixed := []Backend{{"198.18.0.20", 0}, weighted[0], {"198.18.0.99", 0}, weighted[1], weighted[2], {"198.18.0.24", 0}}
	want := owners(t, mustBuild(t, weighted, DefaultSize), weighted)
	got := owners(t, mustBuild(t, mixed, DefaultSize), mixed)
	if i := firstDiff(want, got); i >= 0 {
		t.Fatalf("zero-weight backends changed the table: slot %d is %q, want %q", i, got[i], want[i])
	}
}

// TestEqualWeightsBalance checks the paper's balance: with equal weights
// every backend owns floor(M/N) or ceil(M/N) slots.
func TestEqualWeightsBalance(t *testing.T) {
	for _, m := range []uint32{7, 251, DefaultSize, LargeSize} {
		for _, n := range []int{1, 2, 3, 7, 10, 100, 250, 1000} {
			if uint32(n) > m {
				continue
			}
			t.Run(fmt.Sprintf("m=%d/n=%d", m, n), func(t *testing.T) {
				bs := addrs(n, 3)
				c := counts(owners(t, mustBuild(t, bs, m), bs))
				lo, hi := int(m)/n, (int(m)+n-1)/n
				for _, b := range bs {
					if got := c[b.Name]; got < lo || got > hi {
						t.Errorf("%s owns %d slots, want %d..%d (M/N = %.2f)", b.Name, got, lo, hi, float64(m)/float64(n))
					}
				}
			})
		}
	}
}

// TestWeightedShares checks that weights apply over the whole table: every
// backend's share is within 1% of its proportion.
func TestWeightedShares(t *testing.T) {
	ramp := make([]uint32, 100)
	for i := range ramp {
		ramp[i] = uint32(i%10 + 1)
	}
	tests := []struct {
		name    string
		weights []uint32
		m       uint32
	}{
		{"1:2", []uint32{1, 2}, DefaultSize},
		{"1:1:10", []uint32{1, 1, 10}, DefaultSize},
		{"1:100", []uint32{1, 100}, DefaultSize},
		{"100:1 reversed input", []uint32{100, 1}, DefaultSize},
		{"1:2:3:4:5", []uint32{1, 2, 3, 4, 5}, DefaultSize},
		{"one heavy among ten", []uint32{1, 1, 1, 1, 1, 1, 1, 1, 1, 20}, DefaultSize},
		{"100 backends weights 1..10", ramp, DefaultSize},
		{"100 backends weights 1..10 large table", ramp, LargeSize},
		{"weights near the uint32 limit", []uint32{math.MaxUint32, math.MaxUint32 / 2, math.MaxUint32 / 3}, DefaultSize},
		{"1:100 large table", []uint32{1, 100}, LargeSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs := make([]Backend, len(tt.weights))
			var total float64
			for i, w := range tt.weights {
				bs[i] = Backend{Name: fmt.Sprintf("198.18.0.%d", i+1), Weight: w}
				total += float64(w)
			}
			c := counts(owners(t, mustBuild(t, bs, tt.m), bs))
			for _, b := range bs {
				want := float64(tt.m) * float64(b.Weight) / total
				got := float64(c[b.Name])
				if math.Abs(got-want) > 0.01*want {
					t.Errorf("%s (weight %d) owns %.0f slots, want %.1f ± 1%%", b.Name, b.Weight, got, want)
				}
			}
		})
	}
}

// TestWeightedSharesBound checks the apportionment bound the package
// documents, on random weight sets: backend i owns within
// 1/2 + N*w_i/(2W) slots of M*w_i/W.
func TestWeightedSharesBound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for run := range 40 {
		n := 1 + r.IntN(60)
		m := []uint32{251, 1009, DefaultSize}[run%3]
		bs := addrs(n, 0)
		var total float64
		for i := range bs {
			bs[i].Weight = uint32(r.IntN(1000))
			if run%4 == 0 {
				bs[i].Weight = r.Uint32()
			}
			total += float64(bs[i].Weight)
		}
		t.Run(fmt.Sprintf("run=%d/n=%d/m=%d", run, n, m), func(t *testing.T) {
			c := counts(owners(t, mustBuild(t, bs, m), bs))
			weighted := 0
			for _, b := range bs {
				if b.Weight > 0 {
					weighted++
				}
			}
			for _, b := range bs {
				share := float64(b.Weight) / total
				want := float64(m) * share
				bound := 0.5 + float64(weighted)*share/2 + 1e-9
				if got := float64(c[b.Name]); math.Abs(got-want) > bound {
					t.Errorf("%s (weight %d) owns %.0f slots, want %.2f ± %.2f", b.Name, b.Weight, got, want, bound)
				}
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	bs := addrs(100, 0)
	for i := range bs {
		bs[i].Weight = uint32(i%7 + 1)
	}
	bs[17].Weight = 0
	want := owners(t, mustBuild(t, bs, DefaultSize), bs)

	r := rand.New(rand.NewPCG(3, 4))
	inputs := map[string][]Backend{"reversed": slices.Clone(bs)}
	slices.Reverse(inputs["reversed"])
	inputs["rotated"] = append(slices.Clone(bs[40:]), bs[:40]...)
	for i := range 5 {
		s := slices.Clone(bs)
		r.Shuffle(len(s), func(a, b int) { s[a], s[b] = s[b], s[a] })
		inputs[fmt.Sprintf("shuffled %d", i)] = s
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			got := owners(t, mustBuild(t, in, DefaultSize), in)
			if i := firstDiff(want, got); i >= 0 {
				t.Fatalf("slot %d is %q, want %q", i, got[i], want[i])
			}
		})
	}

	t.Run("weights scaled by the same factor", func(t *testing.T) {
		scaled := slices.Clone(bs)
		for i := range scaled {
			scaled[i].Weight *= 1000
		}
		got := owners(t, mustBuild(t, scaled, DefaultSize), scaled)
		if i := firstDiff(want, got); i >= 0 {
			t.Fatalf("slot %d is %q, want %q", i, got[i], want[i])
		}
	})

	t.Run("one builder reused across different inputs", func(t *testing.T) {
		var b Builder
		var buf Table
		for round := range 3 {
			// Build something else in between, with other sizes,
			// so stale buffers would show.
			other := addrs(7+round*300, 2)
			if _, err := b.Build(buf, other, LargeSize); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Build(nil, other[:3], 13); err != nil {
				t.Fatal(err)
			}
			tab, err := b.Build(buf, bs, DefaultSize)
			if err != nil {
				t.Fatal(err)
			}
			buf = tab
			got := owners(t, tab, bs)
			if i := firstDiff(want, got); i >= 0 {
				t.Fatalf("round %d: slot %d is %q, want %q", round, i, got[i], want[i])
			}
		}
	})
}

func TestBuilderReusesDst(t *testing.T) {
	var b Builder
	dst := make(Table, LargeSize)
	tab, err := b.Build(dst, addrs(10, 1), DefaultSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab) != int(DefaultSize) {
		t.Fatalf("len = %d, want %d", len(tab), DefaultSize)
	}
	if &tab[0] != &dst[0] {
		t.Errorf("Build allocated a new table although dst had room")
	}
	small := make(Table, 5)
	tab, err = b.Build(small, addrs(10, 1), DefaultSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab) != int(DefaultSize) || &tab[0] == &small[0] {
		t.Errorf("Build wrote into a dst too small for the table")
	}
}

func TestBuilderDoesNotAllocateWhenWarm(t *testing.T) {
	bs := addrs(100, 0)
	for i := range bs {
		bs[i].Weight = uint32(i%3 + 1)
	}
	var b Builder
	tab, err := b.Build(nil, bs, DefaultSize)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := b.Build(tab, bs, DefaultSize); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("warm Build allocated %.0f times, want 0", allocs)
	}
}

func TestLookup(t *testing.T) {
	bs := addrs(5, 1)
	tab := mustBuild(t, bs, 13)
	for _, h := range []uint32{0, 1, 12, 13, 14, 1 << 20, math.MaxUint32} {
		if got, want := tab.Lookup(h), int(tab[h%13]); got != want {
			t.Errorf("Lookup(%d) = %d, want slot %d's owner %d", h, got, h%13, want)
		}
	}
	if got := Table(nil).Lookup(7); got != -1 {
		t.Errorf("empty table: Lookup() = %d, want -1", got)
	}
}
