package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/controlplane/neigh"
	"github.com/xdplb/xdplb/loader"
)

func newBackendCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "backend",
		Short: "Add, change and delete the backends of a VIP",
		Long: `Backends are the real servers of a VIP, named by IPv4 address. Each has a
weight (its share of new flows relative to the others), a next-hop MAC and
a state:

  active    takes new and established flows
  draining  keeps its established flows, takes no new ones
  down      takes nothing: flows pinned to it move to another backend

Every change rebuilds the VIP's Maglev table and swaps it in at once;
established flows stay on their backend through the flow table unless it
is down or deleted.`,
		Args: subcommandArgs,
		RunE: runParent,
	}
	c.AddCommand(newBackendAddCmd(a), newBackendDelCmd(a), newBackendSetCmd(a))
	return c
}

type backendAddOptions struct {
	weight     string
	mac        string
	state      string
	arpTimeout time.Duration
}

func newBackendAddCmd(a *app) *cobra.Command {
	var o backendAddOptions
	c := &cobra.Command{
		Use:   "add VIP ADDR",
		Short: "Add a backend to a VIP",
		Long: `Add the backend ADDR to VIP. Its packets go out of the attached interface
to the next hop: the backend itself when it is on the link, the router the
kernel routes it through otherwise (TUN only: a DR backend must be on the
link). Without --mac the next hop's MAC is taken from the neighbour table,
or asked for with ARP when the table has none.`,
		Example: `  xdplb backend add 198.18.1.100:80/tcp 198.18.0.21
  xdplb backend add 198.18.1.100:80/tcp 198.18.0.22 --weight 3
  xdplb backend add 198.18.1.100:80/tcp 198.18.0.23 --mac 02:00:5e:10:00:23
  xdplb backend add 198.18.1.100:80/tcp 198.18.0.24 --state draining`,
		Args: exactArgs("VIP", "ADDR"),
		RunE: func(c *cobra.Command, args []string) error {
			return a.runBackendAdd(c, args, o)
		},
	}
	f := c.Flags()
	f.Var(newTextFlag(&o.weight, "1", "N"), "weight", fmt.Sprintf("share of new flows relative to the other backends, 0..%d", maxWeight))
	f.Var(newTextFlag(&o.mac, "", "MAC"), "mac", "next-hop MAC (default: from the neighbour table or ARP)")
	f.Var(newTextFlag(&o.state, "active", "STATE"), "state", "active, draining or down")
	f.DurationVar(&o.arpTimeout, "arp-timeout", neigh.DefaultTimeout, "how long to wait for an ARP reply")
	return c
}

func (a *app) runBackendAdd(c *cobra.Command, args []string, o backendAddOptions) error {
	vip, err := parseVIPArg(args[0])
	if err != nil {
		return err
	}
	addr, err := parseBackendArg(args[1])
	if err != nil {
		return err
	}
	weight, err := parseWeight(o.weight)
	if err != nil {
		return err
	}
	state, err := parseState(o.state)
	if err != nil {
		return err
	}
	var mac net.HardwareAddr
	if o.mac != "" {
		if mac, err = parseMAC(o.mac); err != nil {
			return err
		}
	}
	if o.arpTimeout <= 0 {
		return usageErrorf("bad --arp-timeout %v: want a positive duration such as 1s", o.arpTimeout)
	}

	s, err := a.open(c.Context(), true)
	if err != nil {
		return err
	}
	defer s.Close()
	svc, err := serviceOrNotFound(s, vip)
	if err != nil {
		return err
	}
	if b, ok := svc.Backend(addr); ok {
		return fmt.Errorf("backend %v of %v exists already (%s, weight %d): change it with 'xdplb backend set %v %v --weight N|--state STATE'",
			addr, vip, b.State, b.Weight, vip, addr)
	}
	if mac == nil {
		if mac, err = a.resolveMAC(c, s.iface, svc, addr, o.arpTimeout); err != nil {
			return err
		}
	}
	svc.Backends = append(svc.Backends, controlplane.Backend{Addr: addr, Weight: weight, MAC: mac, State: state})
	res, err := s.prog.Apply(svc)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.OutOrStdout(), "added backend %v (%s, weight %d, next hop %s) to %v: %s\n",
		addr, state, weight, mac, vip, describeResult(res))
	return nil
}

// resolveMAC finds the next-hop MAC of a backend and checks that the
// forwarding method can reach it.
func (a *app) resolveMAC(c *cobra.Command, iface string, svc controlplane.Service, addr netip.Addr, timeout time.Duration) (net.HardwareAddr, error) {
	r := &neigh.Resolver{Timeout: timeout, Log: a.log()}
	ctx, cancel := context.WithTimeout(c.Context(), timeout+time.Second)
	defer cancel()
	res, err := r.Resolve(ctx, iface, addr)
	if err != nil {
		if errors.Is(err, neigh.ErrNoReply) {
			return nil, fmt.Errorf("%w (or give its MAC with --mac)", err)
		}
		return nil, err
	}
	if res.Gateway && svc.Config.Forwarding == loader.ForwardDR {
		return nil, fmt.Errorf("backend %v is not on the link of %s (the kernel routes it through %v), but DR forwarding needs every backend on the link: use a TUN VIP, or give the MAC with --mac if the route is wrong",
			addr, iface, res.NextHop)
	}
	how := "the neighbour table"
	if res.Source == neigh.FromARP {
		how = "an ARP reply"
	}
	via := ""
	if res.Gateway {
		via = fmt.Sprintf(" via gateway %v", res.NextHop)
	}
	fmt.Fprintf(c.ErrOrStderr(), "next hop of %v%s is %s (from %s)\n", addr, via, res.MAC, how)
	return res.MAC, nil
}

func newBackendDelCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "del VIP ADDR",
		Short: "Delete a backend from a VIP",
		Long: `Delete the backend ADDR of VIP. The VIP's Maglev table is rebuilt without it
first, then its slot is freed: flows pinned to it move to the other
backends on their next packet. To let its connections finish instead,
drain it first: 'xdplb backend set VIP ADDR --state draining'.`,
		Example: `  xdplb backend del 198.18.1.100:80/tcp 198.18.0.21`,
		Args:    exactArgs("VIP", "ADDR"),
		RunE: func(c *cobra.Command, args []string) error {
			vip, err := parseVIPArg(args[0])
			if err != nil {
				return err
			}
			addr, err := parseBackendArg(args[1])
			if err != nil {
				return err
			}
			s, err := a.open(c.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			svc, err := serviceOrNotFound(s, vip)
			if err != nil {
				return err
			}
			i := backendIndex(svc, addr)
			if i < 0 {
				return backendNotFound(svc, addr)
			}
			svc.Backends = append(svc.Backends[:i], svc.Backends[i+1:]...)
			res, err := s.prog.Apply(svc)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "deleted backend %v from %v: %s\n", addr, vip, describeResult(res))
			return nil
		},
	}
}

type backendSetOptions struct {
	weight string
	state  string
	mac    string
}

func newBackendSetCmd(a *app) *cobra.Command {
	var o backendSetOptions
	c := &cobra.Command{
		Use:   "set VIP ADDR [--state STATE] [--weight N] [--mac MAC]",
		Short: "Change a backend's state, weight or next-hop MAC",
		Long: `Change the state, weight or next-hop MAC of the backend ADDR of VIP; give at
least one. The Maglev table is rebuilt and swapped in only if the change
moves flows (state or weight).

To take a backend out of service gently, drain it (its established flows
continue, it gets no new ones), wait until 'xdplb stats' shows its
traffic has stopped, then delete it. To take it out at once, set it down.`,
		Example: `  xdplb backend set 198.18.1.100:80/tcp 198.18.0.21 --state draining
  xdplb backend set 198.18.1.100:80/tcp 198.18.0.21 --state active --weight 2
  xdplb backend set 198.18.1.100:80/tcp 198.18.0.22 --state down
  xdplb backend set 198.18.1.100:80/tcp 198.18.0.23 --mac 02:00:5e:10:00:99`,
		Args: exactArgs("VIP", "ADDR"),
		RunE: func(c *cobra.Command, args []string) error {
			return a.runBackendSet(c, args, o)
		},
	}
	f := c.Flags()
	f.Var(newTextFlag(&o.state, "", "STATE"), "state", "active, draining or down")
	f.Var(newTextFlag(&o.weight, "", "N"), "weight", fmt.Sprintf("share of new flows, 0..%d", maxWeight))
	f.Var(newTextFlag(&o.mac, "", "MAC"), "mac", "next-hop MAC")
	return c
}

func (a *app) runBackendSet(c *cobra.Command, args []string, o backendSetOptions) error {
	vip, err := parseVIPArg(args[0])
	if err != nil {
		return err
	}
	addr, err := parseBackendArg(args[1])
	if err != nil {
		return err
	}
	f := c.Flags()
	if !f.Changed("state") && !f.Changed("weight") && !f.Changed("mac") {
		return usageErrorf("nothing to change: give --state, --weight or --mac")
	}
	var (
		state  loader.BackendState
		weight uint32
		mac    net.HardwareAddr
	)
	if f.Changed("state") {
		if state, err = parseState(o.state); err != nil {
			return err
		}
	}
	if f.Changed("weight") {
		if weight, err = parseWeight(o.weight); err != nil {
			return err
		}
	}
	if f.Changed("mac") {
		if mac, err = parseMAC(o.mac); err != nil {
			return err
		}
	}

	s, err := a.open(c.Context(), true)
	if err != nil {
		return err
	}
	defer s.Close()
	svc, err := serviceOrNotFound(s, vip)
	if err != nil {
		return err
	}
	i := backendIndex(svc, addr)
	if i < 0 {
		return backendNotFound(svc, addr)
	}
	b := &svc.Backends[i]
	if f.Changed("state") {
		b.State = state
	}
	if f.Changed("weight") {
		b.Weight = weight
	}
	if f.Changed("mac") {
		b.MAC = mac
	}
	if b.State == loader.StateActive && (b.MAC == nil || isZeroMAC(b.MAC)) {
		// Added while down without a MAC: find it now.
		if b.MAC, err = a.resolveMAC(c, s.iface, svc, addr, neigh.DefaultTimeout); err != nil {
			return err
		}
	}
	res, err := s.prog.Apply(svc)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.OutOrStdout(), "backend %v of %v is %s, weight %d, next hop %s: %s\n",
		addr, vip, b.State, b.Weight, b.MAC, describeResult(res))
	return nil
}

func backendIndex(svc controlplane.Service, addr netip.Addr) int {
	for i, b := range svc.Backends {
		if b.Addr == addr {
			return i
		}
	}
	return -1
}

// backendNotFound says that addr is not a backend of svc and lists those
// that are.
func backendNotFound(svc controlplane.Service, addr netip.Addr) error {
	if len(svc.Backends) == 0 {
		return fmt.Errorf("%v is not a backend of %v, which has none: add it with 'xdplb backend add %v %v'", addr, svc.VIP, svc.VIP, addr)
	}
	names := make([]string, len(svc.Backends))
	for i, b := range svc.Backends {
		names[i] = b.Addr.String()
	}
	return fmt.Errorf("%v is not a backend of %v; its backends: %s", addr, svc.VIP, strings.Join(names, ", "))
}

func isZeroMAC(m net.HardwareAddr) bool {
	return string(m) == string(make([]byte, len(m)))
}
