package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/loader"
)

func newDecapDetachCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "detach IFACE",
		Short:   "Stop decapsulating on an interface",
		Long:    `Detach the decap program from IFACE and remove its pins under --pin-root/decap/IFACE.`,
		Example: `  xdplb decap detach eth0`,
		Args:    exactArgs("IFACE"),
		RunE: func(c *cobra.Command, args []string) error {
			iface := args[0]
			if err := a.requirePrivileges(); err != nil {
				return err
			}
			if err := loader.DetachDecap(iface, a.pinRoot); err != nil {
				if errors.Is(err, loader.ErrNotAttached) {
					return fmt.Errorf("nothing to detach: %w", err)
				}
				return a.explain(err, iface)
			}
			fmt.Fprintf(c.OutOrStdout(), "decap detached from %s\n", iface)
			return nil
		},
	}
}
