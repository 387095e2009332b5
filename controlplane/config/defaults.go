package config

import (
	"fmt"
	"time"
)

// Defaults. Each applies when the file leaves the field out; applyDefaults
// below is the only place they are applied.
const (
	DefaultAPISocket = "/run/xdplb/xdplb.sock"
	DefaultStateDir  = "/var/lib/xdplb"
	DefaultPinRoot   = "/sys/fs/bpf/xdplb"
	DefaultXDPMode   = XDPAuto
	DefaultLogFormat = LogText
	DefaultLogLevel  = LogInfo
	// The map sizes are the data plane's (loader.DefaultOptions).
	DefaultMaxVIPs     = 256
	DefaultMaxBackends = 4096
	DefaultMaxFlows    = 65536
	DefaultRingSize    = 65537
	DefaultHashSeed    = 0x5eed1b0b

	DefaultProtocol               = TCP
	DefaultScheduler              = SchedulerMaglev
	DefaultPersistenceGranularity = 32 // source-hash only
	DefaultWeight                 = 1

	// Health checks; the timeout defaults to half the interval, and the
	// port to the service port.
	DefaultCheckPath     = "/"
	DefaultExpectStatus  = 200
	DefaultCheckInterval = 2 * time.Second
	DefaultRise          = 2
	DefaultFall          = 3
	DefaultOnFailure     = OnFailureRemove

	// VRRP, as keepalived's defaults.
	DefaultPriority         = 100
	DefaultVRRPVersion      = 2
	DefaultAdvertInterval   = time.Second
	DefaultPreempt          = true
	DefaultGARPMasterRepeat = 5
	DefaultGARPMasterDelay  = 5 * time.Second
	// Track scripts, as keepalived's vrrp_script; the timeout defaults to
	// half the interval.
	DefaultScriptInterval = time.Second
	DefaultScriptRise     = 1
	DefaultScriptFall     = 1
)

// applyDefaults fills every field the file left out. given reports whether
// the file set a field path. Defaults that depend on another field (a
// check's port, an HTTP check's path) apply only where that field makes
// them meaningful.
func applyDefaults(c *Config, given func(path string) bool) {
	d := &c.Director
	set(given, "director.api_socket", &d.APISocket, DefaultAPISocket)
	set(given, "director.state_dir", &d.StateDir, DefaultStateDir)
	set(given, "director.pin_root", &d.PinRoot, DefaultPinRoot)
	set(given, "director.xdp_mode", &d.XDPMode, DefaultXDPMode)
	set(given, "director.log_format", &d.LogFormat, DefaultLogFormat)
	set(given, "director.log_level", &d.LogLevel, DefaultLogLevel)
	set(given, "director.max_vips", &d.MaxVIPs, DefaultMaxVIPs)
	set(given, "director.max_backends", &d.MaxBackends, DefaultMaxBackends)
	set(given, "director.max_flows", &d.MaxFlows, DefaultMaxFlows)
	set(given, "director.ring_size", &d.RingSize, DefaultRingSize)
	set(given, "director.hash_seed", &d.HashSeed, DefaultHashSeed)

	for i := range c.Services {
		s := &c.Services[i]
		sp := fmt.Sprintf("services[%d]", i)
		set(given, sp+".protocol", &s.Protocol, DefaultProtocol)
		set(given, sp+".scheduler", &s.Scheduler, DefaultScheduler)
		if s.Scheduler == SchedulerSourceHash {
			set(given, sp+".persistence_granularity", &s.PersistenceGranularity, DefaultPersistenceGranularity)
		}
		for j := range s.Backends {
			set(given, fmt.Sprintf("%s.backends[%d].weight", sp, j), &s.Backends[j].Weight, DefaultWeight)
		}
		applyCheckDefaults(&s.HealthCheck, s.Port, sp+".health_check", given)
	}

	for i := range c.VRRP.Instances {
		in := &c.VRRP.Instances[i]
		ip := fmt.Sprintf("vrrp.instances[%d]", i)
		set(given, ip+".priority", &in.Priority, DefaultPriority)
		set(given, ip+".version", &in.Version, DefaultVRRPVersion)
		set(given, ip+".advert_interval", &in.AdvertInterval, DefaultAdvertInterval)
		set(given, ip+".preempt", &in.Preempt, DefaultPreempt)
		set(given, ip+".garp_master_repeat", &in.GARPMasterRepeat, DefaultGARPMasterRepeat)
		set(given, ip+".garp_master_delay", &in.GARPMasterDelay, DefaultGARPMasterDelay)
		for j := range in.TrackScripts {
			ts := &in.TrackScripts[j]
			tp := fmt.Sprintf("%s.track_scripts[%d]", ip, j)
			set(given, tp+".interval", &ts.Interval, DefaultScriptInterval)
			set(given, tp+".timeout", &ts.Timeout, ts.Interval/2)
			set(given, tp+".rise", &ts.Rise, DefaultScriptRise)
			set(given, tp+".fall", &ts.Fall, DefaultScriptFall)
		}
	}
}

// applyCheckDefaults fills a service's health check; servicePort is the
// port the check defaults to.
func applyCheckDefaults(h *HealthCheck, servicePort uint16, hp string, given func(string) bool) {
	if h.Type == CheckNone || h.Type == "" {
		return
	}
	set(given, hp+".port", &h.Port, servicePort)
	if h.Type == CheckHTTP || h.Type == CheckHTTPS {
		set(given, hp+".path", &h.Path, DefaultCheckPath)
		set(given, hp+".expect_status", &h.ExpectStatus, DefaultExpectStatus)
	}
	set(given, hp+".interval", &h.Interval, DefaultCheckInterval)
	set(given, hp+".timeout", &h.Timeout, h.Interval/2)
	set(given, hp+".rise", &h.Rise, DefaultRise)
	set(given, hp+".fall", &h.Fall, DefaultFall)
	set(given, hp+".on_failure", &h.OnFailure, DefaultOnFailure)
}

// set stores v in *field unless the file gave path.
func set[T any](given func(string) bool, path string, field *T, v T) {
	if !given(path) {
		*field = v
	}
}
