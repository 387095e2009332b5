//go:build unix

package vrrp

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// RunScript runs a track or notify script: argv without a shell, in its
// own process group, killing the whole group when timeout passes or ctx
// ends, so nothing the script started in the background outlives it. It
// returns an error for a non-zero exit, a timeout or a command that cannot
// start, with the start of its output.
func RunScript(ctx context.Context, argv []string, timeout time.Duration) error {
	if len(argv) == 0 {
		return fmt.Errorf("run: empty command")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &out, n: 512}
	cmd.Stderr = cmd.Stdout
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %v", timeout)
	}
	if msg := strings.TrimSpace(out.String()); msg != "" {
		return fmt.Errorf("run %s: %w: %s", argv[0], err, msg)
	}
	return fmt.Errorf("run %s: %w", argv[0], err)
}

// limitedWriter keeps the first n bytes and discards the rest.
type limitedWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if rest := l.n - l.w.Len(); rest > 0 {
		l.w.Write(p[:min(rest, len(p))])
	}
	return len(p), nil
}
