package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/loader"
)

func newVIPDelCmd(a *app) *cobra.Command {
	var socket string
	c := &cobra.Command{
		Use:   "del VIP",
		Short: "Delete a VIP and its backends",
		Long: `Delete a VIP with its Maglev table, its backends and the flows pinned to
them. Packets to it go to the kernel from then on.

` + viaDaemonHelp,
		Example: `  xdplb vip del 198.18.1.100:80/tcp`,
		Args:    exactArgs("VIP"),
		RunE: func(c *cobra.Command, args []string) error {
			vip, err := parseVIPArg(args[0])
			if err != nil {
				return err
			}
			cl, s, err := a.mapWriter(c, socket)
			if err != nil {
				return err
			}
			if cl != nil {
				res, err := cl.DeleteVIP(c.Context(), api.VIPRef{VIP: vip.String()})
				return daemonDone(c, res, err)
			}
			defer s.Close()
			if err := s.prog.Delete(vip); err != nil {
				if errors.Is(err, loader.ErrVIPNotFound) {
					return vipNotFound(s, vip)
				}
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "deleted VIP %v from %s\n", vip, s.iface)
			return nil
		},
	}
	socketFlag(c, &socket)
	return c
}
