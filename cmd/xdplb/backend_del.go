package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane/api"
)

func newBackendDelCmd(a *app) *cobra.Command {
	var socket string
	c := &cobra.Command{
		Use:   "del VIP ADDR",
		Short: "Delete a backend from a VIP",
		Long: `Delete the backend ADDR of VIP. The VIP's Maglev table is rebuilt without it
first, then its slot is freed: flows pinned to it move to the other
backends on their next packet. To let its connections finish instead,
drain it first: 'xdplb backend set VIP ADDR --state draining'.

` + viaDaemonHelp,
		Example: `  xdplb backend del 198.18.1.100:80/tcp 198.18.0.21`,
		Args:    exactArgs("VIP", "ADDR"),
		RunE: func(c *cobra.Command, args []string) error {
			vip, err := parseVIPArg(args[0])
			if err != nil {
				return err
			}
			addr, err := parseBackendArg(args[1])
			if err != nil {
				return err
			}
			cl, s, err := a.mapWriter(c, socket)
			if err != nil {
				return err
			}
			if cl != nil {
				res, err := cl.DeleteBackend(c.Context(), api.BackendRef{Service: vip.String(), Backend: addr.String()})
				return daemonDone(c, res, err)
			}
			defer s.Close()
			svc, err := serviceOrNotFound(s, vip)
			if err != nil {
				return err
			}
			i := backendIndex(svc, addr)
			if i < 0 {
				return backendNotFound(svc, addr)
			}
			svc.Backends = append(svc.Backends[:i], svc.Backends[i+1:]...)
			res, err := s.prog.Apply(svc)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "deleted backend %v from %v: %s\n", addr, vip, describeResult(res))
			return nil
		},
	}
	socketFlag(c, &socket)
	return c
}
