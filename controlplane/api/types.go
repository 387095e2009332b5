package api

import "time"

// Status is the daemon's state, as `xdplb status` shows it.
type Status struct {
	// Interface is the network interface the balancer is attached to,
	// Mode how ("native" or "generic"), PinDir where its program and maps
	// are pinned. Adopted says the daemon took over pins of an earlier
	// run rather than attaching afresh.
	Interface string `json:"interface"`
	Mode      string `json:"xdp_mode"`
	PinDir    string `json:"pin_dir"`
	Adopted   bool   `json:"adopted"`
	// Started is when the daemon started; ConfigFile and ConfigLoaded say
	// which configuration is in force and since when.
	Started      time.Time `json:"started"`
	ConfigFile   string    `json:"config_file"`
	ConfigLoaded time.Time `json:"config_loaded"`
	// LastReload is the outcome of the last reload, if any.
	LastReload *ReloadStatus `json:"last_reload,omitempty"`
	Services   []Service     `json:"services"`
	FlowTable  FlowTable     `json:"flow_table"`
	BPFMemory  BPFMemory     `json:"bpf_memory"`
	// Notes lists conditions an operator should know about (services
	// without a backend, backends without a next hop), one sentence each.
	Notes []string `json:"notes,omitempty"`
	// VRRP is the state of the VRRP instances, when the daemon runs any.
	VRRP []VRRPInstance `json:"vrrp,omitempty"`
	// VRRPLinks counts, per interface, the VRRP messages no instance
	// claimed.
	VRRPLinks []VRRPLink `json:"vrrp_links,omitempty"`
}

// ReloadStatus is the outcome of one reload.
type ReloadStatus struct {
	At time.Time `json:"at"`
	OK bool      `json:"ok"`
	// Error is why the file was refused; empty when OK.
	Error string `json:"error,omitempty"`
	// Changes summarises what the reload changed ("services: +db -old
	// ~web(backends)").
	Changes string `json:"changes,omitempty"`
}

// Service is one virtual service.
type Service struct {
	Name string `json:"name"`
	// VIP is address:port/protocol, the form the CLI takes.
	VIP        string `json:"vip"`
	Forwarding string `json:"forwarding"` // dr or tun
	Scheduler  string `json:"scheduler"`  // maglev, source-hash or failover
	// PersistencePrefix is the client prefix length source-hash hashes.
	PersistencePrefix uint8 `json:"persistence_prefix,omitempty"`
	// Origin is "config" for a service of the configuration file and
	// "runtime" for one added through the API (xdplb vip add).
	Origin string `json:"origin"`
	// HealthCheck is the check type: tcp, http, https, exec or none.
	HealthCheck string `json:"health_check"`
	// ActiveBackends counts the backends taking new flows.
	ActiveBackends int `json:"active_backends"`
	// Dataplane says in one sentence what the data plane does with the
	// VIP's packets: forwards them, or drops them and why.
	Dataplane string `json:"dataplane"`
	// Packets and Bytes are what the data plane forwarded for the VIP.
	Packets  uint64    `json:"packets"`
	Bytes    uint64    `json:"bytes"`
	Backends []Backend `json:"backends"`
}

