package health

import (
	"context"
	"net/netip"
)

// Target is one backend as a checker sees it. Its exported fields are also
// the data of Exec's argument templates.
type Target struct {
	// Address is the backend's address; checks connect to it.
	Address netip.Addr
	// Port is the port checks connect to. It may differ from the service
	// port (a database checked over HTTP on 9200).
	Port uint16
	// Service names the service the backend belongs to.
	Service string
	// VIP and ServicePort are the service's virtual address and port,
	// for exec checks that need them. Checkers do not connect to them.
	VIP         netip.Addr
	ServicePort uint16
}

// AddrPort is the address and port checks connect to.
func (t Target) AddrPort() netip.AddrPort { return netip.AddrPortFrom(t.Address, t.Port) }

// Checker probes one target once. It returns nil when the target is
// healthy, and otherwise an error for which ReasonOf gives the reason. It
// must return promptly once ctx is done, and must not leave goroutines or
// processes running after it returns. A Checker is used from many
// goroutines at once.
type Checker interface {
	Check(ctx context.Context, t Target) error
}

// CheckerFunc adapts a function to the Checker interface.
type CheckerFunc func(ctx context.Context, t Target) error

// Check calls f(ctx, t).
func (f CheckerFunc) Check(ctx context.Context, t Target) error { return f(ctx, t) }
