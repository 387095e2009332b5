package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/config"
)

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
	case errors.Is(err, api.ErrNotRunning):
		return fmt.Errorf("%w; %s", err, what)
	case errors.Is(err, api.ErrDenied):
		return fmt.Errorf("%w: %w", errNeedRoot, err)
	}
	return err
}
