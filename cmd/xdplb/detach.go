package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/loader"
)

func newDetachCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "detach IFACE",
		Short: "Detach the balancer and remove its pins",
		Long: `Detach the balancer from IFACE and remove everything pinned under
--pin-root/IFACE: the link, the maps with every VIP, backend and flow, and
the directory. Forwarding stops at once. The decap program, if attached,
is separate: 'xdplb decap detach IFACE'.`,
		Example: `  xdplb detach eth0`,
		Args:    exactArgs("IFACE"),
		RunE: func(c *cobra.Command, args []string) error {
			iface := args[0]
			if err := a.requirePrivileges(); err != nil {
				return err
			}
			// Wait for a command editing the maps to finish first.
			if unlock, err := controlplane.Lock(c.Context(), filepath.Join(a.pinRoot, iface)); err == nil {
				defer unlock()
			}
			if err := loader.Detach(iface, a.pinRoot); err != nil {
				if errors.Is(err, loader.ErrNotAttached) {
					return fmt.Errorf("nothing to detach: %w", err)
				}
				return a.explain(err, iface)
			}
			fmt.Fprintf(c.OutOrStdout(), "detached %s; removed %s\n", iface, filepath.Join(a.pinRoot, iface))
			return nil
		},
	}
}
