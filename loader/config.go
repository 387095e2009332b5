package loader

import "fmt"

// MinMTU is the smallest MTU SetConfig accepts other than 0: the IPv4
// minimum every link must carry (68, RFC 791) plus the 20-byte outer
// header of a TUN packet, so the next-hop MTU that the fragmentation-needed
// answer announces (MTU - 20) is one IPv4 allows.
const MinMTU = 68 + 20

// SetConfig writes the config entry. TunSource must be IPv4 or unset,
// IfMAC a 6-byte address or nil. MTU is the interface's: a TUN packet
// that would exceed it once encapsulated is answered with ICMP
// fragmentation needed (or dropped without DF); 0 means no limit, and
// anything else must be at least MinMTU.
func (b *Balancer) SetConfig(c Config) error {
	if c.MTU != 0 && c.MTU < MinMTU {
		return fmt.Errorf("set config: MTU %d below %d (IPv4's 68 plus the 20-byte IPIP header); 0 means no limit", c.MTU, MinMTU)
	}
	if c.TunSource.IsValid() {
		if err := requireIPv4("tunnel source", c.TunSource); err != nil {
			return fmt.Errorf("set config: %w", err)
		}
	}
	v, err := configValue(c)
	if err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	if err := b.maps.Config.Put(uint32(0), v); err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	return nil
}

// Config returns the config entry.
func (b *Balancer) Config() (Config, error) {
	var v lbLbConfig
	if err := b.maps.Config.Lookup(uint32(0), &v); err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return configFromValue(v), nil
}
