package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/controlplane/daemon"
	"github.com/xdplb/xdplb/controlplane/metrics"
)

type runOptions struct {
	config       string
	detachOnExit bool
}

func newRunCmd(a *app) *cobra.Command {
	var o runOptions
	c := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the xdplb daemon",
		Long: `Run the daemon: attach the balancer to director.interface (or adopt the
program and maps an earlier run pinned, without interrupting forwarding),
program the configured services, check the backends' health and keep the
maps equal to the configuration, the health checks and the next-hop MACs.

While it runs, 'xdplb status', 'xdplb reload' and 'xdplb backend
drain|undrain' talk to it over director.api_socket, and the map-writing
commands (vip add|del, backend add|del|set) go through it as saved
runtime changes. Prometheus metrics are served on director.metrics_listen.

SIGHUP, like 'xdplb reload', re-reads the file and applies the difference;
a file with errors is refused and nothing changes. SIGINT and SIGTERM stop
the daemon; the data plane keeps forwarding on the last state written, and
the next run picks up from there (flows, drains and all). With
--detach-on-exit the program is detached and its pins removed instead.`,
		Example: `  xdplb run --config /etc/xdplb/xdplb.yaml
  xdplb run --config ./xdplb.yaml --detach-on-exit`,
		Args: exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			return a.runDaemon(c.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.config, "config", "/etc/xdplb/xdplb.yaml", "configuration file")
	f.BoolVar(&o.detachOnExit, "detach-on-exit", false, "detach the program and remove its pins when the daemon stops")
	return c
}

func (a *app) runDaemon(ctx context.Context, o runOptions) error {
	if err := a.requirePrivileges(); err != nil {
		return err
	}
	// The file decides the log format and level; a broken file is
	// reported before anything starts.
	cfg, err := config.Load(o.config)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Director.LogLevel.Level())
	log := slog.New(logHandler(a.stderr, cfg.Director.LogFormat, level))

	d, err := daemon.New(daemon.Options{
		ConfigPath:   o.config,
		Log:          log,
		LogLevel:     level,
		DetachOnExit: o.detachOnExit,
		Build:        buildInfo(),
	})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading", "config", o.config)
				// The daemon logs the outcome.
				d.Reload(ctx)
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	return nil
}

func logHandler(w io.Writer, format config.LogFormat, level slog.Leveler) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if format == config.LogJSON {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// buildInfo describes the binary for the xdplb_build_info metric.
func buildInfo() metrics.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return metrics.BuildInfo{Version: "unknown"}
	}
	out := metrics.BuildInfo{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if out.Version == "" {
		out.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			out.Revision = s.Value
		}
	}
	return out
}
