package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/neigh"
	"github.com/xdplb/xdplb/loader"
)

type backendAddOptions struct {
	weight     string
	mac        string
	state      string
	arpTimeout time.Duration
	socket     string
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
or asked for with ARP when the table has none (by the daemon, when it
makes the change).

` + viaDaemonHelp,
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
	f.DurationVar(&o.arpTimeout, "arp-timeout", neigh.DefaultTimeout, "how long to wait for an ARP reply (when writing the maps directly)")
	socketFlag(c, &o.socket)
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

	cl, s, err := a.mapWriter(c, o.socket)
	if err != nil {
		return err
	}
	if cl != nil {
		// Only what was given: the daemon keeps a configured backend's
		// weight unless told otherwise, and resolves a missing MAC.
		spec := api.BackendSpec{Service: vip.String(), Backend: addr.String()}
		if mac != nil {
			spec.MAC = mac.String()
		}
		if c.Flags().Changed("weight") {
			spec.Weight = &weight
		}
		if c.Flags().Changed("state") {
			spec.State = state.String()
		}
		res, err := cl.AddBackend(c.Context(), spec)
		return daemonDone(c, res, err)
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
