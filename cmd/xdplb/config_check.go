package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/controlplane/daemon"
)

func newConfigCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Check configuration files",
		Long:  `Commands on the daemon's configuration file (see 'xdplb run').`,
		Args:  subcommandArgs,
		RunE:  runParent,
	}
	c.AddCommand(newConfigCheckCmd(a))
	return c
}

func newConfigCheckCmd(a *app) *cobra.Command {
	var effective bool
	c := &cobra.Command{
		Use:   "check FILE",
		Short: "Check a configuration file without applying it",
		Long: `Check FILE as the daemon would at start or on reload, without touching
anything: every problem is listed, one per line, as file:line:column:
field: message, with what is allowed instead. Exit status 0 means the
daemon accepts the file.

With --effective, print the configuration as the daemon sees it: every
value, the defaults marked. Needs no privileges.`,
		Example: `  xdplb config check /etc/xdplb/xdplb.yaml
  xdplb config check xdplb.yaml --effective`,
		Args: exactArgs("FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err == nil {
				err = daemon.Check(cfg)
			}
			if err != nil {
				return err
			}
			if effective {
				fmt.Fprint(c.OutOrStdout(), cfg.String())
				return nil
			}
			backends := 0
			for _, s := range cfg.Services {
				backends += len(s.Backends)
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: ok: %d services, %d backends, %d VRRP instances\n",
				args[0], len(cfg.Services), backends, len(cfg.VRRP.Instances))
			return nil
		},
	}
	c.Flags().BoolVar(&effective, "effective", false, "print the effective configuration, defaults included")
	return c
}
