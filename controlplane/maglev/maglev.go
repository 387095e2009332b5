package maglev

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

const (
	// DefaultSize is the table size the data plane uses unless configured
	// otherwise: a prime about 65 times the largest expected backend set.
	DefaultSize uint32 = 65537

	// LargeSize is the larger size the Maglev paper evaluates: ten times
	// the slots per backend, for large backend sets or less churn when
	// one of them changes.
	LargeSize uint32 = 655373

	// MaxSize bounds the table size (64 MiB of slots). It keeps the
	// scheduling arithmetic within 64 bits (see the package documentation).
	MaxSize uint32 = 1 << 24
)

// Errors returned by Build, wrapped with the offending value; test them
// with errors.Is.
var (
	ErrSize            = errors.New("table size must be a prime no larger than 16777216")
	ErrEmptyName       = errors.New("backend name is empty")
	ErrDuplicateName   = errors.New("backend name appears more than once")
	ErrTooManyBackends = errors.New("more backends with a weight than table slots")
)

// Backend is one entry of the set a table is built from.
type Backend struct {
	// Name identifies the backend stably across builds and across
	// directors; the control plane uses the backend's address
	// ("198.18.0.21"). Only its bytes matter.
	Name string
	// Weight is the backend's relative share of the slots; 0 leaves the
	// backend out of the table.
	Weight uint32
}

// Table is a Maglev lookup table. Entry i holds the index, in the slice of
// backends given to Build, of the backend that owns slot i, or -1 when no
// backend has a weight. A flow whose hash is h belongs to slot h % len(t).
type Table []int32

// Lookup returns the index of the backend that owns hash, as the data plane
// picks it (slot = hash % table size), or -1 when the slot has no backend
// or the table is empty.
func (t Table) Lookup(hash uint32) int {
	if len(t) == 0 {
		return -1
	}
	return int(t[hash%uint32(len(t))])
}

// Build computes the table of size m for backends. See Builder.Build.
func Build(backends []Backend, m uint32) (Table, error) {
	var b Builder
	return b.Build(nil, backends, m)
}

// Builder computes tables and keeps its working memory between builds, so a
// daemon that rebuilds on every health change does not allocate each time.
// The zero value is ready to use. A Builder must not be used by two
// goroutines at once.
type Builder struct {
	order   []int32  // indexes into the input, in schedule order
	walkers []walker // one per backend with a weight, in schedule order
	groups  []group  // runs of walkers with the same weight, as a heap: earliest turn first
	cycle   []span   // one period of group turns, when it is shorter than the table
	taken   []uint64 // bit i set once slot i has an owner
}

// span is a group's walkers, b.walkers[start:end].
type span struct{ start, end int32 }

// walker is a backend's position in its preference list.
type walker struct {
	next  uint32 // the next slot it will try
	skip  uint32 // its step through the table
	index int32  // its index in the input
}

// group is a run of walkers sharing one weight. Its members take their
// turns together, in name order. Their next turn is at time
// odd/(2*weight), odd being 2k+1 after k turns each.
type group struct {
	odd, weight uint64
	span
}

// Build computes the Maglev table of size m for backends and returns it.
// The table is stored in dst when cap(dst) >= m, so a caller that keeps the
// previous table can alternate between two buffers; pass nil for a new
// table.
//
// The table depends only on the set of (Name, Weight) pairs: not on the
// order of backends, the machine, or earlier builds. Backends with weight 0
// own no slot; when no backend has a weight, every entry is -1. m must be a
// prime no larger than MaxSize, names must be unique and non-empty, and
// there may be at most m backends with a weight.
func (b *Builder) Build(dst Table, backends []Backend, m uint32) (Table, error) {
	if !isPrime(m) || m > MaxSize {
		return nil, fmt.Errorf("build maglev table: size %d: %w", m, ErrSize)
	}
	if err := b.prepare(backends, m); err != nil {
		return nil, fmt.Errorf("build maglev table: %w", err)
	}

	if uint32(cap(dst)) >= m {
		dst = dst[:m]
	} else {
		dst = make(Table, m)
	}
	if len(b.walkers) == 0 {
		for i := range dst {
			dst[i] = -1
		}
		return dst, nil
	}
	b.fill(dst, m)
	return dst, nil
}

