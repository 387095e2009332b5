package interop

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/xdplb/xdplb/vrrp"
)

// Config is the VRRP part of a keepalived.conf.
type Config struct {
	// RouterID is global_defs' router_id, which names the node in logs.
	RouterID  string
	Instances []Instance
}

// Instance is one vrrp_instance block. Its fields mirror
// [vrrp.InstanceConfig], so a test can give both implementations the same
// parameters.
type Instance struct {
	Name      string
	Interface string
	VRID      uint8
	Version   vrrp.Version
	Priority  uint8
	// Interval is advert_int: whole seconds for VRRPv2, multiples of 10ms
	// for VRRPv3.
	Interval time.Duration
	// Password, when set, turns on VRRPv2 "auth_type PASS".
	Password  string
	Addresses []netip.Prefix
	NoPreempt bool
	// UnicastPeers switch the instance from multicast to unicast
	// (unicast_peer), sent from UnicastSource (unicast_src_ip) when it is
	// set, else from the interface's primary address.
	UnicastSource netip.Addr
	UnicastPeers  []netip.Addr
	// GARP is written as garp_master_repeat, garp_master_delay and
	// garp_master_refresh, with the meaning [vrrp.GARP] gives them: zero
	// fields keep keepalived's defaults and a negative Delay sends a single
	// burst (garp_master_delay 0). keepalived has no per-instance spacing
	// within a burst: Interval goes to global_defs' vrrp_garp_interval, so
	// every instance must have the same.
	GARP vrrp.GARP
}

// Render returns the configuration as keepalived reads it. notifyFIFO,
// when not empty, is written as global_defs' notify_fifo.
func (c Config) Render(notifyFIFO string) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("keepalived config: %w", err)
	}
	if notifyFIFO != "" && !plainWord(notifyFIFO) {
		return nil, fmt.Errorf("keepalived config: notify fifo path %q has spaces, quotes or braces", notifyFIFO)
	}
	var b bytes.Buffer
	b.WriteString("global_defs {\n")
	if c.RouterID != "" {
		fmt.Fprintf(&b, "    router_id %s\n", c.RouterID)
	}
	if notifyFIFO != "" {
		fmt.Fprintf(&b, "    notify_fifo %s\n", notifyFIFO)
	}
	// keepalived spaces the ARPs of a burst by one global setting.
	if in := c.Instances[0]; in.GARP.Interval > 0 {
		fmt.Fprintf(&b, "    vrrp_garp_interval %s\n", seconds(in.GARP.Interval))
	}
	b.WriteString("}\n")
	for _, in := range c.Instances {
		fmt.Fprintf(&b, "\nvrrp_instance %s {\n", in.Name)
		// Every instance starts as a backup and wins by priority, as RFC
		// 3768/5798 routers do.
		b.WriteString("    state BACKUP\n")
		fmt.Fprintf(&b, "    interface %s\n", in.Interface)
		fmt.Fprintf(&b, "    virtual_router_id %d\n", in.VRID)
		fmt.Fprintf(&b, "    version %d\n", in.Version)
		fmt.Fprintf(&b, "    priority %d\n", in.Priority)
		fmt.Fprintf(&b, "    advert_int %s\n", seconds(in.Interval))
		if in.NoPreempt {
			b.WriteString("    nopreempt\n")
		}
		g := in.GARP
		if g.Repeat > 0 {
			fmt.Fprintf(&b, "    garp_master_repeat %d\n", g.Repeat)
		}
		switch {
		case g.Delay < 0:
			b.WriteString("    garp_master_delay 0\n")
		case g.Delay > 0:
			fmt.Fprintf(&b, "    garp_master_delay %s\n", seconds(g.Delay))
		}
		if g.Refresh > 0 {
			fmt.Fprintf(&b, "    garp_master_refresh %s\n", seconds(g.Refresh))
		}
		if in.UnicastSource.IsValid() {
			fmt.Fprintf(&b, "    unicast_src_ip %s\n", in.UnicastSource)
		}
		if len(in.UnicastPeers) > 0 {
			b.WriteString("    unicast_peer {\n")
			for _, p := range in.UnicastPeers {
				fmt.Fprintf(&b, "        %s\n", p)
			}
			b.WriteString("    }\n")
		}
		if in.Password != "" {
			fmt.Fprintf(&b, "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n", in.Password)
		}
		b.WriteString("    virtual_ipaddress {\n")
		for _, p := range in.Addresses {
			fmt.Fprintf(&b, "        %s\n", p)
		}
		b.WriteString("    }\n}\n")
	}
	return b.Bytes(), nil
}

func (c Config) check() error {
	if c.RouterID != "" && !plainWord(c.RouterID) {
		return fmt.Errorf("router id %q has spaces, quotes or braces", c.RouterID)
	}
	if len(c.Instances) == 0 {
		return errors.New("no instances")
	}
	names := map[string]bool{}
	for _, in := range c.Instances {
		if err := in.check(); err != nil {
			return fmt.Errorf("instance %q: %w", in.Name, err)
		}
		if names[in.Name] {
			return fmt.Errorf("instance name %q used twice", in.Name)
		}
		names[in.Name] = true
		if in.GARP.Interval != c.Instances[0].GARP.Interval {
			return errors.New("instances differ in GARP interval, which keepalived sets globally")
		}
	}
	return nil
}

func (in Instance) check() error {
	switch {
	case !plainWord(in.Name):
		return errors.New("name is empty or has spaces, quotes or braces")
	case !plainWord(in.Interface) || len(in.Interface) > 15:
		return fmt.Errorf("interface name %q is not a Linux interface name", in.Interface)
	case in.VRID == 0:
		return errors.New("virtual router id must be 1 to 255")
	case in.Priority == 0:
		return errors.New("priority must be 1 to 255")
	case len(in.Addresses) == 0:
		return errors.New("no virtual addresses")
	}
	if in.Version != vrrp.V2 && in.Version != vrrp.V3 {
		return fmt.Errorf("version %d, want 2 or 3", in.Version)
	}
	if _, err := vrrp.IntervalField(in.Version, in.Interval); err != nil {
		return err
	}
	if in.Password != "" {
		if in.Version != vrrp.V2 {
			return errors.New("a password needs VRRPv2 (VRRPv3 has no authentication)")
		}
		if _, err := vrrp.Password(in.Password); err != nil {
			return err
		}
		if !plainWord(in.Password) {
			return errors.New("password has spaces, quotes or braces")
		}
	}
	for _, p := range in.Addresses {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("virtual address %v is not IPv4", p)
		}
	}
	if in.UnicastSource.IsValid() && !in.UnicastSource.Is4() {
		return fmt.Errorf("unicast source %v is not IPv4", in.UnicastSource)
	}
	for _, p := range in.UnicastPeers {
		if !p.Is4() {
			return fmt.Errorf("unicast peer %v is not IPv4", p)
		}
	}
	if in.GARP.Delay > 0 && in.GARP.Delay%time.Second != 0 {
		return fmt.Errorf("garp delay %v: keepalived takes whole seconds", in.GARP.Delay)
	}
	if in.GARP.Refresh > 0 && in.GARP.Refresh%time.Second != 0 {
		return fmt.Errorf("garp refresh %v: keepalived takes whole seconds", in.GARP.Refresh)
	}
	return nil
}

// plainWord reports whether s is one keepalived configuration token:
// not empty, printable, without spaces, quotes, braces or comment marks.
func plainWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r > '~' || strings.ContainsRune(`"'{}#!`, r) {
			return false
		}
	}
	return true
}

// seconds writes d as keepalived's decimal seconds: "1", "0.1", "0.05".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
