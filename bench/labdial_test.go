package main

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/xdplb/xdplb/controlplane/lab/labnet"
	"github.com/xdplb/xdplb/internal/testenv"
)

// TestNSDialer proves the dialer's connections start in the host's
// namespace: the listener's address exists only there, and the listener
// sees the host's address as the peer.
func TestNSDialer(t *testing.T) {
	testenv.Privileged(t)
	prefix, err := labPrefix()
	if err != nil {
		t.Fatal(err)
	}
	n, err := labnet.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	srvAddr := netip.MustParsePrefix("198.18.200.1/24")
	cliAddr := netip.MustParsePrefix("198.18.200.2/24")
	srv, err := n.Host("srv", srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := n.Host("cli", cliAddr)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := srv.Do(func() (err error) {
		ln, err = net.Listen("tcp", srvAddr.Addr().String()+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(c.RemoteAddr().String()))
			c.Close()
		}
	}()

	d, err := newNSDialer(cli, 3)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			buf := make([]byte, 64)
			k, _ := c.Read(buf)
			got, err := netip.ParseAddrPort(string(buf[:k]))
			if err != nil || got.Addr() != cliAddr.Addr() {
				t.Errorf("server saw the connection from %q, want %s", buf[:k], cliAddr.Addr())
			}
		})
	}
	wg.Wait()
	d.Close()
	if _, err := d.DialContext(context.Background(), "tcp", ln.Addr().String()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("dial after Close = %v, want net.ErrClosed", err)
	}
}
