package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/loader"
)

type vipAddOptions struct {
	forwarding  string
	scheduler   string
	granularity string
	healthCheck string
	socket      string
}

func newVIPAddCmd(a *app) *cobra.Command {
	var o vipAddOptions
	c := &cobra.Command{
		Use:   "add VIP --forwarding dr|tun",
		Short: "Add a VIP",
		Long: `Add a VIP. It forwards nothing until it has backends ('xdplb backend add');
meanwhile its packets are dropped and counted as drop_no_backend.

--forwarding says how packets reach a backend:
  dr   direct routing: only the destination MAC changes. Backends must be on
       this link and own the VIP on a non-ARPing interface (as with LVS-DR).
  tun  IPv4-in-IPv4 to the backend's address, which may be routed. Backends
       decapsulate ('xdplb decap attach' where no ipip module exists).

--scheduler says how new flows spread over the active backends:
  maglev       hash of the whole connection into a weighted Maglev table
               (the default): even spread, few flows move when backends change
  source-hash  the same table, hashed on the client address only, masked to
               --persistence-granularity: a client keeps its backend across
               connections (keepalived's persistence)
  failover     every new flow to one backend: the active one with the highest
               weight (the lowest address among equals)

Established flows keep their backend whatever the scheduler, through the
flow table.

--health-check checks the VIP's backends as a health_check section of the
configuration file does, with the same keys and defaults, written as YAML:
'type: tcp', 'type: http, path: /healthz, interval: 1s, fall: 2' (braces
optional on one line). Checks run in the daemon, so the flag needs 'xdplb
run'; a failing backend leaves the Maglev table until it passes again.

` + viaDaemonHelp,
		Example: `  xdplb vip add 198.18.1.100:80/tcp --forwarding dr
  xdplb vip add 198.18.1.100:443/tcp --forwarding tun --scheduler source-hash --persistence-granularity 24
  xdplb vip add 198.18.1.101/udp --forwarding tun --scheduler failover
  xdplb vip add 198.18.1.102:80/tcp --forwarding dr --health-check 'type: http, path: /healthz, interval: 1s'`,
		Args: exactArgs("VIP"),
		RunE: func(c *cobra.Command, args []string) error {
			return a.runVIPAdd(c, args[0], o)
		},
	}
	f := c.Flags()
	f.Var(newTextFlag(&o.forwarding, "", "dr|tun"), "forwarding", "how packets reach a backend: dr or tun (required)")
	f.Var(newTextFlag(&o.scheduler, "maglev", "NAME"), "scheduler", "maglev, source-hash or failover")
	f.Var(newTextFlag(&o.granularity, "32", "BITS"), "persistence-granularity",
		"with source-hash: client prefix that shares a backend, as a length (24) or netmask (255.255.255.0)")
	f.StringVar(&o.healthCheck, "health-check", "", "check the backends (needs the daemon), as YAML: 'type: http, path: /healthz'")
	socketFlag(c, &o.socket)
	return c
}

// checkText returns the --health-check value as YAML: one line without
// braces gets them, so 'type: tcp, interval: 1s' is a mapping.
func checkText(s string) string {
	s = strings.TrimSpace(s)
	if s != "" && !strings.HasPrefix(s, "{") && !strings.Contains(s, "\n") {
		return "{" + s + "}"
	}
	return s
}

func (a *app) runVIPAdd(c *cobra.Command, arg string, o vipAddOptions) error {
	vip, err := parseVIPArg(arg)
	if err != nil {
		return err
	}
	fwd, err := parseForwarding(o.forwarding)
	if err != nil {
		return err
	}
	sched, err := parseScheduler(o.scheduler)
	if err != nil {
		return err
	}
	prefix, err := parseGranularity(o.granularity)
	if err != nil {
		return err
	}
	if c.Flags().Changed("persistence-granularity") && sched != controlplane.SchedulerSourceHash {
		return usageErrorf("--persistence-granularity applies only to --scheduler source-hash")
	}
	check := checkText(o.healthCheck)
	if c.Flags().Changed("health-check") {
		if _, err := config.ParseHealthCheck("health check", []byte(check), vip.Port); err != nil {
			// Positions are in the text as read, braces included.
			return usageErrorf("--health-check %q:\n%v", check, err)
		}
	}

	cl, s, err := a.mapWriter(c, o.socket)
	if err != nil {
		return err
	}
	if cl != nil {
		spec := api.VIPSpec{VIP: vip.String(), Forwarding: fwd.String(), Scheduler: sched.String(), HealthCheck: check}
		if sched == controlplane.SchedulerSourceHash {
			spec.PersistencePrefix = prefix
		}
		res, err := cl.AddVIP(c.Context(), spec)
		return daemonDone(c, res, err)
	}
	defer s.Close()
	if check != "" {
		return usageErrorf("--health-check needs the daemon, which runs the checks, and none answers on %s: start 'xdplb run', or add the VIP without checks", o.socket)
	}
	if cur, err := s.prog.Service(vip); err == nil {
		return fmt.Errorf("VIP %v exists already on %s (%s, %s, %d backends): delete it first with 'xdplb vip del %v': %w",
			vip, s.iface, cur.Config.Forwarding, cur.Scheduler, len(cur.Backends), vip, loader.ErrVIPExists)
	} else if !errors.Is(err, loader.ErrVIPNotFound) {
		return err
	}
	if fwd == loader.ForwardTUN {
		if cfg, err := s.b.Config(); err == nil && !cfg.TunSource.IsValid() {
			return fmt.Errorf("TUN VIPs need a tunnel source and %s has none: attach again with --tun-source ADDR", s.iface)
		}
	}
	svc := controlplane.Service{VIP: vip, Config: loader.VIPConfig{Forwarding: fwd}, Scheduler: sched}
	if sched == controlplane.SchedulerSourceHash {
		svc.Config.PersistPrefix = prefix
	}
	if _, err := s.prog.Apply(svc); err != nil {
		return err
	}
	detail := fmt.Sprintf("%s, %s", fwd, sched)
	if sched == controlplane.SchedulerSourceHash {
		detail += fmt.Sprintf(" per /%d", prefix)
	}
	fmt.Fprintf(c.OutOrStdout(), "added VIP %v on %s (%s)\nnext: xdplb backend add %v BACKEND-ADDR\n", vip, s.iface, detail, vip)
	return nil
}
