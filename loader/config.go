package loader

import "fmt"

// SetConfig writes the config entry. TunSource must be IPv4 or unset,
// IfMAC a 6-byte address or nil.
func (b *Balancer) SetConfig(c Config) error {
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