// prepare validates backends and lays out the walkers and groups in schedule
// order: weight descending, then name ascending (bytewise).
func (b *Builder) prepare(backends []Backend, m uint32) error {
	b.order = b.order[:0]
	for i := range backends {
		if backends[i].Name == "" {
			return fmt.Errorf("backend %d: %w", i, ErrEmptyName)
		}
		b.order = append(b.order, int32(i))
	}
	byName := func(x, y int32) int { return strings.Compare(backends[x].Name, backends[y].Name) }
	slices.SortFunc(b.order, byName)
	for i := 1; i < len(b.order); i++ {
		if name := backends[b.order[i]].Name; name == backends[b.order[i-1]].Name {
			return fmt.Errorf("backend %q: %w", name, ErrDuplicateName)
		}
	}

	// Drop the zero weights, keeping name order, and see whether the
	// weights differ at all: equal weights (the usual case) need no
	// second sort.
	weighted := b.order[:0]
	mixed := false
	for _, i := range b.order {
		w := backends[i].Weight
		if w == 0 {
			continue
		}
		if len(weighted) > 0 && w != backends[weighted[0]].Weight {
			mixed = true
		}
		weighted = append(weighted, i)
	}
	b.order = weighted
	if uint64(len(weighted)) > uint64(m) {
		return fmt.Errorf("%d backends for %d slots: %w", len(weighted), m, ErrTooManyBackends)
	}
	if mixed {
		slices.SortStableFunc(b.order, func(x, y int32) int {
			wx, wy := backends[x].Weight, backends[y].Weight
			switch {
			case wx > wy:
				return -1
			case wx < wy:
				return 1
			}
			return 0
		})
	}

	b.walkers = b.walkers[:0]
	b.groups = b.groups[:0]
	for n, i := range b.order {
		offset, skip := permutation(backends[i].Name, m)
		b.walkers = append(b.walkers, walker{next: offset, skip: skip, index: i})
		w := backends[i].Weight
		if g := len(b.groups) - 1; g >= 0 && b.groups[g].weight == uint64(w) {
			b.groups[g].end++
			continue
		}
		b.groups = append(b.groups, group{odd: 1, weight: uint64(w), span: span{int32(n), int32(n) + 1}})
	}
	return nil
}

// fill runs the turns until every slot has an owner. On its turn a backend
// walks its preference list to the first slot without an owner and takes
// it. Groups are visited in order of their next turn time (2k+1)/(2*weight),
// so every backend's turns, and therefore its slots, stay proportional to
// its weight all the way through the fill.
//
// That order is periodic: in every unit of time a group has exactly
// weight turns, at the same fractions of the unit, and no turn falls on a
// whole unit (2k+1 is odd). So when the sum of the group weights is below
// m, fill records one period from the heap and replays it, and the heap's
// cost is paid once per period rather than once per turn.
func (b *Builder) fill(t Table, m uint32) {
	words := int(m+63) / 64
	if cap(b.taken) >= words {
		b.taken = b.taken[:words]
		clear(b.taken)
	} else {
		b.taken = make([]uint64, words)
	}
	w := walk{walkers: b.walkers, taken: b.taken, t: t, m: m, left: m}

	var period uint64
	for i := range b.groups {
		period += b.groups[i].weight
	}
	if period < uint64(m) {
		b.cycle = b.cycle[:0]
		for range period {
			b.cycle = append(b.cycle, b.nextTurn())
		}
		for {
			for _, s := range b.cycle {
				if w.turn(s) {
					return
				}
			}
		}
	}
	for !w.turn(b.nextTurn()) {
	}
}

// nextTurn returns the group whose turn comes next and moves its next turn
// one step later. The groups start in schedule order, which is already a
// valid heap: no group has had a turn, so the heaviest group's comes
// first, and weights descend along the slice.
func (b *Builder) nextTurn() span {
	g := &b.groups[0]
	s := g.span
	g.odd += 2
	b.siftDown()
	return s
}

// walk is the state of a fill in progress.
type walk struct {
	walkers []walker
	taken   []uint64 // bit i set once slot i has an owner
	t       Table
	m       uint32
	left    uint32 // slots without an owner
}

// turn gives each walker of s, in order, the first slot without an owner
// on its preference list. It reports whether the table is full.
func (w *walk) turn(s span) bool {
	taken, m := w.taken, w.m
	for n := s.start; n < s.end; n++ {
		k := &w.walkers[n]
		c := k.next
		for taken[c>>6]&(1<<(c&63)) != 0 {
			c += k.skip
			if c >= m {
				c -= m
			}
		}
		taken[c>>6] |= 1 << (c & 63)
		w.t[c] = k.index
		c += k.skip
		if c >= m {
			c -= m
		}
		k.next = c
		w.left--
		if w.left == 0 {
			return true
		}
	}
	return false
}

// before reports whether group x's next turn comes before group y's: the
// earlier time odd/(2*weight), or on a tie the heavier group. The
// comparison is exact: odd <= 2*MaxSize+1 < 2^26 and weights are below
// 2^32, so the cross products fit in 64 bits.
func before(x, y *group) bool {
	tx, ty := x.odd*y.weight, y.odd*x.weight
	if tx != ty {
		return tx < ty
	}
	return x.weight > y.weight
}

// siftDown restores the heap after the root group's turn moved later.
func (b *Builder) siftDown() {
	h := b.groups
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && before(&h[r], &h[l]) {
			c = r
		}
		if !before(&h[c], &h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
