package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/neigh"
	"github.com/xdplb/xdplb/loader"
)

type backendSetOptions struct {
	weight string
	state  string
	mac    string
	socket string
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
traffic has stopped, then delete it. To take it out at once, set it down.

` + viaDaemonHelp + `

Through the daemon, --state draining and down are an operator's decision
it keeps across reloads and restarts; --state active undoes it.`,
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
	socketFlag(c, &o.socket)
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

	cl, s, err := a.mapWriter(c, o.socket)
	if err != nil {
		return err
	}
	if cl != nil {
		ch := api.BackendChange{Service: vip.String(), Backend: addr.String()}
		if f.Changed("state") {
			st := state.String()
			ch.State = &st
		}
		if f.Changed("weight") {
			ch.Weight = &weight
		}
		if f.Changed("mac") {
			m := mac.String()
			ch.MAC = &m
		}
		res, err := cl.SetBackend(c.Context(), ch)
		return daemonDone(c, res, err)
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
