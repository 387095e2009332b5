// Package config reads, checks and describes the xdplb configuration file:
// the director, its virtual services and their backends and health checks,
// and the VRRP instances that move the VIPs between directors.
//
// Load and Parse return a *Config holding every effective value, defaults
// included, or an *Error that lists every problem in the file, each with
// file, line, column, field path and what is allowed instead:
//
//	xdplb.yaml:14:17: services[0].forwarding: "direct" is not allowed; use dr or tun (direct routing is dr)
//
// A configuration is accepted whole or not at all, so a daemon that
// reloads can refuse a bad file and keep running on the last good one.
// Diff says what changed between two configurations, and Config.String
// writes the effective configuration back as YAML with the defaulted
// values marked.
//
// # Format
//
// The file is one YAML document. Every key is checked: an unknown key is
// an error (with a "did you mean" suggestion, and a translation for
// keepalived keywords), and so is a key given twice in one mapping, and a
// field that the chosen variant does not use (path on a tcp check,
// persistence_granularity without source-hash): nothing is silently
// ignored. YAML anchors, aliases and merge keys (<<: *defaults) work;
// top-level keys starting with "x-" are never read, so they can hold
// anchors shared by several services:
//
//	x-check: &check {type: http, path: /healthz, interval: 1s}
//	services:
//	  - name: web
//	    health_check: *check
//	  - name: api
//	    health_check: {<<: *check, path: /ready}
//
// Scalars are strict. Numbers are written bare (port: "80" is refused).
// Booleans are true or false (not yes/no). Durations are Go duration
// strings with a unit, "100ms", "2s", "1m"; a bare number such as 2 is
// refused rather than guessed at (keepalived counts seconds, many tools
// milliseconds), except 0. Addresses are IPv4: IPv6 is refused with a
// clear message until the data plane balances it. A key with no value
// (timeout:) is an error for a scalar and means "empty" for a section or
// list.
//
// # Sections
//
// director (required): interface (required), source_address (the outer
// source of IPIP packets; required when a service uses tun),
// metrics_listen (host:port; empty disables metrics), api_socket,
// state_dir, pin_root (absolute paths), xdp_mode (auto, native, generic),
// log_format (text, json), log_level (debug, info, warn, error), the map
// sizes max_vips, max_backends, max_flows, the Maglev ring_size (a prime)
// and hash_seed (the same on every director sharing a VIP).
//
// services: each has a name (a DNS label, unique), vip, port (required;
// 0 means every port), protocol (tcp, udp), forwarding (required: dr or
// tun), scheduler (maglev, source-hash, failover),
// persistence_granularity (source-hash only: the client prefix length
// hashed), backends (at least one: address, weight 0..65535 where 0
// drains) and health_check (required; type none forwards without
// checking). The VIP, port and protocol together are unique across
// services; a port-specific service takes precedence over a port-0
// service on the same VIP. A backend has no port: DR and TUN deliver the
// packet unchanged, so it arrives on the service's port.
//
// health_check: type (tcp, http, https, exec, none), port (defaults to
// the service port; required for a port-0 service), path, host,
// expect_status, expect_body (a substring of the response body),
// tls_skip_verify (https), command (exec: a list, run without a shell, the
// program given by absolute path, arguments as text/template over
// CommandVars such as "{{.Address}}"), interval, timeout (shorter than
// interval), rise, fall (HAProxy's meaning), on_failure (remove, drain).
//
// vrrp: instances, each with name, interface, virtual_router_id (1..255,
// unique per interface), priority (1..255; 255 owns the addresses),
// version (2 or 3), advert_interval (version 2: whole seconds 1s..255s;
// version 3: multiples of 10ms from 10ms to 40.95s), preempt,
// preempt_delay (up to 1000s), authentication {type: pass, password of at
// most 8 bytes} (version 2 only), virtual_addresses (address or CIDR, at
// least one, each in one instance only), unicast_src_ip and unicast_peers,
// track_interfaces, track_scripts and track_services (weights -253..253
// with keepalived's meaning, 0 faults the instance), notify hooks, and
// garp_master_repeat, garp_master_delay, garp_interval. sync_groups name
// instances that change state together; an instance is in at most one.
//
// # Defaults
//
// The Default* constants hold every default; applyDefaults (defaults.go)
// is the one place they are applied. Keepalived's defaults are kept where
// operators migrate from it: VRRP version 2, priority 100, advert_interval
// 1s, preempt true, garp_master_repeat 5, garp_master_delay 5s; track
// scripts run every 1s with rise and fall 1. Health checks follow
// HAProxy: every 2s, rise 2, fall 3. A timeout left out is half the
// interval, so that changing only the interval never makes a file invalid.
package config
