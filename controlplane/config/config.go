package config

import (
	"log/slog"
	"net/netip"
	"time"
)

// Config is a parsed, defaulted and validated configuration file. Every
// field holds its effective value: a field the file leaves out holds its
// default (see defaults.go), so consumers never apply defaults themselves.
//
// The struct tags are the schema: `yaml` names the key, and `cfg` says
// whether it is required, whether zero is a meaningful value distinct from
// the default ("zero"), the bounds a given value must respect ("min=",
// "max=", durations for time.Duration fields), and whether String writes
// it in hexadecimal ("hex").
//
// A Config is not modified after Parse returns it; it is safe to read from
// several goroutines.
type Config struct {
	Director Director  `yaml:"director" cfg:"required"`
	Services []Service `yaml:"services"`
	VRRP     VRRP      `yaml:"vrrp"`

	// src remembers where each field was written, for errors found after
	// parsing (Problemf) and for marking defaults in String. It is nil for
	// a Config built in code.
	src *source
}

// Director is the machine-wide part: where the data plane runs and how the
// daemon is reached.
type Director struct {
	// Interface is the network interface the balancer program attaches to.
	Interface string `yaml:"interface" cfg:"required"`
	// SourceAddress is the outer source address of IPIP packets; required
	// when a service uses forwarding: tun.
	SourceAddress netip.Addr `yaml:"source_address"`
	// MetricsListen is host:port of the Prometheus endpoint; empty
	// disables it.
	MetricsListen string `yaml:"metrics_listen"`
	// APISocket is the unix socket of the local API.
	APISocket string `yaml:"api_socket"`
	// StateDir holds what survives a restart (drained backends).
	StateDir string `yaml:"state_dir"`
	// PinRoot is the bpffs directory where programs and maps are pinned.
	PinRoot string `yaml:"pin_root"`
	// XDPMode chooses how the program is attached.
	XDPMode XDPMode `yaml:"xdp_mode"`
	// LogFormat and LogLevel configure the daemon's log/slog handler.
	LogFormat LogFormat `yaml:"log_format"`
	LogLevel  LogLevel  `yaml:"log_level"`
	// MaxVIPs, MaxBackends and MaxFlows size the BPF maps; RingSize is the
	// Maglev table size (a prime). They are fixed when the maps are
	// created: changing them needs a detach.
	MaxVIPs     uint32 `yaml:"max_vips" cfg:"min=1,max=65536"`
	MaxBackends uint32 `yaml:"max_backends" cfg:"min=2,max=16777216"`
	MaxFlows    uint32 `yaml:"max_flows" cfg:"min=1"`
	RingSize    uint32 `yaml:"ring_size" cfg:"min=2,max=16777216"`
	// HashSeed seeds the flow and source hashes. Directors that share a
	// VIP must use the same seed, or a flow changes backend on failover.
	HashSeed uint32 `yaml:"hash_seed" cfg:"zero,hex"`
}

// Service is one virtual service: a VIP, port and protocol balanced over
// a set of backends.
type Service struct {
	// Name identifies the service in logs, metrics, the API and Diff.
	Name string     `yaml:"name" cfg:"required"`
	VIP  netip.Addr `yaml:"vip" cfg:"required"`
	// Port 0 means every port of the VIP. A port-specific service on the
	// same VIP and protocol takes precedence over the port-0 one.
	Port       uint16     `yaml:"port" cfg:"required,zero"`
	Protocol   Protocol   `yaml:"protocol"`
	Forwarding Forwarding `yaml:"forwarding" cfg:"required"`
	Scheduler  Scheduler  `yaml:"scheduler"`
	// PersistenceGranularity is the prefix length of the client address
	// hashed by the source-hash scheduler (32: one client, 24: its /24).
	PersistenceGranularity uint8       `yaml:"persistence_granularity" cfg:"max=32"`
	Backends               []Backend   `yaml:"backends" cfg:"required"`
	HealthCheck            HealthCheck `yaml:"health_check" cfg:"required"`
}

// Backend is a real server behind a service.
type Backend struct {
	Address netip.Addr `yaml:"address" cfg:"required"`
	// Weight is the backend's share in the Maglev table, or its rank for
	// the failover scheduler. 0 drains it: established flows stay, new
	// flows go elsewhere.
	Weight uint32 `yaml:"weight" cfg:"zero,max=65535"`
}

