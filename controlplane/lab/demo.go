package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"time"
)

// DemoConfig tunes Demo.
type DemoConfig struct {
	// Requests is how many requests go through each service to show the
	// spread. Default 300.
	Requests int
	// Parallel is how many of them are in flight at once. Default 8.
	Parallel int
	// Margin is what a measured time may exceed its bound by before the
	// demo fails: the bounds are the protocol's, and a loaded machine
	// schedules late. Default 250ms.
	Margin time.Duration
	// LongLived is how many long-lived connections per service cross the
	// failover. Default 10.
	LongLived int
	// ReadyTimeout bounds the wait for the lab to work. Default 30s.
	ReadyTimeout time.Duration
}

func (c DemoConfig) withDefaults() DemoConfig {
	if c.Requests <= 0 {
		c.Requests = 300
	}
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
	if c.Margin <= 0 {
		c.Margin = 250 * time.Millisecond
	}
	if c.LongLived <= 0 {
		c.LongLived = 10
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 30 * time.Second
	}
	return c
}

// demo is one run of Demo.
type demo struct {
	ctx  context.Context
	out  io.Writer
	cfg  DemoConfig
	topo Topology
	opts Options
	l    *Lab
	step int
	// down lists the backends the health step took out and left out.
	down []string
	// ready is when the lab became ready.
	ready time.Time
}

// Demo brings the lab of t up, shows it at work and removes it, also when
// a step fails or ctx is cancelled (Ctrl-C). It writes what it does and
// measures to out and returns an error naming the first step that did not
// behave: requests spread by weight over every backend through each
// service; a stopped backend taken out by its health check within
// fall × interval + interval and brought back within rise × interval +
// interval; with VRRP, the master director's death survived by the backup
// within the master-down interval, with long-lived connections kept on
// their backends; `xdplb status` and `xdplb stats` from the new master.
func Demo(ctx context.Context, out io.Writer, t Topology, o Options, cfg DemoConfig) (err error) {
	d := &demo{ctx: ctx, out: out, cfg: cfg.withDefaults(), topo: t, opts: o}
	start := time.Now()
	defer func() {
		fmt.Fprintf(out, "\n== Tear the lab down\n")
		r, derr := Down(o)
		if derr != nil {
			err = errors.Join(err, fmt.Errorf("lab down: %w", derr))
		}
		d.printf("removed %d namespaces (%s*) and %s", len(r.Namespaces), d.l.prefix(o), strings.Join(r.Dirs, ", "))
		if err != nil {
			fmt.Fprintf(out, "\ndemo FAILED after %s\n", time.Since(start).Round(time.Millisecond))
			return
		}
		fmt.Fprintf(out, "\ndemo passed in %s: every step behaved, every time within its bound\n", time.Since(start).Round(100*time.Millisecond))
	}()
	steps := []func() error{d.up, d.spread, d.health}
	if t.VRRP.Enabled && len(t.Directors) > 1 {
		steps = append(steps, d.failover)
	}
	steps = append(steps, d.status)
	for _, step := range steps {
		err := step()
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("interrupted: %w", err)
			}
			return fmt.Errorf("step %d: %w", d.step, err)
		}
	}
	return nil
}

// prefix returns the namespace prefix of the lab, also before it is up.
func (l *Lab) prefix(o Options) string {
	if l != nil {
		return l.opts.Prefix
	}
	if o.Prefix == "" {
		return DefaultPrefix
	}
	return o.Prefix
}

func (d *demo) section(title string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n== %d. %s\n", d.step, fmt.Sprintf(title, args...))
}

func (d *demo) printf(format string, args ...any) {
	fmt.Fprintf(d.out, "   "+format+"\n", args...)
}

// within checks a measured time against its bound plus the margin.
func (d *demo) within(what string, took, bound time.Duration) error {
	if took > bound+d.cfg.Margin {
		return fmt.Errorf("%s took %s, over its bound of %s by more than the %s margin", what, ms(took), bound, d.cfg.Margin)
	}
	return nil
}

func ms(t time.Duration) time.Duration { return t.Round(time.Millisecond) }

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func verdict(took, bound time.Duration) string {
	if took <= bound {
		return "within it"
	}
	return fmt.Sprintf("over it by %s", ms(took-bound))
}

func (d *demo) up() error {
	d.section("Bring the lab up")
	start := time.Now()
	l, err := Up(d.ctx, d.topo, d.opts)
	if err != nil {
		return err
	}
	d.l = l
	for _, line := range l.Describe() {
		d.printf("%s", line)
	}
	if err := l.WaitReady(d.ctx, d.cfg.ReadyTimeout); err != nil {
		return fmt.Errorf("the lab is not ready after %s: %w", d.cfg.ReadyTimeout, err)
	}
	m, err := l.TheMaster()
	if err != nil {
		return err
	}
	d.ready = time.Now()
	d.printf("ready in %s: %s holds the VIPs, every service reaches every backend", ms(d.ready.Sub(start)), m.Spec.Name)
	return nil
}

