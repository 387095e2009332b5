package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newReloadCmd(a *app) *cobra.Command {
	var socket string
	c := &cobra.Command{
		Use:   "reload",
		Short: "Make the daemon re-read its configuration file",
		Long: `Make the running daemon re-read its configuration file and apply the
difference: services added and removed, backends, weights, health checks,
log_level, source_address and metrics_listen. Established flows stay on
their backends; a removed service stops being forwarded.

A file with any error is refused whole, with every problem listed as
file:line:column: field: message, and the daemon keeps running on the
previous configuration. Settings fixed at start (the interface, sockets,
map sizes) are refused too, with what to do. SIGHUP does the same.`,
		Example: `  xdplb reload
  xdplb reload --socket /run/xdplb/lb1.sock`,
		Args: exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := a.daemonClient(socket)
			if err != nil {
				return err
			}
			res, err := cl.Reload(c.Context())
			if err != nil {
				return explainAPI(err, "start it with 'xdplb run --config FILE', which reads the file anyway")
			}
			fmt.Fprintf(c.OutOrStdout(), "reloaded: %s\n", res.Changes)
			return nil
		},
	}
	socketFlag(c, &socket)
	return c
}
