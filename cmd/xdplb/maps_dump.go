package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/loader"
)

type mapsDumpOptions struct {
	json  bool
	limit int
}

func newMapsDumpCmd(a *app) *cobra.Command {
	var o mapsDumpOptions
	c := &cobra.Command{
		Use:   "dump NAME",
		Short: "Print one map, decoded",
		Long: `Print the entries of one map, decoded:

  vips           VIP, index, forwarding, scheduler
  backends       id, VIP, address, next-hop MAC, state, weight
  rings          every VIP's Maglev table, summarised as slots per backend
  rings[N]       the table of the VIP with index N
  flows          the flow table: client, VIP, protocol and pinned backend
  config         tunnel source, interface MAC, MTU, tunnel TTL
  reason_stats   packets per verdict reason, summed over CPUs
  event_stats    flow-table events, summed over CPUs
  vip_stats      packets and bytes forwarded per VIP
  backend_stats  packets and bytes forwarded per backend

The flow table changes while it is read: the dump is a best-effort
snapshot.`,
		Example: `  xdplb maps dump backends
  xdplb maps dump rings
  xdplb maps dump flows --limit 20
  xdplb maps dump flows --json | jq '.entries | group_by(.backend) | map({backend: .[0].backend, flows: length})'`,
		Args: exactArgs("NAME"),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return dumpable(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			return a.runMapsDump(c, args[0], o)
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON (see mapDumpJSON in cmd/xdplb/output.go)")
	c.Flags().IntVar(&o.limit, "limit", 0, "print at most this many flows (0: all)")
	return c
}

func (a *app) runMapsDump(c *cobra.Command, name string, o mapsDumpOptions) error {
	ringIdx, isRing := ringIndex(name)
	if !slices.Contains(dumpable(), name) && !isRing {
		return usageErrorf("no map %q: choose one of %s, or rings[N] for one VIP's table", name, strings.Join(dumpable(), ", "))
	}
	if o.limit < 0 {
		return usageErrorf("bad --limit %d: want 0 (all) or more", o.limit)
	}
	s, err := a.open(c.Context(), false)
	if err != nil {
		return err
	}
	defer s.Close()
	sn, err := takeSnapshot(s, name == "rings" || isRing || name == "vips")
	if err != nil {
		return err
	}

	var entries any
	switch {
	case name == "vips":
		entries = sn.vipEntries()
	case name == "backends":
		entries = sn.backendEntries()
	case name == "rings":
		entries = sn.ringEntries(nil)
	case isRing:
		if _, ok := sn.byIndex[ringIdx]; !ok {
			return fmt.Errorf("no VIP has index %d on %s: 'xdplb vip list' shows the indexes", ringIdx, s.iface)
		}
		entries = sn.ringEntries(&ringIdx)
	case name == "flows":
		if entries, err = sn.flowEntries(s.b, o.limit); err != nil {
			return err
		}
	case name == "config":
		cfg, err := s.b.Config()
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		entries = configEntry(cfg)
	default: // the counters
		st, err := s.b.Stats()
		if err != nil {
			return fmt.Errorf("read counters: %w", err)
		}
		j := sn.statsJSON(s.iface, st)
		entries = map[string]any{
			"reason_stats": j.Reasons, "event_stats": j.Events,
			"vip_stats": j.VIPs, "backend_stats": j.Backends,
		}[name]
	}

	if o.json {
		return writeJSON(c.OutOrStdout(), mapDumpJSON{Interface: s.iface, Map: name, Entries: entries})
	}
	return printEntries(c.OutOrStdout(), entries)
}

func (sn *snapshot) vipEntries() []vipEntryJSON {
	out := []vipEntryJSON{}
	for _, e := range sn.entries {
		svc := sn.services[e.VIP]
		out = append(out, vipEntryJSON{VIP: e.VIP.String(), Index: e.Index, Forwarding: svc.Config.Forwarding.String(),
			Scheduler: svc.Scheduler.String(), PersistencePrefix: persistPrefix(svc)})
	}
	return out
}

func (sn *snapshot) backendEntries() []backendEntryJSON {
	out := []backendEntryJSON{}
	for _, b := range sn.backends {
		out = append(out, backendEntryJSON{ID: b.ID, VIP: sn.vipName(b.VIPIndex), VIPIndex: b.VIPIndex,
			Address: b.Addr.String(), MAC: b.MAC.String(), State: b.State.String(), Weight: b.Weight})
	}
	return out
}

// ringEntries summarises the tables of every VIP, or of the one with
// index only.
func (sn *snapshot) ringEntries(only *uint32) []ringJSON {
	out := []ringJSON{}
	for _, e := range sn.entries {
		if only != nil && e.Index != *only {
			continue
		}
		slots := sn.slots(e.Index)
		r := ringJSON{VIP: e.VIP.String(), VIPIndex: e.Index, Size: sn.ringSize, EmptySlots: slots[0], Backends: []ringSlotJSON{}}
		for _, id := range sortedKeys(slots) {
			if id == 0 {
				continue
			}
			rs := ringSlotJSON{ID: id, Slots: slots[id], Share: float64(slots[id]) / float64(sn.ringSize)}
			if b, ok := sn.byID[id]; ok {
				rs.Address = b.Addr.String()
			}
			r.Backends = append(r.Backends, rs)
		}
		out = append(out, r)
	}
	return out
}

func (sn *snapshot) flowEntries(b *loader.Balancer, limit int) ([]flowJSON, error) {
	out := []flowJSON{}
	err := b.Flows(func(f loader.Flow) bool {
		j := flowJSON{Source: f.Src.String(), Destination: f.Dst.String(), Protocol: f.Proto.String(), BackendID: f.BackendID}
		if be, ok := sn.byID[f.BackendID]; ok {
			j.Backend = be.Addr.String()
		}
		out = append(out, j)
		return limit == 0 || len(out) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("read flows: %w", err)
	}
	slices.SortFunc(out, func(x, y flowJSON) int {
		return strings.Compare(x.Destination+" "+x.Source, y.Destination+" "+y.Source)
	})
	return out, nil
}

func configEntry(c loader.Config) configJSON {
	j := configJSON{InterfaceMAC: c.IfMAC.String(), MTU: c.MTU, TunnelTTL: c.TunTTL}
	if c.TunSource.IsValid() {
		j.TunnelSource = c.TunSource.String()
	}
	return j
}

// printEntries prints a dump as a table.
func printEntries(out io.Writer, entries any) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	switch es := entries.(type) {
	case []vipEntryJSON:
		fmt.Fprintf(w, "INDEX\tVIP\tFORWARDING\tSCHEDULER\n")
		for _, e := range es {
			sched := e.Scheduler
			if e.PersistencePrefix != nil {
				sched += fmt.Sprintf(" /%d", *e.PersistencePrefix)
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", e.Index, e.VIP, e.Forwarding, sched)
		}
	case []backendEntryJSON:
		fmt.Fprintf(w, "ID\tVIP\tADDRESS\tMAC\tSTATE\tWEIGHT\n")
		for _, e := range es {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\n", e.ID, e.VIP, e.Address, e.MAC, e.State, e.Weight)
		}
	case []ringJSON:
		for i, r := range es {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "%s (index %d): %d slots, %d empty\n", r.VIP, r.VIPIndex, r.Size, r.EmptySlots)
			if len(r.Backends) > 0 {
				fmt.Fprintf(w, "  ID\tBACKEND\tSLOTS\tSHARE\n")
			}
			for _, b := range r.Backends {
				addr := b.Address
				if addr == "" {
					addr = "(free slot)"
				}
				fmt.Fprintf(w, "  %d\t%s\t%d\t%.2f%%\n", b.ID, addr, b.Slots, 100*b.Share)
			}
		}
	case []flowJSON:
		fmt.Fprintf(w, "CLIENT\tVIP\tPROTO\tBACKEND\n")
		for _, f := range es {
			be := f.Backend
			if be == "" {
				be = fmt.Sprintf("id %d (freed: re-hashed on the next packet)", f.BackendID)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.Source, f.Destination, f.Protocol, be)
		}
		fmt.Fprintf(w, "%d flows\n", len(es))
	case configJSON:
		ts := es.TunnelSource
		if ts == "" {
			ts = "(none)"
		}
		fmt.Fprintf(w, "tunnel source\t%s\ninterface MAC\t%s\nMTU\t%d\ntunnel TTL\t%d\n", ts, es.InterfaceMAC, es.MTU, es.TunnelTTL)
	case map[string]uint64:
		for _, k := range sortedKeys(es) {
			fmt.Fprintf(w, "%s\t%d\n", k, es[k])
		}
	case []vipStatsJSON:
		fmt.Fprintf(w, "INDEX\tVIP\tPACKETS\tBYTES\n")
		for _, v := range es {
			fmt.Fprintf(w, "%d\t%s\t%d\t%d\n", v.Index, v.VIP, v.Packets, v.Bytes)
		}
	case []backendStatsJSON:
		fmt.Fprintf(w, "ID\tVIP\tBACKEND\tPACKETS\tBYTES\n")
		for _, b := range es {
			fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\n", b.ID, b.VIP, b.Address, b.Packets, b.Bytes)
		}
	default:
		return fmt.Errorf("print %T: no table format", entries)
	}
	return w.Flush()
}