func (d *demo) spread() error {
	d.section("%d requests through each VIP from the client, a new connection each", d.cfg.Requests)
	for _, s := range d.topo.Services {
		sp := d.l.MeasureSpread(d.ctx, s, d.cfg.Requests, d.cfg.Parallel)
		if err := d.showSpread(sp); err != nil {
			return err
		}
	}
	return nil
}

// showSpread prints a spread as a table and checks it.
func (d *demo) showSpread(sp Spread) error {
	d.printf("%s (%s, %s): %d answered, %d failed, in %s", sp.Service.Name, sp.Service.Forwarding, sp.Service.URL("/"),
		sp.Requests-sp.Failed, sp.Failed, ms(sp.Took))
	d.printf("  %-8s %6s %9s %5s", "backend", "weight", "expected", "got")
	shares := sp.Shares(d.topo.Backends, d.down...)
	var bad []string
	for _, s := range shares {
		bar := strings.Repeat("#", (s.Got*40+sp.Requests/2)/max(sp.Requests, 1))
		d.printf("  %-8s %6d %9.1f %5d  %s", s.Backend, s.Weight, s.Expected, s.Got, bar)
		if !s.OK() {
			bad = append(bad, fmt.Sprintf("%s answered %d, expected %.0f ± %.0f", s.Backend, s.Got, s.Expected, s.Tolerance))
		}
	}
	switch {
	case sp.Failed > 0:
		return fmt.Errorf("%d of %d requests through %s failed, first: %s", sp.Failed, sp.Requests, sp.Service.Name, strings.Join(sp.Errors, "; "))
	case len(sp.Unknown(d.topo.Backends)) > 0:
		return fmt.Errorf("%s was answered by unknown backends %v", sp.Service.Name, sp.Unknown(d.topo.Backends))
	case len(bad) > 0:
		return fmt.Errorf("the spread over %s does not follow the weights: %s", sp.Service.Name, strings.Join(bad, "; "))
	}
	return nil
}

func (d *demo) health() error {
	victim := d.l.Backends[0]
	c := d.topo.Check
	d.section("Stop %s's server: the health check takes it out", victim.Spec.Name)
	d.printf("check: GET %s every %s, fall %d, rise %d", HealthPath, c.Interval, c.Fall, c.Rise)
	// A backend that has not passed a check since its daemon started goes
	// down at its first failure (HAProxy's init-state up); two intervals
	// make sure the fall rule is what this step shows.
	if err := sleep(d.ctx, 2*c.Interval-time.Since(d.ready)); err != nil {
		return err
	}
	if err := d.l.StopBackend(victim); err != nil {
		return err
	}
	ts, err := d.l.WaitBackendAll(d.ctx, d.l.Running(), victim.Spec.Addr, Out, 2*c.OutBound()+2*time.Second)
	if err != nil {
		return fmt.Errorf("%s was not taken out: %w", victim.Spec.Name, err)
	}
	for _, t := range ts {
		bound := c.OutBound()
		d.printf("%s: %s out of every service %s after its server stopped (bound fall × interval + interval = %s: %s)",
			t.Director.Spec.Name, victim.Spec.Name, ms(t.Took), bound, verdict(t.Took, bound))
		if err := d.within(victim.Spec.Name+" going out on "+t.Director.Spec.Name, t.Took, bound); err != nil {
			return err
		}
	}
	d.down = []string{victim.Spec.Name}
	for _, s := range d.topo.Services {
		sp := d.l.MeasureSpread(d.ctx, s, d.cfg.Requests/3, d.cfg.Parallel)
		if n := sp.Counts[victim.Spec.Name]; n > 0 || sp.Failed > 0 {
			return fmt.Errorf("after %s went out, %d requests through %s reached it and %d failed (%s)",
				victim.Spec.Name, n, s.Name, sp.Failed, strings.Join(sp.Errors, "; "))
		}
		d.printf("%s: %d requests afterwards, none failed, none reached %s", s.Name, sp.Requests, victim.Spec.Name)
	}

	if err := d.l.StartBackend(victim); err != nil {
		return err
	}
	ts, err = d.l.WaitBackendAll(d.ctx, d.l.Running(), victim.Spec.Addr, In, 2*c.InBound()+2*time.Second)
	if err != nil {
		return fmt.Errorf("%s did not come back: %w", victim.Spec.Name, err)
	}
	for _, t := range ts {
		bound := c.InBound()
		d.printf("%s: %s back %s after its server restarted (bound rise × interval + interval = %s: %s)",
			t.Director.Spec.Name, victim.Spec.Name, ms(t.Took), bound, verdict(t.Took, bound))
		if err := d.within(victim.Spec.Name+" coming back on "+t.Director.Spec.Name, t.Took, bound); err != nil {
			return err
		}
	}
	d.down = nil
	return nil
}

