package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane/api"
)

func newBackendDrainCmd(a *app) *cobra.Command {
	return newDrainCmd(a, true)
}

func newBackendUndrainCmd(a *app) *cobra.Command {
	return newDrainCmd(a, false)
}

func newDrainCmd(a *app, drain bool) *cobra.Command {
	var socket string
	c := &cobra.Command{
		Use:   "drain SERVICE BACKEND",
		Short: "Drain a backend of a running daemon's service (saved)",
		Long: `Drain BACKEND of SERVICE (a service name from the configuration, or a VIP
such as 198.18.1.100:80/tcp): its established flows continue, it gets no
new ones. The running daemon saves the decision in director.state_dir
before it takes effect, so it holds across reloads, restarts and a crash,
until 'xdplb backend undrain'. Watch the backend's traffic fall with
'xdplb status'.`,
		Example: `  xdplb backend drain web 198.18.0.21
  xdplb backend drain 198.18.1.100:80/tcp 198.18.0.21`,
		Args: exactArgs("SERVICE", "BACKEND"),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := a.daemonClient(socket)
			if err != nil {
				return err
			}
			ref := api.BackendRef{Service: args[0], Backend: args[1]}
			call := cl.Drain
			if !drain {
				call = cl.Undrain
			}
			res, err := call(c.Context(), ref)
			if err != nil {
				return explainAPI(err, fmt.Sprintf("drains are kept by the daemon; to change the maps directly use 'xdplb backend set VIP %s --state draining'", args[1]))
			}
			fmt.Fprintln(c.OutOrStdout(), res.Message)
			return nil
		},
	}
	if !drain {
		c.Use = "undrain SERVICE BACKEND"
		c.Short = "Undo a drain (or an operator's down) of a backend (saved)"
		c.Long = `Undo 'xdplb backend drain' (and 'xdplb backend set ... --state down' made
through the daemon): BACKEND of SERVICE takes new flows again as soon as its
health checks pass. The decision is saved like the drain was.`
		c.Example = `  xdplb backend undrain web 198.18.0.21`
	}
	socketFlag(c, &socket)
	return c
}
