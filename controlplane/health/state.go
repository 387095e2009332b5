package health

import "fmt"

// State is a backend's health as the Monitor decides it.
type State uint8

// States.
const (
	Down State = iota
	Up
)

func (s State) String() string {
	switch s {
	case Down:
		return "down"
	case Up:
		return "up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Initial is the state a target starts in, named after HAProxy's
// init-state. The zero value is InitUp, HAProxy's default.
type Initial uint8

// Initial states.
const (
	// InitUp: up, but the first failed check takes it down.
	InitUp Initial = iota
	// InitFullyUp: up; it takes Fall failed checks to go down.
	InitFullyUp
	// InitDown: down, but the first successful check brings it up.
	InitDown
	// InitFullyDown: down; it takes Rise successful checks to come up.
	InitFullyDown
)

func (i Initial) String() string {
	switch i {
	case InitUp:
		return "up"
	case InitFullyUp:
		return "fully-up"
	case InitDown:
		return "down"
	case InitFullyDown:
		return "fully-down"
	}
	return fmt.Sprintf("Initial(%d)", uint8(i))
}

// Health applies HAProxy's rise/fall rule to a sequence of check results.
// It is a pure value: no clock, no goroutine.
//
// An up target goes down after Fall consecutive failures; a down target
// comes up after Rise consecutive successes; a result of the other kind
// resets the count. This is HAProxy's health counter (0 to rise+fall-1, up
// from rise) written as a state and a streak.
type Health struct {
	state  State
	rise   int
	fall   int
	streak int // consecutive results against the current state
}

// NewHealth returns the health of a target that has not been checked yet.
// rise and fall below 1 count as 1.
func NewHealth(rise, fall int, initial Initial) Health {
	h := Health{rise: max(rise, 1), fall: max(fall, 1)}
	switch initial {
	case InitUp:
		h.state, h.streak = Up, h.fall-1
	case InitFullyUp:
		h.state = Up
	case InitDown:
		h.state, h.streak = Down, h.rise-1
	default:
		h.state = Down
	}
	return h
}

// State is the current state.
func (h Health) State() State { return h.state }

// Streak is the number of consecutive results counted against the current
// state: failures while up, successes while down.
func (h Health) Streak() int { return h.streak }

// Observe records one check result and reports whether the state changed.
func (h *Health) Observe(ok bool) (changed bool) {
	switch {
	case h.state == Up && ok, h.state == Down && !ok:
		h.streak = 0
		return false
	case h.state == Up:
		h.streak++
		if h.streak >= h.fall {
			h.state, h.streak = Down, 0
			return true
		}
	default:
		h.streak++
		if h.streak >= h.rise {
			h.state, h.streak = Up, 0
			return true
		}
	}
	return false
}

// SetThresholds changes rise and fall, keeping the state. A streak that
// already reaches the new threshold is held one short of it, so a change of
// configuration never flips a state by itself; the next result does.
func (h *Health) SetThresholds(rise, fall int) {
	h.rise, h.fall = max(rise, 1), max(fall, 1)
	limit := h.rise
	if h.state == Up {
		limit = h.fall
	}
	h.streak = min(h.streak, limit-1)
}
