package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/controlplane/lab/labnet"
	"github.com/xdplb/xdplb/loader"
)

// pollEvery is how often the lab looks at what it waits for.
const pollEvery = 10 * time.Millisecond

// WaitReady waits until the lab does its job: every backend answers its
// health endpoint, every daemon its API, one director holds the VIPs, and
// every service has been answered by every backend with a weight. It fails early, with the end of its log,
// when a daemon exits.
func (l *Lab) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := l.HTTPClient(false, time.Second)
	defer c.CloseIdleConnections()
	for _, b := range l.Backends {
		url := "http://" + b.Spec.Addr.String() + HealthPath
		err := l.poll(ctx, func() (bool, error) {
			return Healthy(ctx, c, url) == nil, nil
		})
		if de := (*DaemonExitError)(nil); errors.As(err, &de) {
			return de
		}
		if err != nil {
			return fmt.Errorf("backend %s does not answer %s: %w; see %s", b.Spec.Name, url, err, b.Log)
		}
	}
	for _, d := range l.Running() {
		err := l.poll(ctx, func() (bool, error) {
			return d.API().Ping(ctx) == nil, nil
		})
		if de := (*DaemonExitError)(nil); errors.As(err, &de) {
			return de
		}
		if err != nil {
			return fmt.Errorf("director %s: the daemon's API at %s does not answer: %w; see %s", d.Spec.Name, d.Paths.Socket, err, d.Paths.Log)
		}
	}
	err := l.poll(ctx, func() (bool, error) {
		ms, err := l.Master()
		return len(ms) == 1, err
	})
	if de := (*DaemonExitError)(nil); errors.As(err, &de) {
		return de
	}
	if err != nil {
		ms, _ := l.Master()
		return fmt.Errorf("no single director holds the VIPs %v (holding them: %s): %w", l.Topology.VIPs(), names(ms), err)
	}
	want := 0 // backends with a weight: the others take no new flows
	for _, b := range l.Topology.Backends {
		if b.Weight > 0 {
			want++
		}
	}
	for _, s := range l.Topology.Services {
		seen := map[string]bool{}
		var last error
		err := l.poll(ctx, func() (bool, error) {
			name, err := Ask(ctx, c, s.URL("/"))
			if err != nil {
				last = err
				return false, nil
			}
			seen[name] = true
			return len(seen) >= want, nil
		})
		if de := (*DaemonExitError)(nil); errors.As(err, &de) {
			return de
		}
		if err != nil {
			return fmt.Errorf("service %s (%s) reached only %v of the %d backends with a weight (last error: %v): %w",
				s.Name, s.URL("/"), keys(seen), want, last, err)
		}
	}
	return nil
}

// poll calls done every pollEvery until it reports true, returns an error,
// ctx ends or a daemon exits.
func (l *Lab) poll(ctx context.Context, done func() (bool, error)) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		if err := l.checkDaemons(); err != nil {
			return err
		}
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// checkDaemons returns an error naming the first daemon that exited
// although the lab did not stop it, with the end of its log.
func (l *Lab) checkDaemons() error {
	for _, d := range l.Directors {
		if d.proc == nil || d.proc.killed || !d.proc.exited() {
			continue
		}
		return &DaemonExitError{Director: d.Spec.Name, Err: d.proc.err, Log: d.Paths.Log, Tail: tail(d.Paths.Log, 15)}
	}
	return nil
}

// DaemonExitError says that a director's daemon exited while the lab
// needed it.
type DaemonExitError struct {
	Director string
	Err      error  // how it exited
	Log      string // its log file
	Tail     string // the end of the log
}

func (e *DaemonExitError) Error() string {
	return fmt.Sprintf("director %s: `xdplb run` exited (%v); end of %s:\n%s", e.Director, e.Err, e.Log, e.Tail)
}

// tail returns the last n lines of a file, indented.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "    (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var out bytes.Buffer
	for _, s := range lines {
		out.WriteString("    " + s + "\n")
	}
	return strings.TrimRight(out.String(), "\n")
}

func names(ds []*Director) string {
	if len(ds) == 0 {
		return "none"
	}
	var s []string
	for _, d := range ds {
		s = append(s, d.Spec.Name)
	}
	return strings.Join(s, ", ")
}

func keys(m map[string]bool) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

// Dataplane is a read-only view of one director's data plane, opened from
// its pins: what its XDP program does now, whatever the daemon says.
type Dataplane struct {
	bal *loader.Balancer
}

// OpenDataplane opens the maps d's daemon attached.
func (l *Lab) OpenDataplane(d *Director) (*Dataplane, error) {
	b, err := loader.Open(labnet.HostLink, d.Paths.PinRoot)
	if err != nil {
		return nil, fmt.Errorf("director %s: %w", d.Spec.Name, err)
	}
	return &Dataplane{bal: b}, nil
}

