package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/loader"
)

func newVIPCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "vip",
		Short: "Add, delete and list virtual services",
		Long: `A VIP is a virtual service: an IPv4 address, a port (or every port) and a
protocol, written 198.18.1.100:80/tcp (or 198.18.1.100/udp for every UDP
port that has no VIP of its own). Packets to a VIP are forwarded to one of
its backends; everything else goes to the kernel untouched.`,
		Args: subcommandArgs,
		RunE: runParent,
	}
	c.AddCommand(newVIPAddCmd(a), newVIPDelCmd(a), newVIPListCmd(a))
	return c
}

// serviceOrNotFound reads a VIP's service, or says which VIPs exist.
func serviceOrNotFound(s *session, vip loader.VIP) (controlplane.Service, error) {
	svc, err := s.prog.Service(vip)
	if errors.Is(err, loader.ErrVIPNotFound) {
		return svc, vipNotFound(s, vip)
	}
	return svc, err
}

// describeResult says in one line what Apply changed.
func describeResult(r controlplane.Result) string {
	var parts []string
	add := func(verb string, n int) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d backend%s", verb, n, plural(n)))
		}
	}
	add("added", len(r.Added))
	add("updated", len(r.Updated))
	add("removed", len(r.Removed))
	if r.RingWritten {
		parts = append(parts, "swapped in a new Maglev table")
	}
	if len(parts) == 0 {
		return "nothing to change"
	}
	return strings.Join(parts, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