// HealthCheck says how the backends of a service are checked. Fields that
// a check type does not use are rejected rather than ignored.
type HealthCheck struct {
	Type CheckType `yaml:"type" cfg:"required"`
	// Port is checked instead of the service port (tcp, http, https; for
	// exec it is the {{.Port}} of the command).
	Port uint16 `yaml:"port" cfg:"min=1"`
	// Path, Host, ExpectStatus and ExpectBody describe the HTTP GET: the
	// response must have status ExpectStatus and, when ExpectBody is set,
	// contain it as a substring. Host is the Host header (and TLS server
	// name); empty means the backend address.
	Path         string `yaml:"path"`
	Host         string `yaml:"host"`
	ExpectStatus int    `yaml:"expect_status" cfg:"min=100,max=599"`
	ExpectBody   string `yaml:"expect_body"`
	// TLSSkipVerify accepts any server certificate (https only).
	TLSSkipVerify bool `yaml:"tls_skip_verify"`
	// Command is run without a shell for type exec; exit status 0 means
	// healthy. Each argument is a text/template over CommandVars.
	Command  []string      `yaml:"command"`
	Interval time.Duration `yaml:"interval" cfg:"min=10ms,max=1h"`
	Timeout  time.Duration `yaml:"timeout" cfg:"min=1ms,max=1h"`
	// Rise consecutive successes bring a backend up, Fall consecutive
	// failures take it down (HAProxy's meaning).
	Rise      int       `yaml:"rise" cfg:"min=1,max=1000"`
	Fall      int       `yaml:"fall" cfg:"min=1,max=1000"`
	OnFailure OnFailure `yaml:"on_failure"`
}

// VRRP is the optional high-availability part: the VRRP instances that
// move the VIPs between directors.
type VRRP struct {
	Instances  []Instance  `yaml:"instances"`
	SyncGroups []SyncGroup `yaml:"sync_groups"`
}

// Instance is one VRRP virtual router.
type Instance struct {
	Name            string `yaml:"name" cfg:"required"`
	Interface       string `yaml:"interface" cfg:"required"`
	VirtualRouterID uint8  `yaml:"virtual_router_id" cfg:"required,min=1"`
	// Priority 255 is reserved for the owner of the addresses.
	Priority uint8 `yaml:"priority" cfg:"min=1"`
	Version  int   `yaml:"version" cfg:"min=2,max=3"`
	// AdvertInterval: whole seconds for version 2, multiples of 10ms for
	// version 3.
	AdvertInterval time.Duration `yaml:"advert_interval"`
	Preempt        bool          `yaml:"preempt" cfg:"zero"`
	PreemptDelay   time.Duration `yaml:"preempt_delay" cfg:"max=1000s"`
	// Authentication is VRRPv2 simple-password authentication; nil means
	// none.
	Authentication   *Authentication `yaml:"authentication"`
	VirtualAddresses []netip.Prefix  `yaml:"virtual_addresses" cfg:"required"`
	// UnicastSrcIP and UnicastPeers replace multicast with unicast
	// adverts (keepalived's unicast_src_ip and unicast_peer).
	UnicastSrcIP    netip.Addr     `yaml:"unicast_src_ip"`
	UnicastPeers    []netip.Addr   `yaml:"unicast_peers"`
	TrackInterfaces []string       `yaml:"track_interfaces"`
	TrackScripts    []TrackScript  `yaml:"track_scripts"`
	TrackServices   []TrackService `yaml:"track_services"`
	// Notify runs on every state change with four arguments appended:
	// "INSTANCE", the instance name, the new state (MASTER, BACKUP, FAULT
	// or STOP) and the priority, as keepalived's notify does. The others
	// run, without arguments appended, on entering that state.
	Notify       []string `yaml:"notify"`
	NotifyMaster []string `yaml:"notify_master"`
	NotifyBackup []string `yaml:"notify_backup"`
	NotifyFault  []string `yaml:"notify_fault"`
	// On becoming master, GARPMasterRepeat gratuitous ARPs are sent for
	// each virtual address, GARPInterval apart; a second burst follows
	// GARPMasterDelay later (0: no second burst). Same meaning as
	// keepalived's garp_master_repeat, garp_master_delay, garp_interval.
	GARPMasterRepeat int           `yaml:"garp_master_repeat" cfg:"min=1,max=255"`
	GARPMasterDelay  time.Duration `yaml:"garp_master_delay" cfg:"max=1h"`
	GARPInterval     time.Duration `yaml:"garp_interval" cfg:"max=1s"`
}

// Authentication is VRRPv2 authentication (RFC 3768 section 5.3.6).
type Authentication struct {
	Type     AuthType `yaml:"type" cfg:"required"`
	Password string   `yaml:"password" cfg:"required"`
}

