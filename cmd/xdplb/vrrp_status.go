package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane/api"
)

// vrrpStatus is what `xdplb vrrp status --json` prints.
type vrrpStatus struct {
	Instances []api.VRRPInstance `json:"instances"`
	Links     []api.VRRPLink     `json:"links"`
}

func newVRRPStatusCmd(a *app) *cobra.Command {
	var (
		socket string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show each VRRP instance's state, priority, master, counters and transitions",
		Long: `Show every VRRP instance the running daemon runs: its state (INIT, BACKUP,
MASTER or FAULT), its priority as configured and as advertised after the
tracked interfaces, scripts and services, the master's address as far as
this director knows, the advertisements sent and received, the received
ones it dropped by reason (checksum, ttl, auth_password, interval...), and
its last state changes with their times and causes.

Messages that no instance claimed (malformed, or for a VRID this director
does not run) are counted per interface after the instances.

Two directors that both say MASTER do not hear each other: compare their
'adverts received' and drop reasons (a password or interval mismatch with
the peer shows there).`,
		Example: `  xdplb vrrp status
  xdplb vrrp status --json | jq '.instances[] | {name, state, master}'
  xdplb vrrp status --socket /run/xdplb/xdplb.sock`,
		Args: exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := a.daemonClient(socket)
			if err != nil {
				return err
			}
			st, err := cl.Status(c.Context())
			if err != nil {
				return explainAPI(err, "VRRP runs inside the daemon: start it with 'xdplb run'")
			}
			vs := vrrpStatus{Instances: st.VRRP, Links: st.VRRPLinks}
			if vs.Instances == nil {
				vs.Instances = []api.VRRPInstance{}
			}
			if vs.Links == nil {
				vs.Links = []api.VRRPLink{}
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), vs)
			}
			if len(vs.Instances) == 0 {
				_, err := fmt.Fprintf(c.OutOrStdout(), "the daemon runs no VRRP instances: %s has no vrrp: instances\n", statusOr(st.ConfigFile))
				return err
			}
			return writeVRRPStatus(c.OutOrStdout(), vs, time.Now())
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the instances as JSON")
	socketFlag(c, &socket)
	return c
}

// writeVRRPStatus prints vs for people; now is the time ages are counted
// from.
func writeVRRPStatus(w io.Writer, vs vrrpStatus, now time.Time) error {
	for i, in := range vs.Instances {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s  %s  VRID %d  VRRPv%d  %s\n", in.Name, in.Interface, in.VRID, in.Version, in.State)
		fmt.Fprintf(w, "  priority %s, master %s\n", vrrpPriority(in), statusOr(in.Master))
		fmt.Fprintf(w, "  addresses %s\n", strings.Join(in.Addresses, ", "))
		if in.Group != "" {
			fmt.Fprintf(w, "  sync group %s\n", in.Group)
		}
		if len(in.Faults) > 0 {
			fmt.Fprintf(w, "  faults: %s\n", strings.Join(in.Faults, ", "))
		}
		cn := in.Counters
		last := "never"
		if !in.LastAdvert.IsZero() {
			last = vrrpAge(now, in.LastAdvert) + " ago"
		}
		fmt.Fprintf(w, "  adverts sent %d, received %d (last %s); priority 0 sent %d, received %d; send errors %d\n",
			cn.AdvertsSent, cn.AdvertsReceived, last, cn.Priority0Sent, cn.Priority0Received, cn.SendErrors)
		fmt.Fprintf(w, "  dropped: %s\n", vrrpDrops(cn.Drops))
		fmt.Fprintf(w, "  transitions: %d", cn.Transitions)
		if n := len(in.Transitions); n > 0 && uint64(n) < cn.Transitions {
			fmt.Fprintf(w, ", the last %d", n)
		}
		fmt.Fprintln(w)
		for _, t := range in.Transitions {
			fmt.Fprintf(w, "    %s (%s ago)  %s -> %s  %s\n",
				t.At.Format("2006-01-02 15:04:05.000"), vrrpAge(now, t.At), t.From, t.To, t.Cause)
		}
	}
	for i, l := range vs.Links {
		if i == 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s: %d VRRP messages received, %d receive errors; unclaimed and dropped: %s\n",
			l.Interface, l.Received, l.ReceiveErrors, vrrpDrops(l.Drops))
	}
	return nil
}

// vrrpPriority is an instance's effective priority, followed by the
// configured one when they differ.
func vrrpPriority(in api.VRRPInstance) string {
	prio := fmt.Sprint(in.EffectivePriority)
	if in.EffectivePriority != in.Priority {
		prio += fmt.Sprintf(" (configured %d)", in.Priority)
	}
	return prio
}

// vrrpDrops lists the non-zero drop counts by reason name.
func vrrpDrops(drops map[string]uint64) string {
	var parts []string
	for _, r := range sortedKeys(drops) {
		if n := drops[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// vrrpAge is how long ago t was, to the millisecond under a minute: VRRP
// timings are in centiseconds.
func vrrpAge(now, t time.Time) string {
	d := now.Sub(t)
	if d < time.Minute {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
