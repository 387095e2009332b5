package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/xdplb/xdplb/controlplane/lab/labnet"
)

// nsDialer opens connections from inside a network namespace on threads
// that stay there. A socket belongs to the namespace of the thread that
// creates it; labnet's Do enters the namespace on a new thread for every
// call and retires the thread afterwards, which costs the lab's client
// more CPU per connection than a director costs a request, and would hide
// the director's cost behind the client's.
type nsDialer struct {
	reqs      chan dialReq
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

type dialReq struct {
	ctx           context.Context
	network, addr string
	res           chan<- dialRes
}

type dialRes struct {
	conn net.Conn
	err  error
}

// newNSDialer starts threads threads inside h's namespace, each dialing
// one connection at a time. Close stops them.
func newNSDialer(h *labnet.Host, threads int) (*nsDialer, error) {
	d := &nsDialer{reqs: make(chan dialReq), done: make(chan struct{})}
	ready := make(chan error, threads)
	for range threads {
		d.wg.Go(func() {
			// The function never fails, so an error means the thread
			// did not enter the namespace and the function never ran.
			err := h.Do(func() error {
				ready <- nil
				var nd net.Dialer
				for {
					select {
					case r := <-d.reqs:
						c, err := nd.DialContext(r.ctx, r.network, r.addr)
						r.res <- dialRes{c, err}
					case <-d.done:
						return nil
					}
				}
			})
			if err != nil {
				ready <- fmt.Errorf("dialer in namespace %s did not start: %w", h.Name, err)
			}
		})
	}
	var errs []error
	for range threads {
		errs = append(errs, <-ready)
	}
	if err := errors.Join(errs...); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// DialContext opens a connection from the namespace.
func (d *nsDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	res := make(chan dialRes, 1)
	select {
	case d.reqs <- dialReq{ctx: ctx, network: network, addr: addr, res: res}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-d.done:
		return nil, fmt.Errorf("dial %s: %w", addr, net.ErrClosed)
	}
	r := <-res // DialContext on the thread returns once ctx is done
	return r.conn, r.err
}

// HTTPClient returns a client whose connections d opens, one per request
// (keep-alive off), each request bounded by timeout.
func (d *nsDialer) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, Proxy: nil},
		Timeout:   timeout,
	}
}

// Close stops the threads and waits for them; later dials fail with
// net.ErrClosed.
func (d *nsDialer) Close() {
	d.closeOnce.Do(func() { close(d.done) })
	d.wg.Wait()
}
