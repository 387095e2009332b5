package main

import (
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/loader"
)

type attachOptions struct {
	mode        string
	ringSize    uint32
	maxVIPs     uint32
	maxBackends uint32
	maxFlows    uint32
	tunSource   string
}

func newAttachCmd(a *app) *cobra.Command {
	var o attachOptions
	def := loader.DefaultOptions()
	c := &cobra.Command{
		Use:   "attach IFACE",
		Short: "Load the balancer and attach it to an interface",
		Long: `Load the balancer program, attach it to IFACE through a BPF link and pin
the link and its maps under --pin-root/IFACE. Forwarding continues after
xdplb exits; 'xdplb detach IFACE' stops it.

--mode auto tries native (driver) XDP and falls back to generic XDP with
a warning: generic mode works on every interface but is much slower.

The map sizes are fixed while attached: VIPs, backend slots (shared by all
VIPs), flow-table entries and the Maglev table size per VIP (a prime; a
bigger table spreads load more evenly and moves fewer flows when backends
change). The output says how much kernel memory they lock.

Attaching again to an interface that is attached already replaces the
program in place, keeping VIPs, backends and established flows: that is
how to upgrade xdplb without a forwarding gap. The sizes then default to
those in use; giving other ones is an error (detach first).

The tunnel source of TUN VIPs is the interface's primary IPv4 address
unless --tun-source says otherwise.`,
		Example: `  # Attach with the default sizes, native mode if the driver supports it
  xdplb attach eth0

  # A small director: 16 VIPs, 256 backends, a table of 4093 slots per VIP
  xdplb attach eth0 --max-vips 16 --max-backends 256 --ring-size 4093

  # Generic XDP, for interfaces whose driver has no XDP support
  xdplb attach eth0 --mode generic`,
		Args: exactArgs("IFACE"),
		RunE: func(c *cobra.Command, args []string) error {
			return a.runAttach(c, args[0], o)
		},
	}
	f := c.Flags()
	f.Var(newTextFlag(&o.mode, "auto", "MODE"), "mode", "XDP mode: auto, native or generic")
	f.Uint32Var(&o.ringSize, "ring-size", def.RingSize, "Maglev table slots per VIP (a prime)")
	f.Uint32Var(&o.maxVIPs, "max-vips", def.MaxVIPs, "VIPs the maps hold")
	f.Uint32Var(&o.maxBackends, "max-backends", def.MaxBackends, "backend slots, shared by all VIPs")
	f.Uint32Var(&o.maxFlows, "max-flows", def.MaxFlows, "flow-table entries, rounded up to buckets of 4 (when full, a new flow replaces the least recently used of the 8 it may take)")
	f.Var(newTextFlag(&o.tunSource, "", "ADDR"), "tun-source", "outer source address of TUN packets (default: the interface's primary IPv4 address)")
	return c
}

func (a *app) runAttach(c *cobra.Command, iface string, o attachOptions) error {
	mode, err := parseMode(o.mode)
	if err != nil {
		return err
	}
	var tunSource netip.Addr
	if o.tunSource != "" {
		if tunSource, err = netip.ParseAddr(o.tunSource); err != nil || !tunSource.Is4() {
			return usageErrorf("bad --tun-source %q: want an IPv4 address of this host", o.tunSource)
		}
	}
	opts := loader.Options{
		MaxVIPs: o.maxVIPs, MaxBackends: o.maxBackends, MaxFlows: o.maxFlows,
		RingSize: o.ringSize, HashSeed: loader.DefaultHashSeed,
	}
	if err := opts.Validate(); err != nil {
		return usageError{err}
	}
	if err := a.requirePrivileges(); err != nil {
		return err
	}
	sized := false
	for _, name := range []string{"ring-size", "max-vips", "max-backends", "max-flows"} {
		sized = sized || c.Flags().Changed(name)
	}
	if !sized {
		// Re-attaching (an upgrade) keeps the sizes in use.
		if b, err := loader.Open(iface, a.pinRoot); err == nil {
			opts = b.Options()
			b.Close()
		}
	}

	b, info, err := loader.Attach(iface, mode, opts, a.pinRoot, a.log())
	if err != nil {
		return a.explain(err, iface)
	}
	defer b.Close()
	if tunSource.IsValid() {
		cfg, err := b.Config()
		if err == nil {
			cfg.TunSource = tunSource
			err = b.SetConfig(cfg)
		}
		if err != nil {
			return fmt.Errorf("set tunnel source: %w", err)
		}
	}
	cfg, err := b.Config()
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}

	out := c.OutOrStdout()
	verb := "attached"
	if info.Adopted {
		verb = "replaced the program on"
	}
	fmt.Fprintf(out, "%s %s in %s mode\n", verb, iface, info.Mode)
	fmt.Fprintf(out, "pinned under   %s\n", info.PinDir)
	opts = b.Options()
	fmt.Fprintf(out, "sizes          %d VIPs, %d backend slots, %d flows, %d-slot Maglev tables\n",
		opts.MaxVIPs, opts.MaxBackends-1, opts.MaxFlows, opts.RingSize)
	fmt.Fprintf(out, "memory locked  %s\n", formatBytes(info.Memlock))
	tun := "none (TUN VIPs need one: attach again with --tun-source)"
	if cfg.TunSource.IsValid() {
		tun = cfg.TunSource.String()
	}
	fmt.Fprintf(out, "tunnel source  %s\n", tun)
	if mode == loader.ModeAuto && info.Mode == loader.ModeGeneric {
		fmt.Fprintf(c.ErrOrStderr(), "warning: %s has no native XDP support: running in generic mode, which forwards at a fraction of native speed\n", iface)
	}
	if !info.Adopted {
		fmt.Fprintf(out, "next: xdplb vip add VIP:PORT/PROTO --forwarding dr|tun\n")
	}
	return nil
}

// formatBytes prints a byte count for people, with the exact figure.
func formatBytes(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB (%d bytes)", float64(n)/(1<<10), n)
	}
	return fmt.Sprintf("%d bytes", n)
}
