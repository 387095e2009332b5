package lab

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"
)

// Dial opens a connection from the client namespace.
func (l *Lab) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return l.DialFrom(ctx, netip.Addr{}, network, addr)
}

// DialFrom opens a connection from the client namespace with source
// address src, or the kernel's choice when src is not valid.
func (l *Lab) DialFrom(ctx context.Context, src netip.Addr, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := l.Client.Do(func() error {
		var d net.Dialer
		if src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// HTTPClient returns an HTTP client whose connections start in the client
// namespace. Without keepAlive, every request opens a new connection, so
// every request is a new flow for the directors to place.
func (l *Lab) HTTPClient(keepAlive bool, timeout time.Duration) *http.Client {
	return l.HTTPClientFrom(netip.Addr{}, keepAlive, timeout)
}

// HTTPClientFrom is HTTPClient with connections from source address src.
func (l *Lab) HTTPClientFrom(src netip.Addr, keepAlive bool, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return l.DialFrom(ctx, src, network, addr)
			},
			DisableKeepAlives: !keepAlive,
			Proxy:             nil,
		},
		Timeout: timeout,
	}
}

// Ask sends GET url and returns the name of the backend that answered.
func Ask(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: status %s", url, resp.Status)
	}
	name := strings.TrimSpace(string(body))
	if h := resp.Header.Get(BackendHeader); h != name {
		return "", fmt.Errorf("GET %s: body names %q, header %s names %q", url, name, BackendHeader, h)
	}
	return name, nil
}

// Healthy sends GET url to a health endpoint and returns nil when it
// answers 200.
func Healthy(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %s", url, resp.Status)
	}
	return nil
}

// URL returns the service's URL with path.
func (s ServiceSpec) URL(path string) string {
	return "http://" + netip.AddrPortFrom(s.VIP, s.Port).String() + path
}

// Spread is how one run of requests through a service spread over the
// backends.
type Spread struct {
	Service  ServiceSpec
	Requests int
	Counts   map[string]int // answers by backend name
	Failed   int
	Errors   []string // the first few failures
	Took     time.Duration
}

// MeasureSpread sends n requests through svc, each on a new connection,
// parallel at a time, and counts who answered.
func (l *Lab) MeasureSpread(ctx context.Context, svc ServiceSpec, n, parallel int) Spread {
	return l.MeasureSpreadFrom(ctx, netip.Addr{}, svc, n, parallel)
}

// MeasureSpreadFrom is MeasureSpread from source address src, which must
// be an address of the client.
func (l *Lab) MeasureSpreadFrom(ctx context.Context, src netip.Addr, svc ServiceSpec, n, parallel int) Spread {
	s := Spread{Service: svc, Requests: n, Counts: map[string]int{}}
	c := l.HTTPClientFrom(src, false, 2*time.Second)
	defer c.CloseIdleConnections()
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan struct{})
	start := time.Now()
	for range max(parallel, 1) {
		wg.Go(func() {
			for range next {
				name, err := Ask(ctx, c, svc.URL("/"))
				mu.Lock()
				if err != nil {
					s.Failed++
					if len(s.Errors) < 5 {
						s.Errors = append(s.Errors, err.Error())
					}
				} else {
					s.Counts[name]++
				}
				mu.Unlock()
			}
		})
	}
	for range n {
		select {
		case next <- struct{}{}:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	s.Took = time.Since(start)
	return s
}

// Share is one backend's expected and measured part of a Spread.
type Share struct {
	Backend  string
	Weight   uint32
	Expected float64 // requests, from the weights
	Got      int
	// Tolerance is how far Got may be from Expected by chance: four
	// standard deviations of the binomial count, plus one.
	Tolerance float64
}

// OK reports whether Got is within Tolerance of Expected.
func (s Share) OK() bool { return math.Abs(float64(s.Got)-s.Expected) <= s.Tolerance }

// Shares compares the spread with the weights of backends, leaving out
// those named in out (taken out by a health check).
func (s Spread) Shares(backends []BackendSpec, out ...string) []Share {
	var total uint32
	for _, b := range backends {
		if !contains(out, b.Name) {
			total += b.Weight
		}
	}
	answered := s.Requests - s.Failed
	var sh []Share
	for _, b := range backends {
		w := b.Weight
		if contains(out, b.Name) {
			w = 0
		}
		p := 0.0
		if total > 0 {
			p = float64(w) / float64(total)
		}
		sh = append(sh, Share{
			Backend: b.Name, Weight: w, Got: s.Counts[b.Name],
			Expected:  p * float64(answered),
			Tolerance: 4*math.Sqrt(float64(answered)*p*(1-p)) + 1,
		})
	}
	return sh
}

// Unknown returns the names that answered but are not among backends,
// sorted.
func (s Spread) Unknown(backends []BackendSpec) []string {
	var u []string
	for name := range s.Counts {
		found := false
		for _, b := range backends {
			found = found || b.Name == name
		}
		if !found {
			u = append(u, name)
		}
	}
	sort.Strings(u)
	return u
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
