package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// dial connects to t over TCP from source (when valid) and binds the
// connection to ctx: its deadline becomes the connection's deadline, and
// canceling ctx interrupts any blocked read or write. The returned release
// function must be called before the connection is closed; it returns only
// once nothing started here is still running.
func dial(ctx context.Context, source netip.Addr, t Target) (net.Conn, func(), error) {
	if !t.Address.IsValid() {
		return nil, nil, &Error{Reason: ReasonConnect, Err: errors.New("target has no address")}
	}
	if t.Port == 0 {
		return nil, nil, &Error{Reason: ReasonConnect, Err: fmt.Errorf("target %s has no port", t.Address)}
	}
	d := net.Dialer{}
	if source.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(source, 0))
	}
	addr := t.AddrPort().String()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, failure(ctx, ReasonConnect, fmt.Errorf("connect to %s: %w", addr, err))
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			conn.Close()
			return nil, nil, failure(ctx, ReasonConnect, fmt.Errorf("set deadline: %w", err))
		}
	}
	// A deadline in the past wakes every blocked read and write at once.
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		conn.SetDeadline(time.Unix(1, 0))
		close(done)
	})
	release := func() {
		if !stop() {
			<-done
		}
	}
	return conn, release, nil
}

// TCP checks that a TCP connection to the target's port can be opened. The
// zero value is ready to use.
type TCP struct {
	// Source, when valid, is the local address checks connect from.
	Source netip.Addr
}

// Check connects to t and closes the connection.
func (c *TCP) Check(ctx context.Context, t Target) error {
	conn, release, err := dial(ctx, c.Source, t)
	if err != nil {
		return err
	}
	release()
	if err := conn.Close(); err != nil {
		return failure(ctx, ReasonConnect, fmt.Errorf("close connection to %s: %w", t.AddrPort(), err))
	}
	return nil
}
