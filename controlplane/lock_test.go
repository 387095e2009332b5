package controlplane

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLockExcludesAndReleases(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Lock(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}

	// A second writer waits until its context ends.
	// The clock starts before the deadline is set, so the wait measured
	// can only be longer than the context's, never shorter.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, dir); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held: %v, want context.DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("second Lock gave up after %v, want it to wait 100ms", waited)
	}

	// Once released, a waiting writer gets it.
	got := make(chan error, 1)
	go func() {
		u, err := Lock(context.Background(), dir)
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-got:
		t.Fatalf("Lock returned (%v) while the lock was held", err)
	default:
	}
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("waiting Lock did not get the lock within 2s of its release")
	}
}

func TestLockMissingDir(t *testing.T) {
	if _, err := Lock(context.Background(), t.TempDir()+"/nope"); err == nil {
		t.Fatal("Lock on a missing directory succeeded")
	}
}
