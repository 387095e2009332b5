package maglev

import (
	"fmt"
	"hash/fnv"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// referenceBuild computes a table straight from the definition in the
// package documentation, as slowly and plainly as possible: full
// preference lists, turn times as exact rationals, one turn at a time.
// Build must agree with it on every input.
func referenceBuild(bs []Backend, m uint32) Table {
	type member struct {
		index int
		prefs []uint32
		pos   int
		turns int64
	}
	var ms []*member
	for i, b := range bs {
		if b.Weight == 0 {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(b.Name))
		seed := h.Sum64()
		offset := splitmix64(seed+0x9e3779b97f4a7c15) % uint64(m)
		skip := splitmix64(seed+0x9e3779b97f4a7c15+0x9e3779b97f4a7c15)%uint64(m-1) + 1
		prefs := make([]uint32, m)
		for j := range prefs {
			prefs[j] = uint32((offset + uint64(j)*skip) % uint64(m))
		}
		ms = append(ms, &member{index: i, prefs: prefs})
	}
	tab := make(Table, m)
	for s := range tab {
		tab[s] = -1
	}
	if len(ms) == 0 {
		return tab
	}
	next := func(x *member) *big.Rat {
		return big.NewRat(2*x.turns+1, 2*int64(bs[x.index].Weight))
	}
	for range m {
		var best *member
		for _, x := range ms {
			if best == nil {
				best = x
				continue
			}
			c := next(x).Cmp(next(best))
			wx, wb := bs[x.index].Weight, bs[best.index].Weight
			if c < 0 || c == 0 && (wx > wb || wx == wb && strings.Compare(bs[x.index].Name, bs[best.index].Name) < 0) {
				best = x
			}
		}
		for tab[best.prefs[best.pos]] != -1 {
			best.pos++
		}
		tab[best.prefs[best.pos]] = int32(best.index)
		best.pos++
		best.turns++
	}
	return tab
}

func TestMatchesReference(t *testing.T) {
	// Build replays one period of turns when the weights sum to less
	// than the table size and uses its heap throughout otherwise; both
	// must give the reference's table.
	fixed := []struct {
		name    string
		weights []uint32
		m       uint32
	}{
		{"period shorter than the table", []uint32{1, 2, 3, 3, 10}, 1009},
		{"period equal to the table", []uint32{50, 51}, 101},
		{"period longer than the table", []uint32{1000, 999, 7, 7}, 101},
	}
	for _, tt := range fixed {
		t.Run(tt.name, func(t *testing.T) {
			bs := addrs(len(tt.weights), 0)
			for i, w := range tt.weights {
				bs[i].Weight = w
			}
			want := owners(t, referenceBuild(bs, tt.m), bs)
			got := owners(t, mustBuild(t, bs, tt.m), bs)
			if i := firstDiff(want, got); i >= 0 {
				t.Fatalf("slot %d is %q, want %q", i, got[i], want[i])
			}
		})
	}

	r := rand.New(rand.NewPCG(5, 6))
	for run := range 60 {
		m := []uint32{2, 3, 13, 101, 251, 1009}[run%6]
		n := 1 + r.IntN(min(int(m), 25))
		bs := addrs(n, 0)
		for i := range bs {
			switch run % 4 {
			case 0: // equal weights: the paper's round robin
				bs[i].Weight = 1
			case 1: // small weights with many ties between groups
				bs[i].Weight = uint32(r.IntN(4))
			case 2:
				bs[i].Weight = uint32(r.IntN(1000))
			case 3: // the full range, to exercise the 64-bit comparison
				bs[i].Weight = r.Uint32()
			}
		}
		r.Shuffle(n, func(a, b int) { bs[a], bs[b] = bs[b], bs[a] })
		t.Run(fmt.Sprintf("run=%d/m=%d/n=%d", run, m, n), func(t *testing.T) {
			want := owners(t, referenceBuild(bs, m), bs)
			got := owners(t, mustBuild(t, bs, m), bs)
			if i := firstDiff(want, got); i >= 0 {
				t.Fatalf("slot %d is %q, want %q (weights %v)", i, got[i], want[i], bs)
			}
		})
	}
}

func TestHashes(t *testing.T) {
	for _, s := range []string{"", "a", "198.18.0.21", "2001:db8::1", strings.Repeat("x", 300)} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := fnv1a64(s), h.Sum64(); got != want {
			t.Errorf("fnv1a64(%q) = %#x, want %#x (hash/fnv)", s, got, want)
		}
	}
	// SplitMix64 seeded with 0 starts 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4.
	if got, want := splitmix64(0x9e3779b97f4a7c15), uint64(0xe220a8397b1dcdaf); got != want {
		t.Errorf("splitmix64 first output = %#x, want %#x", got, want)
	}
	if got, want := splitmix64(2*0x9e3779b97f4a7c15&(1<<64-1)), uint64(0x6e789e6aa1b965f4); got != want {
		t.Errorf("splitmix64 second output = %#x, want %#x", got, want)
	}
}

func TestIsPrime(t *testing.T) {
	var want []uint32
	for n := uint32(0); n < 2000; n++ {
		if big.NewInt(int64(n)).ProbablyPrime(0) {
			want = append(want, n)
		}
	}
	var got []uint32
	for n := uint32(0); n < 2000; n++ {
		if isPrime(n) {
			got = append(got, n)
		}
	}
	if !slices.Equal(want, got) {
		t.Errorf("primes below 2000: got %v, want %v", got, want)
	}
	for _, n := range []uint32{DefaultSize, LargeSize, 16777213} {
		if !isPrime(n) {
			t.Errorf("isPrime(%d) = false, want true", n)
		}
	}
	for _, n := range []uint32{65535, 257 * 257, 4093 * 4099, MaxSize} {
		if isPrime(n) != big.NewInt(int64(n)).ProbablyPrime(0) {
			t.Errorf("isPrime(%d) disagrees with math/big", n)
		}
	}
}
