package main

import "github.com/spf13/cobra"

func newDecapCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "decap",
		Short: "Attach or detach the IPIP decapsulation program on a backend",
		Long: `Backends of TUN VIPs receive IPv4-in-IPv4 packets. Where the kernel has no
ipip module, the decap program strips the outer header in XDP and passes
the inner packet (addressed to the VIP, which the backend owns on a
non-ARPing interface) to the kernel. Run it on the backends, not on the
director.`,
		Args: subcommandArgs,
		RunE: runParent,
	}
	c.AddCommand(newDecapAttachCmd(a), newDecapDetachCmd(a))
	return c
}
