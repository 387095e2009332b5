package main

import "github.com/spf13/cobra"

func newVRRPCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "vrrp",
		Short: "Show the running daemon's VRRP instances",
		Long: `The daemon ('xdplb run') runs the VRRP instances of the vrrp: section of its
configuration: paired directors elect a master, which holds the virtual
addresses, as keepalived's vrrp_instance does and speaking the same
protocol (VRRPv2, RFC 3768, and VRRPv3, RFC 5798).`,
		Args: subcommandArgs,
		RunE: runParent,
	}
	c.AddCommand(newVRRPStatusCmd(a))
	return c
}
