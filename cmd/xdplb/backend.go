package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane"
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
	c.AddCommand(newBackendAddCmd(a), newBackendDelCmd(a), newBackendSetCmd(a), newBackendDrainCmd(a), newBackendUndrainCmd(a))
	return c
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
