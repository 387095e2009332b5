package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/loader"
)

// app holds what every command shares: the global flags and the process's
// surroundings, replaced in tests.
type app struct {
	pinRoot string
	iface   string
	verbose bool

	stdout, stderr io.Writer
	// caps returns the effective capability set (CapEff); tests replace it.
	caps func() (uint64, error)
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{stdout: stdout, stderr: stderr, caps: effectiveCaps}
}

// log returns the logger the loader and control plane write to: warnings
// by default, every change with --verbose.
func (a *app) log() *slog.Logger {
	level := slog.LevelWarn
	if a.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	return newRootCmdFor(newApp(stdout, stderr))
}

func newRootCmdFor(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "xdplb",
		Short: "Layer-4 load balancer with an XDP data plane",
		Long: `xdplb forwards connections for virtual services (VIPs) to real servers
(backends), as LVS does in DR and TUN mode, in an XDP program attached to
the network interface.

The program and its maps are pinned under --pin-root/IFACE, so forwarding
continues after xdplb exits and every later command (vip, backend, maps,
stats) edits or reads the same maps. A typical session:

  xdplb attach eth0
  xdplb vip add 198.18.1.100:80/tcp --forwarding dr
  xdplb backend add 198.18.1.100:80/tcp 198.18.0.21
  xdplb backend add 198.18.1.100:80/tcp 198.18.0.22 --weight 2
  xdplb stats --watch

Every command needs root (CAP_BPF and CAP_NET_ADMIN) except help and
version.`,
		Args:              subcommandArgs,
		RunE:              runParent,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%w; see '%s --help'", err, c.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.pinRoot, "pin-root", loader.DefaultPinRoot, "bpffs directory the programs and maps are pinned under")
	pf.StringVar(&a.iface, "iface", "", "interface to act on (default: the only one attached under --pin-root)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "log every change made to the maps")

	root.AddCommand(
		newAttachCmd(a),
		newDetachCmd(a),
		newVIPCmd(a),
		newBackendCmd(a),
		newMapsCmd(a),
		newStatsCmd(a),
		newDecapCmd(a),
		newVersionCmd(a),
		newLabCmd(a),
		newRunCmd(a),
		newStatusCmd(a),
		newReloadCmd(a),
		newConfigCmd(a),
		newVRRPCmd(a),
	)
	return root
}

// subcommandArgs rejects an unknown subcommand of a command that only
// groups others, naming the choices.
func subcommandArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for '%s'", args[0], c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(": did you mean %s?", strings.Join(s, " or "))
	}
	return usageErrorf("%s; choose one of: %s", msg, strings.Join(subcommandNames(c), ", "))
}

// runParent prints the help of a command that only groups others.
func runParent(c *cobra.Command, _ []string) error {
	return c.Help()
}

func subcommandNames(c *cobra.Command) []string {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return names
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitCode is 0 for success, 2 for a command-line mistake and 1 for any
// other failure.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// exactArgs checks the number of positional arguments, naming them.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		want := strings.Join(names, " ")
		if len(names) == 0 {
			return usageErrorf("'%s' takes no arguments; unexpected %q", c.CommandPath(), strings.Join(args, " "))
		}
		if len(args) < len(names) {
			return usageErrorf("'%s' needs %s; missing %s (see --help for examples)",
				c.CommandPath(), want, strings.Join(names[len(args):], " "))
		}
		return usageErrorf("'%s' takes %s; unexpected %q", c.CommandPath(), want, strings.Join(args[len(names):], " "))
	}
}
