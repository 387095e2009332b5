package loader

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/testenv"
)

// secondHandle returns another Balancer on b's maps, as a second process
// opening the same pins would have: its own file descriptors, its own
// caches, the same kernel maps.
func secondHandle(t *testing.T, b *Balancer) *Balancer {
	t.Helper()
	all := make(map[string]*ebpf.Map, len(b.all))
	o := &Balancer{opts: b.opts, all: all}
	t.Cleanup(func() { o.Close() })
	for name, m := range b.all {
		c, err := m.Clone()
		if err != nil {
			t.Fatalf("clone map %s: %v", name, err)
		}
		all[name] = c
	}
	if err := assignMaps(&o.maps, all); err != nil {
		t.Fatal(err)
	}
	return o
}

// backendAddr gives backend id a distinct address in 198.18.0.0/15.
func backendAddr(id uint32) string {
	return netip.AddrFrom4([4]byte{198, 18, 100 + byte(id>>8), byte(id)}).String()
}

// allocate asks b for a free id, checks that its slot is unused at that
// moment and takes it with SetBackend.
func allocate(t *testing.T, b *Balancer, vipIndex uint32) uint32 {
	t.Helper()
	id, err := b.FreeBackendID()
	if err != nil {
		t.Fatalf("FreeBackendID: %v", err)
	}
	if _, err := b.Backend(id); !errors.Is(err, ErrBackendNotFound) {
		t.Fatalf("FreeBackendID returned %d, whose slot is in use (Backend: %v)", id, err)
	}
	setBackend(t, b, testBackend(id, vipIndex, backendAddr(id)))
	return id
}

func wantTableFull(t *testing.T, b *Balancer) {
	t.Helper()
	id, err := b.FreeBackendID()
	if !errors.Is(err, ErrTableFull) {
		t.Fatalf("FreeBackendID on a full table = %d, %v; want ErrTableFull", id, err)
	}
	if !strings.Contains(err.Error(), "raise MaxBackends") {
		t.Errorf("FreeBackendID error %q does not tell to raise MaxBackends", err)
	}
}

func TestFreeBackendIDUntilFull(t *testing.T) {
	// More slots than one batch of the scan holds.
	const slots = batchChunk + 200
	b := loadTest(t, Options{MaxVIPs: 4, MaxBackends: slots, MaxFlows: 64, RingSize: 13, HashSeed: 1})
	e := addVIP(t, b, "198.18.1.1:80/tcp", VIPConfig{})

	first, err := b.FreeBackendID()
	if err != nil {
		t.Fatal(err)
	}
	if again, err := b.FreeBackendID(); err != nil || again != first {
		t.Errorf("FreeBackendID twice without SetBackend = %d, %d, %v; want the same id", first, again, err)
	}
	seen := make(map[uint32]bool)
	var got []uint32
	for range slots - 1 {
		id := allocate(t, b, e.Index)
		if id == 0 || id >= slots {
			t.Fatalf("FreeBackendID = %d, want 1..%d", id, slots-1)
		}
		if seen[id] {
			t.Fatalf("FreeBackendID returned %d twice", id)
		}
		seen[id] = true
		got = append(got, id)
	}
	wantTableFull(t, b)
	slices.Sort(got)
	for i, id := range got {
		if uint32(i+1) != id {
			t.Fatalf("ids %d..%d returned, want each of 1..%d once", got[0], got[len(got)-1], slots-1)
		}
	}
	list, err := b.Backends()
	if err != nil {
		t.Fatal(err)
	}
	if want, n := slots-1, len(list); want != n {
		t.Errorf("Backends() lists %d, want %d", n, want)
	}
}

func TestFreeBackendIDReusesFreed(t *testing.T) {
	tests := []struct {
		name string
		// free frees ids of the full table a (through a or through a
		// second handle o on the same maps) and returns them.
		free func(t *testing.T, a, o *Balancer) []uint32
	}{
		{"DeleteBackend", func(t *testing.T, a, o *Balancer) []uint32 {
			for _, id := range []uint32{5, 2} {
				if err := a.DeleteBackend(id); err != nil {
					t.Fatal(err)
				}
			}
			return []uint32{2, 5}
		}},
		{"DeleteBackend on another handle", func(t *testing.T, a, o *Balancer) []uint32 {
			if err := o.DeleteBackend(6); err != nil {
				t.Fatal(err)
			}
			return []uint32{6}
		}},
		{"DeleteVIP", func(t *testing.T, a, o *Balancer) []uint32 {
			v, err := a.LookupVIP(mustVIP(t, "198.18.1.2:80/tcp"))
			if err != nil {
				t.Fatal(err)
			}
			if err := a.DeleteVIP(v.VIP); err != nil {
				t.Fatal(err)
			}
			return []uint32{3, 7}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := loadTest(t, smallOptions())
			o := secondHandle(t, a)
			e1 := addVIP(t, a, "198.18.1.1:80/tcp", VIPConfig{})
			e2 := addVIP(t, a, "198.18.1.2:80/tcp", VIPConfig{})
			for id := uint32(1); id < 8; id++ {
				vip := e1.Index
				if id == 3 || id == 7 {
					vip = e2.Index
				}
				if got := allocate(t, a, vip); got != id {
					t.Fatalf("FreeBackendID on a fresh table = %d, want %d (lowest first)", got, id)
				}
			}
			wantTableFull(t, a)

			want := tt.free(t, a, o)
			var got []uint32
			for range want {
				got = append(got, allocate(t, a, e1.Index))
			}
			slices.Sort(got)
			if !slices.Equal(want, got) {
				t.Errorf("ids after freeing %v: %v, want %v", want, got, want)
			}
			wantTableFull(t, a)
		})
	}
}

