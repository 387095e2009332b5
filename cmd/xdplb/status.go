package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane/api"
)

func newStatusCmd(a *app) *cobra.Command {
	var (
		socket string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show the running daemon's services, backends and health",
		Long: `Show what the running daemon forwards: every service with its VIP,
forwarding, scheduler and what the data plane does with its packets; every
backend with its state in the data plane (active, draining, down) and why,
its health, weight, operator decision, next hop and traffic; the use of the
flow table and the kernel memory the BPF maps hold.

A service whose backends are all down or draining is flagged: the data
plane drops its new connections (reason drop_no_backend).`,
		Example: `  xdplb status
  xdplb status --json | jq '.services[] | {name, active_backends}'`,
		Args: exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := a.daemonClient(socket)
			if err != nil {
				return err
			}
			st, err := cl.Status(c.Context())
			if err != nil {
				return explainAPI(err, "without it, 'xdplb vip list' and 'xdplb stats' read the maps directly")
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), st)
			}
			return writeStatus(c.OutOrStdout(), st, time.Now())
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	socketFlag(c, &socket)
	return c
}

// writeStatus prints st for people.
func writeStatus(w io.Writer, st api.Status, now time.Time) error {
	how := "attached"
	if st.Adopted {
		how = "adopted the pinned program"
	}
	fmt.Fprintf(w, "xdplb on %s (%s mode, %s", st.Interface, st.Mode, how)
	if st.PinDir != "" {
		fmt.Fprintf(w, ", pins in %s", st.PinDir)
	}
	fmt.Fprintf(w, "), up %s\n", statusAge(now, st.Started))
	fmt.Fprintf(w, "config %s, loaded %s ago\n", st.ConfigFile, statusAge(now, st.ConfigLoaded))
	if r := st.LastReload; r != nil {
		if r.OK {
			fmt.Fprintf(w, "last reload %s ago: ok: %s\n", statusAge(now, r.At), r.Changes)
		} else {
			fmt.Fprintf(w, "last reload %s ago: REFUSED, previous configuration in force:\n  %s\n", statusAge(now, r.At),
				strings.ReplaceAll(strings.TrimSpace(r.Error), "\n", "\n  "))
		}
	}
	pct := 0.0
	if st.FlowTable.Capacity > 0 {
		pct = 100 * float64(st.FlowTable.Entries) / float64(st.FlowTable.Capacity)
	}
	fmt.Fprintf(w, "flow table %d of %d entries (%.1f%%), BPF maps %s\n",
		st.FlowTable.Entries, st.FlowTable.Capacity, pct, statusBytes(st.BPFMemory.TotalBytes))

	for _, s := range st.Services {
		fmt.Fprintln(w)
		origin := ""
		if s.Origin == "runtime" {
			origin = ", added at runtime"
		}
		sched := s.Scheduler
		if s.PersistencePrefix > 0 {
			sched = fmt.Sprintf("%s /%d", sched, s.PersistencePrefix)
		}
		fmt.Fprintf(w, "%s  %s  %s, %s, check %s%s  %d/%d active  %s pkts %s\n",
			s.Name, s.VIP, s.Forwarding, sched, s.HealthCheck, origin, s.ActiveBackends, len(s.Backends),
			statusCount(s.Packets), statusBytes(s.Bytes))
		if s.ActiveBackends == 0 {
			fmt.Fprintf(w, "  !! %s\n", s.Dataplane)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  BACKEND\tSTATE\tHEALTH\tWEIGHT\tNEXT HOP\tPACKETS\tBYTES\tWHY")
		for _, b := range s.Backends {
			why := b.Reason
			if b.Origin == "runtime" {
				why = strings.TrimPrefix(why+"; added at runtime", "; ")
			}
			if b.LastCheckError != "" && b.Health == "down" {
				why += ": " + b.LastCheckError
			}
			mac := b.MAC
			if mac == "" {
				mac = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n",
				b.Address, b.State, b.Health, b.Weight, mac, statusCount(b.Packets), statusBytes(b.Bytes), why)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(st.VRRP) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VRRP\tIFACE\tVRID\tSTATE\tPRIORITY\tMASTER\tADDRESSES\tFAULTS")
		for _, in := range st.VRRP {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.Interface, in.VRID, in.State, vrrpPriority(in),
				statusOr(in.Master), strings.Join(in.Addresses, ","), statusOr(strings.Join(in.Faults, ",")))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(st.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range st.Notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
	}
	return nil
}

func statusOr(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func statusAge(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String()
}

func statusCount(n uint64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func statusBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
