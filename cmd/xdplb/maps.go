package main

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newMapsCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "maps",
		Short: "Inspect the balancer's BPF maps",
		Long: `List the balancer's BPF maps with their sizes and memory, or dump one
decoded: addresses, ports, MACs and states instead of bytes.`,
		Args: subcommandArgs,
		RunE: runParent,
	}
	c.AddCommand(newMapsListCmd(a), newMapsDumpCmd(a))
	return c
}

// ringIndex parses "rings[N]".
func ringIndex(name string) (uint32, bool) {
	s, ok := strings.CutPrefix(name, "rings[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// dumpable returns the names 'maps dump' knows, in the order it lists
// them.
func dumpable() []string {
	return []string{"vips", "backends", "rings", "flows", "config", "reason_stats", "event_stats", "vip_stats", "backend_stats"}
}

// sortedKeys returns the keys of m in order.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
