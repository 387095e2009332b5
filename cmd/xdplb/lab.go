package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane/lab"
)

type labOptions struct {
	vrrp bool
}

// topology returns the lab's topology as the flags change it.
func (o labOptions) topology() lab.Topology {
	t := lab.DefaultTopology()
	t.VRRP.Enabled = o.vrrp
	return t
}

func (o *labOptions) flags(c *cobra.Command) {
	c.Flags().BoolVar(&o.vrrp, "vrrp", lab.VRRPByDefault,
		"run both directors as a VRRP pair (--vrrp=false: one director holds the VIPs)")
}

func newLabCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "lab",
		Short: "Run xdplb on one machine: client, directors and backends in namespaces",
		Long: fmt.Sprintf(`The lab builds the whole system in network namespaces on one bridge, all
addressed in 198.18.0.0/15: a client, two directors running 'xdplb run'
as a VRRP pair (with --vrrp=false, one director holding the VIPs), and
three backends, each running 'xdplb lab backend', an HTTP server that
answers with its name. Two services balance over the
backends: web-dr (198.18.1.100:80, dr) and web-tun (198.18.1.101:80, tun).

Every namespace starts with %q; the lab's files live under %s
and its pinned programs under %s. 'xdplb lab down' removes all
of it, also after a crash.`, lab.DefaultPrefix, lab.DefaultRunDir, lab.DefaultPinRoot),
		Args: subcommandArgs,
		RunE: runParent,
	}
	c.AddCommand(newLabUpCmd(a), newLabDownCmd(a), newLabDemoCmd(a), newLabBackendCmd(a))
	return c
}

func newLabUpCmd(a *app) *cobra.Command {
	var o labOptions
	c := &cobra.Command{
		Use:   "up",
		Short: "Build the lab and leave it running",
		Long: `Build the lab, wait until every service reaches every backend, and leave it
running for you to explore. It prints how to enter each namespace.`,
		Example: `  xdplb lab up
  ip netns exec xlab-client curl -s http://198.18.1.100/
  xdplb lab down`,
		Args: exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			return a.runLabUp(c.Context(), o)
		},
	}
	o.flags(c)
	return c
}

func (a *app) runLabUp(ctx context.Context, o labOptions) error {
	if err := a.requirePrivileges(); err != nil {
		return err
	}
	t := o.topology()
	l, err := lab.Up(ctx, t, lab.Options{Log: a.log()})
	if err != nil {
		return err
	}
	for _, line := range l.Describe() {
		fmt.Fprintln(a.stdout, line)
	}
	if err := l.WaitReady(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("the lab is up but does not work: %w\nit is left as it is for you to look at; 'xdplb lab down' removes it", err)
	}
	m, err := l.TheMaster()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\nThe lab is ready: %s holds the VIPs. Try:\n", m.Spec.Name)
	fmt.Fprintf(a.stdout, "  ip netns exec %s curl -s %s\n", l.Client.Name, t.Services[0].URL("/"))
	fmt.Fprintf(a.stdout, "  ip netns exec %s %s %s\n", m.Host.Name, os.Args[0], strings.Join(m.StatusArgs(), " "))
	fmt.Fprintf(a.stdout, "  ip netns exec %s %s %s\n", m.Host.Name, os.Args[0], strings.Join(m.StatsArgs(), " "))
	fmt.Fprintf(a.stdout, "Remove it with: %s lab down\n", os.Args[0])
	return nil
}

func newLabDownCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove the lab, whatever state it is in",
		Long: `Stop every process inside the lab's namespaces, delete the namespaces and
their links, and remove the lab's pinned programs and files. It needs no
running lab: leftovers of a crashed one are found by their name prefix.`,
		Example: `  xdplb lab down`,
		Args:    exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := a.requirePrivileges(); err != nil {
				return err
			}
			r, err := lab.Down(lab.Options{Log: a.log()})
			if len(r.Namespaces) == 0 && len(r.Dirs) == 0 && err == nil {
				fmt.Fprintln(a.stdout, "no lab to remove")
				return nil
			}
			fmt.Fprintf(a.stdout, "removed %d namespaces", len(r.Namespaces))
			if len(r.Dirs) > 0 {
				fmt.Fprintf(a.stdout, " and %s", strings.Join(r.Dirs, ", "))
			}
			fmt.Fprintln(a.stdout)
			return err
		},
	}
}

type labDemoOptions struct {
	labOptions
	requests int
}

func newLabDemoCmd(a *app) *cobra.Command {
	var o labDemoOptions
	c := &cobra.Command{
		Use:   "demo",
		Short: "Build the lab, show xdplb at work, and remove it",
		Long: `Build the lab and take it through what xdplb is for, checking each step:
requests through both VIPs spread over the backends by weight; a backend's
server stopped and taken out by the health check within
fall x interval + interval, then back; the master director killed and
the backup holding the VIPs within VRRP's master-down interval, with open
connections kept on their backends; 'xdplb status' and 'xdplb stats'.
The lab is removed at the end, on failure and on Ctrl-C. The exit status
is 1, with the reason, if any step does not behave.`,
		Example: `  xdplb lab demo
  xdplb lab demo --requests 1000`,
		Args: exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			if o.requests < 10 {
				return usageErrorf("bad --requests %d: want 10 or more", o.requests)
			}
			if err := a.requirePrivileges(); err != nil {
				return err
			}
			return lab.Demo(c.Context(), a.stdout, o.topology(), lab.Options{Log: a.log()}, lab.DemoConfig{Requests: o.requests})
		},
	}
	o.flags(c)
	c.Flags().IntVar(&o.requests, "requests", 300, "requests through each VIP to show the spread")
	return c
}

type labBackendOptions struct {
	name       string
	listen     string
	healthFile string
}

func newLabBackendCmd(a *app) *cobra.Command {
	var o labBackendOptions
	c := &cobra.Command{
		Use:   "backend --name NAME",
		Short: "Serve HTTP as a lab backend: answer with a name, serve /healthz",
		Long: fmt.Sprintf(`Serve HTTP until interrupted. Every path answers 200 with NAME as the body
(and in the %s header); %s answers 200, or 503 while
--health-file exists, so that touch and rm flip the backend's health.`, lab.BackendHeader, lab.HealthPath),
		Example: `  xdplb lab backend --name be1 --listen 0.0.0.0:80 --health-file /run/be1.down`,
		Args:    exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			return a.runLabBackend(c.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.name, "name", "", "name to answer with (required)")
	f.Var(newTextFlag(&o.listen, "0.0.0.0:80", "ADDR:PORT"), "listen", "address to listen on")
	f.Var(newTextFlag(&o.healthFile, "", "FILE"), "health-file", "while this file exists, the health endpoint fails")
	return c
}

func (a *app) runLabBackend(ctx context.Context, o labBackendOptions) error {
	if o.name == "" {
		return usageErrorf("'xdplb lab backend' needs --name")
	}
	if o.healthFile != "" && !filepath.IsAbs(o.healthFile) {
		return usageErrorf("bad --health-file %q: want an absolute path", o.healthFile)
	}
	network := "tcp"
	if ap, err := netip.ParseAddrPort(o.listen); err == nil && ap.Addr().Is4() {
		network = "tcp4"
	}
	ln, err := net.Listen(network, o.listen)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return usageErrorf("bad --listen %q: %v", o.listen, err)
		}
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	log := slog.New(slog.NewTextHandler(a.stderr, nil))
	s := &lab.BackendServer{Name: o.name, HealthFile: o.healthFile, Log: log}
	return s.Serve(ctx, ln)
}
