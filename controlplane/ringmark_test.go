package controlplane

import (
	"errors"
	"slices"
	"testing"
)

// readLogging is a memDataplane that also logs every table it reads back,
// in the same log as the writes, and fails SetRing with swapErr when set.
type readLogging struct {
	*memDataplane
	swapErr error
}

func (r *readLogging) Ring(idx uint32) ([]uint32, error) {
	r.log("Ring %d", idx)
	return r.memDataplane.Ring(idx)
}

func (r *readLogging) SetRing(idx uint32, ids []uint32) error {
	if r.swapErr != nil {
		return r.swapErr
	}
	return r.memDataplane.SetRing(idx, ids)
}

func TestApplyReadsTableBackOnlyWhenCold(t *testing.T) {
	s := service(t, SchedulerMaglev, be(21, 1), be(22, 1))
	mem := newMem(testRing)
	dp := &readLogging{memDataplane: mem}
	p := NewProgrammer(dp, nil)

	steps := []struct {
		name   string
		change func(*Service)
		want   []string
	}{
		// A new VIP: its index may hold a table left by an interrupted
		// writer, so the first Apply reads it back.
		{"new VIP", func(*Service) {}, []string{
			"AddVIP 198.18.1.100:80/tcp", "SetBackend 1 198.18.0.21 active w=1", "SetBackend 2 198.18.0.22 active w=1",
			"Ring 0", "SetRing 0"}},
		{"unchanged", func(*Service) {}, nil},
		{"MAC only: same table", func(s *Service) { s.Backends[0].MAC[5] = 0x99 }, []string{"SetBackend 1 198.18.0.21 active w=1"}},
		{"weight: new table", func(s *Service) { s.Backends[1].Weight = 3 }, []string{"SetBackend 2 198.18.0.22 active w=3", "SetRing 0"}},
		{"unchanged again", func(*Service) {}, nil},
	}
	for _, st := range steps {
		st.change(&s)
		if _, err := p.Apply(s); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := mem.takeWrites(); !slices.Equal(st.want, got) {
			t.Errorf("%s: map operations\nwant %q\ngot  %q", st.name, st.want, got)
		}
	}

	// A new Programmer (a restarted daemon) has no hash: it reads the
	// table once, finds it right and writes nothing, then trusts it.
	p2 := NewProgrammer(dp, nil)
	for i, want := range [][]string{{"Ring 0"}, nil} {
		if _, err := p2.Apply(s); err != nil {
			t.Fatal(err)
		}
		if got := mem.takeWrites(); !slices.Equal(want, got) {
			t.Errorf("new Programmer, Apply %d: want %q, got %q", i+1, want, got)
		}
	}
}

// A table changed behind a warm Programmer's back is trusted to be the one
// it wrote: the daemon owns the maps, and the pin lock keeps other writers
// out while it runs. The next change of the desired table, or a new
// Programmer, replaces it.
func TestApplyTrustsItsHashOverTheMap(t *testing.T) {
	s := service(t, SchedulerMaglev, be(21, 1), be(22, 1))
	mem, p := applied(t, s)
	good := slices.Clone(mem.rings[0])
	tampered := slices.Clone(good)
	for i := range tampered {
		tampered[i] = 1
	}
	mem.rings[0] = slices.Clone(tampered)

	if _, err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	if got := mem.takeWrites(); len(got) != 0 {
		t.Errorf("warm Apply of an unchanged service wrote %q, want nothing", got)
	}
	if !slices.Equal(tampered, mem.rings[0]) {
		t.Errorf("warm Apply replaced the table it did not know was changed")
	}

	if _, err := NewProgrammer(mem, nil).Apply(s); err != nil {
		t.Fatal(err)
	}
	if want, got := []string{"SetRing 0"}, mem.takeWrites(); !slices.Equal(want, got) {
		t.Errorf("new Programmer: writes %q, want %q", got, want)
	}
	if !slices.Equal(good, mem.rings[0]) {
		t.Errorf("new Programmer left the changed table in place")
	}
}

// What a Programmer remembers of an index never outlives the VIP: a VIP
// deleted and another added at the same index, or a failed swap, make the
// next Apply read the map again.
func TestApplyForgetsTableOfDeletedVIPAndFailedSwap(t *testing.T) {
	a := service(t, SchedulerMaglev, be(21, 1))
	b := service(t, SchedulerMaglev, be(21, 1))
	b.VIP = mustVIP(t, "198.18.1.101:80/tcp")
	mem := newMem(testRing)
	dp := &readLogging{memDataplane: mem}
	p := NewProgrammer(dp, nil)
	if _, err := p.Apply(a); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(a.VIP); err != nil {
		t.Fatal(err)
	}
	mem.takeWrites()

	// b takes index 0, with the same backend and so the same table as a.
	res, err := p.Apply(b)
	if err != nil {
		t.Fatal(err)
	}
	if res.VIP.Index != 0 || !res.RingWritten {
		t.Errorf("VIP at a reused index: %+v, want index 0 and its table written", res)
	}
	if got := mem.takeWrites(); !slices.Contains(got, "Ring 0") || !slices.Contains(got, "SetRing 0") {
		t.Errorf("VIP at a reused index: map operations %q, want the table read and written", got)
	}

	// A failed swap: the map may hold either table.
	b.Backends = append(b.Backends, be(22, 1))
	boom := errors.New("map update failed")
	dp.swapErr = boom
	if _, err := p.Apply(b); !errors.Is(err, boom) {
		t.Fatalf("Apply with a failing SetRing: %v, want %v", err, boom)
	}
	dp.swapErr = nil
	mem.takeWrites()
	if _, err := p.Apply(b); err != nil {
		t.Fatal(err)
	}
	if got := mem.takeWrites(); !slices.Contains(got, "Ring 0") || !slices.Contains(got, "SetRing 0") {
		t.Errorf("after a failed swap: map operations %q, want the table read back and written", got)
	}
	if got := share(t, mem, 0); got["198.18.0.22"] == 0 {
		t.Errorf("table after the retry: %v, want 198.18.0.22 in it", got)
	}
}
