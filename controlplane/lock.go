package controlplane

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Lock takes an exclusive lock on dir, the pin directory of one
// attachment, so that the processes that edit its maps (the CLI, the
// daemon) never interleave a read-modify-write of the same service. It
// waits until the lock is free or ctx ends, and returns the function that
// releases it. The lock is an flock(2) on the directory, which bpffs
// supports; it goes with the process, so a crashed writer never leaves it
// held.
func Lock(ctx context.Context, dir string) (unlock func(), err error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	release := func() { unix.Close(fd) }
	err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return release, nil
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}

	// Held by another writer: wait for it in a blocking flock, which the
	// kernel wakes when the holder is done.
	done := make(chan error, 1)
	go func() { done <- flockRetry(fd) }()
	select {
	case err := <-done:
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		return release, nil
	case <-ctx.Done():
		// The waiter closes the descriptor once flock returns, which
		// releases the lock if it was granted meanwhile.
		go func() { <-done; unix.Close(fd) }()
		return nil, fmt.Errorf("lock %s: another xdplb process is changing it: %w", dir, ctx.Err())
	}
}

func flockRetry(fd int) error {
	for {
		err := unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
