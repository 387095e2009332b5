package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/loader"
)

type decapAttachOptions struct {
	addresses []string
	mode      string
}

func newDecapAttachCmd(a *app) *cobra.Command {
	var o decapAttachOptions
	c := &cobra.Command{
		Use:   "attach IFACE [--address ADDR ...]",
		Short: "Decapsulate IPIP packets arriving on an interface",
		Long: `Attach the decap program to IFACE and pin it under --pin-root/decap/IFACE.
It decapsulates IPIP packets whose outer destination is one of --address
(repeat the flag, or separate with commas), by default every IPv4 address
of IFACE, and passes everything else untouched. Attaching again replaces
the program in place and keeps the addresses.`,
		Example: `  xdplb decap attach eth0
  xdplb decap attach eth0 --address 198.18.0.21 --address 198.18.0.121`,
		Args: exactArgs("IFACE"),
		RunE: func(c *cobra.Command, args []string) error {
			return a.runDecapAttach(c, args[0], o)
		},
	}
	c.Flags().StringSliceVar(&o.addresses, "address", nil, "outer destination to decapsulate (default: the interface's IPv4 addresses)")
	c.Flags().Var(newTextFlag(&o.mode, "auto", "MODE"), "mode", "XDP mode: auto, native or generic")
	return c
}

func (a *app) runDecapAttach(c *cobra.Command, iface string, o decapAttachOptions) error {
	mode, err := parseMode(o.mode)
	if err != nil {
		return err
	}
	var addrs []netip.Addr
	for _, s := range o.addresses {
		ad, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || !ad.Unmap().Is4() {
			return usageErrorf("bad --address %q: want an IPv4 address of this backend", s)
		}
		addrs = append(addrs, ad.Unmap())
	}
	if err := a.requirePrivileges(); err != nil {
		return err
	}
	d, err := loader.AttachDecap(iface, mode, a.pinRoot, addrs, a.log())
	if err != nil {
		return a.explain(err, iface)
	}
	defer d.Close()
	for _, ad := range addrs {
		// Adopted pins keep their addresses; add the ones asked for.
		if err := d.AddAddr(ad); err != nil {
			return fmt.Errorf("accept %v: %w", ad, err)
		}
	}
	got, err := d.Addrs()
	if err != nil {
		return fmt.Errorf("read addresses: %w", err)
	}
	names := make([]string, len(got))
	for i, ad := range got {
		names[i] = ad.String()
	}
	out := c.OutOrStdout()
	fmt.Fprintf(out, "decap attached to %s, pinned under %s\n", iface, filepath.Join(a.pinRoot, "decap", iface))
	if len(names) == 0 {
		fmt.Fprintf(out, "no address to decapsulate for: attach again with --address ADDR\n")
	} else {
		fmt.Fprintf(out, "decapsulating IPIP to %s\n", strings.Join(names, ", "))
	}
	return nil
}
