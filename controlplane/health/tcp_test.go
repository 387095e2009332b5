package health_test

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/health"
)

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	t.Cleanup(func() { ln.Close() })
	open := targetOf(t, ln.Addr())

	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name       string
		ctx        context.Context
		target     health.Target
		wantReason health.Reason
	}{
		{"open port", context.Background(), open, ""},
		{"closed port", context.Background(), closedPort(t), health.ReasonRefused},
		{"no port", context.Background(), health.Target{Address: netip.MustParseAddr("127.0.0.1")}, health.ReasonConnect},
		{"no address", context.Background(), health.Target{Port: 80}, health.ReasonConnect},
		{"canceled", canceled, open, health.ReasonCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(tt.ctx, 2*time.Second)
			defer cancel()
			err := (&health.TCP{}).Check(ctx, tt.target)
			if want, got := tt.wantReason, reasonOf(t, err); want != got {
				t.Fatalf("reason: want %q, got %q (err %v)", want, got, err)
			}
			assertNoCheckGoroutines(t)
		})
	}
	select {
	case <-accepted:
	case <-time.After(time.Second):
		t.Error("the open-port check never reached the listener")
	}
}

// TestTCPTimeout connects to a listener whose accept queue is full, so the
// kernel drops the SYN and the connect hangs until the deadline.
func TestTCPTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	tg := health.Target{Address: netip.MustParseAddr("127.0.0.1"), Port: uint16(sa.(*syscall.SockaddrInet4).Port)}
	// Fill the accept queue (backlog 0 holds one connection).
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp", tg.AddrPort().String(), 50*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}

	const timeout = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err = (&health.TCP{}).Check(ctx, tg)
	elapsed := time.Since(start)
	if want, got := health.ReasonTimeout, reasonOf(t, err); want != got {
		t.Fatalf("reason: want %q, got %q (err %v)", want, got, err)
	}
	if elapsed < timeout-early || elapsed > timeout+100*time.Millisecond {
		t.Errorf("check took %v, want within [%v, %v]", elapsed, timeout-early, timeout+100*time.Millisecond)
	}
	assertNoCheckGoroutines(t)
}

func TestTCPSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	peers := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		peers <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	c := &health.TCP{Source: netip.MustParseAddr("127.0.0.2")}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Check(ctx, targetOf(t, ln.Addr())); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-peers:
		if want := "127.0.0.2"; want != got {
			t.Errorf("check came from %s, want %s", got, want)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("listener saw no connection")
	}
}
