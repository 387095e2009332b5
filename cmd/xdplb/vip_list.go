package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

type vipListOptions struct {
	json bool
}

func newVIPListCmd(a *app) *cobra.Command {
	var o vipListOptions
	c := &cobra.Command{
		Use:   "list",
		Short: "List VIPs with their backends",
		Long: `List every VIP with its forwarding method, scheduler and backends: address,
next-hop MAC, state, weight and the Maglev table slots each owns (its share
of new flows; draining, down and weight-0 backends own none).

It reads the pinned maps, which needs no lock: it shows what the data plane
holds whether or not the daemon runs ('xdplb status' adds the daemon's
view: health, operator decisions, why a backend is not active).`,
		Example: `  xdplb vip list
  xdplb vip list --json | jq '.vips[] | {vip, backends: [.backends[].address]}'`,
		Args: exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			return a.runVIPList(c, o)
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON (see vipListJSON in cmd/xdplb/output.go)")
	return c
}

func (a *app) runVIPList(c *cobra.Command, o vipListOptions) error {
	s, err := a.open(c.Context(), false)
	if err != nil {
		return err
	}
	defer s.Close()
	a.verbosef(c, "reading maps under %s", filepath.Join(a.pinRoot, s.iface))
	sn, err := takeSnapshot(s, true)
	if err != nil {
		return err
	}
	out := vipListJSON{Interface: s.iface, VIPs: []vipJSON{}}
	for _, e := range sn.entries {
		svc := sn.services[e.VIP]
		slots := sn.slots(e.Index)
		v := vipJSON{
			VIP: e.VIP.String(), Address: e.VIP.Addr.String(), Port: e.VIP.Port, Protocol: e.VIP.Proto.String(),
			Index: e.Index, Forwarding: svc.Config.Forwarding.String(), Scheduler: svc.Scheduler.String(),
			PersistencePrefix: persistPrefix(svc), RingSize: sn.ringSize, EmptySlots: slots[0],
			Backends: []backendJSON{},
		}
		for _, b := range sn.backendsOf(e.VIP) {
			v.Backends = append(v.Backends, backendJSON{
				ID: b.ID, Address: b.Addr.String(), MAC: b.MAC.String(), State: b.State.String(),
				Weight: b.Weight, Slots: slots[b.ID],
			})
		}
		out.VIPs = append(out.VIPs, v)
	}
	if o.json {
		return writeJSON(c.OutOrStdout(), out)
	}

	stdout := c.OutOrStdout()
	if len(out.VIPs) == 0 {
		fmt.Fprintf(stdout, "no VIPs on %s; add one with 'xdplb vip add VIP --forwarding dr|tun'\n", s.iface)
	}
	for i, v := range out.VIPs {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		sched := v.Scheduler
		if v.PersistencePrefix != nil {
			sched += fmt.Sprintf(" per /%d", *v.PersistencePrefix)
		}
		fmt.Fprintf(stdout, "%s  %s, %s (index %d)\n", v.VIP, v.Forwarding, sched, v.Index)
		if len(v.Backends) == 0 {
			fmt.Fprintf(stdout, "  no backends: packets are dropped; add one with 'xdplb backend add %s ADDR'\n", v.VIP)
			continue
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "  BACKEND\tMAC\tSTATE\tWEIGHT\tSLOTS\n")
		for _, b := range v.Backends {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%d\t%d (%.1f%%)\n", b.Address, b.MAC, b.State, b.Weight, b.Slots,
				100*float64(b.Slots)/float64(v.RingSize))
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if v.EmptySlots == v.RingSize {
			fmt.Fprintf(stdout, "  no active backend with a weight: new flows are dropped\n")
		}
	}
	return nil
}
