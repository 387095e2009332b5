package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/loader"
)

type mapsListOptions struct {
	json bool
}

func newMapsListCmd(a *app) *cobra.Command {
	var o mapsListOptions
	c := &cobra.Command{
		Use:   "list",
		Short: "List the maps with sizes, entries in use and memory",
		Long: `List every map of the balancer: kernel type, key and value sizes, maximum
and used entries, and the kernel memory it locks. rings[N] is the Maglev
table of the VIP with index N ('xdplb vip list' shows the indexes); its
used entries are the slots that name a backend. The flows map is an array
of buckets of 4 flows: its max and used entries count flows.`,
		Example: `  xdplb maps list
  xdplb maps list --json | jq .memlock_bytes`,
		Args: exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			return a.runMapsList(c, o)
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON (see mapsListJSON in cmd/xdplb/output.go)")
	return c
}

func (a *app) runMapsList(c *cobra.Command, o mapsListOptions) error {
	s, err := a.open(c.Context(), false)
	if err != nil {
		return err
	}
	defer s.Close()
	infos, err := s.b.MapInfos()
	if err != nil {
		return fmt.Errorf("describe maps: %w", err)
	}
	sn, err := takeSnapshot(s, true)
	if err != nil {
		return err
	}
	flows := uint64(0)
	if err := s.b.Flows(func(loader.Flow) bool { flows++; return true }); err != nil {
		return fmt.Errorf("count flows: %w", err)
	}
	out := mapsListJSON{Interface: s.iface, Maps: []mapJSON{}}
	for _, m := range infos {
		j := mapJSON{Name: m.Name, Type: m.Type, KeySize: m.KeySize, ValueSize: m.ValueSize,
			MaxEntries: m.MaxEntries, MemlockBytes: m.Memlock}
		j.Entries = sn.entriesOf(m, flows)
		if m.Name == "flows" {
			j.MaxEntries *= loader.FlowWays
		}
		out.Maps = append(out.Maps, j)
		out.MemlockBytes += m.Memlock
	}
	if o.json {
		return writeJSON(c.OutOrStdout(), out)
	}
	w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "NAME\tTYPE\tKEY\tVALUE\tMAX\tUSED\tMEMLOCK\t\n")
	for _, m := range out.Maps {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n", m.Name, m.Type, m.KeySize, m.ValueSize, m.MaxEntries, m.Entries, m.MemlockBytes)
	}
	fmt.Fprintf(w, "total\t\t\t\t\t\t%d\t\n", out.MemlockBytes)
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.OutOrStdout(), "memory locked: %s\n", formatBytes(out.MemlockBytes))
	return nil
}

// entriesOf counts what is in use in a map.
func (sn *snapshot) entriesOf(m loader.MapInfo, flows uint64) uint64 {
	switch m.Name {
	case "vips", "vip_stats":
		return uint64(len(sn.entries))
	case "rings":
		return uint64(len(sn.rings))
	case "backends", "backend_stats":
		return uint64(len(sn.backends))
	case "flows":
		return flows
	case "config", "reason_stats", "event_stats":
		return uint64(m.MaxEntries)
	}
	if idx, ok := ringIndex(m.Name); ok {
		return uint64(sn.ringSize - sn.slots(idx)[0])
	}
	return uint64(m.MaxEntries)
}