func (d *demo) failover() error {
	master, err := d.l.TheMaster()
	if err != nil {
		return err
	}
	d.section("Kill the master director %s: SIGKILL its daemon, take its link down", master.Spec.Name)
	var conns []*Conns
	defer func() {
		for _, c := range conns {
			c.Stop()
		}
	}()
	// From a client address nothing has used: see Topology.ClientAliases.
	var src netip.Addr
	if len(d.topo.ClientAliases) > 0 {
		src = d.topo.ClientAliases[0]
	}
	for _, s := range d.topo.Services {
		c, err := d.l.StartConnsFrom(d.ctx, src, s, d.cfg.LongLived, 100*time.Millisecond)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	d.printf("%d long-lived connections through each service, a request every 100ms on each", d.cfg.LongLived)
	if err := sleep(d.ctx, 300*time.Millisecond); err != nil {
		return err
	}

	var backup *Director
	for _, dir := range d.l.Directors {
		if dir != master && (backup == nil || dir.Spec.Priority > backup.Spec.Priority) {
			backup = dir
		}
	}
	start := time.Now()
	if err := d.l.Crash(master); err != nil {
		return err
	}
	// The time to the first answer through each VIP, measured alongside
	// from the kill; the first attempt comes once the master is off the
	// link, so no answer comes from it.
	answered := make(chan time.Duration, len(d.topo.Services))
	for _, s := range d.topo.Services {
		go func() {
			c := d.l.HTTPClient(false, 200*time.Millisecond)
			defer c.CloseIdleConnections()
			for d.ctx.Err() == nil && time.Since(start) < 10*time.Second {
				if _, err := Ask(d.ctx, c, s.URL("/")); err == nil {
					answered <- time.Since(start)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			answered <- -1
		}()
	}
	var took time.Duration
	err = d.l.poll(d.ctx, func() (bool, error) {
		took = time.Since(start)
		if took > 10*time.Second {
			return false, errors.New("gave up after 10s")
		}
		return backup.HoldsVIPs(d.topo.VIPs())
	})
	if err != nil {
		return fmt.Errorf("%s did not take the VIPs over: %w", backup.Spec.Name, err)
	}
	bound := d.topo.VRRP.MasterDownInterval(backup.Spec.Priority)
	d.printf("%s holds the VIPs %s after the kill (bound Master_Down_Interval = 3 × %s + skew = %s: %s)",
		backup.Spec.Name, ms(took), d.topo.VRRP.AdvertInterval, ms(bound), verdict(took, bound))
	if err := d.within(backup.Spec.Name+" taking the VIPs", took, bound); err != nil {
		return err
	}
	var slowest time.Duration
	for range d.topo.Services {
		t := <-answered
		if t < 0 {
			return fmt.Errorf("no service answered new connections within 10s of the kill")
		}
		slowest = max(slowest, t)
	}
	how := ""
	if slowest < took {
		how = fmt.Sprintf(", before %s held them: the switch floods frames for the dead master's MAC, and %s's XDP program forwards them", backup.Spec.Name, backup.Spec.Name)
	}
	d.printf("new connections through both VIPs answered again %s after the kill%s", ms(slowest), how)
	if err := sleep(d.ctx, 500*time.Millisecond); err != nil {
		return err
	}
	for i, c := range conns {
		r := c.Stop()
		d.printf("%s: long-lived connections across the failover: %s", d.topo.Services[i].Name, r)
		if !r.Clean() {
			return fmt.Errorf("long-lived connections through %s did not survive the failover: %s; %s",
				d.topo.Services[i].Name, r, strings.Join(r.Failures, "; "))
		}
	}
	conns = nil
	return nil
}

func (d *demo) status() error {
	m, err := d.l.TheMaster()
	if err != nil {
		return err
	}
	for _, args := range [][]string{m.StatusArgs(), m.StatsArgs()} {
		d.section("xdplb %s   (on %s)", strings.Join(args, " "), m.Spec.Name)
		out, err := d.l.Xdplb(d.ctx, m, args...)
		for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			d.printf("%s", line)
		}
		if err != nil {
			return fmt.Errorf("xdplb %s on %s: %w", strings.Join(args, " "), m.Spec.Name, err)
		}
	}
	return nil
}

// Running returns the directors whose daemon the lab has not stopped.
func (l *Lab) Running() []*Director {
	var ds []*Director
	for _, d := range l.Directors {
		if d.proc != nil && !d.proc.exited() {
			ds = append(ds, d)
		}
	}
	return ds
}

// StatusArgs is the command line that shows d's daemon status.
func (d *Director) StatusArgs() []string {
	return []string{"status", "--socket", d.Paths.Socket}
}

// StatsArgs is the command line that shows d's data-plane counters.
func (d *Director) StatsArgs() []string {
	return []string{"stats", "--pin-root", d.Paths.PinRoot, "--iface", "eth0"}
}

// Xdplb runs the lab's xdplb binary with args in d's namespace and returns
// its output.
func (l *Lab) Xdplb(ctx context.Context, d *Director, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out []byte
	err := d.Host.Do(func() error {
		var err error
		out, err = exec.CommandContext(ctx, l.opts.Binary, args...).CombinedOutput()
		return err
	})
	return out, err
}
