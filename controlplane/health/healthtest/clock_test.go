package healthtest

import (
	"context"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fired(tm interface{ C() <-chan time.Time }) (time.Time, bool) {
	select {
	case at := <-tm.C():
		return at, true
	default:
		return time.Time{}, false
	}
}

func TestClockTimers(t *testing.T) {
	c := NewClock(t0)
	late := c.NewTimer(3 * time.Second)
	early := c.NewTimer(time.Second)
	stopped := c.NewTimer(2 * time.Second)
	now := c.NewTimer(0)

	if at, ok := fired(now); !ok || !at.Equal(t0) {
		t.Errorf("zero-duration timer: want fired at %v, got %v %v", t0, at, ok)
	}
	if want, got := []time.Time{t0.Add(time.Second), t0.Add(2 * time.Second), t0.Add(3 * time.Second)}, c.Deadlines(); len(got) != 3 || !got[0].Equal(want[0]) || !got[2].Equal(want[2]) {
		t.Errorf("deadlines: want %v, got %v", want, got)
	}
	if !stopped.Stop() {
		t.Error("Stop of a pending timer reported false")
	}
	if stopped.Stop() {
		t.Error("second Stop reported true")
	}

	c.Advance(999 * time.Millisecond)
	if _, ok := fired(early); ok {
		t.Error("timer fired before its deadline")
	}
	c.Advance(time.Millisecond)
	if at, ok := fired(early); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Errorf("early timer: want fired at +1s, got %v %v", at, ok)
	}
	if early.Stop() {
		t.Error("Stop of a fired timer reported true")
	}
	at, ok := c.AdvanceToNext()
	if !ok || !at.Equal(t0.Add(3*time.Second)) || !c.Now().Equal(at) {
		t.Errorf("AdvanceToNext: want +3s, got %v %v (now %v)", at, ok, c.Now())
	}
	if _, ok := fired(late); !ok {
		t.Error("late timer did not fire")
	}
	if _, ok := fired(stopped); ok {
		t.Error("stopped timer fired")
	}
	if _, ok := c.AdvanceToNext(); ok {
		t.Error("AdvanceToNext with no timers reported one")
	}
}

func TestClockWait(t *testing.T) {
	c := NewClock(t0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.WaitTimers(ctx, 2) }()
	c.NewTimer(time.Second)
	c.NewTimer(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("WaitTimers: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if err := c.WaitTimers(short, 3); err == nil {
		t.Error("WaitTimers(3) returned with 2 timers pending")
	}
}