// TrackScript is a periodic command whose result adjusts the instance, as
// keepalived's vrrp_script: with a negative weight a failing script lowers
// the priority by -weight, with a positive weight a succeeding script
// raises it by weight, and with weight 0 a failing script puts the
// instance in fault. The effective priority stays within 1..254.
type TrackScript struct {
	Name     string        `yaml:"name" cfg:"required"`
	Command  []string      `yaml:"command" cfg:"required"`
	Interval time.Duration `yaml:"interval" cfg:"min=10ms,max=1h"`
	Timeout  time.Duration `yaml:"timeout" cfg:"min=1ms,max=1h"`
	Weight   int           `yaml:"weight" cfg:"min=-253,max=253"`
	Rise     int           `yaml:"rise" cfg:"min=1,max=1000"`
	Fall     int           `yaml:"fall" cfg:"min=1,max=1000"`
}

// TrackService ties an instance to a service of this director: the
// service "fails" while none of its backends is healthy, and the weight
// applies as for a TrackScript (0: fault while it has no healthy backend).
type TrackService struct {
	Service string `yaml:"service" cfg:"required"`
	Weight  int    `yaml:"weight" cfg:"min=-253,max=253"`
}

// SyncGroup is a set of instances that change state together.
type SyncGroup struct {
	Name      string   `yaml:"name" cfg:"required"`
	Instances []string `yaml:"instances" cfg:"required"`
}

// enum is implemented by the string types whose values are a closed set.
type enum interface{ allowed() []string }

// Protocol is a service's transport protocol.
type Protocol string

const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

func (Protocol) allowed() []string { return []string{string(TCP), string(UDP)} }

// Forwarding is how packets reach a backend.
type Forwarding string

const (
	// ForwardDR rewrites the destination MAC (LVS direct routing).
	ForwardDR Forwarding = "dr"
	// ForwardTUN encapsulates in IPIP (LVS tunnelling).
	ForwardTUN Forwarding = "tun"
)

func (Forwarding) allowed() []string { return []string{string(ForwardDR), string(ForwardTUN)} }

// Scheduler chooses a backend for a new flow.
type Scheduler string

const (
	// SchedulerMaglev hashes the 5-tuple through a weighted Maglev table.
	SchedulerMaglev Scheduler = "maglev"
	// SchedulerSourceHash hashes only the client address, masked to
	// PersistenceGranularity bits, through the same table.
	SchedulerSourceHash Scheduler = "source-hash"
	// SchedulerFailover sends every new flow to the healthy backend with
	// the highest weight (IPVS "fo").
	SchedulerFailover Scheduler = "failover"
)

func (Scheduler) allowed() []string {
	return []string{string(SchedulerMaglev), string(SchedulerSourceHash), string(SchedulerFailover)}
}

// CheckType is the kind of health check.
type CheckType string

const (
	CheckTCP   CheckType = "tcp"
	CheckHTTP  CheckType = "http"
	CheckHTTPS CheckType = "https"
	CheckExec  CheckType = "exec"
	// CheckNone runs no check: every backend is always up.
	CheckNone CheckType = "none"
)

func (CheckType) allowed() []string {
	return []string{string(CheckTCP), string(CheckHTTP), string(CheckHTTPS), string(CheckExec), string(CheckNone)}
}

// OnFailure is what a failed health check does to a backend.
type OnFailure string

const (
	// OnFailureRemove marks the backend down: its flows are re-hashed.
	OnFailureRemove OnFailure = "remove"
	// OnFailureDrain keeps its established flows but sends it no new
	// ones (keepalived's inhibit_on_failure).
	OnFailureDrain OnFailure = "drain"
)

func (OnFailure) allowed() []string { return []string{string(OnFailureRemove), string(OnFailureDrain)} }

// XDPMode is how the XDP program is attached.
type XDPMode string

const (
	// XDPAuto tries native mode and falls back to generic with a warning.
	XDPAuto    XDPMode = "auto"
	XDPNative  XDPMode = "native"
	XDPGeneric XDPMode = "generic"
)

func (XDPMode) allowed() []string {
	return []string{string(XDPAuto), string(XDPNative), string(XDPGeneric)}
}

// LogFormat is the daemon's log encoding.
type LogFormat string

const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

func (LogFormat) allowed() []string { return []string{string(LogText), string(LogJSON)} }

// LogLevel is the daemon's minimum log level.
type LogLevel string

const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

func (LogLevel) allowed() []string {
	return []string{string(LogDebug), string(LogInfo), string(LogWarn), string(LogError)}
}

// Level returns the slog level; an empty or unknown level is slog.LevelInfo.
func (l LogLevel) Level() slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// AuthType is a VRRPv2 authentication type.
type AuthType string

// AuthPass is simple text password authentication (keepalived's
// auth_type PASS).
const AuthPass AuthType = "pass"

func (AuthType) allowed() []string { return []string{string(AuthPass)} }