// Close releases the maps.
func (dp *Dataplane) Close() error { return dp.bal.Close() }

// Balancer returns the opened balancer, for its counters.
func (dp *Dataplane) Balancer() *loader.Balancer { return dp.bal }

// BackendView is a backend as one director's data plane holds it.
type BackendView struct {
	controlplane.Backend
	// Slots is how many entries of the VIP's Maglev table name the
	// backend: with none it receives no new flows. The control plane
	// writes a backend before the table that names it and takes it out of
	// the table before it changes its state, so the state alone runs ahead
	// of the table when a backend comes back or its weight changes.
	Slots int
	// Share is Slots as a fraction of the table.
	Share float64
}

// Backends returns every backend of svc as the data plane holds it, by
// address.
func (dp *Dataplane) Backends(svc ServiceSpec) (map[netip.Addr]BackendView, error) {
	v := loader.VIP{Addr: svc.VIP, Port: svc.Port, Proto: loader.TCP}
	e, err := dp.bal.LookupVIP(v)
	if err != nil {
		return nil, fmt.Errorf("read %v: %w", v, err)
	}
	ring, err := dp.bal.Ring(e.Index)
	if err != nil {
		return nil, err
	}
	slots := map[uint32]int{}
	for _, id := range ring {
		slots[id]++
	}
	bs, err := dp.bal.Backends()
	if err != nil {
		return nil, fmt.Errorf("read %v: read backends: %w", v, err)
	}
	m := map[netip.Addr]BackendView{}
	for _, b := range bs {
		if b.VIPIndex != e.Index {
			continue
		}
		if _, ok := m[b.Addr]; ok {
			continue // the first slot with the address stands for it
		}
		bv := BackendView{Backend: controlplane.Backend{Addr: b.Addr, Weight: b.Weight, MAC: b.MAC, State: b.State}}
		if len(ring) > 0 {
			bv.Slots = slots[b.ID]
			bv.Share = float64(bv.Slots) / float64(len(ring))
		}
		m[b.Addr] = bv
	}
	return m, nil
}

// WaitBackend waits, up to limit, until backend addr satisfies want in
// every service on d's data plane, and returns how long it took. A backend
// the data plane does not hold is passed to want as the zero BackendView.
func (l *Lab) WaitBackend(ctx context.Context, d *Director, addr netip.Addr, want func(BackendView) bool, limit time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	dp, err := l.OpenDataplane(d)
	if err != nil {
		return 0, err
	}
	defer dp.Close()
	start := time.Now()
	var last []string
	err = l.poll(ctx, func() (bool, error) {
		last = last[:0]
		all := true
		for _, s := range l.Topology.Services {
			bs, err := dp.Backends(s)
			if err != nil {
				return false, err
			}
			b := bs[addr]
			last = append(last, fmt.Sprintf("%s: %s weight %d, %.1f%% of the table", s.Name, b.State, b.Weight, 100*b.Share))
			all = all && want(b)
		}
		return all, nil
	})
	if err != nil {
		return time.Since(start), fmt.Errorf("backend %s on %s (%s): %w", addr, d.Spec.Name, strings.Join(last, ", "), err)
	}
	return time.Since(start), nil
}

// Out reports whether b gets no new flows: its VIP's table no longer
// names it, and it is down, draining, of weight 0 or not in the data
// plane at all.
func Out(b BackendView) bool {
	return b.Slots == 0 && (b.State != loader.StateActive || b.Weight == 0)
}

// In reports whether b gets new flows: active, with a weight, and named
// by its VIP's table.
func In(b BackendView) bool {
	return b.Slots > 0 && b.State == loader.StateActive && b.Weight > 0
}

// ErrNoMaster is returned when no director, or more than one, holds the
// VIPs.
var ErrNoMaster = errors.New("no single master")

// TheMaster returns the one director holding the VIPs.
func (l *Lab) TheMaster() (*Director, error) {
	ms, err := l.Master()
	if err != nil {
		return nil, err
	}
	if len(ms) != 1 {
		return nil, fmt.Errorf("%w: directors holding the VIPs: %s", ErrNoMaster, names(ms))
	}
	return ms[0], nil
}

// Took is how long one director took to reach a state.
type Took struct {
	Director *Director
	Took     time.Duration
	Err      error
}

// WaitBackendAll runs WaitBackend on every director of ds at once, so each
// time is measured from the same instant, the call, and returns them in
// the order of ds with the first error.
func (l *Lab) WaitBackendAll(ctx context.Context, ds []*Director, addr netip.Addr, want func(BackendView) bool, limit time.Duration) ([]Took, error) {
	out := make([]Took, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() {
			took, err := l.WaitBackend(ctx, d, addr, want, limit)
			out[i] = Took{Director: d, Took: took, Err: err}
		})
	}
	wg.Wait()
	for _, t := range out {
		if t.Err != nil {
			return out, t.Err
		}
	}
	return out, nil
}
