package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/config"
)

// pingTimeout bounds the wait for the daemon's answer to a ping, which
// it gives at once: a daemon that takes longer is stuck, and the command
// says so instead of hanging.
const pingTimeout = 2 * time.Second

// viaDaemonHelp ends the help of every command that changes the maps.
const viaDaemonHelp = `While the daemon ('xdplb run') answers on --socket, the change is made
through it and saved with its runtime state; otherwise the command writes
the pinned maps itself. --verbose says which.`

// socketFlag adds --socket, the daemon's API socket, to c.
func socketFlag(c *cobra.Command, socket *string) {
	c.Flags().StringVar(socket, "socket", config.DefaultAPISocket, "the daemon's API socket (director.api_socket)")
}

// daemonClient returns a client of the daemon on socket.
func (a *app) daemonClient(socket string) (*api.Client, error) {
	if err := a.requirePrivileges(); err != nil {
		return nil, err
	}
	return api.NewClient(socket), nil
}

// explainAPI adds what to do to the errors an operator can act on.
func explainAPI(err error, what string) error {
	switch {
	case errors.Is(err, api.ErrNotRunning) && what != "":
		return fmt.Errorf("%w; %s", err, what)
	case errors.Is(err, api.ErrDenied):
		return fmt.Errorf("%w: %w", errNeedRoot, err)
	}
	return err
}

// mapWriter chooses how a command changes the maps. When a daemon answers
// on socket it owns the maps (and holds their lock while it runs): the
// change goes through its API, and mapWriter returns its client. When
// none does, mapWriter opens the pinned maps for writing and returns the
// session, which the caller closes. Exactly one of the two is set.
func (a *app) mapWriter(c *cobra.Command, socket string) (*api.Client, *session, error) {
	cl, err := a.daemonClient(socket)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context(), pingTimeout)
	err = cl.Ping(ctx)
	cancel()
	why := fmt.Sprintf("no daemon answers on %s", socket)
	switch {
	case err == nil:
		other, err := a.otherBalancer(c, cl, socket)
		if err != nil {
			return nil, nil, explainAPI(err, "")
		}
		if other == "" {
			a.verbosef(c, "via daemon at %s", socket)
			return cl, nil, nil
		}
		why = other
	case errors.Is(err, api.ErrNotRunning):
	case errors.Is(err, context.DeadlineExceeded) && c.Context().Err() == nil:
		return nil, nil, fmt.Errorf("the daemon on %s accepts connections but did not answer within %v: see its log or 'xdplb status --socket %s', or stop it to write the maps directly",
			socket, pingTimeout, socket)
	default:
		return nil, nil, explainAPI(err, "")
	}
	a.verbosef(c, "writing maps directly: %s", why)
	s, err := a.open(c.Context(), true)
	if errors.Is(err, errLocked) {
		return nil, nil, fmt.Errorf("%w, and %s: if that process is an xdplb daemon, give its director.api_socket with --socket; otherwise wait until it is done, or stop it", err, why)
	}
	if err != nil {
		return nil, nil, err
	}
	return nil, s, nil
}

// otherBalancer says why the daemon on socket is not the one a command's
// --iface or --pin-root names, or returns "" when it is (always without
// those flags: the daemon runs the balancer).
func (a *app) otherBalancer(c *cobra.Command, cl *api.Client, socket string) (string, error) {
	f := c.Flags()
	if !f.Changed("iface") && !f.Changed("pin-root") {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(c.Context(), 5*pingTimeout)
	defer cancel()
	st, err := cl.Status(ctx)
	if err != nil {
		return "", err
	}
	if a.iface != "" && a.iface != st.Interface {
		return fmt.Sprintf("the daemon on %s runs %s, not %s", socket, st.Interface, a.iface), nil
	}
	if dir := filepath.Join(a.pinRoot, st.Interface); st.PinDir != "" && filepath.Clean(st.PinDir) != dir {
		return fmt.Sprintf("the daemon on %s pins its maps in %s, not %s", socket, st.PinDir, dir), nil
	}
	return "", nil
}

// daemonDone prints the daemon's answer to a change, or explains its
// error.
func daemonDone(c *cobra.Command, res api.Result, err error) error {
	if err != nil {
		return explainAPI(err, "")
	}
	fmt.Fprintln(c.OutOrStdout(), res.Message)
	return nil
}

// verbosef tells, with --verbose, how a command goes about its work.
func (a *app) verbosef(c *cobra.Command, format string, args ...any) {
	if a.verbose {
		fmt.Fprintf(c.ErrOrStderr(), format+"\n", args...)
	}
}
