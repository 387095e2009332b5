// Package daemon is the xdplb daemon: it attaches the balancer (or adopts
// the one an earlier run pinned), and keeps its maps equal to the
// configuration, to the runtime changes made through the local API, to the
// health of the backends and to their next-hop MACs.
//
// `xdplb run --config FILE` runs it; Options, New and Daemon.Run are the
// same thing for tests and benchmarks, with hooks for a data plane that is
// not attached, a network namespace and a fake clock.
//
// # Start-up and adoption
//
// The daemon first claims its API socket (a second daemon stops there,
// before touching anything), then calls loader.Attach: a fresh attachment,
// or the adoption of the program, link and maps pinned by an earlier run,
// whose program is replaced inside the pinned link with one update, so the
// interface is never without a program. It holds the pin directory's lock
// (controlplane.Lock) for as long as it runs, so no CLI command writes the
// maps behind its back; while it runs, the CLI's map-writing commands go
// through its API instead.
//
// It then reads the maps as the earlier run left them and computes what
// they should hold. Every VIP is compared table and all; only what differs
// is written, and a backend keeps its slot (and so its flows) while its
// address stays, so a restart rewrites nothing and disturbs no flow. A VIP
// in the maps that neither the configuration nor a runtime change names is
// deleted.
//
// The initial health of a checked backend comes from the maps: one that
// was active starts fully up (it takes fall failed checks to go down), one
// that the checks had taken out starts fully down (it takes rise passed
// checks to come back), so a restart makes no backend flap. A backend the
// maps do not have starts as the health package's default: up, its first
// failure takes it down.
//
// Nothing is written when the daemon stops: the data plane keeps
// forwarding on the last state written, and a daemon killed with SIGKILL
// loses nothing a clean stop would have kept. Options.DetachOnExit
// (`--detach-on-exit`) detaches the program and removes its pins instead.
//
// # Backend states
//
// The state written for a backend is the first that applies:
//
//	down      an operator set it down (xdplb backend set --state down)
//	down      its health check fails and the service has on_failure: remove
//	draining  its health check fails and the service has on_failure: drain
//	draining  an operator drained it (xdplb backend drain)
//	draining  its weight is 0
//	down      its next-hop MAC is unknown (or, for DR, it is behind a router)
//	active    otherwise
//
// Active backends with a weight fill the service's Maglev table; a
// draining one keeps its established flows and gets no new ones; flows
// pinned to a down one are re-hashed onto the table on their next packet.
// `xdplb status` gives, for every backend that is not active, the reason.
//
// A backend whose check fails leaves the active state at once: its slot
// is rewritten in place (one map update, well under a millisecond after
// the check that decided it; xdplb_health_decision_to_map_seconds), and
// the table without it follows (a rebuild and an atomic swap, tens of
// milliseconds at the default ring size). Between the two, new flows that
// hash to its slots are dropped (drop_no_backend) rather than sent to a
// backend known to fail. A backend that recovers is written before the
// table that names it. The daemon's loop writes one service at a time and
// handles health changes between them, so a decision waits at most for
// one service's write.
//
// # A service without a backend
//
// When no backend of a service takes new flows (all down, draining or of
// weight 0), the data plane drops the packets of new connections to the
// VIP and counts them as drop_no_backend; if none is draining, flows
// already established are dropped too (a down backend's flows are
// re-hashed onto an empty table). The daemon says so loudly, once, when it
// happens: an error-level log line naming the service and what the data
// plane does, xdplb_service_active_backends at 0, and in `xdplb status`
// the service flagged and a note. It logs again when the service
// forwards new flows again.
//
// # Next hops
//
// The MAC written for a backend is its own (DR, or TUN on the link) or its
// gateway's (TUN through a router), found with package neigh: the route,
// then the kernel's neighbour table, then ARP. The daemon follows the
// neighbour table of its interface through netlink: a next hop whose MAC
// changes there is rewritten at once. Next hops that could not be resolved
// are retried every RetryInterval (5 s); all are resolved again every
// RefreshInterval (5 min). A resolution that fails keeps the last known
// MAC (one from the maps at start-up included): the health checks, not ARP,
// decide whether a backend is reachable. An operator may pin a MAC through
// the API (xdplb backend add|set --mac).
//
// # Reload
//
// SIGHUP and `xdplb reload` re-read the file. A file with any problem is
// refused whole: the error lists every problem as file:line:column: field:
// message, nothing changes, xdplb_config_reloads_total{result="failure"}
// counts it and `xdplb status` shows it. So is a file that changes a
// director setting fixed at start (interface, api_socket, state_dir,
// pin_root, xdp_mode, log_format, the map sizes, ring_size, hash_seed);
// log_level, source_address and metrics_listen change live.
//
// An accepted file is applied as a difference: removed services first
// (their VIPs stop being forwarded), then added and changed ones, each
// written only if what it should hold differs from what it holds, with
// backends keeping their slots, so established flows are not disturbed.
// Health checks are updated in place: a backend keeps its health across a
// reload. Next hops of new backends are resolved before the reload takes
// the loop, and Reload returns once the maps hold the new configuration.
//
// # Runtime changes
//
// Drains, and the changes the CLI's map-writing commands make while the
// daemon runs (xdplb vip add|del, xdplb backend add|del|set), are runtime
// changes on top of the file: saved in state_dir/runtime.json (written to
// a temporary file, flushed, renamed, the directory flushed) before they
// take effect, kept across reloads and restarts, shown in `xdplb status`
// (origin runtime, admin state, reason), and undone by the inverse
// command. The file wins where they meet: a VIP added at runtime that the
// file now defines takes the file's definition, and changes to VIPs and
// backends the file no longer has are dropped (and logged). A VIP of the
// file deleted at runtime stays deleted until `xdplb vip add` or a file
// without it. A VIP added at runtime is health checked when it is added
// with a check (`xdplb vip add ... --health-check 'type: tcp'`, validated
// as a file's health_check section by config.ParseHealthCheck and saved
// with it), and not at all otherwise. A state file that cannot be read
// stops the daemon rather than silently undo an operator's drains.
//
// # Metrics and logs
//
// Package metrics serves, on metrics_listen, the data plane's counters per
// VIP, per backend and per reason, the flow table's use, the maps' memory,
// the backends' health and states, health-check durations and failures by
// reason, reload results and build information. Logs (log/slog, text or
// JSON) record transitions only: attach and adoption, backends up, down
// and taken out, services starved and back, next hops changed, reloads,
// runtime changes; never a packet or a passed check.
//
// # VRRP
//
// The instances of the configuration's vrrp section run in the daemon, in
// a vrrp.Router: one raw socket, address announcer and link tracker per
// interface, the track scripts, and for each tracked service a flag the
// daemon keeps equal to "the service has a backend that takes new flows",
// so a director whose backends are all gone gives its VIPs up.
// notify_master, notify_backup and notify_fault run on the matching state
// changes (at most 10 s each); notify runs on every change. `xdplb status`
// shows each instance's state, priorities and master. A reload that
// changes the vrrp section restarts the instances: the old ones stop
// gracefully (a master sends priority 0, so a backup takes over at once)
// and the new ones start as a restarted director's would, preempting back
// if they should. Stopping the daemon stops them the same way; a daemon
// killed with SIGKILL stops advertising and the backup takes over after
// its master-down interval.
package daemon
