package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StallLimit is the longest a request on a long-lived connection may take
// before it counts as a stall.
const StallLimit = time.Second

// Conns is a set of long-lived connections through one service, each
// sending a request at a fixed interval, as the clients of a real service
// do. Each keeps one TCP connection for as long as it works, so a reset,
// an error or a stall is seen as such, never hidden by a reconnect.
type Conns struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	r      ConnsReport
}

// ConnsReport is what the long-lived connections saw.
type ConnsReport struct {
	Conns    int
	Requests int // answered
	// Resets counts connections reset by a peer; Errors every other
	// failure (refused, timed out, bad answer, closed). After either, the
	// connection is replaced by a new one, counted in Reconnects.
	Resets, Errors, Reconnects int
	// Stalls counts requests that took longer than StallLimit; MaxLatency
	// is the slowest answered request.
	Stalls     int
	MaxLatency time.Duration
	// Moved counts connections answered by another backend than the one
	// that answered their first request.
	Moved int
	// Backends counts connections by the backend of their first answer.
	Backends map[string]int
	// Failures holds the first few errors, with the time they happened.
	Failures []string
}

// Clean reports whether no connection was reset, failed, stalled or moved.
func (r ConnsReport) Clean() bool {
	return r.Resets == 0 && r.Errors == 0 && r.Stalls == 0 && r.Moved == 0
}

// String summarises the report on one line.
func (r ConnsReport) String() string {
	return fmt.Sprintf("%d connections, %d requests: %d reset, %d failed, %d stalled over %s, %d moved backend; slowest %s",
		r.Conns, r.Requests, r.Resets, r.Errors, r.Stalls, StallLimit, r.Moved, r.MaxLatency.Round(time.Millisecond))
}

// StartConns opens n connections through svc, each sending GET / every
// interval until Stop. It returns once every connection has had its first
// answer, or with an error if one could not get it.
func (l *Lab) StartConns(ctx context.Context, svc ServiceSpec, n int, interval time.Duration) (*Conns, error) {
	return l.StartConnsFrom(ctx, netip.Addr{}, svc, n, interval)
}

// StartConnsFrom is StartConns from source address src, which must be an
// address of the client (see Topology.ClientAliases).
func (l *Lab) StartConnsFrom(ctx context.Context, src netip.Addr, svc ServiceSpec, n int, interval time.Duration) (*Conns, error) {
	ctx, cancel := context.WithCancel(ctx)
	c := &Conns{cancel: cancel, r: ConnsReport{Conns: n, Backends: map[string]int{}}}
	ready := make(chan error, n)
	for i := range n {
		c.wg.Go(func() { c.run(ctx, l, src, svc, i, interval, ready) })
	}
	for range n {
		if err := <-ready; err != nil {
			c.Stop()
			return nil, fmt.Errorf("open long-lived connections through %s: %w", svc.Name, err)
		}
	}
	return c, nil
}

// Stop ends every connection and returns the report.
func (c *Conns) Stop() ConnsReport {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r
}

// Report returns the report so far.
func (c *Conns) Report() ConnsReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.r
	r.Backends = make(map[string]int, len(c.r.Backends))
	for k, v := range c.r.Backends {
		r.Backends[k] = v
	}
	r.Failures = append([]string(nil), c.r.Failures...)
	return r
}

func (c *Conns) fail(i int, reset bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if reset {
		c.r.Resets++
	} else {
		c.r.Errors++
	}
	if len(c.r.Failures) < 10 {
		c.r.Failures = append(c.r.Failures, fmt.Sprintf("%s conn %d: %v", time.Now().Format("15:04:05.000"), i, err))
	}
}

// run is one connection's life: the first answer is reported on ready,
// then a request every interval until ctx ends.
func (c *Conns) run(ctx context.Context, l *Lab, src netip.Addr, svc ServiceSpec, i int, interval time.Duration, ready chan<- error) {
	addr := netip.AddrPortFrom(svc.VIP, svc.Port).String()
	req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: xdplb-lab\r\n\r\n", addr)
	var conn net.Conn
	var br *bufio.Reader
	var first string
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if conn == nil {
			dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			var err error
			conn, err = l.DialFrom(dctx, src, "tcp4", addr)
			cancel()
			if err != nil {
				if ready != nil {
					ready <- err
					return
				}
				if ctx.Err() != nil {
					return
				}
				c.fail(i, false, fmt.Errorf("reconnect: %w", err))
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				continue
			}
			br = bufio.NewReader(conn)
		}
		start := time.Now()
		name, err := exchange(conn, br, req)
		took := time.Since(start)
		if ctx.Err() != nil && err != nil {
			return // stopped during the request
		}
		if err != nil {
			if ready != nil {
				ready <- err
				return
			}
			c.fail(i, errors.Is(err, syscall.ECONNRESET), err)
			conn.Close()
			conn = nil
			c.mu.Lock()
			c.r.Reconnects++
			c.mu.Unlock()
		} else {
			c.mu.Lock()
			c.r.Requests++
			c.r.MaxLatency = max(c.r.MaxLatency, took)
			if took > StallLimit {
				c.r.Stalls++
			}
			switch {
			case first == "":
				first = name
				c.r.Backends[name]++
			case name != first:
				c.r.Moved++
				first = name // count each move once
			}
			c.mu.Unlock()
			if ready != nil {
				ready <- nil
				ready = nil
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// exchange sends one request on conn and reads the answer, giving it
// 5 seconds.
func exchange(conn net.Conn, br *bufio.Reader, req string) (string, error) {
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	if resp.Close {
		return "", errors.New("the server closed the connection")
	}
	return strings.TrimSpace(string(body)), nil
}
