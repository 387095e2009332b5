package health

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// results turns "+-" into check outcomes: '+' passed, '-' failed; other
// characters are spacing.
func results(t *testing.T, s string) []bool {
	t.Helper()
	var out []bool
	for _, c := range s {
		switch c {
		case '+':
			out = append(out, true)
		case '-':
			out = append(out, false)
		case ' ':
		default:
			t.Fatalf("bad result %q in %q", c, s)
		}
	}
	return out
}

// states renders states as "U" and "D", one per result.
func states(ss []State) string {
	b := make([]byte, len(ss))
	for i, s := range ss {
		b[i] = "DU"[s]
	}
	return string(b)
}

func TestHealthRiseFall(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		initial    Initial
		results    string
		want       string // state after each result
	}{
		{"init up: first failure takes it down", 2, 3, InitUp, "-", "D"},
		{"init up: first success makes it fully up", 2, 3, InitUp, "+---", "UUUD"},
		{"init up: down then rise successes", 2, 3, InitUp, "-++", "DDU"},
		{"init up: interrupted rise restarts", 2, 3, InitUp, "-+-++", "DDDDU"},
		{"fully up: fall failures", 2, 3, InitFullyUp, "---", "UUD"},
		{"fully up: a success resets the fall count", 2, 3, InitFullyUp, "--+---", "UUUUUD"},
		{"fully up: flapping never falls", 2, 3, InitFullyUp, "--+--+--+", "UUUUUUUUU"},
		{"init down: first success brings it up", 3, 2, InitDown, "+", "U"},
		{"init down: a failure restarts the rise count", 3, 2, InitDown, "-+++", "DDDU"},
		{"fully down: rise successes", 3, 2, InitFullyDown, "+++", "DDU"},
		{"fully down: interrupted rise", 3, 2, InitFullyDown, "++-+++", "DDDDDU"},
		{"rise 1 fall 1 follows every result", 1, 1, InitFullyDown, "+-+-", "UDUD"},
		{"full cycle", 2, 2, InitFullyUp, "--++--", "UDDUUD"},
		{"up stays up on successes", 2, 3, InitFullyUp, "+++", "UUU"},
		{"down stays down on failures", 2, 3, InitFullyDown, "---", "DDD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealth(tt.rise, tt.fall, tt.initial)
			var got []State
			for _, ok := range results(t, tt.results) {
				before := h.State()
				changed := h.Observe(ok)
				if changed != (h.State() != before) {
					t.Fatalf("Observe(%v) reported changed=%v but state went %s -> %s", ok, changed, before, h.State())
				}
				got = append(got, h.State())
			}
			if want, got := tt.want, states(got); want != got {
				t.Errorf("states after %q: want %s, got %s", tt.results, want, got)
			}
		})
	}
}

func TestHealthInitialStates(t *testing.T) {
	tests := []struct {
		initial    Initial
		wantState  State
		wantStreak int
	}{
		{InitUp, Up, 2},
		{InitFullyUp, Up, 0},
		{InitDown, Down, 3},
		{InitFullyDown, Down, 0},
	}
	for _, tt := range tests {
		t.Run(tt.initial.String(), func(t *testing.T) {
			h := NewHealth(4, 3, tt.initial)
			if want, got := tt.wantState, h.State(); want != got {
				t.Errorf("state: want %s, got %s", want, got)
			}
			if want, got := tt.wantStreak, h.Streak(); want != got {
				t.Errorf("streak: want %d, got %d", want, got)
			}
		})
	}
}

// haproxyHealth is HAProxy's own formulation, kept here as an independent
// oracle: one counter from 0 to rise+fall-1, up when it is at least rise.
// A failure below rise drops it to 0; a success reaching rise jumps it to
// the top.
type haproxyHealth struct{ health, rise, fall int }

func newHAProxyHealth(rise, fall int, initial Initial) *haproxyHealth {
	h := &haproxyHealth{rise: rise, fall: fall}
	switch initial {
	case InitUp:
		h.health = rise
	case InitFullyUp:
		h.health = rise + fall - 1
	case InitDown:
		h.health = rise - 1
	case InitFullyDown:
		h.health = 0
	}
	return h
}

func (h *haproxyHealth) observe(ok bool) {
	if ok {
		if h.health < h.rise+h.fall-1 {
			h.health++
			if h.health >= h.rise {
				h.health = h.rise + h.fall - 1
			}
		}
		return
	}
	if h.health > 0 {
		h.health--
		if h.health < h.rise {
			h.health = 0
		}
	}
}

func (h *haproxyHealth) state() State {
	if h.health >= h.rise {
		return Up
	}
	return Down
}

func TestHealthMatchesHAProxyCounter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for rise := 1; rise <= 5; rise++ {
		for fall := 1; fall <= 5; fall++ {
			for initial := InitUp; initial <= InitFullyDown; initial++ {
				t.Run(fmt.Sprintf("rise%d/fall%d/%s", rise, fall, initial), func(t *testing.T) {
					h := NewHealth(rise, fall, initial)
					ref := newHAProxyHealth(rise, fall, initial)
					if want, got := ref.state(), h.State(); want != got {
						t.Fatalf("initial state: want %s, got %s", want, got)
					}
					// Runs of equal results, so both thresholds are reached.
					for step := 0; step < 400; {
						ok := rng.IntN(2) == 0
						for n := rng.IntN(rise + fall + 1); n >= 0; n-- {
							ref.observe(ok)
							h.Observe(ok)
							if want, got := ref.state(), h.State(); want != got {
								t.Fatalf("step %d result %v: want %s, got %s", step, ok, want, got)
							}
							step++
						}
					}
				})
			}
		}
	}
}

func TestHealthSetThresholds(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		initial    Initial
		before     string
		newRise    int
		newFall    int
		after      string
		want       string // states after the results in after
	}{
		// Two failures counted against fall 3; fall 2 must not flip the
		// state by itself, the next failure does.
		{"lower fall", 2, 3, InitFullyUp, "--", 2, 2, "-", "D"},
		{"lower fall keeps a success reset", 2, 3, InitFullyUp, "--", 2, 2, "+-", "UU"},
		{"raise fall keeps the count", 2, 2, InitFullyUp, "-", 2, 4, "---", "UUD"},
		{"lower rise", 4, 2, InitFullyDown, "+++", 2, 2, "+", "U"},
		{"raise rise", 2, 2, InitFullyDown, "+", 3, 2, "++", "DU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealth(tt.rise, tt.fall, tt.initial)
			for _, ok := range results(t, tt.before) {
				h.Observe(ok)
			}
			before := h.State()
			h.SetThresholds(tt.newRise, tt.newFall)
			if want, got := before, h.State(); want != got {
				t.Fatalf("SetThresholds changed the state: want %s, got %s", want, got)
			}
			var got []State
			for _, ok := range results(t, tt.after) {
				h.Observe(ok)
				got = append(got, h.State())
			}
			if want, got := tt.want, states(got); want != got {
				t.Errorf("states after %q: want %s, got %s", tt.after, want, got)
			}
		})
	}
}
