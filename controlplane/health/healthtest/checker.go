package healthtest

import (
	"context"
	"sync"

	"github.com/xdplb/xdplb/controlplane/health"
)

// Script is a health.Checker that returns its results in order, one per
// check, and then keeps returning the last one. It records the contexts it
// was called with. A nil result is a passed check.
type Script struct {
	mu      sync.Mutex
	results []error
	calls   int
	ctxs    []context.Context
}

// NewScript returns a Script that replays results.
func NewScript(results ...error) *Script { return &Script{results: results} }

// Check returns the next scripted result.
func (s *Script) Check(ctx context.Context, _ health.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctxs = append(s.ctxs, ctx)
	i := min(s.calls, len(s.results)-1)
	s.calls++
	if i < 0 {
		return nil
	}
	return s.results[i]
}

// Calls returns how many checks ran.
func (s *Script) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Contexts returns the contexts of the checks so far.
func (s *Script) Contexts() []context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]context.Context(nil), s.ctxs...)
}