// Backend is one backend of a service.
type Backend struct {
	Address string `json:"address"`
	// ID is the backend's slot in the data plane; flows are pinned to it.
	ID     uint32 `json:"id,omitempty"`
	Weight uint32 `json:"weight"`
	// State is the data-plane state: active, draining or down.
	State string `json:"state"`
	// Reason says why the state is not active ("health check failed",
	// "drained by operator", "weight 0", "no next-hop MAC").
	Reason string `json:"reason,omitempty"`
	// Health is the checks' verdict: up, down, or unchecked for a
	// service with health_check type none.
	Health      string    `json:"health"`
	HealthSince time.Time `json:"health_since,omitzero"`
	// LastCheckError is the error of the last failed check, if the last
	// one failed.
	LastCheckError string `json:"last_check_error,omitempty"`
	// Admin is the operator's decision (xdplb backend drain, backend set
	// --state): "draining", "down", or empty.
	Admin string `json:"admin,omitempty"`
	// Origin is "config" or "runtime" (added through the API).
	Origin string `json:"origin"`
	// MAC is the next-hop MAC the data plane writes; NextHop is whose it
	// is (the backend, or the gateway towards it).
	MAC     string `json:"mac,omitempty"`
	NextHop string `json:"next_hop,omitempty"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// FlowTable is the use of the flow table.
type FlowTable struct {
	Entries  uint64 `json:"entries"`
	Capacity uint64 `json:"capacity"`
}

// BPFMemory is the kernel memory the balancer's maps hold.
type BPFMemory struct {
	TotalBytes uint64      `json:"total_bytes"`
	Maps       []MapMemory `json:"maps"`
}

// MapMemory is one BPF map.
type MapMemory struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	MaxEntries uint32 `json:"max_entries"`
	Bytes      uint64 `json:"bytes"`
}

// VRRPInstance is the state of one VRRP instance.
type VRRPInstance struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	VRID      uint8  `json:"vrid"`
	// State is INIT, BACKUP, MASTER or FAULT.
	State string `json:"state"`
	// Priority is the configured priority, EffectivePriority the one
	// advertised after the tracked scripts, interfaces and services.
	Priority          uint8 `json:"priority"`
	EffectivePriority uint8 `json:"effective_priority"`
	// Master is the current master's address, as far as this director
	// knows.
	Master string `json:"master,omitempty"`
	// Group is the sync group the instance belongs to, if any.
	Group string `json:"group,omitempty"`
	// Faults names the failing trackers that hold the instance in FAULT.
	Faults    []string `json:"faults,omitempty"`
	Addresses []string `json:"addresses"`
	// Version is the VRRP version, 2 or 3.
	Version uint8 `json:"version"`
	// LastAdvert is when the last valid advertisement arrived.
	LastAdvert time.Time    `json:"last_advert,omitzero"`
	Counters   VRRPCounters `json:"counters"`
	// Transitions are the last state changes, oldest first.
	Transitions []VRRPTransition `json:"transitions"`
}

// VRRPCounters count an instance's protocol traffic since it started.
type VRRPCounters struct {
	AdvertsSent       uint64 `json:"adverts_sent"`
	AdvertsReceived   uint64 `json:"adverts_received"`
	Priority0Sent     uint64 `json:"priority0_sent"`
	Priority0Received uint64 `json:"priority0_received"`
	SendErrors        uint64 `json:"send_errors"`
	Transitions       uint64 `json:"transitions"`
	// Drops counts the advertisements dropped, by reason ("checksum",
	// "ttl", "auth_password"...); reasons never seen are left out.
	Drops map[string]uint64 `json:"drops"`
}

// VRRPTransition is one state change of a VRRP instance.
type VRRPTransition struct {
	At   time.Time `json:"at"`
	From string    `json:"from"`
	To   string    `json:"to"`
	// Cause says why: startup, master_down, higher_priority,
	// higher_address, fault, recovered, shutdown, sync_group...
	Cause string `json:"cause"`
}

// VRRPLink counts what arrived on one interface's VRRP socket that no
// instance could claim: malformed messages and unknown VRIDs.
type VRRPLink struct {
	Interface     string            `json:"interface"`
	Received      uint64            `json:"received"`
	ReceiveErrors uint64            `json:"receive_errors"`
	Drops         map[string]uint64 `json:"drops"`
}

// ReloadResult is a successful reload.
type ReloadResult struct {
	// Changes summarises what changed; empty when the file was unchanged.
	Changes string `json:"changes"`
}

// Result is the answer to a change: one sentence saying what was done.
type Result struct {
	Message string `json:"message"`
}

// BackendRef names a backend of a service. Service is a service name or
// a VIP in the CLI's form (198.18.1.100:80/tcp).
type BackendRef struct {
	Service string `json:"service"`
	Backend string `json:"backend"`
}

// VIPRef names a VIP (198.18.1.100:80/tcp) or a service by name.
type VIPRef struct {
	VIP string `json:"vip"`
}

// VIPSpec is a VIP to add at runtime.
type VIPSpec struct {
	VIP        string `json:"vip"`
	Forwarding string `json:"forwarding"`
	// Scheduler is maglev (default), source-hash or failover.
	Scheduler string `json:"scheduler,omitempty"`
	// PersistencePrefix is the client prefix length for source-hash
	// (default 32).
	PersistencePrefix uint8 `json:"persistence_prefix,omitempty"`
	// HealthCheck checks the VIP's backends: YAML with the keys and
	// defaults of a configuration file's health_check section, such as
	// "{type: http, path: /healthz, interval: 1s}". Empty: not checked.
	HealthCheck string `json:"health_check,omitempty"`
}

// BackendSpec is a backend to add to a VIP at runtime.
type BackendSpec struct {
	// Service is the VIP or service name.
	Service string `json:"service"`
	Backend string `json:"backend"`
	// Weight defaults to 1.
	Weight *uint32 `json:"weight,omitempty"`
	// State is active (default), draining or down.
	State string `json:"state,omitempty"`
	// MAC pins the next-hop MAC; empty means resolve it.
	MAC string `json:"mac,omitempty"`
}

// BackendChange changes a backend; nil fields stay as they are.
type BackendChange struct {
	Service string  `json:"service"`
	Backend string  `json:"backend"`
	Weight  *uint32 `json:"weight,omitempty"`
	// State active clears an operator's drain or down; draining and
	// down set one.
	State *string `json:"state,omitempty"`
	// MAC pins the next-hop MAC; an empty string goes back to resolving
	// it.
	MAC *string `json:"mac,omitempty"`
}