func TestFreeBackendIDSkipsTakenBehindBack(t *testing.T) {
	t.Run("SetBackend by id", func(t *testing.T) {
		b := loadTest(t, smallOptions())
		e := addVIP(t, b, "198.18.1.1:80/tcp", VIPConfig{})
		if id := allocate(t, b, e.Index); id != 1 {
			t.Fatalf("first id %d, want 1", id)
		}
		// The cache now holds 2..7; take 2 and 4 without asking.
		setBackend(t, b, testBackend(2, e.Index, backendAddr(2)))
		setBackend(t, b, testBackend(4, e.Index, backendAddr(4)))
		var got []uint32
		for range 4 {
			got = append(got, allocate(t, b, e.Index))
		}
		if want := []uint32{3, 5, 6, 7}; !slices.Equal(want, got) {
			t.Errorf("ids = %v, want %v", got, want)
		}
		wantTableFull(t, b)
	})

	t.Run("another handle", func(t *testing.T) {
		// Two writers alternate, each with its own cache of the same
		// ids: neither may hand out an id the other has taken.
		const slots = 300
		a := loadTest(t, Options{MaxVIPs: 4, MaxBackends: slots, MaxFlows: 64, RingSize: 13, HashSeed: 1})
		o := secondHandle(t, a)
		e := addVIP(t, a, "198.18.1.1:80/tcp", VIPConfig{})
		// Both caches fill from the same scan of an empty table.
		for _, h := range []*Balancer{a, o} {
			if id, err := h.FreeBackendID(); err != nil || id != 1 {
				t.Fatalf("FreeBackendID = %d, %v; want 1", id, err)
			}
		}
		owner := make(map[uint32]string)
		handles := []struct {
			name string
			b    *Balancer
		}{{"a", a}, {"o", o}}
		turn, left := 0, 1
		for i := range slots - 1 {
			// Turns of 1 to 3 allocations per writer.
			if left == 0 {
				turn, left = 1-turn, 1+i%3
			}
			left--
			h := handles[turn]
			id := allocate(t, h.b, e.Index)
			if prev, ok := owner[id]; ok {
				t.Fatalf("handle %s got id %d, already taken by %s", h.name, id, prev)
			}
			owner[id] = h.name
		}
		wantTableFull(t, a)
		wantTableFull(t, o)
		if err := o.DeleteBackend(150); err != nil {
			t.Fatal(err)
		}
		if id := allocate(t, a, e.Index); id != 150 {
			t.Errorf("after the other handle freed 150: id %d, want 150", id)
		}
	})
}

// BenchmarkFreeBackendID allocates 4,000 ids in a row into an empty
// 4096-slot table, as a daemon starting with many services does: each id
// is taken (its slot written) before the next is asked for, and every
// round starts with a new handle's empty cache. ns/alloc is the time
// FreeBackendID itself takes per id.
func BenchmarkFreeBackendID(b *testing.B) {
	testenv.Privileged(b)
	const n = 4000
	opts := Options{MaxVIPs: 4, MaxBackends: 4096, MaxFlows: 64, RingSize: 13, HashSeed: 1}
	lb, err := Load(opts)
	if err != nil {
		b.Fatalf("Load: %+v", err)
	}
	b.Cleanup(func() { lb.Close() })
	empty := make([]lbLbBackend, opts.MaxBackends)
	taken := lbLbBackend{State: uint8(StateActive), Weight: 1}
	var spent time.Duration
	for b.Loop() {
		b.StopTimer()
		if err := putAll(lb.maps.Backends, empty); err != nil {
			b.Fatal(err)
		}
		lb.ids = backendIDs{}
		b.StartTimer()
		for range n {
			start := time.Now()
			id, err := lb.FreeBackendID()
			spent += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if err := lb.maps.Backends.Put(id, taken); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N*n), "ns/alloc")
}

// putAll writes vals to keys 0..len(vals)-1 of the array m in one batch:
// the benchmark's reset of the backends map.
func putAll[V any](m *ebpf.Map, vals []V) error {
	keys := make([]uint32, len(vals))
	for i := range keys {
		keys[i] = uint32(i)
	}
	_, err := m.BatchUpdate(keys, vals, nil)
	return err
}
